"""FAISS index types: ``auto`` resolution, each type's recall, query-time knobs."""

from __future__ import annotations

import numpy as np
import pytest

from rag.settings import Settings, StoreSettings
from rag.store.vectors.faiss_index import (
    EXACT_SEARCH_LIMIT,
    build_vector_index,
    configure_search,
    resolve_index_type,
)


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
    configure_search(hnsw, {"store": {"hnsw_ef_search": 77}})
    assert hnsw.hnsw.efSearch == 77
    ivf = build_vector_index(data, StoreSettings(index_type="ivf-sq8", ivf_nlist=16))
    configure_search(ivf, {"store": {"ivf_nprobe": 1000}})
    assert ivf.nprobe == 16  # never more lists than the index has
