"""Shared by the store tests: a synthetic store written with the store's own writer.

Chunk ``i`` reads "Synthetic chunk i about TRAIL and DR5 on leukemia cells." (odd chunks have
a second sentence); documents ``synth-000000``, ``synth-000001``, ... hold ``per_doc`` chunks
each, with chunk ids ``synth-DDDDDD:i``. Vectors are random unit vectors, so only the lexical
side of a search finds a chunk by its text. No model is loaded: a store of thousands of chunks
is written in about a second.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from rag import Chunk, Document, Settings
from rag.ingest.pipeline import expected_manifest
from rag.store.generations import NewGeneration, write_generation


def write_synthetic_store(folder: Path, n: int, *, dim: int = 384, seed: int = 0,
                          index_type: str = "auto", per_doc: int = 100) -> dict[str, Any]:
    """Write one generation of ``n`` synthetic chunks at ``folder``; return its counts."""
    settings = Settings().with_updates(**{"store.index_type": index_type})
    docs, chunks = _synthetic_documents(n, per_doc)
    rng = np.random.default_rng(seed)
    rows = [row for row, c in enumerate(chunks) for _ in c.sentences]
    counts = {d.doc_id: 0 for d in docs}
    for chunk in chunks:
        counts[chunk.doc_id] += 1
    manifest = dict(expected_manifest(settings, dim), dtype="float32", documents=len(docs),
                    chunks=n)
    new = NewGeneration(
        manifest=manifest, upsert_docs=[(d, counts[d.doc_id]) for d in docs], remove_doc_ids=[],
        chunks=chunks, vectors=_unit_rows(rng, n, dim, np.float32),
        sent_spans=np.asarray([s for c in chunks for s in c.sentences], dtype=np.int64),
        sent_chunk=np.asarray(rows, dtype=np.int64),
        sent_vectors=_unit_rows(rng, len(rows), dim, np.float16),
        doc_chunk_counts=counts,
    )
    write_generation(folder, new, store=settings.store, previous=None)
    return {"n": n, "sentences": len(rows), "documents": len(docs)}


def _synthetic_documents(n: int, per_doc: int) -> tuple[list[Document], list[Chunk]]:
    docs: list[Document] = []
    chunks: list[Chunk] = []
    for first in range(0, n, per_doc):
        doc_id = f"synth-{first // per_doc:06d}"
        pieces: list[str] = []
        offset = 0
        for i in range(first, min(n, first + per_doc)):
            lead = f"Synthetic chunk {i} about TRAIL and DR5 on leukemia cells."
            text = lead + (f" Chunk {i} also names caspase-8 and c-FLIP." if i % 2 else "")
            spans = ((offset, offset + len(lead)),) + (
                ((offset + len(lead) + 1, offset + len(text)),) if i % 2 else ())
            chunks.append(Chunk(f"{doc_id}:{i}", doc_id, text, offset, offset + len(text),
                                sentences=spans, n_tokens=len(text.split())))
            pieces.append(text)
            offset += len(text) + 1
        body = "\n".join(pieces)
        docs.append(Document(doc_id, body, (), {"title": f"Synthetic note {doc_id}"},
                             f"synthetic/{doc_id}.txt",
                             hashlib.sha256(body.encode()).hexdigest(), "text"))
    return docs, chunks


def _unit_rows(rng: np.random.Generator, n: int, dim: int,
               dtype: type[np.floating[Any]]) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(dtype, copy=False)
