"""The Milvus backend: chunk vectors and filterable metadata in a Milvus collection.

One collection per index generation (``<prefix>_gen_000007``), written completely before the
generation becomes live; the local ``CURRENT`` switch is the commit, then the alias
``<prefix>_live`` is pointed at the new collection, and collections of deleted generations
(or left by a killed writer) are dropped. A reader opens the collection its generation's
manifest names, so it never sees a half-written one. The same code talks to embedded Milvus
Lite (a local path) and to a Milvus server or cluster (``http://host:19530``).

Each row carries its chunk row id, document id and the document's year, study-design level,
diseases, agents and topics, so a :class:`~rag.store.vectors.base.Filter` compiles to a Milvus
expression (:func:`compile_filter`) and filtered search runs in Milvus.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexUnusableError, IndexWriteError
from rag.store.vectors.base import META_FIELDS, Filter, Hits, RowTable, meta_values
from rag.store.vectors.milvus_connect import (
    MilvusTarget,
    collection_name,
    connect,
    is_lite,
    redact,
    release,
    target_for,
)

__all__ = ["INFO_FILE", "MilvusIndex", "compile_filter", "drop_collections"]

INFO_FILE = "milvus.json"
_BATCH = 2_000
# Tag fields stored as Milvus arrays (evidence is one string per document).
_ARRAYS = {f: key for f, key in META_FIELDS.items() if f != "evidence"}
_MAX_TAGS = 64


def compile_filter(filter_: Filter) -> str:
    """A Milvus boolean expression for ``filter_`` ("" when it has no conditions)."""
    parts = []
    for condition in filter_.conditions:
        values = json.dumps(list(condition.values), ensure_ascii=False)
        if condition.field == "year":
            low = condition.low if condition.low is not None else 0
            high = condition.high if condition.high is not None else 99_999
            parts.append(f"(year >= {int(low)} and year <= {int(high)})")
        elif not condition.values:
            parts.append("(row < 0)")  # no stored value matches: nothing passes
        elif condition.field == "doc_id":
            parts.append(f"(doc_id in {values})")
        elif condition.field == "evidence":
            parts.append(f"(evidence in {values})")
        else:
            parts.append(f"ARRAY_CONTAINS_ANY({_ARRAYS[condition.field]}, {values})")
    return " and ".join(parts)


class MilvusIndex:
    """A :class:`~rag.store.vectors.base.VectorIndex` over one Milvus collection."""

    kind = "milvus"

    def __init__(self, dimension: int, *, target: MilvusTarget, collection: str,
                 rows: RowTable | None = None) -> None:
        self._dim = int(dimension)
        self._target = target
        self._collection = collection
        self._rows = rows
        self._client = connect(target)

    # -- writing -------------------------------------------------------------------------

    @classmethod
    def create(cls, dimension: int, *, target: MilvusTarget, generation: str,
               rows: RowTable | None) -> MilvusIndex:
        """A new, empty collection for ``generation`` (replacing one a killed writer left)."""
        index = cls(dimension, target=target,
                    collection=collection_name(target.prefix, generation), rows=rows)
        index._create_collection()
        return index

    def _create_collection(self) -> None:
        from pymilvus import DataType

        client = self._client
        try:
            if client.has_collection(self._collection):
                client.drop_collection(self._collection)
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("row", DataType.INT64, is_primary=True)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
            schema.add_field("year", DataType.INT64)
            schema.add_field("evidence", DataType.VARCHAR, max_length=256)
            for field in _ARRAYS.values():
                schema.add_field(field, DataType.ARRAY, element_type=DataType.VARCHAR,
                                 max_capacity=_MAX_TAGS, max_length=256)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
            params = client.prepare_index_params()
            params.add_index(field_name="vector", index_type=self._index_type(),
                             metric_type="IP", params=self._build_params())
            client.create_collection(self._collection, schema=schema, index_params=params)
        except Exception as exc:
            raise IndexWriteError(f"could not create the Milvus collection {self._collection} "
                                  f"at {redact(self._target.uri)}: {exc}") from exc

    def _index_type(self) -> str:
        kind = self._target.index_type
        if kind == "AUTOINDEX" and is_lite(self._target.uri):
            return "FLAT"  # Lite is for development; FLAT is exact and fine at its sizes
        return kind

    def _build_params(self) -> dict[str, Any]:
        kind = self._index_type()
        if kind in ("IVF_FLAT", "IVF_SQ8"):
            return {"nlist": 1024}
        if kind == "HNSW":
            return {"M": 32, "efConstruction": 128}
        return {}

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self._dim)
        for start in range(0, len(ids), _BATCH):
            batch = [self._entity(int(row), vectors[i])
                     for i, row in enumerate(ids[start:start + _BATCH].tolist(), start=start)]
            self._call("upsert", self._collection, batch)

    def _entity(self, row: int, vector: np.ndarray) -> dict[str, Any]:
        doc_id, meta = "", {}
        if self._rows is not None and row < len(self._rows.row_docs):
            doc_id = self._rows.row_docs[row]
            meta = dict(self._rows.doc_meta.get(doc_id) or {})
        year = meta.get("year")
        entity: dict[str, Any] = {
            "row": row, "doc_id": doc_id[:512],
            "year": year if isinstance(year, int) and not isinstance(year, bool) else -1,
            "evidence": str(meta.get(META_FIELDS["evidence"]) or "")[:256],
            "vector": vector.tolist(),
        }
        for field in _ARRAYS.values():
            entity[field] = [str(v)[:256] for v in meta_values(meta, field)][:_MAX_TAGS]
        return entity

    def remove(self, ids: Iterable[int]) -> None:
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), _BATCH):
            self._call("delete", self._collection,
                       filter=f"row in {wanted[start:start + _BATCH]}")

    def save(self, folder: Path) -> None:
        """Flush and load the collection, and record it in the generation folder."""
        self._call("flush", self._collection)
        self._call("load_collection", self._collection)
        info = {"collection": self._collection, "uri": redact(self._target.uri),
                "dimension": self._dim, "index_type": self._index_type(),
                "prefix": self._target.prefix}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    def drop(self) -> None:
        """Remove the collection (a write that failed after creating it)."""
        if self._client.has_collection(self._collection):
            self._client.drop_collection(self._collection)

    def publish(self) -> None:
        """Point the alias ``<prefix>_live`` at this collection (after the local switch)."""
        alias = f"{self._target.prefix}_live"
        if alias in (self._client.list_aliases().get("aliases") or []):
            self._client.alter_alias(self._collection, alias)
        else:
            self._client.create_alias(self._collection, alias)

    def close(self) -> None:
        """Close this process's client; for Milvus Lite also free the data file."""
        release(self._target)

    # -- reading -------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, *, target: MilvusTarget | None = None,
             rows: RowTable | None = None, store: Any = None,
             manifest: Mapping[str, Any] | None = None,
             index_dir: Path | None = None) -> MilvusIndex:
        """Open the collection a generation folder records. Without ``target``, it is where
        :func:`recorded_target` says (the settings ``store`` may name another server)."""
        try:
            info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexUnusableError(f"{folder / INFO_FILE} is missing or unreadable; rebuild "
                                     "the index with `python -m rag index --rebuild`") from exc
        if target is None:
            target = recorded_target(info, manifest or {}, store, index_dir)
        index = cls(int(info["dimension"]), target=target, collection=str(info["collection"]),
                    rows=rows)
        if not index._client.has_collection(index._collection):
            raise IndexUnusableError(
                f"the Milvus collection {index._collection} is not at "
                f"{redact(target.uri)}; rebuild the index with `python -m rag index --rebuild` "
                "(or point store.milvus_uri at the server that holds it)")
        index._call("load_collection", index._collection)
        return index

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def target(self) -> MilvusTarget:
        return self._target

    def count(self) -> int:
        stats = self._call("get_collection_stats", self._collection)
        return int(stats.get("row_count", 0))

    def search(self, query: np.ndarray, k: int, *, filter: Filter | None = None) -> Hits:
        expression = compile_filter(filter) if filter is not None else ""
        params: dict[str, Any] = {"metric_type": "IP"}
        if self._index_type() in ("IVF_FLAT", "IVF_SQ8"):
            params["params"] = {"nprobe": 64}
        elif self._index_type() == "HNSW":
            params["params"] = {"ef": max(128, k)}
        result = self._call("search", self._collection,
                            data=[np.asarray(query, dtype=np.float32).tolist()],
                            limit=max(1, min(int(k), 16_384)), filter=expression,
                            output_fields=["row"], search_params=params)
        hits = result[0] if result else []
        ids = np.array([int(h["entity"].get("row", h.get("id"))) for h in hits], dtype=np.int64)
        scores = np.array([float(h["distance"]) for h in hits], dtype=np.float32)
        return Hits(ids, scores)

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = [int(i) for i in np.asarray(ids, dtype=np.int64).tolist()]
        found: dict[int, list[float]] = {}
        unique = list(dict.fromkeys(wanted))
        for start in range(0, len(unique), _BATCH):
            batch = unique[start:start + _BATCH]
            for item in self._call("query", self._collection, filter=f"row in {batch}",
                                   output_fields=["row", "vector"], limit=len(batch)):
                found[int(item["row"])] = item["vector"]
        missing = [i for i in unique if i not in found]
        if missing:
            raise IndexUnusableError(f"rows {missing[:5]} are not in the Milvus collection "
                                     f"{self._collection}; rebuild the index")
        if not wanted:
            return np.zeros((0, self._dim), np.float32)
        return np.asarray([found[i] for i in wanted], dtype=np.float32)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, timeout=self._target.timeout_s,
                                                 **kwargs)
        except (IndexUnusableError, IndexWriteError):
            raise
        except Exception as exc:  # pymilvus raises many types; name the call and the reason
            error = IndexWriteError if method in ("upsert", "delete", "flush") else \
                IndexUnusableError
            raise error(f"Milvus {method} on {self._collection} at "
                        f"{redact(self._target.uri)} failed: {exc}") from exc


def recorded_target(info: Mapping[str, Any], manifest: Mapping[str, Any], store: Any,
                    index_dir: Path | None) -> MilvusTarget:
    """Where a Milvus generation's vectors are: the settings' URI when they name one, else the
    URI the generation recorded in ``info`` (credentials always come from the settings)."""
    from rag.settings import StoreSettings

    settings = store if store is not None else StoreSettings(
        **{k: v for k, v in dict(manifest.get("store") or {}).items()
           if k in StoreSettings.model_fields and k != "milvus_token"})
    if not (store is not None and store.backend == "milvus" and store.milvus_uri):
        settings = settings.model_copy(update={
            "milvus_uri": info.get("uri") or settings.milvus_uri,
            "milvus_prefix": info.get("prefix") or settings.milvus_prefix})
    return target_for(settings, index_dir)


def drop_collections(target: MilvusTarget, keep: set[str]) -> list[str]:
    """Drop this prefix's generation collections not in ``keep``; returns their names."""
    client = connect(target)
    stem = collection_name(target.prefix, "gen-")
    dropped = []
    for name in client.list_collections():
        if name.startswith(stem) and name[len(stem):].isdigit() and name not in keep:
            client.drop_collection(name)
            dropped.append(name)
    return dropped
