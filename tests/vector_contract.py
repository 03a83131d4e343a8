"""The VectorIndex contract, shared by every backend's test module.

A backend module defines a ``backend`` fixture returning a :class:`Backend` (how to make an
empty index and how to reopen a saved one) and imports the tests below with
``from vector_contract import *``. The data: 2,000 clustered unit vectors in 50 documents,
half tagged AML and half CLL, one year each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rag.store.vectors import Condition, Filter, RowTable, VectorIndex

__all__ = [
    "DIM",
    "Backend",
    "data",
    "rows",
    "test_add_count_and_vectors",
    "test_add_replaces_a_row",
    "test_empty_index_finds_nothing",
    "test_filtered_search_returns_only_matching_rows",
    "test_recall_against_exact_search",
    "test_remove_drops_rows",
    "test_save_and_load_keep_the_rows",
    "test_year_and_document_filters",
]

DIM = 32
N = 2_000
DOCS = 50


@dataclass
class Backend:
    make: Callable[[int, RowTable], VectorIndex]
    reopen: Callable[[VectorIndex, Path, RowTable], VectorIndex]
    approximate: bool = False


def data(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    points = centres[rng.integers(40, size=n)] + 0.3 * rng.standard_normal((n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def rows(n: int = N) -> RowTable:
    row_docs = [f"doc-{i % DOCS:02d}" for i in range(n)]
    meta = {f"doc-{d:02d}": {"diseases": ["acute myeloid leukemia" if d % 2 else
                                          "chronic lymphocytic leukemia"],
                             "year": 2000 + d} for d in range(DOCS)}
    return RowTable(row_docs, meta)


def _filled(backend: Backend) -> tuple[VectorIndex, np.ndarray, RowTable]:
    vectors, table = data(), rows()
    index = backend.make(DIM, table)
    index.add(np.arange(N), vectors)
    return index, vectors, table


def test_empty_index_finds_nothing(backend: Backend) -> None:
    index = backend.make(DIM, rows(0))
    assert index.count() == 0
    assert len(index.search(data(1)[0], 5).ids) == 0


def test_add_count_and_vectors(backend: Backend) -> None:
    index, vectors, _ = _filled(backend)
    assert index.count() == N and index.dimension == DIM
    got = index.vectors([5, 1, 1999])
    assert got.dtype == np.float32
    assert np.allclose(got, vectors[[5, 1, 1999]], atol=1e-6)


def test_recall_against_exact_search(backend: Backend) -> None:
    index, vectors, _ = _filled(backend)
    queries = data(50, seed=1)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = [index.search(q, 10).ids for q in queries]
    recall = np.mean([len(set(f.tolist()) & set(e.tolist())) / 10
                      for f, e in zip(found, exact, strict=True)])
    assert recall >= (0.9 if backend.approximate else 1.0)
    hits = index.search(queries[0], 10)
    assert len(hits.ids) == 10 and np.all(np.diff(hits.scores) <= 1e-6)  # best first
    assert np.allclose(hits.scores, vectors[hits.ids] @ queries[0], atol=2e-2)


def test_remove_drops_rows(backend: Backend) -> None:
    index, vectors, _ = _filled(backend)
    gone = list(range(0, 100))
    index.remove(gone)
    index.remove([5_000])  # unknown ids are ignored
    assert index.count() == N - 100
    for q in vectors[:20]:  # each removed row was its own best match
        assert not set(index.search(q, 10).ids.tolist()) & set(gone)


def test_add_replaces_a_row(backend: Backend) -> None:
    index, vectors, _ = _filled(backend)
    index.add([7], vectors[[1500]])
    assert index.count() == N
    assert np.allclose(index.vectors([7])[0], vectors[1500], atol=1e-6)


def test_filtered_search_returns_only_matching_rows(backend: Backend) -> None:
    index, vectors, table = _filled(backend)
    aml = Filter((Condition("disease", ("acute myeloid leukemia",)),))
    for q in data(20, seed=2):
        hits = index.search(q, 10, filter=aml)
        assert len(hits.ids) == 10
        assert all(int(table.row_docs[i].split("-")[1]) % 2 == 1 for i in hits.ids)
        # the same as exact search restricted to the matching rows
        allowed = np.array([int(d.split("-")[1]) % 2 == 1 for d in table.row_docs])
        scores = np.where(allowed, vectors @ q, -np.inf)
        assert set(hits.ids.tolist()) == set(np.argsort(-scores)[:10].tolist())
    none = Filter((Condition("disease", ("multiple myeloma",)),))
    assert len(index.search(data(1)[0], 10, filter=none).ids) == 0


def test_year_and_document_filters(backend: Backend) -> None:
    index, _, table = _filled(backend)
    recent = Filter((Condition("year", low=2040, high=2049),))
    hits = index.search(data(1, seed=3)[0], 50, filter=recent)
    assert len(hits.ids) == 50
    assert all(40 <= int(table.row_docs[i].split("-")[1]) <= 49 for i in hits.ids)
    one = Filter((Condition("doc_id", ("doc-07",)),))
    hits = index.search(data(1, seed=4)[0], 100, filter=one)
    assert len(hits.ids) == N // DOCS
    assert {table.row_docs[i] for i in hits.ids} == {"doc-07"}


def test_save_and_load_keep_the_rows(backend: Backend, tmp_path: Path) -> None:
    index, vectors, table = _filled(backend)
    queries = data(20, seed=5)
    before = [index.search(q, 10).ids.tolist() for q in queries]
    again = backend.reopen(index, tmp_path, table)
    assert again.count() == N
    after = [again.search(q, 10).ids.tolist() for q in queries]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(before, after, strict=True)])
    assert overlap >= (0.9 if backend.approximate else 1.0)
    assert np.allclose(again.vectors([3, 4]), vectors[[3, 4]], atol=1e-6)


@pytest.fixture
def backend() -> Backend:  # pragma: no cover - every backend module overrides it
    raise NotImplementedError
