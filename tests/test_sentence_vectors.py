"""``store.sentence_vectors = recompute``: no sentence vectors on disk, the same answers.

The composer re-embeds its candidate chunks and pools the sentence vectors the index would
have stored, so every citation must match an index that stores them. The answer tests use the
fake embedder (deterministic, no model); it embeds each sentence alone, so one test with the
real model checks that recomputing pools in the same context (the chunk and its title prefix)
as indexing did."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from answer_support import NOTES_DIR, ON_TOPIC, check_citations

from rag import RAG, IndexMismatchError, Settings
from rag.answer.sentence_vectors import chunk_sentence_vectors
from rag.embed.embedder import Embedder

RECOMPUTE = Settings().with_updates(**{"store.sentence_vectors": "recompute"})


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory,
         open_fake_rag: Callable[..., RAG]) -> tuple[RAG, RAG, Path]:
    root = tmp_path_factory.mktemp("sentence-vectors")
    notes = root / "notes"
    shutil.copytree(NOTES_DIR, notes)
    stored = open_fake_rag(root / "stored")
    stored.add([notes])
    recomputed = open_fake_rag(root / "recompute", RECOMPUTE)
    recomputed.add([notes])
    return stored, recomputed, notes


def test_no_sentence_vectors_are_written(pair: tuple[RAG, RAG, Path]) -> None:
    stored, recomputed, _ = pair
    assert (stored.index_dir / stored.snapshot.generation / "sentence_vectors.npy").is_file()
    gen = recomputed.index_dir / recomputed.snapshot.generation
    assert not (gen / "sentence_vectors.npy").exists()
    assert (gen / "sentence_spans.npy").is_file()
    assert not recomputed.snapshot.sentences.has_vectors


@pytest.mark.parametrize("question", list(ON_TOPIC), ids=list(ON_TOPIC.values()))
def test_recomputed_vectors_give_the_same_answers(pair: tuple[RAG, RAG, Path],
                                                  question: str) -> None:
    stored, recomputed, _ = pair
    a, b = stored.ask(question), recomputed.ask(question)
    check_citations(recomputed, b)
    assert a.text == b.text
    assert [(c.doc_id, c.start, c.end) for c in a.citations] == \
        [(c.doc_id, c.start, c.end) for c in b.citations]


def test_switching_back_to_stored_vectors_asks_for_a_rebuild(
        pair: tuple[RAG, RAG, Path], open_fake_rag: Callable[..., RAG]) -> None:
    _, recomputed, notes = pair
    (notes / "new.md").write_text("---\nid: new-note\ntitle: New\n---\nDR5 in myeloma.",
                                  encoding="utf-8")
    try:
        again = open_fake_rag(recomputed.index_dir)  # default settings: store them
        with pytest.raises(IndexMismatchError, match="--rebuild"):
            again.add([notes])
        assert again.add([notes], rebuild=True).chunks > 0
        assert again.snapshot.sentences.has_vectors
    finally:
        (notes / "new.md").unlink()


@pytest.mark.slow
def test_real_model_recomputes_the_stored_sentence_vectors(
        tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG],
        embedder: Embedder) -> None:
    """The real model pools each sentence from token vectors of the whole chunk, title prefix
    included; recomputing must give the stored vectors up to rounding (the model runs in
    bfloat16 on CPUs that have it, batched differently; the store keeps float16). Measured:
    cosine >= 0.99998 and at most 1.1e-3 apart; pooling without the title prefix gives
    cosine 0.90 and 0.078 apart."""
    root = tmp_path_factory.mktemp("sentence-vectors-real")
    notes = root / "notes"
    shutil.copytree(NOTES_DIR, notes)
    stored, recomputed = open_rag(root / "stored"), open_rag(root / "recompute", RECOMPUTE)
    stored.add([notes])
    recomputed.add([notes])
    question = next(q for q, doc_id in ON_TOPIC.items() if doc_id == "hodgkin-cflip")
    chunk_ids = [p.chunk_id for p in stored.search(question, k=8)]
    assert len(chunk_ids) == 8

    def rows(rag: RAG) -> list[int]:
        row_of = {c.chunk_id: row for row, c in enumerate(rag.snapshot.chunks)}
        return [row_of[chunk_id] for chunk_id in chunk_ids]

    want_snap, got_snap = stored.snapshot, recomputed.snapshot
    assert want_snap.sentences.has_vectors and not got_snap.sentences.has_vectors
    got = chunk_sentence_vectors(got_snap, rows(recomputed), embedder)
    for chunk_id, want_row, got_row in zip(chunk_ids, rows(stored), rows(recomputed),
                                           strict=True):
        want = want_snap.sentences.vectors(want_snap.sentences.rows_of_chunk(want_row))
        assert len(want) > 0 and got[got_row].shape == want.shape, chunk_id
        cosine = (got[got_row] * want).sum(axis=1) / (
            np.linalg.norm(got[got_row], axis=1) * np.linalg.norm(want, axis=1))
        assert cosine.min() >= 0.9995, (chunk_id, cosine.min())
        np.testing.assert_allclose(got[got_row], want, rtol=0, atol=5e-3, err_msg=chunk_id)
