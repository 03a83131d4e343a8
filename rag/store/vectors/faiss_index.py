"""FAISS index types for large corpora. ``flat`` (exact inner product) is the default; the
approximate types trade a little recall for speed and memory at 10^5-10^6 chunks:

- ``hnsw``: graph index over full vectors, fastest queries, most memory (vectors + graph).
- ``ivf-sq8``: inverted lists with 8-bit scalar-quantised vectors, ~4x less memory than flat.
- ``ivf-pq``: inverted lists with product quantisation (48 bytes a vector), least memory.

``auto`` (the default) is exact search up to ``EXACT_SEARCH_LIMIT`` chunks and ``ivf-sq8``
above: on 1M synthetic vectors it was the smallest index within p50 <= 20 ms and recall@10 >=
0.95, while flat was too slow and too big and HNSW too big (``python -m rag bench``).

Removal never edits an approximate index in place: every write rebuilds it from the exact
vectors in ``vectors.npy``, which stay the source of truth. ``flat`` has no file and no FAISS
copy in memory: retrieval searches the memory-mapped ``vectors.npy`` with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.settings import StoreSettings
from rag.store.vectors.base import Filter, Hits, LocalVectors, RowTable
from rag.store.vectors.exact import ExactIndex

__all__ = ["EXACT_SEARCH_LIMIT", "FAISS_FILE", "FaissIndex", "build_vector_index",
           "configure_search", "resolve_index_type", "stored_settings"]

FAISS_FILE = "vectors.faiss"

EXACT_SEARCH_LIMIT = 200_000  # retrieval searches the exact vectors up to this many chunks
AUTO_APPROXIMATE = "ivf-sq8"


def resolve_index_type(index_type: str, n_vectors: int) -> str:
    """The concrete index type for ``index_type`` (``auto`` depends on the corpus size)."""
    if index_type != "auto":
        return index_type
    return "flat" if n_vectors <= EXACT_SEARCH_LIMIT else AUTO_APPROXIMATE


def build_vector_index(vectors: np.ndarray, store: StoreSettings) -> Any:
    import faiss

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = data.shape
    metric = faiss.METRIC_INNER_PRODUCT
    kind = resolve_index_type(store.index_type, n)
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(data)
        return index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, store.hnsw_m, metric)
        index.hnsw.efConstruction = max(40, store.hnsw_m * 2)
        index.add(data)
        index.hnsw.efSearch = store.hnsw_ef_search
        return index
    nlist = store.ivf_nlist or max(16, int(4 * math.sqrt(n)))
    nlist = min(nlist, max(1, n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf-sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist,
                                              faiss.ScalarQuantizer.QT_8bit, metric)
    elif kind == "ivf-pq":
        m = 48 if dim % 48 == 0 else next(d for d in (32, 24, 16, 8, 4, 2, 1) if dim % d == 0)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, metric)
    else:
        raise ValueError(f"unknown index type {kind!r}")
    sample = data if n <= 100_000 else data[np.random.default_rng(0).choice(n, 100_000, False)]
    index.train(sample)
    index.add(data)
    index.nprobe = min(store.ivf_nprobe, nlist)
    return index


def configure_search(index: Any, store: StoreSettings) -> None:
    """Restore query-time parameters that faiss does not keep in the file."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = store.hnsw_ef_search
    if hasattr(index, "nprobe"):
        index.nprobe = min(store.ivf_nprobe, int(index.nlist))


def stored_settings(manifest: Mapping[str, Any]) -> StoreSettings:
    """The store settings a generation was written with (its manifest keeps them)."""
    recorded = dict(manifest.get("store") or {})
    return StoreSettings(**{k: v for k, v in recorded.items() if k in StoreSettings.model_fields})


class FaissIndex(LocalVectors):
    """An approximate FAISS index over the exact vectors it keeps beside it.

    Unfiltered queries go to FAISS; filtered queries and :meth:`vectors` use the exact
    vectors (memory-mapped when loaded, so only the rows a question touches are read). With
    ``store.index_type = auto`` this index exists only above ``EXACT_SEARCH_LIMIT`` chunks;
    a type named in the settings is used at any size.
    """

    def __init__(self, dimension: int, *, kind: str, store: StoreSettings,
                 rows: RowTable | None = None, exact: ExactIndex | None = None,
                 approximate: Any = None) -> None:
        self.kind = kind
        self._store = store
        self._exact = exact if exact is not None else ExactIndex(dimension, rows=rows)
        self._approximate = approximate
        # Row ids in the order the approximate index holds them (its positions map to these).
        self._built_ids = np.sort(self._exact.ids())

    @property
    def dimension(self) -> int:
        return self._exact.dimension

    @property
    def exact(self) -> ExactIndex:
        """The exact vectors the approximate index was built from."""
        return self._exact

    @property
    def approximate(self) -> Any:
        """The FAISS index (None until built)."""
        return self._approximate

    def count(self) -> int:
        return self._exact.count()

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        self._exact.add(ids, vectors)
        self._approximate = None  # rebuilt from the exact vectors on save or first search

    def remove(self, ids: Iterable[int]) -> None:
        self._exact.remove(ids)
        self._approximate = None

    def search(self, query: np.ndarray, k: int, *, filter: Filter | None = None) -> Hits:
        if (filter is not None and filter.conditions) or self.count() == 0:
            # filters need the exact rows; an empty index has nothing to train FAISS on
            return self._exact.search(query, k, filter=filter)
        if self._approximate is None:
            self._approximate = self._build()
        scores, ids = self._approximate.search(
            np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        positions = ids[0][keep].astype(np.int64)
        return Hits(self._built_ids[positions], scores[0][keep])

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._exact.vectors(ids)

    def save(self, folder: Path) -> None:
        import faiss

        self._exact.save(folder)
        faiss.write_index(self._build(), str(folder / FAISS_FILE))

    @classmethod
    def load(cls, folder: Path, manifest: Mapping[str, Any], *,
             rows: RowTable | None = None) -> FaissIndex:
        import faiss

        store = stored_settings(manifest)
        approximate = faiss.read_index(str(folder / FAISS_FILE))
        configure_search(approximate, store)
        exact = ExactIndex.load(folder, rows=rows, scattered=True)
        return cls(exact.dimension, kind=str(manifest.get("index_type")), store=store,
                   rows=rows, exact=exact, approximate=approximate)

    def _build(self) -> Any:
        ids = np.sort(self._exact.ids())
        index = build_vector_index(self._exact.vectors(ids),
                                   self._store.model_copy(update={"index_type": self.kind}))
        self._built_ids = ids
        return index
