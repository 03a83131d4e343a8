"""Embedding: the model behind one small interface.

:class:`EmbeddingModel` is everything the pipeline asks of a model: indexing
(:mod:`rag.ingest.pipeline`) counts tokens, embeds chunks and records ``model_id``, ``dtype``
and ``dimension`` in the manifest; retrieval and the answer layer embed questions and sentences.
:class:`rag.embed.embedder.Embedder` (sentence-transformers) is the real one;
:class:`rag.embed.fake.HashEmbedder` is a test double. Give either to ``RAG.open(...,
embedder=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from rag.embed.embedder import EmbeddedChunk
    from rag.types import Span

__all__ = ["EmbeddingModel"]


class EmbeddingModel(Protocol):
    """What the pipeline uses of an embedding model (a type only; nothing checks it at run
    time)."""

    @property
    def model_id(self) -> str:
        """The model's name, part of :attr:`cache_key`."""

    @property
    def dtype(self) -> str:
        """The precision the vectors were computed in, recorded in the manifest."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""

    @property
    def cache_key(self) -> str:
        """Keys the embedding cache: vectors of different models or precisions never mix."""

    @property
    def max_chunk_tokens(self) -> int:
        """Longest chunk, in :meth:`count_tokens` tokens, that the model reads whole."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without special tokens."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` unit-length float32 vectors, for questions and the like."""

    def embed_chunks(
        self,
        texts: Sequence[str],
        prefixes: Sequence[str],
        sentences: Sequence[Sequence[Span]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[EmbeddedChunk]:
        """One vector per chunk (``prefix + text``) and one per sentence span of each chunk
        (spans relative to ``text``); ``progress(n)`` after every ``n`` chunks."""
