"""Exact search: numpy over the chunk vectors, memory-mapped read-only when loaded.

Up to ``EXACT_SEARCH_LIMIT`` chunks this is both the fastest and the most accurate index: a
matrix-vector product over at most 200,000 x 384 floats. The file is the generation's
``vectors.npy`` (float32, row i = chunk row i); there is no other copy in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.store.vectors.base import (
    Filter,
    Hits,
    LocalVectors,
    RowTable,
    mapped_array,
    row_mask,
    top_rows,
)

__all__ = ["IDS_FILE", "VECTORS_FILE", "ExactIndex"]

VECTORS_FILE = "vectors.npy"
IDS_FILE = "vector_ids.npy"  # only when the rows are not 0..n-1 in order


class ExactIndex(LocalVectors):
    """Rows ``0..n-1`` with their vectors; searched by a full scan."""

    kind = "flat"

    def __init__(self, dimension: int, *, rows: RowTable | None = None,
                 vectors: np.ndarray | None = None, ids: np.ndarray | None = None) -> None:
        self._dim = int(dimension)
        self._vectors = vectors if vectors is not None else np.zeros((0, dimension), np.float32)
        self._ids = ids if ids is not None else np.arange(len(self._vectors), dtype=np.int64)
        self._rows = rows

    @property
    def dimension(self) -> int:
        return self._dim

    def count(self) -> int:
        return len(self._ids)

    @property
    def array(self) -> np.ndarray:
        """The stored vectors as one array (memory-mapped and read-only when loaded)."""
        return self._vectors

    def ids(self) -> np.ndarray:
        """The row ids held, in storage order."""
        return self._ids

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self._dim)
        keep = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[keep], ids])
        self._vectors = np.concatenate([np.asarray(self._vectors)[keep], vectors])

    def remove(self, ids: Iterable[int]) -> None:
        keep = ~np.isin(self._ids, np.fromiter(ids, dtype=np.int64))
        self._ids = self._ids[keep]
        self._vectors = np.asarray(self._vectors)[keep]

    def search(self, query: np.ndarray, k: int, *, filter: Filter | None = None) -> Hits:
        if not len(self._ids):
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        scores = self._vectors @ np.asarray(query, dtype=np.float32)
        if filter is not None and filter.conditions:
            mask = self._mask(filter)
            scores = np.where(mask, scores, -np.inf)
        order = top_rows(scores, k)
        order = order[np.isfinite(scores[order])]
        return Hits(self._ids[order], scores[order])

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if self._dense_ids():
            return np.asarray(self._vectors[ids], dtype=np.float32)
        position = {int(i): p for p, i in enumerate(self._ids.tolist())}
        return np.asarray(self._vectors[[position[int(i)] for i in ids]], dtype=np.float32)

    def save(self, folder: Path) -> None:
        order = np.argsort(self._ids, kind="stable")
        ids = self._ids[order]
        np.save(folder / VECTORS_FILE, np.asarray(self._vectors, dtype=np.float32)[order],
                allow_pickle=False)
        if not np.array_equal(ids, np.arange(len(ids))):
            np.save(folder / IDS_FILE, ids, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, *, rows: RowTable | None = None,
             scattered: bool = False) -> ExactIndex:
        vectors = mapped_array(folder / VECTORS_FILE, scattered=scattered)
        ids = np.load(folder / IDS_FILE, allow_pickle=False) if (folder / IDS_FILE).is_file() \
            else None
        return cls(vectors.shape[1], rows=rows, vectors=vectors, ids=ids)

    def _dense_ids(self) -> bool:
        n = len(self._ids)
        return n == 0 or (int(self._ids[0]) == 0 and int(self._ids[-1]) == n - 1
                          and len(self._vectors) == n)

    def _mask(self, filter_: Filter) -> np.ndarray:
        if self._rows is None:
            raise ValueError("this index has no row table to compile filters against")
        full = row_mask(self._rows, filter_)
        return full if self._dense_ids() else full[self._ids]
