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

from rag.settings import StoreSettings
from rag.store.vectors.base import (
    FILTER_FIELDS,
    META_FIELDS,
    Condition,
    Filter,
    Hits,
    RowTable,
    VectorIndex,
    mapped_array,
    meta_values,
    row_mask,
    top_rows,
)
from rag.store.vectors.exact import ExactIndex
from rag.store.vectors.faiss_index import FaissIndex, resolve_index_type

__all__ = ["FILTER_FIELDS", "META_FIELDS", "Condition", "Filter", "Hits", "RowTable",
           "VectorIndex", "load_vector_index", "mapped_array", "meta_values", "new_vector_index",
           "row_mask", "top_rows"]


def new_vector_index(store: StoreSettings, *, dimension: int, n_vectors: int, rows: RowTable,
                     location: tuple[Path, str]) -> VectorIndex:
    """An empty index of the kind the settings ask for (the factory for writers).

    ``location`` is (index folder, generation name); the Milvus backend names its collection
    after the generation.
    """
    if store.backend == "milvus":
        from rag.store.vectors.milvus_connect import target_for
        from rag.store.vectors.milvus_index import MilvusIndex

        folder, generation = location
        return MilvusIndex.create(dimension, target=target_for(store, folder),
                                  generation=generation, rows=rows)
    kind = resolve_index_type(store.index_type, n_vectors)
    if kind == "flat" or n_vectors < 1000:  # too few rows to train an approximate index
        return ExactIndex(dimension, rows=rows)
    return FaissIndex(dimension, kind=kind, store=store, rows=rows)


def load_vector_index(folder: Path, manifest: Mapping[str, Any], *, rows: RowTable,
                      store: Any = None, index_dir: Path | None = None) -> VectorIndex:
    """Open the index of one generation folder, as its manifest describes it."""
    kind = str(manifest.get("index_type") or "flat")
    if kind == "flat":
        return ExactIndex.load(folder, rows=rows)
    if kind == "milvus":
        from rag.store.vectors.milvus_index import MilvusIndex

        return MilvusIndex.load(folder, rows=rows, store=store, manifest=manifest,
                                index_dir=index_dir)
    return FaissIndex.load(folder, manifest, rows=rows)
