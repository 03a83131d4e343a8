"""Hybrid retrieval over a small indexed note corpus: ranking, synonym expansion, filters, MMR
and the per-document cap, and what counts as a usable question."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from answer_support import NOTE_IDS, ON_TOPIC, ask_checked, build_index

from rag import RAG, QueryError, Settings

MCL_QUESTION = "How is caspase-8 processed at the DISC in mantle cell lymphoma?"
MCL_NOTE = "mcl-disc-repeats"
DR5_QUESTION = "What induces DR5?"
TRAIL_R2_NOTE = "myeloma-trail-r2"


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_rag, "retrieval")


@pytest.fixture(scope="module")
def rag_with(rag: RAG, open_rag: Callable[..., RAG]) -> Callable[..., RAG]:
    """``rag_with(**{"retrieval.per_doc_cap": 1})``: the same index under other settings."""

    def _open(**changes: Any) -> RAG:
        return open_rag(rag.index_dir, Settings().with_updates(**changes))

    return _open


# -- ranking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "doc_id"), list(ON_TOPIC.items()),
                         ids=list(ON_TOPIC.values()))
def test_relevant_note_ranks_first(rag: RAG, question: str, doc_id: str) -> None:
    passages = rag.search(question)
    assert passages[0].doc_id == doc_id
    assert passages[0].dense_score > 0.5 and passages[0].lexical_score > 0


def test_passages_are_ranked_spans_of_their_documents(rag: RAG) -> None:
    passages = rag.search("TRAIL resistance in leukemia", k=8)
    assert [p.rank for p in passages] == list(range(1, 9))
    assert len({p.chunk_id for p in passages}) == len(passages)
    for p in passages:
        doc = rag.document(p.doc_id)
        assert doc.text[p.start:p.end] == p.text
        assert p.title == doc.title
        assert p.chunk_id.startswith(f"{p.doc_id}#")


def test_k_limits_the_number_of_passages(rag: RAG) -> None:
    assert len(rag.search("TRAIL", k=1)) == 1
    assert len(rag.search("TRAIL", k=3)) == 3
    assert len(rag.search("TRAIL")) == rag.settings.retrieval.k


def test_rrf_fusion_also_ranks_the_relevant_note_first(rag_with: Callable[..., RAG]) -> None:
    rrf = rag_with(**{"retrieval.fusion": "rrf"})
    for question, doc_id in ON_TOPIC.items():
        assert rrf.search(question)[0].doc_id == doc_id, question


# -- synonym expansion -----------------------------------------------------------------------


def test_the_trail_r2_note_never_says_dr5(rag: RAG) -> None:
    text = rag.document(TRAIL_R2_NOTE).text
    assert "TRAIL-R2" in text
    for other in ("DR5", "death receptor 5", "KILLER", "TNFRSF10B", "TRICK2"):
        assert other.lower() not in text.lower()


def test_dr5_question_finds_the_note_that_says_only_trail_r2(rag: RAG) -> None:
    passages = rag.search(DR5_QUESTION)
    top = passages[0]
    assert top.doc_id == TRAIL_R2_NOTE
    # Found through the lexical side: "DR5" was searched as "TRAIL-R2" too, and this note,
    # which says TRAIL-R2 three times, has the best BM25 score of all.
    assert top.lexical_score > 0
    assert top.lexical_score == max(p.lexical_score for p in passages)
    answer = ask_checked(rag, DR5_QUESTION)
    assert answer.supported
    assert answer.citations[0].doc_id == TRAIL_R2_NOTE
    assert "TRAIL-R2" in answer.citations[0].snippet


def test_without_expansion_dr5_has_no_lexical_match(rag_with: Callable[..., RAG]) -> None:
    plain = rag_with(**{"retrieval.expand_synonyms": False})
    passages = plain.search(DR5_QUESTION, k=len(NOTE_IDS))
    by_doc = {p.doc_id: p for p in passages}
    assert by_doc[TRAIL_R2_NOTE].lexical_score == 0
    assert passages[0].doc_id != TRAIL_R2_NOTE


# -- filters ---------------------------------------------------------------------------------

LYMPHOMA_NOTES = {"cll-venetoclax", "dulanermin-nhl-trial", "hodgkin-cflip", MCL_NOTE}
PRECLINICAL = NOTE_IDS - {"dulanermin-nhl-trial", "cml-decoy-receptors"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"disease": "AML"}, {"aml-smac-xiap"}, id="disease-acronym"),
        pytest.param({"disease": "acute myeloid leukaemia"}, {"aml-smac-xiap"},
                     id="disease-synonym"),
        pytest.param({"disease": "ALL"}, {"all-mapatumumab"},
                     id="ALL-not-small-lymphocytic"),
        pytest.param({"disease": "lymphoma"}, LYMPHOMA_NOTES, id="disease-word"),
        pytest.param({"disease": "myeloma"}, {TRAIL_R2_NOTE}, id="myeloma-is-MM"),
        pytest.param({"disease": ["CML", "CLL"]}, {"cml-decoy-receptors", "cll-venetoclax"},
                     id="disease-list"),
        pytest.param({"agent": "venetoclax"}, {"cll-venetoclax"}, id="agent"),
        pytest.param({"agent": "ABT-199"}, {"cll-venetoclax"}, id="agent-synonym"),
        pytest.param({"agent": "Smac mimetics"}, {"aml-smac-xiap"}, id="agent-plural"),
        pytest.param({"evidence": "clinical"}, {"dulanermin-nhl-trial"},
                     id="clinical-not-preclinical"),
        pytest.param({"evidence": "preclinical"}, PRECLINICAL, id="evidence"),
        pytest.param({"year": "2005-2010"},
                     {"hodgkin-cflip", TRAIL_R2_NOTE, "dulanermin-nhl-trial"},
                     id="year-range"),
        pytest.param({"year": "2008"}, {TRAIL_R2_NOTE}, id="one-year"),
        pytest.param({"year": [2003, 2006]}, {"cml-decoy-receptors", "hodgkin-cflip"},
                     id="year-pair"),
        pytest.param({"year_min": 2015}, {"all-mapatumumab", "cll-venetoclax", MCL_NOTE},
                     id="year-min"),
        pytest.param({"year_max": "2003"}, {"cml-decoy-receptors"}, id="year-max"),
        pytest.param({"doc_id": "aml-smac-xiap, cml-decoy-receptors"},
                     {"aml-smac-xiap", "cml-decoy-receptors"}, id="doc-id-list"),
        pytest.param({"disease": "lymphoma", "year": "2005-2010"},
                     {"hodgkin-cflip", "dulanermin-nhl-trial"}, id="two-filters"),
        pytest.param({"disease": "", "agent": None}, NOTE_IDS, id="empty-values-ignored"),
        pytest.param({"disease": "melanoma"}, set(), id="no-match"),
    ],
)
def test_filters_restrict_passages_to_matching_notes(rag: RAG, filters: dict[str, Any],
                                                      expected: set[str]) -> None:
    # k is large enough that every chunk a filter allows can appear (at most 3 per note).
    passages = rag.search("TRAIL resistance and apoptosis", k=30, filters=filters)
    assert {p.doc_id for p in passages} == expected


def test_filtered_answer_cites_only_allowed_notes(rag: RAG) -> None:
    answer = ask_checked(rag, "Which drugs make leukemia cells sensitive to TRAIL?",
                         filters={"disease": "AML"})
    assert {p.doc_id for p in answer.passages} == {"aml-smac-xiap"}
    assert {c.doc_id for c in answer.citations} <= {"aml-smac-xiap"}


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        pytest.param({"colour": "red"}, "unknown filter 'colour'", id="unknown-key"),
        pytest.param({"disease": "AML", "journal": "Blood"}, "unknown filter 'journal'",
                     id="unknown-key-beside-good-one"),
        pytest.param({"year": "recent"}, "year filter 'recent'", id="year-not-a-number"),
        pytest.param({"year": "2005-soon"}, "range like 2005-2015", id="year-bad-range"),
    ],
)
def test_bad_filters_raise_query_error(rag: RAG, filters: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        rag.search("TRAIL", filters=filters)


def test_unknown_filter_message_lists_the_valid_keys(rag: RAG) -> None:
    with pytest.raises(QueryError) as caught:
        rag.ask("TRAIL", filters={"organism": "mouse"})
    for key in ("disease", "agent", "evidence", "doc_id", "year"):
        assert key in str(caught.value)


# -- MMR and the per-document cap -------------------------------------------------------------


def _from_mcl(passages: list[Any]) -> int:
    return Counter(p.doc_id for p in passages)[MCL_NOTE]


def test_repeated_note_splits_into_many_chunks(rag: RAG) -> None:
    records = {d.doc_id: d for d in rag.documents()}
    assert records[MCL_NOTE].n_chunks > 2 * rag.settings.retrieval.per_doc_cap


def test_per_doc_cap_limits_one_note_in_the_top_k(rag: RAG) -> None:
    passages = rag.search(MCL_QUESTION, k=8)
    assert passages[0].doc_id == MCL_NOTE
    assert _from_mcl(passages) <= rag.settings.retrieval.per_doc_cap
    assert len({p.doc_id for p in passages}) >= 8 - rag.settings.retrieval.per_doc_cap


@pytest.mark.parametrize("cap", [1, 2])
def test_per_doc_cap_setting_is_honoured(rag_with: Callable[..., RAG], cap: int) -> None:
    passages = rag_with(**{"retrieval.per_doc_cap": cap}).search(MCL_QUESTION, k=6)
    assert passages[0].doc_id == MCL_NOTE
    assert _from_mcl(passages) == cap


def test_without_cap_or_diversity_the_repeated_note_fills_the_top_k(
        rag_with: Callable[..., RAG]) -> None:
    """The contrast that shows the cap and MMR do the work in the tests above."""
    relevance_only = rag_with(**{"retrieval.per_doc_cap": 100, "retrieval.mmr_lambda": 1.0})
    assert _from_mcl(relevance_only.search(MCL_QUESTION, k=6)) == 6


def test_mmr_trades_relevance_for_diversity(rag_with: Callable[..., RAG]) -> None:
    relevance_only = rag_with(**{"retrieval.per_doc_cap": 100, "retrieval.mmr_lambda": 1.0})
    diverse = rag_with(**{"retrieval.per_doc_cap": 100, "retrieval.mmr_lambda": 0.3})
    top_relevant = relevance_only.search(MCL_QUESTION, k=6)
    top_diverse = diverse.search(MCL_QUESTION, k=6)
    assert top_diverse[0].chunk_id == top_relevant[0].chunk_id  # the best passage stays first
    assert _from_mcl(top_diverse) < _from_mcl(top_relevant)
    assert len({p.doc_id for p in top_diverse}) > len({p.doc_id for p in top_relevant})


# -- questions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "message"),
    [
        pytest.param("", "the question is empty", id="empty"),
        pytest.param("   \n\t  ", "the question is empty", id="whitespace-only"),
        pytest.param("\x00\x01\x07\x1b\x7f", "the question is empty", id="control-chars-only"),
        pytest.param("\u200b\u200e\ufeff", "the question is empty", id="invisible-format-chars"),
        pytest.param("x" * 100_000, "100,000 characters long; the limit is 4,000",
                     id="100k-chars"),
        pytest.param("?!? ... ---", "no words", id="punctuation-only"),
    ],
)
def test_unusable_questions_raise_query_error(rag: RAG, question: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        rag.search(question)


@pytest.mark.parametrize(
    "question",
    [
        pytest.param("Does venetoclax \U0001f48a help TRAIL kill CLL cells? \U0001f914",
                     id="emoji"),
        pytest.param("'; DROP TABLE chunks; -- does XIAP block TRAIL in AML blasts?",
                     id="sql-injection"),
        pytest.param("Robert'); DELETE FROM docs WHERE 1=1; --", id="sql-only"),
        pytest.param("<script>alert('DR5')</script> TRAIL-R2?", id="html"),
        pytest.param("c-FLIP\x00 in Hodgkin\x1b lymphoma?", id="embedded-control-chars"),
    ],
)
def test_odd_but_real_questions_just_work(rag: RAG, question: str) -> None:
    passages = rag.search(question)
    assert len(passages) == rag.settings.retrieval.k
    answer = ask_checked(rag, question)
    assert answer.passages
    assert "\x00" not in answer.question and "\x1b" not in answer.question
    assert {d.doc_id for d in rag.documents()} == NOTE_IDS  # the index is untouched
