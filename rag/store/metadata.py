"""Document and chunk metadata in SQLite (``meta.sqlite`` of each generation).

``documents`` holds each document's metadata, sections and cleaned text (which citations
index into); ``chunks`` holds each chunk row's text and offsets. A writer copies the previous
generation's file and applies the changes, so unchanged documents are not written again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.types import Chunk, Document, Section

__all__ = ["DocRecord", "MetadataReader", "read_records", "write_metadata"]

FILE = "meta.sqlite"


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


def read_records(folder: Path) -> tuple[dict[str, DocRecord], list[Chunk]]:
    """Every document record and every chunk (in row order) of a generation."""
    with sqlite3.connect(f"file:{folder / FILE}?mode=ro", uri=True) as db:
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
    return docs, chunks


class MetadataReader:
    """Reads document texts. Opened at once, not on first use: an open handle keeps this
    generation readable even after a later write has replaced and deleted its folder."""

    def __init__(self, folder: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(f"file:{folder / FILE}?mode=ro", uri=True,
                                   check_same_thread=False)

    def document_text(self, doc_id: str) -> tuple[str, tuple[Section, ...]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, sections FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        return row[0], tuple(Section(**s) for s in json.loads(row[1]))


def write_metadata(path: Path, previous: Path | None, *,
                   upsert_docs: Sequence[tuple[Document, int]], remove_doc_ids: Sequence[str],
                   chunks: Sequence[Chunk], doc_chunk_counts: dict[str, int]) -> None:
    """Write a generation's ``meta.sqlite``, starting from the previous generation's."""
    if previous is not None and previous.is_file():
        import shutil

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
                           [(d,) for d in remove_doc_ids])
            db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.doc_id, d.title, d.doc_type, d.source_path, d.file_hash,
                  json.dumps(d.meta, ensure_ascii=False),
                  json.dumps([asdict(s) for s in d.sections]),
                  d.text, n) for d, n in upsert_docs],
            )
            db.executemany("UPDATE documents SET n_chunks = ? WHERE doc_id = ?",
                           [(n, d) for d, n in doc_chunk_counts.items()])
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(row, c.chunk_id, c.doc_id, c.text, c.start, c.end, c.section, c.page,
                  c.n_tokens) for row, c in enumerate(chunks)],
            )
        db.execute("VACUUM")
    finally:
        db.close()
