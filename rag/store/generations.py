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

from rag.errors import IndexWriteError
from rag.settings import StoreSettings
from rag.store.lexical import LexicalIndex
from rag.store.manifest import CURRENT, current_generation
from rag.store.metadata import FILE as METADATA_FILE
from rag.store.metadata import write_metadata
from rag.store.sentences import SentenceStore
from rag.store.vectors import RowTable, new_vector_index
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


def write_generation(
    folder: Path, new: NewGeneration, *, store: StoreSettings, previous: str | None
) -> str:
    """Write ``new`` as the next generation and make it live. Returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    number = int(previous.split("-")[1]) + 1 if previous else 1
    name = f"gen-{number:06d}"
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_metadata(tmp / METADATA_FILE,
                       folder / previous / METADATA_FILE if previous else None,
                       upsert_docs=new.upsert_docs, remove_doc_ids=new.remove_doc_ids,
                       chunks=new.chunks, doc_chunk_counts=new.doc_chunk_counts)
        SentenceStore.save(tmp, new.sent_spans, new.sent_chunk, new.sent_vectors)
        (tmp / "bm25").mkdir()
        LexicalIndex.build([c.text for c in new.chunks]).save(tmp / "bm25")
        index_type = _write_vectors(tmp, new, store)
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
    except (OSError, sqlite3.Error) as exc:  # sqlite reports a full disk as its own error
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(folder / name, ignore_errors=True) if current_generation(folder) != name \
            else None
        reason = getattr(exc, "strerror", None) or exc
        raise IndexWriteError(
            f"could not write the index at {folder}: {reason}; the previous index is unchanged"
        ) from exc
    _remove_old_generations(folder, keep=max(1, store.keep_generations))
    return name


def _write_vectors(gen: Path, new: NewGeneration, store: StoreSettings) -> str:
    """Save the chunk vectors through the index type the settings ask for; returns it."""
    vectors = np.asarray(new.vectors, dtype=np.float32)
    n, dim = vectors.shape if vectors.ndim == 2 else (0, int(new.manifest.get("dimension") or 0))
    index = new_vector_index(store, dimension=dim, n_vectors=n,
                             rows=RowTable([c.doc_id for c in new.chunks], {}))
    index.add(np.arange(n, dtype=np.int64), vectors.reshape(n, dim))
    index.save(gen)
    return index.kind


def _remove_old_generations(folder: Path, *, keep: int) -> None:
    live = current_generation(folder)
    gens = sorted(p for p in folder.glob("gen-*") if p.is_dir())
    old = [p for p in gens if p.name != live][: max(0, len(gens) - keep)]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    for stale in folder.glob(".gen-*.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    for stale in folder.glob(f".{CURRENT}.tmp-*"):  # a writer killed just before the switch
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            stale.unlink(missing_ok=True)


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


