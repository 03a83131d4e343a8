"""Hybrid retrieval: dense search through the index's :class:`~rag.store.vectors.VectorIndex`
and BM25, fused (:mod:`rag.retrieve.fusion`), then diversified with maximal marginal relevance
and a per-document cap.

Queries are expanded with the synonym table for the lexical side, so a question about
"TRAIL-R2" also finds notes that only say "DR5". Filters (:mod:`rag.retrieve.filters`) act on
document metadata.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rag.errors import QueryError
from rag.retrieve.filters import build_filter
from rag.retrieve.fusion import convex, diversify, rrf
from rag.retrieve.synonyms import load_synonyms
from rag.settings import RetrievalSettings
from rag.store.lexical import tokenize
from rag.store.snapshot import IndexSnapshot
from rag.store.vectors import row_mask, top_rows
from rag.types import Passage

__all__ = ["Concept", "QueryEncoder", "Retrieval", "clean_query", "query_concepts", "retrieve"]

Concept = tuple[tuple[str, ...], ...]

MAX_QUERY_CHARS = 4000


class QueryEncoder(Protocol):
    """What retrieval needs of the model (:class:`rag.embed.embedder.Embedder` is one)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Retrieval:
    """The ranked passages plus what the answer composer reuses."""

    query: str
    passages: list[Passage]
    rows: list[int]  # chunk rows of the passages, same order
    query_vector: np.ndarray
    concepts: list[Concept]  # see query_concepts
    dense_top: float


def clean_query(query: str) -> str:
    """Strip control characters and whitespace; refuse empty or oversized questions."""
    if not isinstance(query, str):
        raise QueryError("the question must be text")
    text = "".join(ch for ch in query if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = " ".join(text.split())
    if not text:
        raise QueryError("the question is empty: type a question about TRAIL")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the question is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,}"
        )
    if not re.search(r"\w", text):
        raise QueryError("the question has no words in it")
    return text


def retrieve(
    query: str,
    snap: IndexSnapshot,
    embedder: QueryEncoder,
    settings: RetrievalSettings,
    *,
    k: int,
    filters: Mapping[str, Any] | None = None,
) -> Retrieval:
    query = clean_query(query)
    k = max(1, min(int(k), 100))
    n = len(snap.chunks)
    filter_ = build_filter(filters, snap.docs) if filters else None
    allowed = row_mask(snap.rows, filter_) if filter_ else None
    qvec = embedder.embed([query])[0]
    concepts = query_concepts(query, expand=settings.expand_synonyms)
    if n == 0 or (allowed is not None and not allowed.any()):
        return Retrieval(query, [], [], qvec, concepts, 0.0)
    n_candidates = max(settings.candidates, k * 4)
    dense = snap.vector_index.search(qvec, n_candidates, filter=filter_)
    dense_rows, dense_scores = dense.ids, dense.scores
    lexical_scores = snap.lexical.concept_scores(concepts)
    if allowed is not None:
        lexical_scores = np.where(allowed, lexical_scores, 0.0)
    lexical_rows = top_rows(lexical_scores, n_candidates)
    lexical_rows = lexical_rows[lexical_scores[lexical_rows] > 0]
    if settings.fusion == "rrf":
        fused = rrf(dense_rows, lexical_rows, settings)
    else:
        fused = convex(dense_rows, dense_scores, lexical_rows, lexical_scores, settings)
    dense_lookup = dict(zip(dense_rows.tolist(), dense_scores.tolist(), strict=True))
    ranked = sorted(fused, key=fused.__getitem__, reverse=True)
    head = ranked[: max(k * 6, 30)]
    vectors = snap.vector_index.vectors(head) if head else np.zeros((0, 1), np.float32)
    chosen = diversify(head, fused, snap.rows.row_docs, vectors, settings, k)
    position = {row: i for i, row in enumerate(head)}
    passages = [
        _passage(rank, row, snap, fused[row],
                 dense_lookup.get(row, float(vectors[position[row]] @ qvec)),
                 float(lexical_scores[row]))
        for rank, row in enumerate(chosen, start=1)
    ]
    top_dense = float(dense_scores[0]) if len(dense_scores) else 0.0
    return Retrieval(query, passages, chosen, qvec, concepts, top_dense)


def query_concepts(query: str, *, expand: bool = True) -> list[Concept]:
    """The question's concepts, each a tuple of alternatives (tuples of stemmed tokens).

    Names in the synonym table become one concept whose alternatives are all the group's
    names; every other content word is a concept of its own.
    """
    concepts: list[Concept] = []
    covered: set[str] = set()
    if expand:
        for hit, names in load_synonyms().find(query):
            own = tuple(tokenize(hit))
            alternatives = {own} | {tuple(tokenize(name)) for name in names}
            alternatives.discard(())
            if alternatives:
                concepts.append(tuple(sorted(alternatives, key=lambda a: (a != own, a))))
                covered.update(own)
    for token in tokenize(query):
        if token not in covered:
            concepts.append(((token,),))
            covered.add(token)
    return concepts


def _passage(rank: int, row: int, snap: IndexSnapshot, score: float, dense_score: float,
             lexical: float) -> Passage:
    chunk = snap.chunks[row]
    record = snap.docs.get(chunk.doc_id)
    return Passage(rank=rank, doc_id=chunk.doc_id, chunk_id=chunk.chunk_id,
                   title=record.title if record else chunk.doc_id, text=chunk.text,
                   score=score, section=chunk.section, page=chunk.page, start=chunk.start,
                   end=chunk.end, dense_score=dense_score, lexical_score=lexical)
