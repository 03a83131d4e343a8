"""How the extractive composer picks sentences and when it refuses, with the real model and a
real index over ``tests/data/composer_notes`` (three small documents written for these cases).

Each behaviour is checked twice: with the packaged model, and with the part that produces it
switched off (its model weights zeroed, or its selection penalty set to 0), which must give a
different, worse answer. So every test fails if the logic it covers is removed. The selection
rules are also checked on their own, on hand-made candidates with given scores (no model).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from answer_support import ask_checked

from rag import RAG, Settings
from rag.answer.candidates import CandidatePool
from rag.answer.features import Candidate, feature_matrix
from rag.answer.question import classify_question
from rag.answer.selection import select_sentences
from rag.settings import AnswerSettings

NOTES = Path(__file__).resolve().parent / "data" / "composer_notes"
MODEL = Path(__file__).resolve().parents[1] / "rag" / "data" / "answer_model.json"
ANSWER_TYPE = {"quantity_x_number", "has_number", "number_count", "cue_match", "cue_any",
               "cue_missing", "quantity_x_results_role", "mechanism_x_cues",
               "entity_x_names", "finding_x_results", "yesno_x_conclusion"}
SECTION_ROLE = {"role_results", "role_conclusions", "role_discussion", "role_background",
                "role_methods", "yesno_x_conclusions_role", "finding_x_results_role",
                "quantity_x_results_role", "position", "first_in_section"}


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> RAG:
    root = tmp_path_factory.mktemp("composer")
    shutil.copytree(NOTES, root / "notes")
    rag = open_rag(root / "index")
    assert len(rag.add([root / "notes"]).added) == 3
    return rag


@pytest.fixture(scope="module")
def without(rag: RAG, open_rag: Callable[..., RAG],
            tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RAG]:
    """The same index answered by the model with some features' weights set to zero."""
    folder = tmp_path_factory.mktemp("ablated")

    def _open(features: set[str], **changes: object) -> RAG:
        data = json.loads(MODEL.read_text(encoding="utf-8"))
        data["weights"] = [0.0 if name in features else weight
                           for name, weight in zip(data["features"], data["weights"],
                                                   strict=True)]
        path = folder / f"model-{len(list(folder.iterdir()))}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        settings = Settings().with_updates(**{"answer.model": str(path), **changes})
        return open_rag(rag.index_dir, settings)

    return _open


RATE = "What response rate did zorbatumab achieve in relapsed myeloma?"


def test_a_figure_question_quotes_the_figure(rag: RAG, without: Callable[..., RAG]) -> None:
    answer = ask_checked(rag, RATE)
    assert answer.supported and "42%" in answer.citations[0].snippet
    assert all("asked whether" not in c.snippet for c in answer.citations)
    blind = ask_checked(without(ANSWER_TYPE, **{"answer.missing_cue_penalty": 0}), RATE)
    assert "42%" not in blind.citations[0].snippet


def test_results_and_conclusions_beat_the_background(rag: RAG,
                                                    without: Callable[..., RAG]) -> None:
    question = "Does DR5 density predict the response of lymphoma to TRAIL?"
    answer = ask_checked(rag, question)
    assert answer.citations[0].section in {"RESULTS", "CONCLUSIONS"}
    blind = ask_checked(without(SECTION_ROLE), question)
    assert blind.citations[0].section == "BACKGROUND"


def _pool(texts: list[str]) -> CandidatePool:
    cands = [Candidate(text=t, section="Findings", doc_id="d", passage_rank=0, doc_rank=0,
                       dense=0.5, passage_dense=0.5, position=i / 10, first_in_section=False,
                       doc_terms="TRAIL CLL") for i, t in enumerate(texts)]
    return CandidatePool(cands, [0] * len(texts), list(range(len(texts))),
                         [(i * 100, i * 100 + 50) for i in range(len(texts))])


def _select(pool: CandidatePool, scores: np.ndarray, question: str,
            answer: AnswerSettings) -> list[int]:
    matrix = feature_matrix(classify_question(question), question, [], [], pool.candidates)
    return select_sentences(pool, scores, question, answer, matrix=matrix)


WHY = "Why are primary CLL cells resistant to TRAIL?"
RESTATES = "Primary chronic lymphocytic leukemia cells were resistant to TRAIL in culture."
EXPLAINS = "High c-FLIP in the cells bound the DISC and blocked caspase-8 cleavage."


def test_a_sentence_that_restates_the_question_loses_to_one_that_adds(
        settings: Settings) -> None:
    pool = _pool([RESTATES, EXPLAINS])
    scores = np.array([1.0, 0.5])  # the scorer alone prefers the restatement
    answer = settings.answer
    assert _select(pool, scores, WHY, answer)[0] == 1
    plain = answer.model_copy(update={"restatement_penalty": 0.0,
                                      "missing_cue_penalty": 0.0})
    assert _select(pool, scores, WHY, plain)[0] == 0


def test_framing_sentences_are_not_the_answer(settings: Settings) -> None:
    pool = _pool(["Hollis and colleagues asked whether zorbatumab improves the response rate.",
                  "Forty-two percent of patients responded to zorbatumab."])
    scores = np.array([1.0, 0.2])
    answer = settings.answer.model_copy(update={"missing_cue_penalty": 0.0})
    assert _select(pool, scores, RATE, answer)[0] == 1
    plain = answer.model_copy(update={"framing_penalty": 0.0})
    assert _select(pool, scores, RATE, plain)[0] == 0


def test_a_second_sentence_is_added_for_the_other_part_of_the_question(
        settings: Settings) -> None:
    pool = _pool(["Mutations were found in 8 of 117 lymphomas (6.8%).",
                  "Most changes were missense mutations inside the death domains.",
                  "The mutations were found in lymphoma samples from 117 patients."])
    question = "How frequent are the mutations, and where do they fall?"
    scores = np.array([2.0, 0.5, 1.0])
    answer = settings.answer.model_copy(update={"max_sentences": 2,
                                                "missing_cue_penalty": 0.0})
    assert _select(pool, scores, question, answer) == [0, 1]
    plain = answer.model_copy(update={"cue_bonus": 0.0})
    assert _select(pool, scores, question, plain) == [0, 2]


MISSING = "What was the response rate of zorbatumab in acute myeloid leukemia?"


def test_a_missing_disease_is_said_plainly_with_the_closest_evidence(rag: RAG) -> None:
    answer = ask_checked(rag, MISSING)
    assert not answer.supported
    assert answer.support_score >= rag.settings.answer.min_support  # on topic, yet missing
    assert answer.text.startswith("The library has no evidence on")
    assert "acute myeloid leukemia" in answer.text and "Closest evidence" in answer.text
    coverage = {c.label: c for c in answer.coverage}
    assert coverage["acute myeloid leukemia"].covered is False
    assert coverage["zorbatumab"].covered is True
    assert coverage["zorbatumab"].doc_id == "zorbatumab-myeloma-trial"
    assert [c.doc_id for c in answer.citations] == ["zorbatumab-myeloma-trial"]
    data = answer.to_dict()
    assert {"kind": "disease", "label": "acute myeloid leukemia", "covered": False,
            "citation": None, "doc_id": None} in data["coverage"]


def test_a_covered_question_lists_what_covers_it(rag: RAG) -> None:
    answer = ask_checked(rag, RATE)
    assert answer.supported and answer.missing == ()
    coverage = {c.label: c for c in answer.coverage}
    assert coverage["zorbatumab"].covered and coverage["zorbatumab"].citation == 1
    assert coverage["myeloma"].kind == "disease"


# -- evaluation of both question formats -----------------------------------------------------


def test_eval_scores_pubmedqa_and_must_include_items_together(rag: RAG,
                                                              tmp_path: Path) -> None:
    from rag.eval.evaluate import evaluate_files

    pubmedqa = tmp_path / "pqa.jsonl"
    pubmedqa.write_text(json.dumps({
        "id": "pqa-39000001", "question": "Does DR5 density predict the response of lymphoma "
        "to TRAIL?", "gold": {"pmid": "39000001", "text": "High DR5 density marked the "
        "lymphoma samples most likely to die after recombinant TRAIL, so DR5 could select "
        "patients for TRAIL-based therapy."}}) + "\n", encoding="utf-8")
    trail = tmp_path / "trail.jsonl"
    trail.write_text("\n".join(json.dumps(item) for item in [
        {"id": "rate", "question": RATE, "must_include": [["42%"]],
         "source": {"title": "zorbatumab", "pmid": None, "doi": None}},
        {"id": "aml", "question": MISSING, "unanswerable": True},
    ]) + "\n", encoding="utf-8")
    first, second = evaluate_files(rag, [pubmedqa, trail], k=5, warmup=0)
    ours = first["metrics"]["ours"]
    assert ours["gold_cited"] == 1.0 and ours["doc_hit@1"] == 1.0
    assert ours["citations_from_gold"] == 1.0 and 1 <= ours["citations_per_answer"] <= 3
    assert "answer_hit" not in ours  # no must_include items in this file
    assert second["metrics"]["ours"]["answer_hit"] == 1.0
    assert second["metrics"]["ours"]["refusal_ok"] == 1.0
