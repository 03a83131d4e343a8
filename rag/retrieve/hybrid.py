"""Hybrid retrieval: dense (FAISS / inner product) and BM25, fused by reciprocal rank, then
diversified with maximal marginal relevance and a per-document cap.

Queries are expanded with the synonym table for the lexical side, so a question about
"TRAIL-R2" also finds notes that only say "DR5". Filters act on document metadata.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rag.errors import QueryError
from rag.retrieve.lexical import tokenize
from rag.retrieve.synonyms import load_synonyms, normalize_term
from rag.settings import RetrievalSettings
from rag.store.generations import IndexSnapshot
from rag.types import Passage

__all__ = ["FILTER_KEYS", "Concept", "QueryEncoder", "Retrieval", "clean_query", "query_concepts",
           "retrieve"]

Concept = tuple[tuple[str, ...], ...]

MAX_QUERY_CHARS = 4000
FILTER_KEYS = ("disease", "agent", "evidence", "doc_id", "year", "year_min", "year_max", "topic")


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
    allowed = allowed_rows(snap, filters) if filters else None
    qvec = embedder.embed([query])[0]
    concepts = query_concepts(query, expand=settings.expand_synonyms)
    if n == 0 or (allowed is not None and not allowed.any()):
        return Retrieval(query, [], [], qvec, concepts, 0.0)
    n_candidates = max(settings.candidates, k * 4)
    dense_rows, dense_scores = _dense(snap, qvec, allowed, n_candidates)
    lexical_scores = snap.lexical.concept_scores(concepts)
    if allowed is not None:
        lexical_scores = np.where(allowed, lexical_scores, 0.0)
    lexical_rows = _top(lexical_scores, n_candidates)
    lexical_rows = lexical_rows[lexical_scores[lexical_rows] > 0]
    if settings.fusion == "rrf":
        fused = _rrf(dense_rows, lexical_rows, settings)
    else:
        fused = _convex(dense_rows, dense_scores, lexical_rows, lexical_scores, settings)
    dense_lookup = dict(zip(dense_rows.tolist(), dense_scores.tolist(), strict=True))
    ranked = sorted(fused, key=fused.__getitem__, reverse=True)
    chosen = _diversify(ranked, fused, snap, settings, k)
    passages = [
        _passage(rank, row, snap, fused[row], dense_lookup.get(row), float(lexical_scores[row]),
                 qvec)
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


def allowed_rows(snap: IndexSnapshot, filters: Mapping[str, Any]) -> np.ndarray:
    """Boolean mask over chunk rows whose document passes every filter."""
    unknown = [key for key in filters if key not in FILTER_KEYS]
    if unknown:
        raise QueryError(
            f"unknown filter {', '.join(map(repr, unknown))}; use {', '.join(FILTER_KEYS)}"
        )
    active = {key: value for key, value in filters.items() if value not in (None, "", [], ())}
    ok_docs = {doc_id for doc_id, record in snap.docs.items()
               if all(_passes(key, value, doc_id, record.meta) for key, value in active.items())}
    return np.fromiter((c.doc_id in ok_docs for c in snap.chunks), dtype=bool,
                       count=len(snap.chunks))


def _passes(key: str, value: Any, doc_id: str, meta: Mapping[str, Any]) -> bool:
    if key == "doc_id":
        wanted = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
        return doc_id in {str(v).strip() for v in wanted}
    if key in ("year", "year_min", "year_max"):
        low, high = _year_range(key, value)
        year = meta.get("year")
        return isinstance(year, int) and low <= year <= high
    field = {"disease": "diseases", "agent": "agents", "evidence": "evidence",
             "topic": "topics"}[key]
    have = meta.get(field) or []
    have = [have] if isinstance(have, str) else list(have)
    wanted = value if isinstance(value, (list, tuple, set)) else [value]
    return any(_term_matches(str(w), [str(h) for h in have]) for w in wanted)


def _term_matches(wanted: str, have: list[str]) -> bool:
    table = load_synonyms()
    target = f" {normalize_term(table.canonical(wanted) or wanted)} "
    for item in have:
        # Whole words only: "ALL" must not match "small lymphocytic lymphoma", nor "clinical"
        # match "preclinical in vitro".
        name = f" {normalize_term(table.canonical(item) or item)} "
        if target == name or target in f" {normalize_term(item)} " or target in name:
            return True
    return False


def _year_range(key: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    elif key == "year_min":
        low, high = value, 9999
    elif key == "year_max":
        low, high = 0, value
    else:
        parts = re.split(r"\s*(?:-|–|\.\.|to)\s*", str(value).strip())
        low, high = (parts[0], parts[-1]) if len(parts) == 2 else (parts[0], parts[0])
    try:
        return int(low or 0), int(high or 9999)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"year filter {value!r} must be a year or a range like 2005-2015") \
            from exc


def _dense(snap: IndexSnapshot, qvec: np.ndarray, allowed: np.ndarray | None,
           n: int) -> tuple[np.ndarray, np.ndarray]:
    if allowed is None and snap.searches_approximately:
        scores, ids = snap.approximate_index.search(qvec.reshape(1, -1), n)
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]
    # Exact: numpy over the memory-mapped vectors (a flat FAISS index would copy them all).
    scores = snap.vectors @ qvec
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    rows = _top(scores, n)
    rows = rows[np.isfinite(scores[rows])]
    return rows, scores[rows]


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    if len(scores) <= n:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, n)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def _rrf(dense_rows: np.ndarray, lexical_rows: np.ndarray,
         settings: RetrievalSettings) -> dict[int, float]:
    fused: dict[int, float] = {}
    for weight, rows in ((settings.dense_weight, dense_rows),
                         (settings.lexical_weight, lexical_rows)):
        for rank, row in enumerate(rows.tolist()):
            fused[row] = fused.get(row, 0.0) + weight / (settings.rrf_k + rank + 1)
    return fused


def _convex(dense_rows: np.ndarray, dense_scores: np.ndarray, lexical_rows: np.ndarray,
            lexical_scores: np.ndarray, settings: RetrievalSettings) -> dict[int, float]:
    """Weighted sum of min-max normalised dense and max-normalised BM25 scores over the union
    of both candidate lists (measured better than RRF on the dev set; see README)."""
    rows = np.union1d(dense_rows, lexical_rows)
    if not len(rows):
        return {}
    dense_lookup = dict(zip(dense_rows.tolist(), dense_scores.tolist(), strict=True))
    floor = float(dense_scores.min()) if len(dense_scores) else 0.0
    top = float(dense_scores.max()) if len(dense_scores) else 1.0
    span = (top - floor) or 1.0
    lex_top = float(lexical_scores[rows].max()) or 1.0
    alpha = settings.dense_weight / ((settings.dense_weight + settings.lexical_weight) or 1.0)
    return {
        int(row): alpha * (dense_lookup.get(int(row), floor) - floor) / span
        + (1 - alpha) * float(lexical_scores[row]) / lex_top
        for row in rows
    }


def _diversify(ranked: list[int], fused: dict[int, float], snap: IndexSnapshot,
               settings: RetrievalSettings, k: int) -> list[int]:
    """Maximal marginal relevance over the fused list, at most ``per_doc_cap`` per document."""
    pool = ranked[: max(k * 6, 30)]
    if not pool:
        return []
    top = fused[pool[0]] or 1.0
    relevance = {row: fused[row] / top for row in pool}
    vectors = snap.vectors
    chosen: list[int] = []
    per_doc: dict[str, int] = {}
    lam = settings.mmr_lambda
    while pool and len(chosen) < k:
        best, best_value = None, -np.inf
        for row in pool:
            doc_id = snap.chunks[row].doc_id
            if per_doc.get(doc_id, 0) >= settings.per_doc_cap:
                continue
            redundancy = max((float(vectors[row] @ vectors[c]) for c in chosen), default=0.0)
            value = lam * relevance[row] - (1 - lam) * redundancy
            if value > best_value:
                best, best_value = row, value
        if best is None:
            break
        chosen.append(best)
        pool.remove(best)
        doc_id = snap.chunks[best].doc_id
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
    return chosen


def _passage(rank: int, row: int, snap: IndexSnapshot, score: float, dense: float | None,
             lexical: float, qvec: np.ndarray) -> Passage:
    chunk = snap.chunks[row]
    record = snap.docs.get(chunk.doc_id)
    dense_score = float(snap.vectors[row] @ qvec) if dense is None else dense
    return Passage(rank=rank, doc_id=chunk.doc_id, chunk_id=chunk.chunk_id,
                   title=record.title if record else chunk.doc_id, text=chunk.text,
                   score=score, section=chunk.section, page=chunk.page, start=chunk.start,
                   end=chunk.end, dense_score=dense_score, lexical_score=lexical)
