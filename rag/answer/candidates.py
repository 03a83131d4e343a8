"""Answer candidates: the sentences of the top passages and of the top documents, with what
the sentence scorer needs to know about each (plain :class:`~rag.answer.features.Candidate`
records and where each sentence lives in the index)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.answer.features import Candidate
from rag.answer.sentence_vectors import chunk_sentence_vectors
from rag.ingest.chunking import section_at
from rag.retrieve.hybrid import Concept, Retrieval
from rag.settings import AnswerSettings
from rag.store.snapshot import IndexSnapshot
from rag.types import Section

__all__ = ["CandidatePool", "concept_weights", "gather_candidates"]

_MIN_WORDS = 5


@dataclass(frozen=True)
class _DocFacts:
    """What every candidate of one document shares."""

    end: int | None  # where its last section ends (None without sections)
    sections: tuple[Section, ...]
    section_starts: list[int]
    terms: str  # title and metadata tags


@dataclass(frozen=True)
class CandidatePool:
    """Candidate sentences and where each one lives in the index."""

    candidates: list[Candidate]
    chunk_rows: list[int]
    sentence_rows: list[int]
    spans: list[tuple[int, int]]


def concept_weights(concepts: list[Concept], snap: IndexSnapshot) -> list[float]:
    """A concept weighs as much as the rarest token (IDF) of the question's own wording; a
    word the library never uses weighs most, since no sentence can cover it."""
    unseen = snap.lexical.idf_unseen()
    weights = []
    for concept in concepts:
        idf = max((snap.lexical.idf(t) for t in concept[0]), default=0.0) if concept else 0.0
        weights.append(idf if idf > 0 else unseen)
    return weights


def gather_candidates(found: Retrieval, snap: IndexSnapshot, settings: AnswerSettings,
                      embedder: Any = None) -> CandidatePool:
    """Sentences of the top passages, and of the top documents around them."""
    ranked_docs: list[str] = []
    for row in found.rows:
        doc_id = snap.chunks[row].doc_id
        if doc_id not in ranked_docs:
            ranked_docs.append(doc_id)
    passage_rank = {row: rank for rank, row in enumerate(found.rows)}
    rows: list[int] = list(found.rows[: settings.passages_considered])
    for doc_id in ranked_docs[: settings.documents_considered]:
        doc_rows = snap.doc_chunk_rows(doc_id)
        if len(doc_rows) <= settings.whole_document_chunks:
            rows.extend(doc_rows)
        else:  # a long document: its retrieved chunks and their neighbours
            hits = [i for i, r in enumerate(doc_rows) if r in passage_rank]
            rows.extend(doc_rows[j] for i in hits for j in (i - 1, i, i + 1)
                        if 0 <= j < len(doc_rows))
    pool = CandidatePool([], [], [], [])
    seen: set[tuple[str, int]] = set()
    doc_rank = {doc_id: rank for rank, doc_id in enumerate(ranked_docs)}
    unique = list(dict.fromkeys(rows))
    passage_dense = (snap.chunk_vectors(unique) @ found.query_vector).tolist() if unique else []
    vectors = chunk_sentence_vectors(snap, unique, embedder)
    facts: dict[str, _DocFacts] = {}
    for chunk_row, closeness in zip(unique, passage_dense, strict=True):
        doc_id = snap.chunks[chunk_row].doc_id
        if doc_id not in facts:
            facts[doc_id] = _doc_facts(snap, chunk_row)
        _add_chunk(pool, chunk_row, snap, facts[doc_id], vectors[chunk_row] @ found.query_vector,
                   seen, passage_rank.get(chunk_row, len(found.rows)),
                   doc_rank.get(doc_id, len(ranked_docs)), closeness)
    _link_neighbours(pool)
    return pool


def _doc_facts(snap: IndexSnapshot, chunk_row: int) -> _DocFacts:
    """The shared facts of the document behind ``chunk_row``."""
    record = snap.docs[snap.chunks[chunk_row].doc_id]
    return _DocFacts(end=max((s.end for s in record.sections), default=None),
                     sections=record.sections,
                     section_starts=[s.start for s in record.sections],
                     terms=_doc_terms(record.title, record.meta))


def _add_chunk(pool: CandidatePool, chunk_row: int, snap: IndexSnapshot, doc: _DocFacts,
               dense: np.ndarray, seen: set[tuple[str, int]], rank: int, doc_rank: int,
               passage_dense: float) -> None:
    chunk = snap.chunks[chunk_row]
    sent_rows = snap.sentences.rows_of_chunk(chunk_row)
    if not len(sent_rows):
        return
    # Positions are relative to the document's length (a chunk's end without sections).
    length = (chunk.end if doc.end is None else doc.end) or 1
    for sent_row, cosine in zip(sent_rows.tolist(), dense.tolist(), strict=True):
        start, end = snap.sentences.span(sent_row)
        if (chunk.doc_id, start) in seen:
            continue
        seen.add((chunk.doc_id, start))
        text = chunk.text[max(0, start - chunk.start): end - chunk.start]
        if len(text.split()) < _MIN_WORDS:
            continue
        section = section_at(doc.sections, doc.section_starts, start)
        pool.candidates.append(Candidate(
            text=text, section=(section.title if section else "") or chunk.section,
            doc_id=chunk.doc_id, passage_rank=rank, doc_rank=doc_rank, dense=cosine,
            passage_dense=passage_dense, position=start / length,
            first_in_section=start in doc.section_starts, doc_terms=doc.terms))
        pool.chunk_rows.append(chunk_row)
        pool.sentence_rows.append(sent_row)
        pool.spans.append((start, end))


def _doc_terms(title: str, meta: Mapping[str, Any]) -> str:
    parts = [title]
    for key in ("agents", "diseases", "mesh", "keywords"):
        value = meta.get(key) or []
        parts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return " ".join(parts)


def _link_neighbours(pool: CandidatePool) -> None:
    """Give each candidate the text of the sentences before and after it in its document."""
    by_doc: dict[str, list[int]] = {}
    for i, cand in enumerate(pool.candidates):
        by_doc.setdefault(cand.doc_id, []).append(i)
    for members in by_doc.values():
        members.sort(key=lambda i: pool.spans[i][0])
        for position, i in enumerate(members):
            prev_text = pool.candidates[members[position - 1]].text if position else ""
            next_text = (pool.candidates[members[position + 1]].text
                         if position + 1 < len(members) else "")
            pool.candidates[i] = replace(pool.candidates[i], prev_text=prev_text,
                                         next_text=next_text)
