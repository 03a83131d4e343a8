"""Vector indexes behind one small interface, and filters in a neutral form.

A :class:`VectorIndex` holds one vector per chunk row of a generation and answers nearest-
neighbour queries by inner product (the vectors are unit length, so this is cosine). Backends:

- ``exact`` (:mod:`.exact`): numpy over memory-mapped float32 vectors; the default up to
  200,000 chunks.
- ``faiss`` (:mod:`.faiss_index`): HNSW or IVF indexes for large corpora, rebuilt from the exact
  vectors on every write (which is also how removal works), with the exact vectors kept for
  filtered search and for :meth:`VectorIndex.vectors`.

Filters reach a backend as a :class:`Filter` of :class:`Condition` (document id, disease,
agent, evidence, topic, year), already resolved to the values stored in the index; each
backend compiles it (a row mask for numpy and FAISS, an expression for a database). Retrieval,
MMR and answer composition use only this interface and never import a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.store.vectors.base import (
    FILTER_FIELDS,
    Condition,
    Filter,
    Hits,
    RowTable,
    VectorIndex,
    row_mask,
)
from rag.store.vectors.exact import ExactIndex
from rag.store.vectors.faiss_index import FaissIndex, resolve_index_type

__all__ = ["FILTER_FIELDS", "Condition", "Filter", "Hits", "RowTable", "VectorIndex",
           "load_vector_index", "new_vector_index", "resolve_kind", "row_mask"]


def resolve_kind(store: Any, n_vectors: int) -> str:
    """The concrete index type for the settings and corpus size (``auto``: exact up to
    ``EXACT_SEARCH_LIMIT`` rows, ``ivf-sq8`` above)."""
    return resolve_index_type(store.index_type, n_vectors)


def new_vector_index(store: Any, *, dimension: int, n_vectors: int, rows: RowTable,
                     ) -> VectorIndex:
    """An empty index of the kind the settings ask for (the factory for writers)."""
    kind = resolve_kind(store, n_vectors)
    if kind == "flat" or n_vectors < 1000:
        return ExactIndex(dimension, rows=rows)
    return FaissIndex(dimension, kind=kind, store=store, rows=rows)


def load_vector_index(folder: Path, manifest: Mapping[str, Any], *, rows: RowTable,
                      ) -> VectorIndex:
    """Open the index of one generation folder, as its manifest describes it."""
    kind = str(manifest.get("index_type") or "flat")
    if kind == "flat":
        return ExactIndex.load(folder, rows=rows)
    return FaissIndex.load(folder, manifest, rows=rows)
