"""The index on disk: one immutable generation folder per write, switched atomically.

Layout of an index folder::

    CURRENT              name of the live generation (replaced atomically with os.replace)
    gen-000007/
        manifest.json    format version, model id, dimension, splitter settings, counts
        meta.sqlite      documents (metadata + cleaned text) and chunks
        vectors.npy      chunk vectors, float32, row i = chunk row i
        vectors.faiss    only for approximate index types (flat search needs no file)
        sentence_spans.npy    sentence spans (start, end) in document offsets, int64
        sentence_chunks.npy   each sentence's chunk row, int64, sorted
        sentence_vectors.npy  sentence vectors, float16, aligned with the two above
        bm25/            the BM25 index (bm25s files, no pickle)
    embeddings.sqlite    embedding cache (content-addressed; safe to delete)

Generations written before the sentence arrays were split out hold them in one
``sentences.npz`` (keys ``spans``, ``chunk``, ``vectors``); they still open, with those arrays
read into memory, and the next write stores them in the new layout.

A reader memory-maps the ``.npy`` arrays read-only instead of loading them. Exact search (up
to 200,000 chunks) reads all chunk vectors through the page cache, which the kernel shares
between readers and can reclaim; above that the approximate index answers and only the rows a
question touches are read. There is no flat FAISS copy of the vectors: exact search is numpy
over the mapped array.

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
import mmap
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMismatchError, IndexNotFoundError, IndexWriteError
from rag.retrieve.lexical import LexicalIndex
from rag.settings import StoreSettings
from rag.store.vectors.faiss_index import EXACT_SEARCH_LIMIT
from rag.types import Chunk, Document, Section

__all__ = ["DocRecord", "IndexSnapshot", "NewGeneration", "open_snapshot", "write_generation"]

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_SENTENCE_FILES = {"spans": "sentence_spans.npy", "chunk": "sentence_chunks.npy",
                   "vectors": "sentence_vectors.npy"}
_SENTENCE_DTYPES = {"spans": np.int64, "chunk": np.int64, "vectors": np.float16}
_OLD_SENTENCES = "sentences.npz"


@dataclass(frozen=True, slots=True)
class DocRecord:
    """A document's metadata as held in memory (its text stays in SQLite)."""

    doc_id: str
    title: str
    doc_type: str
    source_path: str
    file_hash: str
    meta: dict[str, Any]
    n_chunks: int
    sections: tuple[Section, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id, "title": self.title, "doc_type": self.doc_type,
            "source_path": self.source_path, "file_hash": self.file_hash,
            "meta": self.meta, "chunks": self.n_chunks,
        }


@dataclass
class IndexSnapshot:
    """A read-only view of one generation. Safe to share between threads.

    ``vectors`` and the sentence arrays are read-only memory maps of the generation's files
    (plain arrays for a generation in the old ``sentences.npz`` layout); never write to them.
    """

    folder: Path
    generation: str
    manifest: dict[str, Any]
    docs: dict[str, DocRecord]
    chunks: list[Chunk]
    vectors: np.ndarray
    sent_spans: np.ndarray
    sent_chunk: np.ndarray
    sent_vectors: np.ndarray
    lexical: LexicalIndex
    approximate_index: Any = None  # read from vectors.faiss; None for a flat generation
    _db_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _db: sqlite3.Connection | None = field(default=None, repr=False)
    # Values derived from this generation on first use (e.g. per-document facts the answer
    # composer checks); the generation never changes, so they never go stale.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def doc_chunk_rows(self, doc_id: str) -> list[int]:
        """Chunk rows of one document, in reading order."""
        index = self.derived.get("doc_rows")
        if index is None:
            index = {}
            for row, chunk in enumerate(self.chunks):
                index.setdefault(chunk.doc_id, []).append(row)
            self.derived["doc_rows"] = index
        return index.get(doc_id, [])

    @property
    def searches_approximately(self) -> bool:
        """True when unfiltered dense search goes to the approximate index; otherwise
        retrieval scans ``vectors`` exactly."""
        return _searches_approximately(self.approximate_index, len(self.chunks))

    def document(self, doc_id: str) -> Document | None:
        record = self.docs.get(doc_id)
        if record is None:
            return None
        with self._db_lock:
            if self._db is None:
                path = self.folder / self.generation / "meta.sqlite"
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                           check_same_thread=False)
            row = self._db.execute(
                "SELECT text, sections FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        sections = tuple(Section(**s) for s in json.loads(row[1]))
        return Document(doc_id=doc_id, text=row[0], sections=sections, meta=record.meta,
                        source_path=record.source_path, file_hash=record.file_hash,
                        doc_type=record.doc_type)

    def sentence_rows(self, chunk_row: int) -> np.ndarray:
        """Rows in the sentence arrays that belong to one chunk."""
        lo = np.searchsorted(self.sent_chunk, chunk_row, side="left")
        hi = np.searchsorted(self.sent_chunk, chunk_row, side="right")
        return np.arange(lo, hi)

    def size_on_disk(self) -> int:
        gen = self.folder / self.generation
        return sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())


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


def current_generation(folder: Path) -> str | None:
    try:
        name = (folder / _CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if name and (folder / name / "manifest.json").is_file() else None


def read_manifest(folder: Path) -> dict[str, Any]:
    generation = current_generation(folder)
    if generation is None:
        raise IndexNotFoundError(
            f"no index at {folder}: build one with `python -m rag index` (or --index DIR)"
        )
    return json.loads((folder / generation / "manifest.json").read_text(encoding="utf-8"))


def check_manifest(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Raise IndexMismatchError when the index was built with other model/splitter settings."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {folder} has format {manifest.get('format_version')}, this version "
            f"reads {FORMAT_VERSION}: rebuild it with `python -m rag index --rebuild`"
        )
    for key in ("model_id", "dimension", "chunking"):
        if manifest.get(key) != expected.get(key):
            raise IndexMismatchError(
                f"index at {folder} was built with {key}={manifest.get(key)!r} but the settings "
                f"ask for {expected.get(key)!r}: rebuild it with `python -m rag index --rebuild` "
                "(or point --index at another folder)"
            )


def open_snapshot(folder: Path) -> IndexSnapshot:
    manifest = read_manifest(folder)
    generation = manifest["generation"]
    gen = folder / generation
    with sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True) as db:
        docs = {
            doc_id: DocRecord(doc_id, title, doc_type, source, fhash, json.loads(meta), n,
                              tuple(Section(**x) for x in json.loads(sections)))
            for doc_id, title, doc_type, source, fhash, meta, n, sections in db.execute(
                "SELECT doc_id, title, doc_type, source_path, file_hash, meta, n_chunks, "
                "sections FROM documents"
            )
        }
        chunks = [
            Chunk(chunk_id=cid, doc_id=did, text=text, start=start, end=end, section=section,
                  page=page, sentences=(), n_tokens=ntok)
            for cid, did, text, start, end, section, page, ntok in db.execute(
                "SELECT chunk_id, doc_id, text, start, end, section, page, n_tokens "
                "FROM chunks ORDER BY row"
            )
        ]
    approximate = _load_approximate_index(gen, manifest)
    vectors = _mapped(gen / "vectors.npy",
                      scattered=_searches_approximately(approximate, len(chunks)))
    sentences = _read_sentences(gen)
    lexical = LexicalIndex.load(gen / "bm25", len(chunks))
    # Opened now, not on first use: an open handle (like the memory maps above) keeps this
    # generation readable even after a later write has replaced and deleted the folder.
    db = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True,
                         check_same_thread=False)
    return IndexSnapshot(folder=folder, generation=generation, manifest=manifest, docs=docs,
                         chunks=chunks, vectors=vectors, sent_spans=sentences["spans"],
                         sent_chunk=sentences["chunk"], sent_vectors=sentences["vectors"],
                         lexical=lexical, approximate_index=approximate, _db=db)


def _searches_approximately(approximate: Any, n_chunks: int) -> bool:
    return approximate is not None and n_chunks > EXACT_SEARCH_LIMIT


def _mapped(path: Path, *, scattered: bool = False) -> np.ndarray:
    """A read-only memory map of a ``.npy`` file, as a plain array (indexing an ``np.memmap``
    costs a few times more per row, which the answer composer's loops feel).

    ``scattered``: rows are read a few at a time from anywhere in the file. The kernel would
    otherwise read megabytes (``read_ahead_kb``) around each one, which then stay resident.
    """
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    if scattered and isinstance(mapped.base, mmap.mmap) and hasattr(mmap, "MADV_RANDOM"):
        mapped.base.madvise(mmap.MADV_RANDOM)
    return np.asarray(mapped)


def _read_sentences(gen: Path) -> dict[str, np.ndarray]:
    if not (gen / _SENTENCE_FILES["spans"]).is_file() and (gen / _OLD_SENTENCES).is_file():
        with np.load(gen / _OLD_SENTENCES, allow_pickle=False) as old:
            return {key: old[key] for key in _SENTENCE_FILES}
    return {key: _mapped(gen / name, scattered=True) for key, name in _SENTENCE_FILES.items()}


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
        _write_sqlite(tmp / "meta.sqlite", folder / previous / "meta.sqlite" if previous else None,
                      new)
        _write_arrays(tmp, new)
        (tmp / "bm25").mkdir()
        LexicalIndex.build([c.text for c in new.chunks]).save(tmp / "bm25")
        index_type = _write_vector_index(tmp, new.vectors, store)
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
        pointer = folder / f".{_CURRENT}.tmp-{os.getpid()}"
        pointer.write_text(name + "\n", encoding="ascii")
        _fsync_file(pointer)
        os.replace(pointer, folder / _CURRENT)
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


def _write_sqlite(path: Path, previous: Path | None, new: NewGeneration) -> None:
    if previous is not None and previous.is_file():
        shutil.copyfile(previous, path)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute(
            "CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, title TEXT, "
            "doc_type TEXT, source_path TEXT, file_hash TEXT, meta TEXT, sections TEXT, "
            "text TEXT, n_chunks INTEGER)"
        )
        db.execute("DROP TABLE IF EXISTS chunks")
        db.execute(
            "CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, doc_id TEXT, "
            "text TEXT, start INTEGER, end INTEGER, section TEXT, page INTEGER, "
            "n_tokens INTEGER)"
        )
        with db:
            db.executemany("DELETE FROM documents WHERE doc_id = ?",
                           [(d,) for d in new.remove_doc_ids])
            db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.doc_id, d.title, d.doc_type, d.source_path, d.file_hash,
                  json.dumps(d.meta, ensure_ascii=False),
                  json.dumps([asdict(s) for s in d.sections]),
                  d.text, n) for d, n in new.upsert_docs],
            )
            db.executemany("UPDATE documents SET n_chunks = ? WHERE doc_id = ?",
                           [(n, d) for d, n in new.doc_chunk_counts.items()])
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(row, c.chunk_id, c.doc_id, c.text, c.start, c.end, c.section, c.page,
                  c.n_tokens) for row, c in enumerate(new.chunks)],
            )
        db.execute("VACUUM")
    finally:
        db.close()


def _write_arrays(gen: Path, new: NewGeneration) -> None:
    # np.asarray, not astype: no second copy of arrays that already have the stored type.
    np.save(gen / "vectors.npy", np.asarray(new.vectors, dtype=np.float32), allow_pickle=False)
    arrays = {"spans": new.sent_spans, "chunk": new.sent_chunk, "vectors": new.sent_vectors}
    for key, name in _SENTENCE_FILES.items():
        np.save(gen / name, np.asarray(arrays[key], dtype=_SENTENCE_DTYPES[key]),
                allow_pickle=False)


def _write_vector_index(gen: Path, vectors: np.ndarray, store: StoreSettings) -> str:
    """Build the approximate index when asked for and worth it; flat needs no file."""
    from rag.store.vectors.faiss_index import build_vector_index, resolve_index_type

    kind = resolve_index_type(store.index_type, len(vectors))
    if kind == "flat" or len(vectors) < 1000:
        return "flat"
    import faiss

    index = build_vector_index(vectors, store)
    faiss.write_index(index, str(gen / "vectors.faiss"))
    return kind


def _load_approximate_index(gen: Path, manifest: dict[str, Any]) -> Any:
    if manifest.get("index_type", "flat") == "flat":
        return None
    import faiss

    from rag.store.vectors.faiss_index import configure_search

    approximate = faiss.read_index(str(gen / "vectors.faiss"))
    configure_search(approximate, manifest)
    return approximate


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
    for stale in folder.glob(f".{_CURRENT}.tmp-*"):  # a writer killed just before the switch
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


def sentence_arrays(
    chunks: Sequence[Chunk], sentence_vectors: Sequence[np.ndarray], dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten per-chunk sentence spans and vectors into aligned arrays sorted by chunk row."""
    spans = [s for c in chunks for s in c.sentences]
    rows = [row for row, c in enumerate(chunks) for _ in c.sentences]
    vecs = [v for v in sentence_vectors if len(v)]
    return (
        np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        np.asarray(rows, dtype=np.int64),
        np.concatenate(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32),
    )
