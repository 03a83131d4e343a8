"""The VectorIndex contract on the embedded backends (exact numpy, FAISS HNSW and IVF), and the
FAISS index types: ``auto`` resolution, each type's recall, query-time knobs. No model needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vector_contract import *  # noqa: F403 - the shared contract tests
from vector_contract import Backend

from rag.settings import Settings, StoreSettings
from rag.store.vectors import RowTable, VectorIndex, load_vector_index
from rag.store.vectors.exact import ExactIndex
from rag.store.vectors.faiss_index import (
    EXACT_SEARCH_LIMIT,
    FaissIndex,
    build_vector_index,
    configure_search,
    resolve_index_type,
)


def _reopen(index: VectorIndex, folder: Path, table: RowTable) -> VectorIndex:
    index.save(folder)
    manifest = {"index_type": index.kind, "store": {"hnsw_ef_search": 128, "ivf_nprobe": 8}}
    return load_vector_index(folder, manifest, rows=table)


def _faiss(kind: str, **store: int) -> Backend:
    def make(dim: int, table: RowTable) -> VectorIndex:
        return FaissIndex(dim, kind=kind, store=StoreSettings(**store), rows=table)

    def reopen(index: VectorIndex, folder: Path, table: RowTable) -> VectorIndex:
        loaded = _reopen(index, folder, table)
        assert isinstance(loaded, FaissIndex)
        return FaissIndex(loaded.dimension, kind=kind, store=StoreSettings(**store),
                          rows=table, exact=loaded.exact, approximate=loaded.approximate)

    return Backend(make, reopen, approximate=True)


@pytest.fixture(params=["exact", "faiss-hnsw", "faiss-ivf-sq8"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "exact":
        return Backend(lambda dim, table: ExactIndex(dim, rows=table), _reopen)
    if request.param == "faiss-hnsw":
        return _faiss("hnsw")
    return _faiss("ivf-sq8", ivf_nlist=16, ivf_nprobe=8)


# -- FAISS index types ------------------------------------------------------------------------


def _clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, dim)).astype(np.float32)
    data = centres[rng.integers(32, size=n)] + rng.standard_normal((n, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def test_auto_is_the_default_and_exact_for_small_corpora() -> None:
    assert Settings().store.index_type == "auto"
    assert resolve_index_type("auto", 1_000) == "flat"
    assert resolve_index_type("auto", EXACT_SEARCH_LIMIT) == "flat"
    assert resolve_index_type("auto", EXACT_SEARCH_LIMIT + 1) == "ivf-sq8"
    assert resolve_index_type("hnsw", 10) == "hnsw"  # an explicit type is kept


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf-sq8", "ivf-pq"])
def test_index_types_find_the_exact_neighbours(kind: str) -> None:
    data = _clustered(4_000)
    queries = data[:50] + 0.01
    index = build_vector_index(data, StoreSettings(index_type=kind))
    assert index.ntotal == len(data)
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), 1)
    exact = np.argmax(queries @ data.T, axis=1)
    recall = float(np.mean(found[:, 0] == exact))
    assert recall >= (0.6 if kind == "ivf-pq" else 0.95)


def test_configure_search_restores_the_knobs() -> None:
    data = _clustered(2_000)
    hnsw = build_vector_index(data, StoreSettings(index_type="hnsw"))
    configure_search(hnsw, StoreSettings(hnsw_ef_search=77))
    assert hnsw.hnsw.efSearch == 77
    ivf = build_vector_index(data, StoreSettings(index_type="ivf-sq8", ivf_nlist=16))
    configure_search(ivf, StoreSettings(ivf_nprobe=1000))
    assert ivf.nprobe == 16  # never more lists than the index has
