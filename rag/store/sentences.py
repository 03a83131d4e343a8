"""Sentence spans and pooled sentence vectors, aligned and sorted by chunk row.

The answer composer scores the sentences of a chunk with these vectors; they are written
once per generation (``sentence_spans.npy``, ``sentence_chunks.npy``, ``sentence_vectors.npy``
in float16) and memory-mapped by readers. Generations written before the arrays were split
out hold them in one ``sentences.npz``; they still open, read into memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.store.vectors import mapped_array
from rag.types import Chunk

__all__ = ["SentenceStore", "sentence_arrays"]

_FILES = {"spans": "sentence_spans.npy", "chunk": "sentence_chunks.npy",
          "vectors": "sentence_vectors.npy"}
_DTYPES = {"spans": np.int64, "chunk": np.int64, "vectors": np.float16}
_OLD_FILE = "sentences.npz"


@dataclass(frozen=True)
class SentenceStore:
    """Read access to one generation's sentences (rows are sentence rows)."""

    spans: np.ndarray  # (n, 2) document offsets
    chunk_rows: np.ndarray  # (n,) sorted
    _vectors: np.ndarray | None  # (n, dim) float16; None when the index recomputes them

    def __len__(self) -> int:
        return len(self.spans)

    def rows_of_chunk(self, chunk_row: int) -> np.ndarray:
        """Sentence rows that belong to one chunk."""
        lo = np.searchsorted(self.chunk_rows, chunk_row, side="left")
        hi = np.searchsorted(self.chunk_rows, chunk_row, side="right")
        return np.arange(lo, hi)

    def span(self, row: int) -> tuple[int, int]:
        start, end = self.spans[row]
        return int(start), int(end)

    @property
    def has_vectors(self) -> bool:
        return self._vectors is not None

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._vectors is None:
            raise ValueError("this generation stores no sentence vectors")
        return np.asarray(self._vectors[rows], dtype=np.float32)

    @property
    def vector_array(self) -> np.ndarray:
        """The stored float16 vectors (memory-mapped and read-only when loaded)."""
        if self._vectors is None:
            raise ValueError("this generation stores no sentence vectors")
        return self._vectors

    @classmethod
    def load(cls, folder: Path) -> SentenceStore:
        if not (folder / _FILES["spans"]).is_file() and (folder / _OLD_FILE).is_file():
            with np.load(folder / _OLD_FILE, allow_pickle=False) as old:
                return cls(old["spans"], old["chunk"], old["vectors"])
        arrays = {key: mapped_array(folder / name, scattered=True)
                  for key, name in _FILES.items() if (folder / name).is_file()}
        return cls(arrays["spans"], arrays["chunk"], arrays.get("vectors"))

    @staticmethod
    def save(folder: Path, spans: np.ndarray, chunk_rows: np.ndarray,
             vectors: np.ndarray | None) -> None:
        """Write the arrays; ``vectors=None`` writes none (the composer recomputes them)."""
        arrays = {"spans": spans, "chunk": chunk_rows, "vectors": vectors}
        for key, name in _FILES.items():
            if arrays[key] is None:
                continue
            # np.asarray, not astype: no second copy of arrays already of the stored type.
            np.save(folder / name, np.asarray(arrays[key], dtype=_DTYPES[key]),
                    allow_pickle=False)


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
