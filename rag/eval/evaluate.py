"""Evaluation on JSONL question sets.

Two item formats are scored by the same command:

- TRAIL style: ``must_include`` groups (every group needs one alternative in the text),
  ``unanswerable``, an optional ``source`` (``pmid``/``doi``) for document-level hits;
- PubMedQA style: ``gold`` = ``{"pmid": ..., "text": <the abstract's conclusion>}``.

Metrics: passage_hit@1/3/5/10 and mrr@10 (a passage satisfies ``must_include``),
doc_hit@1/5 (a passage comes from the item's source or gold document), answer_hit,
gold_cited (a cited sentence of the gold document lies mostly inside its conclusion),
citations_from_gold, citations_per_answer, answer_words, citation_valid, refusal_ok,
false_refusal and ask latency p50/p95 after a warm-up. With ``baselines=True`` the same items
are also scored for BM25 only and for dense search over plain fixed-size chunks (the common
recipe), measured in the same run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import QueryError
from rag.facade import RAG
from rag.store.lexical import tokenize
from rag.types import Answer, Passage

__all__ = ["evaluate_file", "evaluate_files", "format_report", "gold_quoted", "is_target",
           "item_targets", "load_items", "rank_of_hit", "retrieval_metrics", "satisfies",
           "words_of"]

_DASHES = re.compile(r"[\u2010-\u2015\u2212-]")
_MARKER = re.compile(r"\[(\d+)\]")
_WORD = re.compile(r"[a-z0-9]+")
HITS_AT = (1, 3, 5, 10)
DOC_HITS_AT = (1, 5)
GOLD_TOKEN_SHARE = 0.6  # a cited sentence "quotes the conclusion" above this token share


def load_items(path: Path) -> list[dict[str, Any]]:
    items = []
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise QueryError(f"{path}: cannot read the question file ({exc.strerror})") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QueryError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                raise QueryError(f"{path}:{number}: no 'question' field")
            gold = item.get("gold")
            if gold is not None and not (isinstance(gold, dict) and gold.get("pmid")):
                raise QueryError(f"{path}:{number}: 'gold' needs a 'pmid' (and a 'text')")
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


def rank_of_hit(texts: Sequence[str], must: Sequence[Sequence[str]]) -> int | None:
    """1-based rank of the first text that satisfies ``must``, or None."""
    for rank, text in enumerate(texts, start=1):
        if satisfies(text, must):
            return rank
    return None


def retrieval_metrics(ranks: list[int | None], k: int) -> dict[str, float]:
    n = max(1, len(ranks))
    out = {f"passage_hit@{h}": sum(1 for r in ranks if r and r <= h) / n for h in HITS_AT
           if h <= k}
    out["mrr@10"] = sum(1 / r for r in ranks if r and r <= 10) / n
    return out


def words_of(text: str) -> list[str]:
    """Lower-cased alphanumeric words (the unit of the gold-conclusion overlap)."""
    return _WORD.findall(text.lower())


def item_targets(item: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(PMIDs, DOIs) of the document an item's answer should come from."""
    pmids: set[str] = set()
    dois: set[str] = set()
    for ref in (item.get("source"), item.get("gold")):
        if isinstance(ref, dict):
            if ref.get("pmid"):
                pmids.add(str(ref["pmid"]).strip())
            if ref.get("doi"):
                dois.add(str(ref["doi"]).strip().lower())
    return pmids, dois


def _doc_matcher(rag: RAG) -> Callable[[str, set[str], set[str]], bool]:
    docs = rag.snapshot.docs

    def matches(doc_id: str, pmids: set[str], dois: set[str]) -> bool:
        record = docs.get(doc_id)
        return record is not None and is_target(record.meta, pmids, dois)

    return matches


def is_target(meta: Mapping[str, Any], pmids: set[str], dois: set[str]) -> bool:
    """Whether a document (its metadata) is one of :func:`item_targets`."""
    return str(meta.get("pmid") or "") in pmids or str(meta.get("doi") or "").lower() in dois


def gold_quoted(snippet: str, gold_words: set[str]) -> bool:
    """Whether a sentence quotes the gold conclusion (enough of its words are in it)."""
    words = words_of(snippet)
    return bool(words) and sum(w in gold_words for w in words) / len(words) >= GOLD_TOKEN_SHARE


class _Tally:
    """Running sums over the items of a run."""

    def __init__(self) -> None:
        self.ranks: list[int | None] = []
        self.doc_ranks: list[int | None] = []
        self.counts: dict[str, int] = {}
        self.latencies: list[float] = []
        self.words: list[int] = []
        self.citations: list[int] = []

    def add(self, key: str, value: bool | int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(value)

    def get(self, key: str) -> int:
        return self.counts.get(key, 0)


def evaluate_file(rag: RAG, path: Path, *, k: int = 10, baselines: bool = False,
                  warmup: int = 3) -> dict[str, Any]:
    """Score one question file; see :func:`evaluate_files` for several."""
    return evaluate_items(rag, load_items(path), str(path), k=k, baselines=baselines,
                          warmup=warmup)


def evaluate_files(rag: RAG, paths: Sequence[Path], *, k: int = 10, baselines: bool = False,
                   warmup: int = 3) -> list[dict[str, Any]]:
    """Score each file separately (items are read first, so a bad file fails at once)."""
    loaded = [(str(path), load_items(path)) for path in paths]
    return [evaluate_items(rag, items, name, k=k, baselines=baselines, warmup=warmup)
            for name, items in loaded]


def evaluate_items(rag: RAG, items: list[dict[str, Any]], name: str, *, k: int = 10,
                   baselines: bool = False, warmup: int = 3) -> dict[str, Any]:
    answerable = [i for i in items if not i.get("unanswerable")]
    unanswerable = [i for i in items if i.get("unanswerable")]
    for item in items[:warmup]:
        rag.ask(item["question"], k=k)
    tally = _Tally()
    missed: list[dict[str, Any]] = []
    same_doc = _doc_matcher(rag)
    valid = markers = 0
    for item in items:
        started = time.perf_counter()
        answer = rag.ask(item["question"], k=k)
        tally.latencies.append((time.perf_counter() - started) * 1000)
        v, t = citation_checks(answer, rag)
        valid, markers = valid + v, markers + t
        if item.get("unanswerable"):
            tally.add("refused", not answer.supported)
            if answer.supported:
                missed.append({"id": item.get("id"), "why": "answered an unanswerable question",
                               "answer": answer.text[:200]})
            continue
        miss = _score_answerable(item, answer, tally, same_doc)
        if miss:
            missed.append(miss)
    metrics = _summarise(tally, answerable, unanswerable, k)
    metrics["citation_valid"] = valid / markers if markers else 1.0
    report: dict[str, Any] = {
        "file": name, "items": len(items), "answerable": len(answerable),
        "unanswerable": len(unanswerable), "k": k, "metrics": {"ours": metrics},
        "missed": missed,
    }
    with_must = [i for i in answerable if i.get("must_include")]
    if baselines and with_must:
        report["metrics"]["bm25_only"] = _baseline(with_must, k, bm25_ranker(rag))
        report["metrics"]["dense_fixed_chunks"] = _baseline(with_must, k,
                                                            dense_fixed_ranker(rag))
    return report


def _score_answerable(item: dict[str, Any], answer: Answer, tally: _Tally,
                      same_doc: Callable[[str, set[str], set[str]], bool],
                      ) -> dict[str, Any] | None:
    """Add one answerable item to ``tally``; return why it missed, or None."""
    must = item.get("must_include") or []
    pmids, dois = item_targets(item)
    gold = item.get("gold") if isinstance(item.get("gold"), dict) else None
    tally.add("false_refusal", not answer.supported)
    if answer.supported:
        tally.words.append(len(words_of(_strip_markers(answer.text))))
        tally.citations.append(len(answer.citations))
    rank: int | None = None
    hit = False
    if must:
        tally.add("with_must")
        rank = rank_of_hit([p.text for p in answer.passages], must)
        tally.ranks.append(rank)
        hit = answer.supported and satisfies(answer.text, must)
        tally.add("answer_hit", hit)
    if pmids or dois:
        tally.add("with_source")
        tally.doc_ranks.append(_doc_rank(answer.passages, pmids, dois, same_doc))
    if gold is not None:
        tally.add("with_gold")
        gold_words = set(words_of(str(gold.get("text") or "")))
        from_gold = [c for c in answer.citations if same_doc(c.doc_id, pmids, dois)]
        tally.add("citations", len(answer.citations))
        tally.add("citations_from_gold", len(from_gold))
        cited = any(gold_quoted(c.snippet, gold_words) for c in from_gold)
        tally.add("gold_cited", cited)
        if not cited:
            return {"id": item.get("id"), "supported": answer.supported,
                    "why": "refused" if not answer.supported else "conclusion not quoted"}
    if must and not hit:
        return {"id": item.get("id"), "passage_rank": rank, "supported": answer.supported,
                "support_score": round(answer.support_score, 3),
                "why": "refused" if not answer.supported else "answer lacks a fact"}
    return None


def _doc_rank(passages: Sequence[Passage], pmids: set[str], dois: set[str],
              same_doc: Callable[[str, set[str], set[str]], bool]) -> int | None:
    for rank, passage in enumerate(passages, start=1):
        if same_doc(passage.doc_id, pmids, dois):
            return rank
    return None


def _strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def _summarise(tally: _Tally, answerable: list[dict[str, Any]],
               unanswerable: list[dict[str, Any]], k: int) -> dict[str, float | None]:
    n_ans = max(1, len(answerable))
    out: dict[str, float | None] = {}
    if tally.get("with_must"):
        out.update(retrieval_metrics(tally.ranks, k))
    if tally.get("with_source"):
        n = len(tally.doc_ranks)
        out.update({f"doc_hit@{h}": sum(1 for r in tally.doc_ranks if r and r <= h) / n
                    for h in DOC_HITS_AT if h <= k})
    if tally.get("with_must"):
        out["answer_hit"] = tally.get("answer_hit") / tally.get("with_must")
    if tally.get("with_gold"):
        out["gold_cited"] = tally.get("gold_cited") / tally.get("with_gold")
        cites = tally.get("citations")
        out["citations_from_gold"] = tally.get("citations_from_gold") / cites if cites else None
    out["citations_per_answer"] = float(np.mean(tally.citations)) if tally.citations else 0.0
    out["answer_words"] = float(np.mean(tally.words)) if tally.words else 0.0
    out["refusal_ok"] = tally.get("refused") / len(unanswerable) if unanswerable else None
    out["false_refusal"] = tally.get("false_refusal") / n_ans
    out["latency_ms_p50"] = float(np.percentile(tally.latencies, 50)) if tally.latencies else 0.0
    out["latency_ms_p95"] = float(np.percentile(tally.latencies, 95)) if tally.latencies else 0.0
    return out


def _baseline(items: list[dict[str, Any]], k: int,
              ranker: Callable[[str, int], list[str]]) -> dict[str, float]:
    ranks = [rank_of_hit(ranker(i["question"], k), i.get("must_include") or []) for i in items]
    return retrieval_metrics(ranks, k)


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
