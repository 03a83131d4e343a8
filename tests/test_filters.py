"""Filters resolved against document metadata, without a model or an index: tags with synonyms
and whole words, the evidence filter by study-design level, and what every backend receives.
(The same filters through a real search: ``test_retrieval.py``.)"""

from __future__ import annotations

from typing import Any

import pytest

from rag.retrieve.filters import build_filter, matching_docs
from rag.store.metadata import DocRecord
from rag.store.vectors import Condition, Filter


def _record(doc_id: str, **meta: Any) -> DocRecord:
    return DocRecord(doc_id, f"Title of {doc_id}", "markdown", f"{doc_id}.md", "0", meta, 1)


DOCS = {r.doc_id: r for r in [
    _record("hodgkin", diseases=["Hodgkin lymphoma"], agents=["TRAIL"],
            evidence="preclinical in vitro", evidence_level="in-vitro"),
    _record("nhl", diseases=["non-Hodgkin lymphoma"], agents=["TRAIL"],
            evidence="clinical phase 1", evidence_level="phase-1-2"),
    _record("b-nhl", diseases=["B-cell non-Hodgkin lymphoma", "chronic lymphocytic leukemia"],
            agents=["TRAIL"], evidence_level="phase-3"),  # a PubMed record: no evidence text
    _record("mixed", diseases=["non-Hodgkin and Hodgkin lymphoma"], agents=["dulanermin"],
            evidence="preclinical in vivo", evidence_level="in-vivo"),
    _record("old-index", diseases=["multiple myeloma"], evidence="phase 3 trial"),  # no level
]}


def _ids(filters: dict[str, Any]) -> set[str]:
    return set(matching_docs(build_filter(filters, DOCS), DOCS))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"disease": "Hodgkin lymphoma"}, {"hodgkin", "mixed"},
                     id="hodgkin-not-non-hodgkin"),
        pytest.param({"disease": "NHL"}, {"nhl"}, id="non-hodgkin-by-its-acronym"),
        pytest.param({"disease": "lymphoma"}, {"hodgkin", "nhl", "b-nhl", "mixed"},
                     id="lymphoma-covers-both"),
        pytest.param({"disease": "Hodgkin lymphoma", "agent": "TRAIL"}, {"hodgkin"},
                     id="map-cell"),
    ],
)
def test_disease_terms_match_whole_words_and_not_their_negation(
        filters: dict[str, Any], expected: set[str]) -> None:
    assert _ids(filters) == expected


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        pytest.param("phase-3", {"b-nhl", "old-index"}, id="level-key"),
        pytest.param("Phase 3 trial", {"b-nhl", "old-index"}, id="level-label"),
        pytest.param("Phase 1\u20132 trial", {"nhl"}, id="label-with-en-dash"),
        pytest.param("phase 1-2 trial", {"nhl"}, id="label-with-hyphen"),
        pytest.param(["In vitro / ex vivo", "in-vivo"], {"hodgkin", "mixed"}, id="two-levels"),
        pytest.param("clinical", {"nhl"}, id="front-matter-word"),
        pytest.param("preclinical", {"hodgkin", "mixed"}, id="front-matter-word-2"),
        pytest.param("Meta-analysis / systematic review", set(), id="no-document"),
    ],
)
def test_evidence_selects_by_level_or_by_the_notes_own_words(
        evidence: Any, expected: set[str]) -> None:
    assert _ids({"evidence": evidence}) == expected


def test_evidence_resolves_to_levels_every_backend_compiles() -> None:
    leveled = {d: r for d, r in DOCS.items() if d != "old-index"}
    (condition,) = build_filter({"evidence": ["Phase 3 trial", "preclinical"]},
                                leveled).conditions
    assert condition == Condition("evidence", ("in-vitro", "in-vivo", "phase-3"))
    both = build_filter({"evidence": "phase-3", "doc_id": "b-nhl,nhl"}, leveled)
    assert set(matching_docs(both, leveled)) == {"b-nhl"}
    (nothing,) = build_filter({"evidence": "observational"}, leveled).conditions
    assert nothing == Condition("evidence", ("observational",))
    assert not set(matching_docs(Filter((nothing,)), leveled))


def test_an_index_without_stored_levels_gets_document_ids() -> None:
    (condition,) = build_filter({"evidence": "Phase 3 trial"}, DOCS).conditions
    assert condition == Condition("doc_id", ("b-nhl", "old-index"))


# -- through the facade: the documents the Library lists are those Ask searches -----------------

NOTES = {
    "hl.md": "---\nid: hl\ntitle: c-FLIP in Reed-Sternberg cells\ndiseases: [Hodgkin lymphoma]\n"
             "agents: [TRAIL]\nevidence: preclinical in vitro\n---\nc-FLIP blocks TRAIL "
             "signalling in Hodgkin Reed-Sternberg cells.\n",
    "nhl.md": "---\nid: nhl\ntitle: TRAIL receptor mutations in lymphoma\n"
              "diseases: [non-Hodgkin lymphoma]\nagents: [TRAIL]\n---\nDR4 and DR5 mutations "
              "in non-Hodgkin lymphoma blunt TRAIL signalling.\n",
    "pubmed.txt": "A phase III trial of a TRAIL agonist in lymphoma\n\n- PMID: 11111111\n\n"
                  "Abstract\nPatients with lymphoma received a TRAIL receptor agonist in this "
                  "randomized phase III trial.\n",
}


@pytest.fixture
def library(write_files: Any, open_fake_rag: Any, tmp_path: Any) -> Any:
    rag = open_fake_rag(tmp_path / "index")
    rag.add([write_files(NOTES)])
    return rag


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(None, ["hl", "nhl", "pmid-11111111"], id="all"),
        pytest.param({"disease": "Hodgkin lymphoma", "agent": "TRAIL"}, ["hl"], id="map-cell"),
        pytest.param({"evidence": "Phase 3 trial"}, ["pmid-11111111"], id="pubmed-by-level"),
        pytest.param({"evidence": "preclinical"}, ["hl"], id="front-matter-word"),
    ],
)
def test_documents_are_those_a_filtered_search_draws_from(
        library: Any, filters: dict[str, Any] | None, expected: list[str]) -> None:
    from rag.interfaces.export import references_from_library

    assert [d.doc_id for d in library.documents(filters)] == expected
    searched = {p.doc_id for p in library.search("TRAIL lymphoma", k=20, filters=filters)}
    assert searched == set(expected)
    assert len(references_from_library(library, filters)) == len(expected)
