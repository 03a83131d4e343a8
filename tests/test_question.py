"""What a question asks for: answer types and the answer cues a sentence must carry."""

from __future__ import annotations

from dataclasses import fields

import pytest

from rag.answer.question import QuestionType, classify_question, expected_cues, sentence_cues


# Every flag that is on, so a flag that fires where it should not fails too.
@pytest.mark.parametrize(("question", "flags"), [
    ("What response rate did aponermin achieve?", {"quantity"}),
    ("How many patients were enrolled?", {"quantity"}),
    ("Why are primary CLL cells resistant to TRAIL?", {"mechanism"}),
    ("How does bortezomib sensitise myeloma cells?", {"mechanism"}),
    ("Which agents enhance TRAIL killing of myeloma cells?", {"entity"}),
    ("What did the CPT-MM301 trial show?", {"finding"}),
    ("Does venetoclax help TRAIL kill CLL cells?", {"yesno"}),
    ("What is aponermin?", set()),  # a plain definition asks for no figure or mechanism
])
def test_question_types(question: str, flags: set[str]) -> None:
    kind = classify_question(question)
    assert {f.name for f in fields(QuestionType) if getattr(kind, f.name)} == flags


@pytest.mark.parametrize(("question", "cues"), [
    pytest.param("What share of AML patients show high DcR1, and what does that mean for "
                 "outcome?", {"share", "survival"}, id="two-part"),
    pytest.param("How large was the trial and how were patients allocated?", {"count"},
                 id="count"),
    pytest.param("dulanermin phase 1 dose range and schedule?", {"dose"}, id="terse-dose"),
    pytest.param("Why are primary CLL cells resistant to TRAIL?", {"mechanism"},
                 id="why"),
    pytest.param("Where do the mutations fall?", {"location"}, id="where"),
])
def test_expected_cues(question: str, cues: set[str]) -> None:
    assert cues <= set(expected_cues(question))


@pytest.mark.parametrize(("sentence", "cue", "present"), [
    ("About 20% of AML patients had high TRAIL-R3.", "share", True),
    ("Somatic mutations were found in 8 of the 117 lymphomas.", "share", True),
    ("The decoy receptors were frequently expressed on AML blasts.", "share", False),
    ("Two tumours carried TRAIL-R1 mutations and six carried TRAIL-R2 mutations.", "count",
     True),
    ("Patients received 10 mg/kg on days 1-5 every 21 days.", "dose", True),
    ("Median overall survival was 22.4 months.", "duration", True),
    ("Resistance arose because c-FLIP blocked caspase-8 cleavage.", "mechanism", True),
    ("Primary CLL cells were resistant to TRAIL in culture.", "mechanism", False),
    ("Six changes were missense mutations inside the death domains.", "location", True),
])
def test_sentence_cues(sentence: str, cue: str, present: bool) -> None:
    assert (cue in sentence_cues(sentence, (cue,))) is present
