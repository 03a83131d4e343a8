"""The indexing run: walk inputs, load, diff against the live index, split, embed, store.

Only new or changed files are loaded and only chunks the cache has not seen are embedded, so a
second run over an unchanged folder loads no model and writes nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed.embedder import (
    EmbeddedChunk,
    Embedder,
    EmbeddingCache,
    resolve_model,
    title_prefix,
)
from rag.errors import (
    DocumentLoadError,
    EmptyCorpusError,
    IndexMismatchError,
    IndexWriteError,
)
from rag.ingest.chunking import split_document
from rag.ingest.evidence import with_evidence
from rag.ingest.loaders import iter_files, load_file, read_bytes
from rag.settings import Settings
from rag.store.generations import NewGeneration, write_generation, writer_lock
from rag.store.manifest import FORMAT_VERSION, check_manifest
from rag.store.sentences import sentence_arrays
from rag.store.snapshot import IndexSnapshot
from rag.types import Chunk, Document, IndexReport, SkippedFile

__all__ = ["expected_manifest", "remove_documents", "update_index"]

Progress = Callable[[int, int], None]


def expected_manifest(settings: Settings, dimension: int | None = None) -> dict[str, Any]:
    model_id, _ = resolve_model(settings.embedding.model)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "chunking": {
            "splitter": "langchain-recursive/tokens-v2",
            "chunk_tokens": settings.chunking.chunk_tokens,
            "overlap_tokens": settings.chunking.overlap_tokens,
        },
        "store": settings.store.model_dump(exclude={"milvus_token"}),
    }
    if dimension is not None:
        manifest["dimension"] = dimension
    return manifest


@dataclass
class _Plan:
    keep: set[str] = field(default_factory=set)
    new_docs: list[tuple[Document, str]] = field(default_factory=list)  # (doc, "added"/"updated")
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def update_index(
    folder: Path,
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    previous: IndexSnapshot | None,
    embedder: Callable[[], Embedder],
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    """Bring the index at ``folder`` in line with the files under ``paths``."""
    started = time.perf_counter()
    with writer_lock(folder):
        if previous is not None and not rebuild:
            expected = expected_manifest(settings, previous.manifest.get("dimension"))
            check_manifest(previous.manifest, expected, folder)
            if not rebuild and settings.store.sentence_vectors == "stored" \
                    and not previous.sentences.has_vectors:
                raise IndexMismatchError(
                    f"index at {folder} keeps no sentence vectors (store.sentence_vectors = "
                    "recompute) but the settings ask to store them: rebuild it with "
                    "`python -m rag index --rebuild`")
        base = None if rebuild else previous
        plan = _plan(paths, settings, base)
        if not (plan.new_docs or plan.removed) and not rebuild:
            if not plan.keep:  # no index yet and nothing loadable (or no supported file)
                raise EmptyCorpusError(_nothing_indexed(plan.skipped))
            return _report(plan, [], 0, started, folder, total_chunks=_count(base))
        if plan.new_docs or base is None:
            model = embedder()
            new_chunks, embedded, n_embedded = _chunk_and_embed(plan, model, folder, settings,
                                                                progress)
            dimension, dtype = model.dimension, model.dtype
        else:  # only removals: the model is not needed, the index knows its own vectors
            new_chunks, embedded, n_embedded = [], [], 0
            dimension, dtype = int(base.manifest["dimension"]), str(base.manifest["dtype"])
        kept = [(row, c) for row, c in enumerate(base.chunks) if c.doc_id in plan.keep] \
            if base else []
        if not kept and not new_chunks:
            raise EmptyCorpusError(_nothing_indexed(plan.skipped))
        generation = _assemble(base, kept, new_chunks, embedded, dimension)
        generation.manifest = dict(expected_manifest(settings, dimension),
                                   dtype=dtype,
                                   created=(previous.manifest.get("created") if previous else None)
                                   or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                   documents=len(plan.keep) + len(plan.new_docs),
                                   chunks=len(generation.chunks))
        generation.upsert_docs = [
            (doc, generation.doc_chunk_counts.get(doc.doc_id, 0)) for doc, _ in plan.new_docs
        ]
        generation.remove_doc_ids = plan.removed + ([] if base else _all_ids(previous))
        generation.doc_meta = {d: base.docs[d].meta for d in plan.keep} if base else {}
        generation.doc_meta.update((doc.doc_id, doc.meta) for doc, _ in plan.new_docs)
        write_generation(folder, generation, store=settings.store,
                         previous=previous.generation if previous else None)
        return _report(plan, new_chunks, n_embedded, started, folder,
                       total_chunks=len(generation.chunks))


def remove_documents(
    folder: Path, doc_ids: Iterable[str], settings: Settings, *, previous: IndexSnapshot
) -> list[str]:
    """Drop documents by id; returns the ids that were present."""
    with writer_lock(folder):
        wanted = set(doc_ids)
        present = sorted(wanted & set(previous.docs))
        if not present:
            return []
        kept = [(row, c) for row, c in enumerate(previous.chunks) if c.doc_id not in wanted]
        dim = int(previous.manifest.get("dimension") or previous.vector_index.dimension)
        generation = _assemble(previous, kept, [], [], dim)
        generation.manifest = dict(previous.manifest, documents=len(previous.docs) - len(present),
                                   chunks=len(generation.chunks))
        generation.remove_doc_ids = present
        generation.doc_meta = {d: r.meta for d, r in previous.docs.items() if d not in wanted}
        write_generation(folder, generation, store=settings.store, previous=previous.generation)
        return present


def _plan(paths: Sequence[str | Path], settings: Settings, base: IndexSnapshot | None) -> _Plan:
    plan = _Plan()
    by_path: dict[str, list[str]] = {}
    by_hash: dict[str, str] = {}
    for record in base.docs.values() if base else []:
        by_path.setdefault(record.source_path, []).append(record.doc_id)
        by_hash[record.file_hash] = record.doc_id
    seen_paths: set[str] = set()
    roots: list[Path] = []
    taken: dict[str, str] = {}  # doc_id -> source path, for this run's new documents
    for raw in paths:
        try:
            files = list(iter_files([raw], settings.loader))
        except DocumentLoadError as exc:
            plan.skipped.append(SkippedFile(exc.path, exc.reason))
            continue
        roots.append(_resolved(Path(raw)))
        for path, root in files:
            resolved = str(path.resolve()) if not path.is_symlink() else str(path.absolute())
            seen_paths.add(resolved)
            _plan_file(path, root, resolved, settings, base, by_path, by_hash, taken, plan)
    for source, ids in by_path.items():
        inside = any(Path(source) == r or Path(source).is_relative_to(r) for r in roots)
        if inside and source not in seen_paths:
            plan.removed.extend(d for d in ids if d not in taken)  # taken: moved, not removed
    plan.keep = {d for ids in by_path.values() for d in ids} - set(plan.removed) - {
        d.doc_id for d, _ in plan.new_docs}
    return plan


def _plan_file(path: Path, root: Path, resolved: str, settings: Settings,
               base: IndexSnapshot | None, by_path: dict[str, list[str]],
               by_hash: dict[str, str], taken: dict[str, str], plan: _Plan) -> None:
    old_ids = by_path.get(resolved, [])
    try:
        data = read_bytes(path, settings.loader, root=root)
        file_hash = hashlib.sha256(data).hexdigest()
        if old_ids and base and all(base.docs[d].file_hash == file_hash for d in old_ids):
            plan.unchanged.extend(old_ids)
            return
        duplicate_of = by_hash.get(file_hash)
        if duplicate_of and duplicate_of not in old_ids \
                and not _file_gone(duplicate_of, base, taken):
            raise DocumentLoadError(str(path), f"same content as document {duplicate_of}; skipped")
        docs = load_file(path, settings.loader, root=root, data=data)
    except DocumentLoadError as exc:
        plan.skipped.append(SkippedFile(exc.path, exc.reason))
        return
    except OSError as exc:
        plan.skipped.append(SkippedFile(str(path), f"cannot read: {exc}"))
        return
    by_hash[file_hash] = docs[0].doc_id
    for loaded in docs:
        doc = _unique_id(with_evidence(loaded), base, old_ids, taken)
        if doc is None:
            continue
        taken[doc.doc_id] = resolved
        plan.new_docs.append((doc, "updated" if doc.doc_id in old_ids else "added"))
    plan.removed.extend(d for d in old_ids if d not in taken)


def _unique_id(doc: Document, base: IndexSnapshot | None, old_ids: list[str],
               taken: dict[str, str]) -> Document | None:
    """Keep a document's natural id unless another file already holds it."""
    doc_id = doc.doc_id
    owner = base.docs.get(doc_id) if base else None
    clash = (owner is not None and doc_id not in old_ids and owner.source_path != doc.source_path
             and not _file_gone(doc_id, base, taken)) \
        or (doc_id in taken and taken[doc_id] != doc.source_path)
    if clash:
        doc_id = f"{doc_id}-{hashlib.sha1(doc.source_path.encode()).hexdigest()[:6]}"
        if doc_id in taken:
            return None
    if doc_id == doc.doc_id:
        return doc
    return Document(doc_id, doc.text, doc.sections, doc.meta, doc.source_path, doc.file_hash,
                    doc.doc_type)


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or the absolute path when it cannot be resolved (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _file_gone(doc_id: str, base: IndexSnapshot | None, taken: dict[str, str]) -> bool:
    """True when ``doc_id`` is indexed from a file that no longer exists: a file with its
    content or its id is that file renamed or moved, and takes its place."""
    record = base.docs.get(doc_id) if base else None
    return record is not None and doc_id not in taken and not Path(record.source_path).exists()


def _chunk_and_embed(plan: _Plan, model: Embedder, folder: Path, settings: Settings,
                     progress: Progress | None) -> tuple[list[Chunk], list[EmbeddedChunk], int]:
    chunks: list[Chunk] = []
    prefixes: list[str] = []
    for doc, _ in plan.new_docs:
        doc_chunks = split_document(doc, count_tokens=model.count_tokens,
                                    max_tokens=model.max_chunk_tokens, settings=settings.chunking)
        chunks.extend(doc_chunks)
        prefixes.extend([title_prefix(doc.title, model)] * len(doc_chunks))
    local_spans = [tuple((a - c.start, b - c.start) for a, b in c.sentences) for c in chunks]
    try:
        return _embed_with_cache(chunks, prefixes, local_spans, model, folder, progress)
    except sqlite3.Error as exc:  # e.g. "database or disk is full"
        raise IndexWriteError(
            f"could not write the embedding cache at {folder / 'embeddings.sqlite'}: {exc} "
            "(is the disk full?); the previous index is unchanged"
        ) from exc


def _embed_with_cache(chunks: list[Chunk], prefixes: list[str],
                      local_spans: list[tuple[tuple[int, int], ...]], model: Embedder,
                      folder: Path, progress: Progress | None,
                      ) -> tuple[list[Chunk], list[EmbeddedChunk], int]:
    cache = EmbeddingCache(folder / "embeddings.sqlite")
    try:
        keys = [EmbeddingCache.key(model.cache_key, p, c.text, s)
                for p, c, s in zip(prefixes, chunks, local_spans, strict=True)]
        found = cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        done = 0
        total = len(todo)

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        if progress:
            progress(0, total)
        fresh = model.embed_chunks([chunks[i].text for i in todo], [prefixes[i] for i in todo],
                                   [local_spans[i] for i in todo], progress=tick)
        cache.put_many({keys[i]: vec for i, vec in zip(todo, fresh, strict=True)})
        found.update({keys[i]: vec for i, vec in zip(todo, fresh, strict=True)})
    finally:
        cache.close()
    return chunks, [found[k] for k in keys], len(todo)


def _assemble(base: IndexSnapshot | None, kept: list[tuple[int, Chunk]], new_chunks: list[Chunk],
              embedded: list[EmbeddedChunk], dim: int) -> NewGeneration:
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    sentence_vecs: list[np.ndarray] = []
    if kept:
        assert base is not None
        vectors.extend(base.chunk_vectors([row for row, _ in kept]))
    for row, chunk in kept:
        assert base is not None
        rows = base.sentences.rows_of_chunk(row)
        spans = tuple((int(a), int(b)) for a, b in base.sentences.spans[rows])
        chunks.append(Chunk(chunk.chunk_id, chunk.doc_id, chunk.text, chunk.start, chunk.end,
                            chunk.section, chunk.page, spans, chunk.n_tokens))
        sentence_vecs.append(base.sentences.vectors(rows) if base.sentences.has_vectors
                             else np.zeros((len(rows), dim), np.float32))
    for chunk, emb in zip(new_chunks, embedded, strict=True):
        chunks.append(chunk)
        vectors.append(emb.vector)
        sentence_vecs.append(emb.sentences)
    spans_arr, rows_arr, sent_arr = sentence_arrays(chunks, sentence_vecs, dim)
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    return NewGeneration(
        manifest={}, upsert_docs=[], remove_doc_ids=[], chunks=chunks,
        vectors=(np.vstack(vectors).astype(np.float32) if vectors
                 else np.zeros((0, dim), np.float32)),
        sent_spans=spans_arr, sent_chunk=rows_arr, sent_vectors=sent_arr, doc_chunk_counts=counts,
        doc_meta={},
    )


def _report(plan: _Plan, new_chunks: list[Chunk], n_embedded: int, started: float, folder: Path,
            *, total_chunks: int) -> IndexReport:
    return IndexReport(
        added=tuple(d.doc_id for d, how in plan.new_docs if how == "added"),
        updated=tuple(d.doc_id for d, how in plan.new_docs if how == "updated"),
        removed=tuple(plan.removed),
        unchanged=tuple(plan.unchanged),
        skipped=tuple(plan.skipped),
        chunks=total_chunks,
        chunks_embedded=n_embedded,
        seconds=time.perf_counter() - started,
        index_dir=str(folder),
    )


def _nothing_indexed(skipped: list[SkippedFile]) -> str:
    if not skipped:
        return "no supported documents found (.txt .md .pdf .html .xml)"
    return "nothing could be indexed: " + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5])


def _count(base: IndexSnapshot | None) -> int:
    return len(base.chunks) if base else 0


def _all_ids(previous: IndexSnapshot | None) -> list[str]:
    return list(previous.docs) if previous else []
