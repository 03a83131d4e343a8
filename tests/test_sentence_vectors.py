"""``store.sentence_vectors = recompute``: no sentence vectors on disk, the same answers.

The composer re-embeds its candidate chunks and pools the sentence vectors the index would
have stored, so every citation must match an index that stores them. Uses the fake embedder
(deterministic, no model)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from answer_support import NOTES_DIR, ON_TOPIC, check_citations

from rag import RAG, IndexMismatchError, Settings

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
