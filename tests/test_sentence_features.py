"""Sentence features and the learned scorer's file. No model needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answer.features import (
    FEATURES,
    Candidate,
    feature_matrix,
    is_framing,
    load_sentence_model,
    novelty_of,
    question_vocabulary,
    section_role,
)
from rag.answer.question import classify_question
from rag.errors import ConfigError
from rag.retrieve.hybrid import query_concepts
from rag.store.lexical import tokenize


@pytest.mark.parametrize(("title", "role"), [
    ("RESULTS", "results"), ("Findings", "results"), ("CONCLUSIONS", "conclusions"),
    ("Interpretation", "conclusions"), ("BACKGROUND", "background"),
    ("OBJECTIVE", "background"), ("MATERIALS AND METHODS", "methods"),
    ("MAIN OUTCOME MEASURES", "methods"), ("Study", "methods"),
    ("Relevance", "discussion"), ("", "other"), ("Abstract", "other"),
])
def test_section_roles(title: str, role: str) -> None:
    assert section_role(title) == role


def test_novelty_counts_synonyms_of_the_question_as_known() -> None:
    question = "Why are primary CLL cells resistant to TRAIL?"
    known = question_vocabulary(question, query_concepts(question))
    restating = set(tokenize("Primary chronic lymphocytic leukemia cells resisted TRAIL."))
    answering = set(tokenize("High c-FLIP bound the DISC and blocked caspase-8 cleavage."))
    assert novelty_of(restating, known) < 0.2 < novelty_of(answering, known)


@pytest.mark.parametrize(("sentence", "framing"), [
    ("Hollis and colleagues asked whether zorbatumab improves response.", True),
    ("The study examined whether DR5 predicts response.", True),
    ("The randomized trial was designed to test aponermin.", True),
    ("Median PFS was 5.5 months with aponermin.", False),
])
def test_framing_sentences(sentence: str, framing: bool) -> None:
    assert is_framing(sentence) is framing


def _cand(text: str, section: str = "Findings", doc: str = "d") -> Candidate:
    return Candidate(text=text, section=section, doc_id=doc, passage_rank=0, doc_rank=0,
                     dense=0.5, passage_dense=0.5, position=0.5, first_in_section=False,
                     doc_terms="aponermin myeloma")


def test_feature_matrix_marks_figures_for_quantity_questions() -> None:
    question = "What response rate did aponermin achieve?"
    concepts = query_concepts(question)
    cands = [_cand("The overall response rate was 30.4% with aponermin."),
             _cand("Aponermin was tested in relapsed myeloma.")]
    matrix = feature_matrix(classify_question(question), question, concepts,
                            [1.0] * len(concepts), cands)
    assert matrix.shape == (2, len(FEATURES))
    column = FEATURES.index("quantity_x_number")
    assert matrix[0, column] == 1.0 and matrix[1, column] == 0.0


def test_the_packaged_model_matches_the_features() -> None:
    model = load_sentence_model()
    assert model.features == FEATURES and np.isfinite(model.weights).all()


def test_a_broken_model_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"features": ["dense"], "mean": [0], "scale": [1],
                                "weights": [1], "bias": 0}), encoding="utf-8")
    with pytest.raises(ConfigError, match="retrain"):
        load_sentence_model(str(path))
    with pytest.raises(ConfigError, match="cannot load"):
        load_sentence_model(str(tmp_path / "missing.json"))
