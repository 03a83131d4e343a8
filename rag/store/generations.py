"""Writing an index: one immutable generation folder per write, switched atomically.

Layout of an index folder::

    CURRENT              name of the live generation (replaced atomically with os.replace)
    gen-000007/
        manifest.json    format version, model id, dimension, splitter settings, counts
        meta.sqlite      documents (metadata + cleaned text) and chunks   (store/metadata.py)
        vectors.npy      chunk vectors, float32, row i = chunk row i      (store/vectors/)
        vectors.faiss    only for approximate index types
        sentence_*.npy   sentence spans, chunk rows and vectors           (store/sentences.py)
        bm25/            the BM25 index (bm25s files, no pickle)
    embeddings.sqlite    embedding cache (content-addressed; safe to delete)

A writer builds a complete new generation in a temporary folder, flushes it, renames it into
place and only then points CURRENT at it, so a crash at any moment leaves the previous
generation live and whole. Files of a generation are never changed after the switch (a
reader's memory maps depend on that; a deleted generation stays readable to the readers that
still map it). Nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexWriteError, RagError
from rag.settings import StoreSettings
from rag.store.lexical import LexicalIndex
from rag.store.manifest import CURRENT, current_generation
from rag.store.metadata import FILE as METADATA_FILE
from rag.store.metadata import write_metadata
from rag.store.sentences import SentenceStore
from rag.store.vectors import RowTable, VectorIndex, new_vector_index
from rag.types import Chunk, Document

__all__ = ["NewGeneration", "write_generation", "writer_lock"]


@dataclass
class NewGeneration:
    """Everything a writer hands to :func:`write_generation`."""

    manifest: dict[str, Any]
    upsert_docs: list[tuple[Document, int]]  # (document, number of chunks)
    remove_doc_ids: list[str]
    chunks: list[Chunk]
    vectors: np.ndarray
    sent_spans: np.ndarray
    sent_chunk: np.ndarray
    sent_vectors: np.ndarray
    doc_chunk_counts: dict[str, int]
    # Metadata of every document of the new generation, for backends that filter on it
    # outside the folder (Milvus); the writer has it in memory already.
    doc_meta: dict[str, dict[str, Any]]


def write_generation(
    folder: Path, new: NewGeneration, *, store: StoreSettings, previous: str | None
) -> str:
    """Write ``new`` as the next generation and make it live. Returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    number = int(previous.split("-")[1]) + 1 if previous else 1
    name = f"gen-{number:06d}"
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    vectors: VectorIndex | None = None
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_metadata(tmp / METADATA_FILE,
                       folder / previous / METADATA_FILE if previous else None,
                       upsert_docs=new.upsert_docs, remove_doc_ids=new.remove_doc_ids,
                       chunks=new.chunks, doc_chunk_counts=new.doc_chunk_counts)
        SentenceStore.save(tmp, new.sent_spans, new.sent_chunk,
                           new.sent_vectors if store.sentence_vectors == "stored" else None)
        (tmp / "bm25").mkdir()
        LexicalIndex.build([c.text for c in new.chunks]).save(tmp / "bm25")
        vectors = _write_vectors(tmp, new, store, folder=folder, generation=name)
        index_type = vectors.kind
        manifest = dict(new.manifest, generation=name, index_type=index_type,
                        updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        if (folder / name).exists() and current_generation(folder) != name:
            # Left by a writer killed after renaming its generation into place but before
            # switching CURRENT to it: never live, so it is safe to replace.
            shutil.rmtree(folder / name)
        os.replace(tmp, folder / name)
        _fsync_dir(folder)
        pointer = folder / f".{CURRENT}.tmp-{os.getpid()}"
        pointer.write_text(name + "\n", encoding="ascii")
        _fsync_file(pointer)
        os.replace(pointer, folder / CURRENT)
        _fsync_dir(folder)
    except (OSError, sqlite3.Error, RagError) as exc:  # sqlite reports a full disk its own way
        shutil.rmtree(tmp, ignore_errors=True)
        if current_generation(folder) != name:
            shutil.rmtree(folder / name, ignore_errors=True)
            _discard(vectors)
        if isinstance(exc, RagError) and not isinstance(exc, IndexWriteError):
            raise
        reason = getattr(exc, "strerror", None) or exc
        raise IndexWriteError(
            f"could not write the index at {folder}: {reason}; the previous index is unchanged"
        ) from exc
    vectors.publish()
    _remove_old_generations(folder, keep=max(1, store.keep_generations), store=store)
    return name


def _discard(vectors: VectorIndex | None) -> None:
    """Drop what a failed write created outside the folder (a Milvus collection)."""
    if vectors is not None:
        with contextlib.suppress(Exception):
            vectors.drop()


def _write_vectors(gen: Path, new: NewGeneration, store: StoreSettings, *, folder: Path,
                   generation: str) -> VectorIndex:
    """Save the chunk vectors through the index type the settings ask for."""
    vectors = np.asarray(new.vectors, dtype=np.float32)
    n, dim = vectors.shape if vectors.ndim == 2 else (0, int(new.manifest.get("dimension") or 0))
    index = new_vector_index(store, dimension=dim, n_vectors=n,
                             rows=RowTable([c.doc_id for c in new.chunks], new.doc_meta),
                             location=(folder, generation))
    index.add(np.arange(n, dtype=np.int64), vectors.reshape(n, dim))
    index.save(gen)
    return index


def _remove_old_generations(folder: Path, *, keep: int, store: StoreSettings) -> None:
    live = current_generation(folder)
    gens = sorted(p for p in folder.glob("gen-*") if p.is_dir())
    old = [p for p in gens if p.name != live][: max(0, len(gens) - keep)]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    if store.backend == "milvus":
        _drop_unused_collections(folder, store)
    for stale in folder.glob(".gen-*.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    for stale in folder.glob(f".{CURRENT}.tmp-*"):  # a writer killed just before the switch
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            stale.unlink(missing_ok=True)


def _drop_unused_collections(folder: Path, store: StoreSettings) -> None:
    """Drop the Milvus collections of deleted generations and of killed writers."""
    from rag.store.vectors.milvus_connect import collection_name, target_for
    from rag.store.vectors.milvus_index import drop_collections

    target = target_for(store, folder)
    keep = {collection_name(target.prefix, p.name) for p in folder.glob("gen-*") if p.is_dir()}
    with contextlib.suppress(Exception):  # best effort: a later write tries again
        drop_collections(target, keep)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync_file(path)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            _fsync_file(path)
        else:
            _fsync_dir(path)
    _fsync_dir(root)


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """One writer per index folder at a time (across processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


