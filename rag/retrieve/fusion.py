"""Score fusion of the dense and lexical candidate lists, and diversification (maximal
marginal relevance with a per-document cap). Works on row ids and on the vectors a
:class:`~rag.store.vectors.VectorIndex` returns; knows no backend."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.settings import RetrievalSettings

__all__ = ["convex", "diversify", "rrf"]


def rrf(dense_rows: np.ndarray, lexical_rows: np.ndarray,
        settings: RetrievalSettings) -> dict[int, float]:
    """Reciprocal rank fusion."""
    fused: dict[int, float] = {}
    for weight, rows in ((settings.dense_weight, dense_rows),
                         (settings.lexical_weight, lexical_rows)):
        for rank, row in enumerate(rows.tolist()):
            fused[row] = fused.get(row, 0.0) + weight / (settings.rrf_k + rank + 1)
    return fused


def convex(dense_rows: np.ndarray, dense_scores: np.ndarray, lexical_rows: np.ndarray,
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


def diversify(ranked: list[int], fused: dict[int, float], row_docs: Sequence[str],
              vectors: np.ndarray, settings: RetrievalSettings, k: int) -> list[int]:
    """Maximal marginal relevance over the head of ``ranked``, at most ``per_doc_cap`` per
    document. ``vectors[i]`` is the vector of ``ranked[i]``."""
    pool = list(range(min(len(ranked), max(k * 6, 30))))
    if not pool:
        return []
    top = fused[ranked[0]] or 1.0
    relevance = [fused[ranked[i]] / top for i in pool]
    chosen: list[int] = []
    per_doc: dict[str, int] = {}
    lam = settings.mmr_lambda
    while pool and len(chosen) < k:
        best, best_value = None, -np.inf
        for i in pool:
            doc_id = row_docs[ranked[i]]
            if per_doc.get(doc_id, 0) >= settings.per_doc_cap:
                continue
            redundancy = max((float(vectors[i] @ vectors[c]) for c in chosen), default=0.0)
            value = lam * relevance[i] - (1 - lam) * redundancy
            if value > best_value:
                best, best_value = i, value
        if best is None:
            break
        chosen.append(best)
        pool.remove(best)
        doc_id = row_docs[ranked[best]]
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
    return [ranked[i] for i in chosen]
