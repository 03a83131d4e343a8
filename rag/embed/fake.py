"""A deterministic stand-in for the embedding model, for tests. Not for real use.

:class:`HashEmbedder` hashes the words of a text into a fixed number of signed buckets and
normalises the result: texts that share words get close vectors, and nothing else about their
meaning counts. It loads no model and imports no torch, so a test that checks how the store,
retrieval or the answer layer handle vectors runs in milliseconds. A test that depends on what
the real model understands (that "DR5" and "TRAIL-R2" mean the same receptor, that a question
finds the right note) needs :class:`rag.embed.embedder.Embedder`.

>>> from rag import RAG
>>> rag = RAG.open("index", embedder=HashEmbedder())          # doctest: +SKIP
>>> HashEmbedder().embed(["DR5 agonist"]).shape
(1, 64)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from rag.embed.embedder import EmbeddedChunk, chunk_token_limit
from rag.types import Span

__all__ = ["HashEmbedder"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_EMPTY = "\x00empty"  # what a text without words hashes as, so every vector has unit length


class HashEmbedder:
    """Test double for the real :class:`rag.embed.embedder.Embedder`, with the same interface
    (:class:`rag.embed.EmbeddingModel`).

    Vectors are signed feature hashes of lower-cased words; tokens are words and punctuation
    marks. ``max_seq_length`` mirrors the real model's 256, so chunks come out in the same
    range of sizes (in these coarser tokens).
    """

    def __init__(self, dimension: int = 64, *, max_seq_length: int = 256,
                 batch_size: int = 32) -> None:
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.model_id = f"test/hash-embedder-{dimension}"
        self.dtype = "float32"

    @property
    def cache_key(self) -> str:
        return f"{self.model_id}|{self.dtype}"

    @property
    def max_chunk_tokens(self) -> int:
        return chunk_token_limit(self.max_seq_length)  # the real model's rule

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(text)) for text in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()) or [_EMPTY]:
                bucket, sign = _slot(word, self.dimension)
                out[row, bucket] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        empty = norms[:, 0] == 0  # the signs of a text's words cancelled out exactly
        out[empty, 0], norms[empty] = 1.0, 1.0
        return out / norms

    def embed_chunks(
        self,
        texts: Sequence[str],
        prefixes: Sequence[str],
        sentences: Sequence[Sequence[Span]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[EmbeddedChunk]:
        """A vector for each ``prefix + text`` and for each sentence span of ``text``."""
        out: list[EmbeddedChunk] = []
        for lo in range(0, len(texts), self.batch_size):
            hi = min(lo + self.batch_size, len(texts))
            for prefix, text, spans in zip(prefixes[lo:hi], texts[lo:hi], sentences[lo:hi],
                                           strict=True):
                sentence_vectors = (self.embed([text[a:b] for a, b in spans]) if spans
                                    else np.zeros((0, self.dimension), dtype=np.float32))
                out.append(EmbeddedChunk(self.embed([prefix + text])[0], sentence_vectors))
            if progress:
                progress(hi - lo)
        return out


@lru_cache(maxsize=1 << 16)
def _slot(word: str, dimension: int) -> tuple[int, float]:
    """The bucket and sign of a word: from a stable hash, the same in every process."""
    value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(),
                           "little")
    return value % dimension, 1.0 if value >> 63 else -1.0
