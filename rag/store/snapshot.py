"""A read-only view of one generation: documents, chunks, vectors, sentences, BM25.

Readers share a snapshot between threads. Writes never change a generation after the switch,
so a snapshot stays valid (and its memory maps and database handle stay readable) even when a
later write replaces and deletes its folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.store.lexical import LexicalIndex
from rag.store.manifest import read_manifest
from rag.store.metadata import DocRecord, MetadataReader, read_records
from rag.store.sentences import SentenceStore
from rag.store.vectors import RowTable, VectorIndex, load_vector_index
from rag.types import Chunk, Document

__all__ = ["IndexSnapshot", "open_snapshot"]


@dataclass
class IndexSnapshot:
    """One generation, ready to search.

    ``vector_index`` answers dense queries and returns chunk vectors; ``sentences`` holds the
    sentence spans and vectors the answer composer scores; ``lexical`` is BM25 over the same
    chunk rows.
    """

    folder: Path
    generation: str
    manifest: dict[str, Any]
    docs: dict[str, DocRecord]
    chunks: list[Chunk]
    vector_index: VectorIndex
    sentences: SentenceStore
    lexical: LexicalIndex
    rows: RowTable  # each chunk row's document and each document's metadata (for filters)
    metadata: MetadataReader | None = None
    # Values derived from this generation on first use (e.g. per-document facts the answer
    # composer checks); the generation never changes, so they never go stale.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def document(self, doc_id: str) -> Document | None:
        record = self.docs.get(doc_id)
        if record is None or self.metadata is None:
            return None
        found = self.metadata.document_text(doc_id)
        if found is None:
            return None
        text, sections = found
        return Document(doc_id=doc_id, text=text, sections=sections, meta=record.meta,
                        source_path=record.source_path, file_hash=record.file_hash,
                        doc_type=record.doc_type)

    def doc_chunk_rows(self, doc_id: str) -> list[int]:
        """Chunk rows of one document, in reading order."""
        index = self.derived.get("doc_rows")
        if index is None:
            index = {}
            for row, chunk in enumerate(self.chunks):
                index.setdefault(chunk.doc_id, []).append(row)
            self.derived["doc_rows"] = index
        rows: list[int] = index.get(doc_id, [])
        return rows

    def chunk_vectors(self, rows: list[int] | np.ndarray) -> np.ndarray:
        return self.vector_index.vectors(rows)

    def size_on_disk(self) -> int:
        gen = self.folder / self.generation
        return sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())


def row_table(docs: dict[str, DocRecord], chunks: list[Chunk]) -> RowTable:
    return RowTable([c.doc_id for c in chunks], {d: r.meta for d, r in docs.items()})


# numpy reads each .npy header with ast.literal_eval, and CPython 3.11 can raise "SystemError:
# AST constructor recursion depth mismatch" when two threads build syntax trees at once
# (python/cpython#106905; seen here on 3.11.7 when a reader and a writer reloaded together).
# Snapshots therefore open one at a time in a process; it happens only after a write.
_OPENING = threading.Lock()


def open_snapshot(folder: Path, store: Any = None) -> IndexSnapshot:
    """The live generation of ``folder``; ``store`` (StoreSettings) supplies connection
    details for backends outside the folder (Milvus)."""
    with _OPENING:
        return _open(folder, store)


def _open(folder: Path, store: Any) -> IndexSnapshot:
    manifest = read_manifest(folder)
    generation = manifest["generation"]
    gen = folder / generation
    docs, chunks = read_records(gen)
    rows = row_table(docs, chunks)
    vectors = load_vector_index(gen, manifest, rows=rows, store=store, index_dir=folder)
    return IndexSnapshot(folder=folder, generation=generation, manifest=manifest, docs=docs,
                         chunks=chunks, vector_index=vectors,
                         sentences=SentenceStore.load(gen),
                         lexical=LexicalIndex.load(gen / "bm25", len(chunks)), rows=rows,
                         metadata=MetadataReader(gen))
