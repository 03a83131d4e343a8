"""The facade: one object that opens an index, adds and removes documents, searches and asks.

>>> from rag import RAG
>>> rag = RAG.open("index")                                   # doctest: +SKIP
>>> rag.add(["seeds/"]).chunks                                 # doctest: +SKIP
>>> rag.ask("Why are primary CLL cells resistant to TRAIL?").text  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rag.embed.embedder import Embedder
from rag.errors import DocumentNotFoundError, IndexNotFoundError
from rag.ingest.pipeline import expected_manifest, remove_documents, update_index
from rag.settings import Settings, load_settings
from rag.store.manifest import check_manifest, current_generation
from rag.store.metadata import DocRecord
from rag.store.snapshot import IndexSnapshot, open_snapshot
from rag.types import Answer, Document, IndexReport, Passage

if TYPE_CHECKING:
    import httpx

    from rag.embed import EmbeddingModel

__all__ = ["RAG"]

T = TypeVar("T")


class RAG:
    """TRAIL-RAG over one index folder. Thread-safe: queries read an immutable snapshot that
    writes replace atomically."""

    def __init__(self, index_dir: Path, settings: Settings, *,
                 preload_model: bool = False, embedder: EmbeddingModel | None = None,
                 llm_transport: httpx.BaseTransport | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self._snapshot: IndexSnapshot | None = None
        self._embedder = embedder
        self._llm_transport = llm_transport
        self._lock = threading.RLock()
        self._model_lock = threading.Lock()  # loading the model must not block index reads
        if preload_model and embedder is None:
            self.preload_model()
        self.refresh()

    @classmethod
    def open(cls, index_dir: str | Path | None = None, *,
             settings: Settings | None = None, preload_model: bool = False,
             embedder: EmbeddingModel | None = None,
             llm_transport: httpx.BaseTransport | None = None) -> RAG:
        """Open (or prepare to create) the index at ``index_dir`` (default: settings).

        ``preload_model`` starts loading the embedding model in a background thread at once,
        so that it overlaps opening the index; the first query waits for it. ``embedder``
        is a model to use instead of loading the one the settings name (a loaded model shared
        by several indexes, or a test double such as :class:`rag.embed.fake.HashEmbedder`);
        the settings still decide whether an existing index is compatible. ``llm_transport``
        carries the requests of ``ask(mode="llm")`` (e.g. ``httpx.MockTransport`` in tests).
        """
        settings = settings or load_settings()
        return cls(Path(index_dir) if index_dir is not None else settings.index_dir, settings,
                   preload_model=preload_model, embedder=embedder, llm_transport=llm_transport)

    # -- state ---------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load the live generation if another writer changed it. Returns True if reloaded."""
        live = current_generation(self.index_dir)
        with self._lock:
            if live is None or (self._snapshot and self._snapshot.generation == live):
                return False
            self._snapshot = open_snapshot(self.index_dir, self.settings.store)
            return True

    @property
    def snapshot(self) -> IndexSnapshot:
        self.refresh()
        snap = self._snapshot
        if snap is None:
            raise IndexNotFoundError(
                f"no index at {self.index_dir}: build one with `python -m rag index`"
            )
        return snap

    @property
    def exists(self) -> bool:
        return current_generation(self.index_dir) is not None

    def close(self) -> None:
        """Release outside resources: the Milvus connection, and a Milvus Lite file so that
        another process can open it. The object can be used again afterwards."""
        with self._lock:
            snap, self._snapshot = self._snapshot, None
        if snap is not None:
            snap.vector_index.close()

    def preload_model(self) -> threading.Thread:
        """Load the embedding model in a daemon thread; a failure is raised by the next query.
        With a model given to ``open`` there is nothing to load and the thread ends at once."""

        def load() -> None:
            with contextlib.suppress(Exception):  # embedder() raises it again where it is used
                self.embedder()

        thread = threading.Thread(target=load, name="load-model", daemon=True)
        thread.start()
        return thread

    def embedder(self) -> Embedder:
        """The embedding model: the one given to ``open``, else the settings' model, loaded
        on first use."""
        with self._model_lock:
            if self._embedder is None:
                self._embedder = Embedder(self.settings.embedding)
            # The stages are annotated with the real class; any EmbeddingModel serves them.
            return cast(Embedder, self._embedder)

    # -- writing -------------------------------------------------------------------------

    def add(self, paths: Iterable[str | Path], *, rebuild: bool = False,
            progress: Callable[[int, int], None] | None = None) -> IndexReport:
        """Index new or changed files under ``paths``; remove documents whose files are gone."""
        self.refresh()
        report = update_index(self.index_dir, list(paths), self.settings,
                              previous=self._snapshot, embedder=self.embedder,
                              rebuild=rebuild, progress=progress)
        self.refresh()
        return report

    def remove(self, doc_ids: str | Sequence[str]) -> list[str]:
        """Remove documents by id. Raises DocumentNotFoundError if none of them exists."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        removed = remove_documents(self.index_dir, ids, self.settings, previous=self.snapshot)
        if not removed:
            raise DocumentNotFoundError(f"no document with id {', '.join(ids)} in the index")
        self.refresh()
        return removed

    # -- reading -------------------------------------------------------------------------

    def documents(self, filters: Mapping[str, Any] | None = None) -> list[DocRecord]:
        """The indexed documents in id order; with ``filters`` (the keys of ``ask``: disease,
        agent, evidence, topic, doc_id, year), only those passing them: the documents that
        ``ask`` and ``search`` with the same filters draw their passages from."""
        from rag.retrieve.filters import build_filter, matching_docs

        docs = self.snapshot.docs
        if not filters:
            return sorted(docs.values(), key=lambda d: d.doc_id)
        return [docs[d] for d in sorted(matching_docs(build_filter(filters, docs), docs))]

    def per_generation(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per index generation: for values that depend only on what the
        index holds (the Library tab's map, a whole-library export), kept until a write
        replaces the generation and then dropped with it."""
        snap = self.snapshot  # fetched first: compute() can only see this generation or a
        # newer one, and a newer one's value left on this older snapshot is never read again
        if key not in snap.derived:
            snap.derived[key] = compute()
        value: T = snap.derived[key]
        return value

    def document(self, doc_id: str) -> Document:
        doc = self.snapshot.document(doc_id)
        if doc is None:
            raise DocumentNotFoundError(
                f"no document with id {doc_id!r}; `python -m rag status` lists the index"
            )
        return doc

    def status(self) -> dict[str, Any]:
        snap = self.snapshot
        manifest = snap.manifest
        return {
            "index_dir": str(self.index_dir),
            "documents": len(snap.docs),
            "chunks": len(snap.chunks),
            "sentences": len(snap.sentences),
            "model": manifest.get("model_id"),
            "dtype": manifest.get("dtype"),
            "dimension": manifest.get("dimension"),
            "index_type": manifest.get("index_type"),
            "chunking": manifest.get("chunking"),
            "size_bytes": snap.size_on_disk(),
            "generation": snap.generation,
            "created": manifest.get("created"),
            "last_update": manifest.get("updated"),
        }

    def check_compatible(self) -> None:
        """Raise IndexMismatchError if the index was built with other model settings."""
        snap = self.snapshot
        check_manifest(snap.manifest,
                       expected_manifest(self.settings, snap.manifest.get("dimension")),
                       self.index_dir)

    def search(self, query: str, k: int | None = None, *,
               filters: Mapping[str, Any] | None = None) -> list[Passage]:
        """Hybrid (dense + BM25) search; returns ranked passages."""
        from rag.retrieve.hybrid import clean_query, retrieve

        clean_query(query)  # a bad query fails at once, before the model loads
        self.check_compatible()
        return retrieve(query, self.snapshot, self.embedder(), self.settings.retrieval,
                        k=k or self.settings.retrieval.k, filters=filters).passages

    def ask(self, question: str, k: int | None = None, *,
            filters: Mapping[str, Any] | None = None, mode: str = "extractive",
            clinical_first: bool | None = None) -> Answer:
        """Answer ``question`` from the library with sentence-level citations.

        ``clinical_first`` (default: the setting ``answer.clinical_first``) ranks evidence
        from human studies first."""
        from rag.answer.extractive import answer_question
        from rag.retrieve.hybrid import clean_query

        clean_query(question)  # a bad question fails at once, before the model loads
        self.check_compatible()
        settings = self.settings
        if clinical_first is not None and clinical_first != settings.answer.clinical_first:
            answer = settings.answer.model_copy(update={"clinical_first": bool(clinical_first)})
            settings = settings.model_copy(update={"answer": answer})
        return answer_question(question, self.snapshot, self.embedder(), settings,
                               k=k or self.settings.retrieval.k, filters=filters, mode=mode,
                               llm_transport=self._llm_transport)
