"""Extractive answers with sentence-level citations over a small indexed note corpus.

Every answer produced here goes through ``check_citations``: each citation's snippet is the
exact text of its document at ``start:end``, and every ``[n]`` in the answer names a citation.
What an answer says and cites needs the real model (``rag``); filters, settings and bad input
are checked on the same notes indexed with the fake embedder (``fake``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from answer_support import OFF_TOPIC, ON_TOPIC, ask_checked, build_index

from rag import RAG, QueryError, Settings
from rag.answer.extractive import NO_EVIDENCE

ANSWER_KEYS = {"question", "answer", "supported", "citations", "passages", "timings_ms"}
CITATION_KEYS = {"n", "doc_id", "chunk_id", "title", "source", "pmid", "doi", "url", "section",
                 "page", "snippet", "start", "end", "score"}
PASSAGE_KEYS = {"rank", "doc_id", "chunk_id", "title", "text", "score", "section", "page"}
# Fields the objects add beyond the JSON contract (the contract's keys must all be
# there; these are the only others).
ANSWER_EXTRA = {"support_score", "mode", "notes", "coverage", "evidence_summary"}
CITATION_EXTRA = {"authors", "journal", "year", "evidence", "evidence_reason"}
PASSAGE_EXTRA = {"start", "end"}


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_rag, "answering")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory, open_fake_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_fake_rag, "answering-fake")


# -- supported answers -----------------------------------------------------------------------


@pytest.mark.parametrize(("question", "doc_id"), list(ON_TOPIC.items()),
                         ids=list(ON_TOPIC.values()))
def test_answer_cites_the_relevant_note(rag: RAG, question: str, doc_id: str) -> None:
    answer = ask_checked(rag, question)
    assert answer.supported
    assert answer.mode == "extractive" and answer.notes == ()
    assert answer.support_score >= rag.settings.answer.min_support
    assert answer.citations[0].doc_id == doc_id
    assert 1 <= len(answer.citations) <= rag.settings.answer.max_sentences
    assert answer.passages[0].doc_id == doc_id


@pytest.mark.parametrize(("question", "doc_id"), list(ON_TOPIC.items()),
                         ids=list(ON_TOPIC.values()))
def test_answer_text_is_the_cited_sentences_with_markers(rag: RAG, question: str,
                                                         doc_id: str) -> None:
    answer = ask_checked(rag, question)
    pieces = re.split(r"(?<=[.!?])\s+(?=[A-Z])", answer.text)
    assert len(pieces) == len(answer.citations)
    for piece, citation in zip(pieces, answer.citations, strict=True):
        assert piece.replace(f" [{citation.n}]", "") == citation.snippet


def test_citation_carries_the_note_metadata(rag: RAG) -> None:
    answer = ask_checked(rag, "Why are primary CLL cells resistant to TRAIL?")
    first = answer.citations[0]
    assert first.doc_id == "cll-venetoclax"
    assert first.title == "Venetoclax lowers the apoptotic threshold for TRAIL in CLL"
    assert first.pmid == "31000001" and first.doi == "10.5555/cll.2019.01"
    assert first.url is None and first.year == 2019
    assert first.title in first.source
    assert first.section == "Background"
    # A "why" question leads with the sentence that gives the mechanism, not with the one
    # that restates the question.
    assert first.snippet.startswith("This resistance is attributed to high levels")
    sections = {c.section for c in answer.citations}
    assert sections <= {"Background", "Findings"}


def test_citation_section_follows_the_cited_sentence(rag: RAG) -> None:
    answer = ask_checked(rag, "What was the objective response rate with dulanermin?")
    cited = {c.snippet: c for c in answer.citations}
    rate = next(c for s, c in cited.items() if "40 percent" in s)
    assert rate.section == "Outcome"
    assert rate.url == "https://example.org/dulanermin-trial" and rate.doi is None


def test_answer_leads_with_the_best_sentence_then_reading_order(rag: RAG) -> None:
    answer = ask_checked(rag, "What did the phase 2 trial of dulanermin with rituximab find?")
    rest = [c.start for c in answer.citations[1:] if c.doc_id == "dulanermin-nhl-trial"]
    assert len(answer.citations) >= 2 and rest == sorted(rest)
    assert answer.citations[0].score >= max(c.score for c in answer.citations[1:])


def test_near_duplicate_sentences_are_cited_once(rag: RAG) -> None:
    answer = ask_checked(rag, "How is caspase-8 processed at the DISC in mantle cell lymphoma?")
    assert answer.supported
    assert answer.citations[0].doc_id == "mcl-disc-repeats"
    # The note says the same thing for twelve cell lines; the answer must not repeat it.
    shapes = [re.sub(r"line \S+,", "line X,", c.snippet) for c in answer.citations]
    assert len(shapes) == len(set(shapes))


def test_synonym_question_is_answered_from_the_other_name(rag: RAG) -> None:
    answer = ask_checked(rag, "What induces DR5?")
    assert answer.supported
    assert answer.citations[0].doc_id == "myeloma-trail-r2"
    assert "DR5" not in answer.text and "TRAIL-R2" in answer.text


def test_max_sentences_setting_caps_the_citations(rag: RAG,
                                                  open_rag: Callable[..., RAG]) -> None:
    one = open_rag(rag.index_dir, Settings().with_updates(**{"answer.max_sentences": 1}))
    answer = ask_checked(one, "How do histone deacetylase inhibitors affect c-FLIP in Hodgkin "
                              "lymphoma?")
    assert len(answer.citations) == 1 and answer.text.count("[") == 1


def test_k_sets_the_number_of_passages_returned(rag: RAG) -> None:
    answer = ask_checked(rag, "Why are primary CLL cells resistant to TRAIL?", k=2)
    assert [p.rank for p in answer.passages] == [1, 2]
    assert answer.supported


def test_filter_that_matches_nothing_refuses_with_no_passages(fake: RAG) -> None:
    answer = ask_checked(fake, "Why are primary CLL cells resistant to TRAIL?",
                         filters={"disease": "melanoma"})
    assert not answer.supported and answer.text == NO_EVIDENCE
    assert answer.citations == () and answer.passages == ()


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("question", OFF_TOPIC, ids=["capital-of-australia", "sourdough"])
def test_off_topic_question_is_refused_with_passages(rag: RAG, question: str) -> None:
    answer = ask_checked(rag, question)
    assert answer.supported is False
    assert answer.text == NO_EVIDENCE
    assert answer.citations == ()
    assert len(answer.passages) == rag.settings.retrieval.k
    assert answer.support_score < rag.settings.answer.min_support
    assert answer.to_dict()["citations"] == []


def test_refusal_threshold_is_the_setting(fake: RAG,
                                          open_fake_rag: Callable[..., RAG]) -> None:
    strict = open_fake_rag(fake.index_dir, Settings().with_updates(**{"answer.min_support": 1.01}))
    answer = ask_checked(strict, "Why are primary CLL cells resistant to TRAIL?")
    assert not answer.supported and answer.text == NO_EVIDENCE and answer.passages


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "message"),
    [
        pytest.param("", "the question is empty: type a question", id="empty"),
        pytest.param(" \t\n ", "the question is empty", id="whitespace-only"),
        pytest.param("x" * 100_000, "the limit is 4,000", id="100k-chars"),
        pytest.param("\x00\x01\x02\x03", "the question is empty", id="control-chars-only"),
    ],
)
def test_bad_questions_raise_query_error(fake: RAG, question: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        fake.ask(question)


def test_question_of_exactly_the_limit_is_accepted(fake: RAG) -> None:
    question = ("Why are primary CLL cells resistant to TRAIL? " * 100)[:4000]
    answer = ask_checked(fake, question)
    assert len(answer.question) <= 4000 and answer.passages


def test_unknown_mode_is_refused(fake: RAG) -> None:
    with pytest.raises(QueryError, match="unknown answer mode 'llm2'"):
        fake.ask("Why are primary CLL cells resistant to TRAIL?", mode="llm2")


@pytest.mark.parametrize(
    "question",
    [
        pytest.param("Does venetoclax \U0001f48a help TRAIL kill CLL cells? \U0001f914",
                     id="emoji"),
        pytest.param("SELECT * FROM chunks WHERE doc_id = 'x' OR 1=1; -- XIAP in AML?",
                     id="sql-injection"),
    ],
)
def test_emoji_and_sql_looking_questions_just_work(fake: RAG, question: str) -> None:
    answer = ask_checked(fake, question)
    assert answer.passages
    assert len(fake.documents()) == 8


def test_emoji_question_is_answered(rag: RAG) -> None:
    answer = ask_checked(rag, "Does venetoclax \U0001f48a help TRAIL kill CLL cells?")
    assert answer.supported and answer.citations[0].doc_id == "cll-venetoclax"


# -- the JSON contract -----------------------------------------------------------------------


def test_answer_json_shape(rag: RAG) -> None:
    answer = ask_checked(rag, "How does a SMAC mimetic overcome XIAP in AML blasts?")
    data = json.loads(json.dumps(answer.to_dict()))
    assert set(data) == ANSWER_KEYS | ANSWER_EXTRA
    assert data["question"] == answer.question and data["answer"] == answer.text
    assert data["supported"] is True and data["mode"] == "extractive" and data["notes"] == []
    assert set(data["timings_ms"]) == {"retrieve", "answer", "total"}
    timings = data["timings_ms"]
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert timings["total"] >= max(timings["retrieve"], timings["answer"])
    assert data["citations"]
    for c in data["citations"]:
        assert set(c) == CITATION_KEYS | CITATION_EXTRA
        assert isinstance(c["n"], int) and isinstance(c["start"], int)
        assert rag.document(c["doc_id"]).text[c["start"]:c["end"]] == c["snippet"]
    assert [p["rank"] for p in data["passages"]] == list(range(1, len(data["passages"]) + 1))
    for p in data["passages"]:
        assert set(p) == PASSAGE_KEYS | PASSAGE_EXTRA
        assert isinstance(p["text"], str) and isinstance(p["score"], float)


def test_refusal_json_shape(rag: RAG) -> None:
    data = ask_checked(rag, OFF_TOPIC[0]).to_dict()
    assert set(data) == ANSWER_KEYS | ANSWER_EXTRA
    assert data["supported"] is False and data["citations"] == [] and data["passages"]
    assert all(set(p) == PASSAGE_KEYS | PASSAGE_EXTRA for p in data["passages"])
