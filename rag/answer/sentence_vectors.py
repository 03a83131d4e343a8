"""Sentence vectors for candidate chunks: read from the generation, or recomputed.

A generation normally stores each sentence's vector, pooled from the chunk's token vectors at
index time (``store.sentence_vectors = "stored"``). For corpora too large to keep them
(``"recompute"``; all of PubMed would need hundreds of GB), the answer composer runs its few
candidate chunks through the model again and pools the same vectors, at some milliseconds per
chunk (``docs/scaling.md`` has the measured cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.embed.embedder import title_prefix
from rag.errors import QueryError
from rag.store.snapshot import IndexSnapshot

__all__ = ["chunk_sentence_vectors"]


def chunk_sentence_vectors(snap: IndexSnapshot, chunk_rows: Sequence[int],
                           embedder: Any = None) -> dict[int, np.ndarray]:
    """For each chunk row, the vectors of its sentences (rows of ``snap.sentences``)."""
    if snap.sentences.has_vectors:
        return {row: snap.sentences.vectors(snap.sentences.rows_of_chunk(row))
                for row in chunk_rows}
    if embedder is None:
        raise QueryError("this index keeps no sentence vectors (store.sentence_vectors = "
                         "recompute); answering needs the embedding model")
    texts, prefixes, spans = [], [], []
    for row in chunk_rows:
        chunk = snap.chunks[row]
        sentence_rows = snap.sentences.rows_of_chunk(row)
        texts.append(chunk.text)
        prefixes.append(title_prefix(snap.docs[chunk.doc_id].title, embedder))
        spans.append([(a - chunk.start, b - chunk.start)
                      for a, b in (snap.sentences.span(r) for r in sentence_rows.tolist())])
    embedded = embedder.embed_chunks(texts, prefixes, spans) if texts else []
    return {row: np.asarray(item.sentences, dtype=np.float32)
            for row, item in zip(chunk_rows, embedded, strict=True)}
