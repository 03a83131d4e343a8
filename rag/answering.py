"""Answers with sentence-level citations, without an LLM by default.

The composer scores every sentence of the top passages against the question, using the
sentence vector pooled at index time (dense), the share of the question's concepts that the
sentence names (lexical, IDF-weighted, synonyms counted as one concept) and the rank of its
passage. It keeps the best 1-5 sentences that are not near-duplicates, orders them by source
and position, and cites each one with the exact span of the document's cleaned text.

``supported`` is false when the best evidence scores below ``answer.min_support``; the
answer then says so and still returns the closest passages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.chunking import section_at
from rag.embedding import Embedder
from rag.errors import QueryError
from rag.lexical import tokenize
from rag.retrieval import Concept, Retrieval, retrieve
from rag.settings import Settings
from rag.store import IndexSnapshot
from rag.types import Answer, Citation, Passage

__all__ = ["NO_EVIDENCE", "answer_question", "compose_extractive", "support_score"]

NO_EVIDENCE = (
    "The library holds no good evidence for this question. The closest passages are listed "
    "below, but they do not answer it."
)
_W_DENSE, _W_LEXICAL, _W_RANK = 0.55, 0.35, 0.10
_MIN_WORDS = 5


@dataclass(frozen=True)
class ScoredSentence:
    row: int  # sentence row in the snapshot arrays
    chunk_row: int
    passage_rank: int
    start: int
    end: int
    score: float
    dense: float
    coverage: float


def answer_question(
    question: str,
    snap: IndexSnapshot,
    embedder: Embedder,
    settings: Settings,
    *,
    k: int,
    filters: Mapping[str, Any] | None = None,
    mode: str = "extractive",
) -> Answer:
    if mode not in ("extractive", "llm"):
        raise QueryError(f"unknown answer mode {mode!r}; use 'extractive' or 'llm'")
    started = time.perf_counter()
    depth = max(k, settings.answer.passages_considered)
    found = retrieve(question, snap, embedder, settings.retrieval, k=depth, filters=filters)
    retrieved = time.perf_counter()
    answer = compose_extractive(found, snap, settings, k=k)
    if mode == "llm":
        from rag.llm import synthesize

        answer = synthesize(answer, found, snap, embedder, settings)
    done = time.perf_counter()
    timings = {"retrieve": (retrieved - started) * 1000, "answer": (done - retrieved) * 1000,
               "total": (done - started) * 1000}
    return Answer(question=answer.question, text=answer.text, supported=answer.supported,
                  citations=answer.citations, passages=answer.passages, timings_ms=timings,
                  support_score=answer.support_score, mode=answer.mode, notes=answer.notes)


def compose_extractive(found: Retrieval, snap: IndexSnapshot, settings: Settings, *,
                       k: int) -> Answer:
    passages = tuple(found.passages[:k])
    scored = score_sentences(found, snap, settings.answer.passages_considered)
    support = support_score(scored)
    if not scored or support < settings.answer.min_support:
        return Answer(found.query, NO_EVIDENCE, False, (), passages, {}, support)
    chosen = _select(scored, snap, settings)
    citations: list[Citation] = []
    parts: list[str] = []
    for n, sentence in enumerate(chosen, start=1):
        citation = make_citation(n, sentence, snap)
        citations.append(citation)
        parts.append(_with_marker(citation.snippet, n))
    return Answer(found.query, " ".join(parts), True, tuple(citations), passages, {}, support)


def score_sentences(found: Retrieval, snap: IndexSnapshot, depth: int) -> list[ScoredSentence]:
    """Score the sentences of the top ``depth`` passages against the question."""
    weights = _concept_weights(found.concepts, snap)
    total = sum(weights) or 1.0
    out: list[ScoredSentence] = []
    seen: set[tuple[str, int]] = set()
    for rank, chunk_row in enumerate(found.rows[:depth]):
        chunk = snap.chunks[chunk_row]
        rows = snap.sentence_rows(chunk_row)
        if not len(rows):
            continue
        dense = snap.sent_vectors[rows].astype(np.float32) @ found.query_vector
        for row, cosine in zip(rows.tolist(), dense.tolist(), strict=True):
            start, end = (int(x) for x in snap.sent_spans[row])
            key = (chunk.doc_id, start)
            if key in seen:
                continue
            seen.add(key)
            text = chunk.text[max(0, start - chunk.start): end - chunk.start]
            if len(text.split()) < _MIN_WORDS:
                continue
            tokens = set(tokenize(text))
            covered = sum(w for w, concept in zip(weights, found.concepts, strict=True)
                          if any(tokens.issuperset(alt) for alt in concept))
            coverage = covered / total
            score = _W_DENSE * cosine + _W_LEXICAL * coverage + _W_RANK / (1 + rank)
            out.append(ScoredSentence(row, chunk_row, rank, start, end, score, cosine, coverage))
    out.sort(key=lambda s: s.score, reverse=True)
    return out


def support_score(scored: list[ScoredSentence]) -> float:
    """How well the best sentences answer the question (0-1, calibrated on the dev set)."""
    if not scored:
        return 0.0
    best = scored[:3]
    return float(max(0.6 * s.dense + 0.4 * s.coverage for s in best))


def _concept_weights(concepts: list[Concept], snap: IndexSnapshot) -> list[float]:
    """A concept weighs as much as the rarest token (IDF) of the question's own wording; a
    word the library never uses weighs most, since no sentence can cover it."""
    unseen = snap.lexical.idf_unseen()
    weights = []
    for concept in concepts:
        idf = max((snap.lexical.idf(t) for t in concept[0]), default=0.0) if concept else 0.0
        weights.append(idf if idf > 0 else unseen)
    return weights


def _select(scored: list[ScoredSentence], snap: IndexSnapshot,
            settings: Settings) -> list[ScoredSentence]:
    best = scored[0].score
    chosen: list[ScoredSentence] = []
    for sentence in scored:
        if len(chosen) >= settings.answer.max_sentences:
            break
        if chosen and sentence.score < 0.8 * best:
            break
        vec = snap.sent_vectors[sentence.row].astype(np.float32)
        if any(float(vec @ snap.sent_vectors[c.row].astype(np.float32))
               >= settings.answer.duplicate_similarity for c in chosen):
            continue
        chosen.append(sentence)
    # Group by the source first cited, then keep each source's sentences in reading order.
    first_seen: dict[str, int] = {}
    for i, sentence in enumerate(chosen):
        first_seen.setdefault(snap.chunks[sentence.chunk_row].doc_id, i)
    return sorted(chosen, key=lambda s: (first_seen[snap.chunks[s.chunk_row].doc_id], s.start))


def make_citation(n: int, sentence: ScoredSentence, snap: IndexSnapshot) -> Citation:
    chunk = snap.chunks[sentence.chunk_row]
    record = snap.docs[chunk.doc_id]
    meta = record.meta
    snippet = chunk.text[sentence.start - chunk.start: sentence.end - chunk.start]
    section = section_at(record.sections, [s.start for s in record.sections], sentence.start)
    authors = meta.get("authors") or []
    return Citation(
        n=n, doc_id=chunk.doc_id, chunk_id=chunk.chunk_id, title=record.title,
        source=str(meta.get("source") or _reference(meta, record.title)),
        snippet=snippet, start=sentence.start, end=sentence.end, score=sentence.score,
        pmid=_opt(meta.get("pmid")), doi=_opt(meta.get("doi")), url=_opt(meta.get("url")),
        section=section.title if section else chunk.section,
        page=section.page if section else chunk.page,
        authors=", ".join(authors) if isinstance(authors, list) else str(authors),
        journal=str(meta.get("journal") or ""),
        year=meta.get("year") if isinstance(meta.get("year"), int) else None,
    )


def _reference(meta: Mapping[str, Any], title: str) -> str:
    authors = meta.get("authors") or []
    lead = (authors[0] + (" et al" if len(authors) > 1 else "")) if authors else ""
    parts = [str(p).rstrip(".") for p in (lead, title, meta.get("journal"), meta.get("year")) if p]
    return ". ".join(parts) + "." if parts else ""


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


_END = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)$")


def _with_marker(snippet: str, n: int) -> str:
    """``"TRAIL binds DR5."`` -> ``"TRAIL binds DR5 [1]."``"""
    match = _END.search(snippet)
    if match:
        return f"{snippet[: match.start()]} [{n}]{match.group(1)}"
    return f"{snippet} [{n}]"


def passages_only(found: Retrieval, k: int) -> tuple[Passage, ...]:
    return tuple(found.passages[:k])
