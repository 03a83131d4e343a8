"""Evaluation on a JSONL question set (format: ``must_include`` groups, ``unanswerable``).

Metrics: passage_hit@1/3/5/10, mrr@10, answer_hit, citation_valid, refusal_ok,
false_refusal and ask latency p50/p95 after a warm-up. With ``baselines=True`` the same items
are also scored for BM25 only and for dense search over plain fixed-size chunks (the common
recipe), measured in the same run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import QueryError
from rag.facade import RAG
from rag.lexical import tokenize
from rag.types import Answer

__all__ = ["evaluate_file", "format_report", "load_items", "satisfies"]

_DASHES = re.compile(r"[\u2010-\u2015\u2212-]")
_MARKER = re.compile(r"\[(\d+)\]")
HITS_AT = (1, 3, 5, 10)


def load_items(path: Path) -> list[dict[str, Any]]:
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QueryError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if "question" not in item:
                raise QueryError(f"{path}:{number}: no 'question' field")
            items.append(item)
    return items


def _norm(text: str) -> str:
    return " ".join(_DASHES.sub("-", text).lower().split())


def satisfies(text: str, must_include: Sequence[Sequence[str]]) -> bool:
    """True when ``text`` contains one alternative of every group."""
    norm = _norm(text)
    return all(any(_norm(alt) in norm for alt in group) for group in must_include)


def citation_checks(answer: Answer, rag: RAG) -> tuple[int, int]:
    """(valid markers, all markers) for one answer."""
    by_n = {c.n: c for c in answer.citations}
    valid = total = 0
    for match in _MARKER.finditer(answer.text):
        total += 1
        citation = by_n.get(int(match.group(1)))
        if citation is None:
            continue
        doc = rag.snapshot.document(citation.doc_id)
        if doc is not None and doc.text[citation.start:citation.end] == citation.snippet:
            valid += 1
    return valid, total


def _rank_of_hit(texts: Sequence[str], must: Sequence[Sequence[str]]) -> int | None:
    for rank, text in enumerate(texts, start=1):
        if satisfies(text, must):
            return rank
    return None


def _retrieval_metrics(ranks: list[int | None], k: int) -> dict[str, float]:
    n = max(1, len(ranks))
    out = {f"passage_hit@{h}": sum(1 for r in ranks if r and r <= h) / n for h in HITS_AT
           if h <= k}
    out["mrr@10"] = sum(1 / r for r in ranks if r and r <= 10) / n
    return out


def evaluate_file(rag: RAG, path: Path, *, k: int = 10, baselines: bool = False,
                  warmup: int = 3) -> dict[str, Any]:
    items = load_items(path)
    answerable = [i for i in items if not i.get("unanswerable")]
    unanswerable = [i for i in items if i.get("unanswerable")]
    for item in items[:warmup]:
        rag.ask(item["question"], k=k)
    ranks: list[int | None] = []
    hits = refusals_ok = false_refusals = valid = markers = 0
    latencies: list[float] = []
    missed: list[dict[str, Any]] = []
    for item in items:
        started = time.perf_counter()
        answer = rag.ask(item["question"], k=k)
        latencies.append((time.perf_counter() - started) * 1000)
        v, t = citation_checks(answer, rag)
        valid, markers = valid + v, markers + t
        if item.get("unanswerable"):
            refusals_ok += not answer.supported
            if answer.supported:
                missed.append({"id": item.get("id"), "why": "answered an unanswerable question",
                               "answer": answer.text[:200]})
            continue
        must = item.get("must_include") or []
        rank = _rank_of_hit([p.text for p in answer.passages], must)
        ranks.append(rank)
        hit = answer.supported and satisfies(answer.text, must)
        hits += hit
        false_refusals += not answer.supported
        if not hit:
            missed.append({"id": item.get("id"), "passage_rank": rank,
                           "supported": answer.supported,
                           "support_score": round(answer.support_score, 3),
                           "why": "refused" if not answer.supported else "answer lacks a fact"})
    n_ans = max(1, len(answerable))
    ours: dict[str, float | None] = dict(_retrieval_metrics(ranks, k))
    ours.update({
        "answer_hit": hits / n_ans,
        "citation_valid": valid / markers if markers else 1.0,
        "refusal_ok": refusals_ok / max(1, len(unanswerable)) if unanswerable else None,
        "false_refusal": false_refusals / n_ans,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else 0.0,
        "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else 0.0,
    })
    report: dict[str, Any] = {
        "file": str(path), "items": len(items), "answerable": len(answerable),
        "unanswerable": len(unanswerable), "k": k, "metrics": {"ours": ours}, "missed": missed,
    }
    if baselines:
        report["metrics"]["bm25_only"] = _baseline(answerable, k, bm25_ranker(rag))
        report["metrics"]["dense_fixed_chunks"] = _baseline(answerable, k, dense_fixed_ranker(rag))
    return report


def _baseline(items: list[dict[str, Any]], k: int,
              ranker: Callable[[str, int], list[str]]) -> dict[str, float]:
    ranks = [_rank_of_hit(ranker(i["question"], k), i.get("must_include") or []) for i in items]
    return _retrieval_metrics(ranks, k)


def bm25_ranker(rag: RAG) -> Callable[[str, int], list[str]]:
    """BM25 over the same chunks with the plain query (no synonyms, no dense side)."""
    snap = rag.snapshot

    def rank(question: str, k: int) -> list[str]:
        scores = snap.lexical.scores(tokenize(question))
        order = np.argsort(-scores, kind="stable")[:k]
        return [snap.chunks[i].text for i in order if scores[i] > 0]

    return rank


def dense_fixed_ranker(rag: RAG, chunk_chars: int = 1000,
                       overlap: int = 200) -> Callable[[str, int], list[str]]:
    """The common recipe: fixed 1000-character chunks, same model, exact dense search."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_chars, chunk_overlap=overlap)
    snap = rag.snapshot
    texts: list[str] = []
    for doc_id in snap.docs:
        doc = snap.document(doc_id)
        if doc is not None:
            texts.extend(splitter.split_text(doc.text))
    embedder = rag.embedder()
    vectors = embedder.embed(texts)

    def rank(question: str, k: int) -> list[str]:
        scores = vectors @ embedder.embed([question])[0]
        return [texts[i] for i in np.argsort(-scores)[:k]]

    return rank


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['file']}: {report['items']} items ({report['answerable']} answerable, "
             f"{report['unanswerable']} unanswerable), k={report['k']}"]
    names = list(report["metrics"])
    keys: list[str] = []
    for metrics in report["metrics"].values():
        keys.extend(key for key in metrics if key not in keys)
    lines.append("| metric | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for key in keys:
        cells = []
        for name in names:
            value = report["metrics"][name].get(key)
            cells.append("-" if value is None else f"{value:.3f}" if isinstance(value, float)
                         else str(value))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if report["missed"]:
        lines.append("missed:")
        lines += [f"  {m['id']}: {m['why']}" + (f" (passage rank {m.get('passage_rank')}, "
                  f"support {m.get('support_score')})" if "passage_rank" in m else "")
                  for m in report["missed"]]
    return "\n".join(lines)


