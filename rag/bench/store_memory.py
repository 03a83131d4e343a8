"""The store part of the benchmark's scale section: what a large store costs in memory.

:func:`write_synthetic_store` writes one generation of ``n`` synthetic chunks with the store's
own writer (short texts, random unit vectors, one or two sentences a chunk);
:func:`measure_store`, run in a fresh process, opens it and answers a few questions, and
reports the resident memory before opening, after it and after the questions. The vectors are
memory-mapped, so what counts is how much of them the queries pull in, and the anonymous
(unreclaimable) part.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure_store", "render_store", "write_synthetic_store"]

MB = 2**20


def _unit_rows(rng: np.random.Generator, n: int, dim: int, dtype: type[np.floating[Any]],
               block: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=dtype)
    for lo in range(0, n, block):
        part = rng.standard_normal((min(block, n - lo), dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[lo : lo + len(part)] = part
    return out


def _synthetic_documents(n: int, per_doc: int) -> tuple[list[Any], list[Any]]:
    """Documents of ``per_doc`` chunks; odd chunks have a second sentence."""
    from rag.types import Chunk, Document

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


def write_synthetic_store(folder: Path, n: int, *, dim: int = 384, seed: int = 0,
                          index_type: str = "auto", per_doc: int = 100) -> dict[str, Any]:
    """Write one generation of ``n`` synthetic chunks at ``folder`` with the store's writer."""
    from rag.ingest.pipeline import expected_manifest
    from rag.settings import Settings
    from rag.store.generations import NewGeneration, write_generation

    settings = Settings().with_updates(**{"store.index_type": index_type})
    started = time.perf_counter()
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
        doc_chunk_counts=counts, doc_meta={d.doc_id: d.meta for d in docs},
    )
    write_generation(folder, new, store=settings.store, previous=None)
    return {"n": n, "sentences": len(rows), "documents": len(docs),
            "build_s": time.perf_counter() - started,
            "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())}


def _memory() -> dict[str, float]:
    """Resident set, unique set and (Linux) the anonymous part of the resident set, in MB."""
    import psutil

    info = psutil.Process().memory_full_info()
    out = {"rss_mb": info.rss / MB, "uss_mb": info.uss / MB}
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("RssAnon:"):
                out["anon_mb"] = int(line.split()[1]) / 1024
    return out


class _RandomQuestions:
    """Stands in for the model: a random unit vector per question, like the corpus's."""

    def __init__(self, dim: int, seed: int) -> None:
        self._dim = dim
        self._rng = np.random.default_rng(seed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return _unit_rows(self._rng, len(texts), self._dim, np.float32)


def _evict(folder: Path) -> None:
    """Drop the store's files from the page cache, as after a reboot. Pages the build has
    just written sit in large folios, and touching one row maps a whole folio (megabytes)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def measure_store(folder: Path, *, questions: int = 20, seed: int = 1,
                  cold: bool = True) -> dict[str, Any]:
    """Open the store at ``folder`` and answer ``questions`` questions (retrieval and the
    extractive answer, no model); memory before opening, after it and after the questions.
    ``cold``: evict the store's files from the page cache first.

    Run it in a fresh process: the figures are this process's own.
    """
    # faiss too, up front: a library's own code is not what the store costs.
    import faiss  # noqa: F401

    from rag.answer.extractive import compose_extractive
    from rag.facade import RAG
    from rag.retrieve.hybrid import retrieve
    from rag.settings import Settings

    settings = Settings()
    if cold and hasattr(os, "posix_fadvise"):
        _evict(folder)
    gc.collect()
    before = _memory()
    started = time.perf_counter()
    snap = RAG.open(folder, settings=settings).snapshot
    open_s = time.perf_counter() - started
    opened = _memory()
    dim = snap.vector_index.dimension
    encoder = _RandomQuestions(dim, seed)
    depth = max(settings.retrieval.k, settings.answer.passages_considered)
    samples = []
    for i in range(questions):
        started = time.perf_counter()
        found = retrieve(f"What does synthetic chunk {i * 7919 % len(snap.chunks)} say about "
                         "TRAIL?", snap, encoder, settings.retrieval, k=depth)
        compose_extractive(found, snap, settings, k=settings.retrieval.k)
        samples.append((time.perf_counter() - started) * 1000)
    asked = _memory()
    return {
        "n": len(snap.chunks), "sentences": len(snap.sentences), "cold": cold,
        "index_type": snap.manifest.get("index_type"), "open_s": open_s,
        "questions": questions, "ask_p50_ms": float(np.percentile(samples, 50)),
        "before": before, "opened": opened, "asked": asked,
        # as stored: chunk vectors in float32, sentence vectors in float16
        "vectors_mb": (len(snap.chunks) * dim * 4 + len(snap.sentences) * dim * 2) / MB,
    }


def render_store(stores: list[dict[str, Any]]) -> list[str]:
    """Markdown lines for the store memory rows (growth over the process before opening)."""
    if not stores:
        return []
    lines = [
        "", "Store open RSS: a synthetic store (short chunk texts, random unit vectors, one or "
        "two sentences a chunk) written with the store's writer, then opened by a fresh process "
        + ("(its files first evicted from the page cache, as after a reboot) " if
           stores[0].get("cold") else "") + f"which answers {stores[0]['questions']} questions "
        "(retrieval and the extractive answer, random query vectors, no model). Growth of the "
        "process's memory "
        "over its size before opening; the anonymous part is what the page cache cannot "
        "reclaim (memory-mapped vectors that a query read are resident but reclaimable).", "",
        "| chunks | index | vectors on disk MB | open s | RSS Δ opened MB | RSS Δ after "
        "questions MB | USS Δ after MB | anonymous Δ after MB | ask p50 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in stores:
        base, opened, asked = r["before"], r["opened"], r["asked"]
        lines.append(
            f"| {r['n']:,} | {r['index_type']} | {r['vectors_mb']:,.0f} | {r['open_s']:.1f} | "
            f"{opened['rss_mb'] - base['rss_mb']:,.0f} | {asked['rss_mb'] - base['rss_mb']:,.0f} "
            f"| {asked['uss_mb'] - base['uss_mb']:,.0f} | "
            f"{asked.get('anon_mb', 0.0) - base.get('anon_mb', 0.0):,.0f} | "
            f"{r['ask_p50_ms']:.1f} |")
    return lines
