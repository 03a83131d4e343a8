"""The vector-index interface and the neutral filter form (see :mod:`rag.store.vectors`)."""

from __future__ import annotations

import dataclasses
import mmap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

__all__ = ["FILTER_FIELDS", "META_FIELDS", "Condition", "Filter", "Hits", "LocalVectors",
           "RowTable", "VectorIndex", "mapped_array", "meta_values", "row_mask", "top_rows"]

FILTER_FIELDS = ("doc_id", "disease", "agent", "evidence", "topic", "year")
# The document metadata key behind each tag filter (evidence: the study-design level the
# indexer stores, see rag.ingest.evidence).
META_FIELDS = {"disease": "diseases", "agent": "agents", "evidence": "evidence_level",
               "topic": "topics"}


def meta_values(meta: Mapping[str, Any], key: str) -> list[Any]:
    """The values stored under ``key``: a list, even when one bare string is stored."""
    have = meta.get(key) or []
    return [have] if isinstance(have, str) else list(have)


class Hits(NamedTuple):
    """Row ids (int64) and their inner-product scores, best first."""

    ids: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition on document metadata.

    ``values``: the row passes when its document has any of these stored values in ``field``.
    For ``year``: ``low <= year <= high``.
    """

    field: str
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    # ``values`` as a set, for membership tests (a doc_id condition may name thousands)
    lookup: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookup", frozenset(self.values))


@dataclass(frozen=True, slots=True)
class Filter:
    """All conditions must hold."""

    conditions: tuple[Condition, ...] = ()

    def passes(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return all(_passes(c, doc_id, meta) for c in self.conditions)


def _passes(condition: Condition, doc_id: str, meta: Mapping[str, Any]) -> bool:
    if condition.field == "doc_id":
        return doc_id in condition.lookup
    if condition.field == "year":
        year = meta.get("year")
        return (isinstance(year, int) and (condition.low is None or year >= condition.low)
                and (condition.high is None or year <= condition.high))
    have = meta_values(meta, META_FIELDS[condition.field])
    return any(str(value) in condition.lookup for value in have)


@dataclass(frozen=True)
class RowTable:
    """What a backend needs to compile filters: each row's document and each document's
    metadata."""

    row_docs: Sequence[str]
    doc_meta: Mapping[str, Mapping[str, Any]]
    _masks: dict[Filter, np.ndarray] = field(default_factory=dict, compare=False, repr=False)


def row_mask(table: RowTable, filter_: Filter) -> np.ndarray:
    """Boolean mask over rows whose document passes ``filter_`` (cached per filter)."""
    cached = table._masks.get(filter_)
    if cached is not None:
        return cached
    ok = {doc_id for doc_id, meta in table.doc_meta.items() if filter_.passes(doc_id, meta)}
    mask = np.fromiter((d in ok for d in table.row_docs), dtype=bool, count=len(table.row_docs))
    if len(table._masks) > 256:
        table._masks.clear()
    table._masks[filter_] = mask
    return mask


class VectorIndex(Protocol):
    """A store of row vectors with nearest-neighbour search."""

    kind: str

    @property
    def dimension(self) -> int: ...

    def count(self) -> int:
        """Number of rows held."""
        ...

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) rows ``ids`` with ``vectors`` (one unit vector per row)."""
        ...

    def remove(self, ids: Iterable[int]) -> None:
        """Drop rows; unknown ids are ignored."""
        ...

    def search(self, query: np.ndarray, k: int, *, filter: Filter | None = None) -> Hits:
        """The ``k`` rows with the highest inner product with ``query`` that pass ``filter``
        (compiled against the rows' documents)."""
        ...

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of rows ``ids`` (float32, in the given order)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the index into a generation folder."""
        ...

    def publish(self) -> None:
        """Announce this generation's vectors to outside readers, after the local switch."""
        ...

    def drop(self) -> None:
        """Delete what this index created outside its folder (a write that failed)."""
        ...

    def close(self) -> None:
        """Release outside resources (a connection, a lock on a database file)."""
        ...


class LocalVectors:
    """For backends whose vectors live only in the generation folder: nothing outside it to
    announce, delete or release."""

    def publish(self) -> None:
        return None

    def drop(self) -> None:
        return None

    def close(self) -> None:
        return None


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first (stable for ties)."""
    if len(scores) <= n:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, n)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def mapped_array(path: Path, *, scattered: bool = False) -> np.ndarray:
    """A read-only memory map of a ``.npy`` file, as a plain array (indexing an ``np.memmap``
    costs a few times more per row, which the answer composer's loops feel).

    ``scattered``: rows are read a few at a time from anywhere in the file. The kernel would
    otherwise read megabytes (``read_ahead_kb``) around each one, which then stay resident.
    """
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    if scattered and isinstance(mapped.base, mmap.mmap) and hasattr(mmap, "MADV_RANDOM"):
        mapped.base.madvise(mmap.MADV_RANDOM)
    return np.asarray(mapped)
