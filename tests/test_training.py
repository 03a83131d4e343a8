"""Training the answer composer's sentence scorer (``python -m rag.eval.training``) on a real
index of ``tests/data/composer_notes``: which sentences are labelled answers, that the fitted
model ranks them first, and that the written JSON is the model the composer loads."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag import RAG, Settings
from rag.answer.features import FEATURES, load_sentence_model
from rag.eval.evaluate import satisfies
from rag.eval.training import Example, collect, evaluate, fit, main

NOTES = Path(__file__).resolve().parent / "data" / "composer_notes"
RESPONSE = "What share of relapsed myeloma patients responded to zorbatumab?"
CONCLUSION = ("High DR5 density marked the lymphoma samples most likely to die after "
              "recombinant TRAIL, so DR5 could select patients for TRAIL-based therapy.")
QUESTIONS = [
    {"question": RESPONSE, "must_include": [["42%"]]},
    {"question": "Why are primary CLL cells resistant to TRAIL?",
     "must_include": [["c-FLIP"], ["caspase-8"]]},
    {"question": "Does DR5 density predict the response of lymphoma to TRAIL?",
     "gold": {"pmid": "39000001", "text": CONCLUSION}},
    {"question": "What is the capital of France?", "unanswerable": True},
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> Path:
    root = tmp_path_factory.mktemp("training")
    shutil.copytree(NOTES, root / "notes")
    # Another document that repeats the gold conclusion's words: not the gold document, so
    # its sentence must not be labelled an answer.
    (root / "notes" / "dr5-echo.md").write_text(
        "---\nid: dr5-echo\ntitle: DR5 density in lymphoma, a second look (test note)\n---\n"
        "High DR5 density marked the lymphoma samples most likely to die after recombinant "
        "TRAIL, so DR5 could select patients in this second cohort too.\n", encoding="utf-8")
    rag = open_rag(root / "index")
    rag.add([root / "notes"])
    return rag.index_dir


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def examples(index: Path, questions: Path, settings: Settings) -> list[Example]:
    return collect(index, questions, settings)


def _positives(example: Example) -> list[str]:
    return [c.text for c, label in zip(example.pool.candidates, example.labels, strict=True)
            if label >= 0.5]


def test_answerable_questions_become_examples_with_the_answer_labelled(
        examples: list[Example]) -> None:
    assert [ex.item["question"] for ex in examples] == [q["question"] for q in QUESTIONS[:3]]
    response, mechanism, gold = examples
    assert all(ex.matrix.shape == (len(ex.pool.candidates), len(FEATURES)) for ex in examples)
    assert _positives(response) and all("42%" in text for text in _positives(response))
    # both facts the question does not name itself, in one sentence, is a full label
    assert any("c-FLIP" in t and "caspase-8" in t for t in _positives(mechanism))
    assert 0 < len(_positives(mechanism)) < len(mechanism.pool.candidates)
    # a gold item: only the gold document's sentence that quotes its conclusion
    assert _positives(gold) == [CONCLUSION]
    gold_docs = {c.doc_id for c in gold.pool.candidates}
    assert {"pmid-39000001", "dr5-echo"} <= gold_docs


def test_the_fitted_model_ranks_a_labelled_answer_first(examples: list[Example]) -> None:
    model = fit(examples, l2=0.1)
    for ex in examples:
        best = int(np.argmax(model.logits(ex.matrix)))
        assert ex.labels[best] >= 0.5, ex.item["question"]
    # the candidates' own order would not do it: the ranking above is learned
    assert any(ex.labels[0] < 0.5 for ex in examples)


def test_the_written_model_is_what_the_composer_loads(
        index: Path, questions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    assert main(["--set", str(index), str(questions), "--out", str(out), "--l2", "0.1"]) == 0
    assert "wrote" in capsys.readouterr().out
    model = load_sentence_model(str(out))
    assert list(model.features) == list(FEATURES)
    assert json.loads(out.read_text())["meta"]["trained_on"] == ["questions.jsonl (3 questions)"]


def test_the_replay_answers_as_the_composer_does(index: Path, tmp_path: Path,
                                                settings: Settings,
                                                open_rag: Callable[..., RAG]) -> None:
    """Cross-validated figures replay answers without the composer: the replay must refuse
    and start where the composer does. A question whose disease the library lacks is refused
    by the composer, so the replay may not count the trial's 42% as an answer to it."""
    items = [QUESTIONS[0], QUESTIONS[1],
             {"question": "What share of acute myeloid leukemia patients responded to "
                          "zorbatumab?", "must_include": [["42%"]]}]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in items), encoding="utf-8")
    examples = collect(index, path, settings)
    assert [ex.plan.missing for ex in examples] == [False, False, True]
    rag = open_rag(index)
    answers = [rag.ask(q["question"], k=10) for q in items]
    assert [a.supported for a in answers] == [True, True, False]
    composed = sum(a.supported and satisfies(a.text, q["must_include"])
                   for a, q in zip(answers, items, strict=True)) / len(items)
    replayed = evaluate(load_sentence_model(None), examples, settings)["answer_hit"]
    assert composed == pytest.approx(2 / 3)
    assert replayed == pytest.approx(composed)
