"""Question constraints (disease, agent, phase, population, measure, unknown names) and
whether documents cover them together. No model needed."""

from __future__ import annotations

import pytest

from rag.answer.constraints import DocEvidence, check_coverage, doc_evidence, find_constraints
from rag.retrieve.synonyms import load_synonyms


def _kinds(question: str, **kwargs: object) -> dict[str, str]:
    return {c.label: c.kind for c in find_constraints(question, **kwargs)}  # type: ignore[arg-type]


def test_constraints_keep_the_question_wording_and_kind() -> None:
    found = _kinds("What was the median overall survival in the randomized phase 3 trial of "
                   "dulanermin in acute myeloid leukaemia?")
    assert found == {"overall survival": "measure", "phase 3": "phase",
                     "dulanermin": "agent", "acute myeloid leukaemia": "disease"}


@pytest.mark.parametrize(("question", "label", "kind"), [
    ("What is the half-life of ONC201 in children with leukemia?", "children", "population"),
    ("Which TRAIL gene variant predicts GVHD after cord blood transplantation?",
     "cord blood transplantation", "procedure"),
    ("Is any TRAIL agonist approved by the European Medicines Agency?",
     "European Medicines Agency", "regulator"),
    ("Does zorbatumab work in myeloma?", "zorbatumab", "agent"),  # by its -mab stem
    ("Results of the phase I/II study?", "phase I/II", "phase"),
])
def test_constraint_kinds(question: str, label: str, kind: str) -> None:
    assert _kinds(question)[label] == kind


@pytest.mark.parametrize(("question", "phases"), [
    ("In which phase is caspase-8 activated after TRAIL binding?", []),  # "phase is", not "I"
    ("Which cells stay in the phase in which TRAIL acts?", []),
    ("Results of the phase-II trial?", [{2}]),
    ("Results of the phase I/IIa study?", [{1, 2}]),
    ("Was the phase 3 trial of dulanermin positive?", [{3}]),
])
def test_a_phase_needs_a_whole_numeral(question: str, phases: list[set[int]]) -> None:
    assert [set(c.phases) for c in find_constraints(question) if c.kind == "phase"] == phases


def test_unseen_name_like_words_become_terms() -> None:
    unseen = {"jak2", "v617f"}
    found = _kinds("How does TRAIL interact with JAK2 V617F signalling?",
                   is_unseen=lambda token: token in unseen)
    assert found["JAK2"] == "molecule"  # named by the synonym table first
    assert found["V617F"] == "term"
    assert "signalling" not in found and "How" not in found


def test_a_question_in_capitals_has_names_only_where_digits_are() -> None:
    shouted = "WHAT RESPONSE RATE DID APONERMIN REACH IN MYELOMA, AND DID JAK2 V617F MATTER?"
    found = _kinds(shouted, is_unseen=lambda token: token in {"aponermin", "v617f", "reach"})
    assert found["APONERMIN"] == "agent" and found["MYELOMA"] == "disease"
    assert found["V617F"] == "term" and found["JAK2"] == "molecule"
    # capitalised ordinary words are neither unseen terms nor names
    assert {"REACH", "RESPONSE", "MATTER", "WHAT"}.isdisjoint(found)


def test_compounds_of_known_words_are_not_terms() -> None:
    known = {"trail", "trigger"}
    found = _kinds("Is HOIP needed for TRAIL-triggered NF-kB?",
                   is_unseen=lambda token: token not in known | {"hoip", "need", "nf", "kb"})
    assert "TRAIL-triggered" not in found


def _doc(doc_id: str, text: str, **meta: object) -> DocEvidence:
    return doc_evidence(doc_id, [text], meta)


NSCLC = _doc("nsclc", "A phase 3 trial of dulanermin with chemotherapy in non-small-cell lung "
             "cancer reported progression-free and overall survival.", evidence="phase 3")
AML = _doc("aml", "Venetoclax with eftozanermin alfa in acute myeloid leukemia, a phase 1b "
           "study.")


def test_documents_read_phases_like_questions() -> None:
    assert _doc("d", "Caspase-8 is cleaved in the phase in which cells detach.").phases == set()
    assert _doc("d", "A phase-II study of mapatumumab.").phases == {2}
    assert _doc("d", "Cells died.", evidence="clinical phase 1").phases == {1}


def test_a_constraint_counts_only_together_with_the_question_s_other_parts() -> None:
    constraints = find_constraints("What was the overall survival in the phase 3 trial of "
                                   "dulanermin in AML?")
    coverage = {c.constraint.label: c.covered for c in check_coverage(constraints, [NSCLC, AML])}
    # Each part exists somewhere, but no document has dulanermin, phase 3 and AML together.
    assert coverage == {"overall survival": False, "phase 3": False, "dulanermin": False,
                        "AML": False}


def test_question_answered_by_one_document_is_covered() -> None:
    constraints = find_constraints("What overall survival did dulanermin give in NSCLC?")
    coverage = {c.constraint.label: (c.covered, c.doc_id)
                for c in check_coverage(constraints, [AML, NSCLC])}
    assert coverage == {"overall survival": (True, "nsclc"), "dulanermin": (True, "nsclc"),
                        "NSCLC": (True, "nsclc")}


def test_several_values_of_one_kind_may_come_from_different_documents() -> None:
    constraints = find_constraints("Compare dulanermin and eftozanermin alfa.")
    coverage = {c.constraint.label: c.doc_id for c in check_coverage(constraints, [NSCLC, AML])}
    assert coverage == {"dulanermin": "nsclc", "eftozanermin alfa": "aml"}


@pytest.mark.parametrize(("doc_text", "question", "label", "covered"), [
    ("Acute promyelocytic leukemia blasts died.", "Does TRAIL kill leukemia cells?",
     "leukemia", True),
    ("Mantle cell lymphoma lines resisted TRAIL.", "TRAIL in non-Hodgkin lymphoma?",
     "non-Hodgkin lymphoma", True),
    ("Myeloma cells resisted TRAIL.", "TRAIL in blood cancers?", "blood cancers", True),
    ("Leukemia cells resisted TRAIL.", "TRAIL in AML?", "AML", False),  # broader: no cover
    ("XIAP blocked caspase-3.", "Which IAP proteins block TRAIL?", "IAP", True),
])
def test_broader_terms_are_covered_by_narrower_evidence(doc_text: str, question: str,
                                                        label: str, covered: bool) -> None:
    constraints = [c for c in find_constraints(question) if c.kind != "molecule"
                   or c.label != "TRAIL"]
    coverage = check_coverage(constraints, [_doc("d", doc_text)])
    assert {c.constraint.label: c.covered for c in coverage} == {label: covered}


def test_metadata_and_phase_from_the_evidence_field_count() -> None:
    doc = _doc("note", "The trial enrolled 417 patients.", diseases=["multiple myeloma"],
               agents=["aponermin"], evidence="phase 3")
    constraints = find_constraints("phase III aponermin myeloma results")
    coverage = {c.constraint.label: c.covered for c in check_coverage(constraints, [doc])}
    assert coverage == {"phase III": True, "aponermin": True, "myeloma": True}
    assert load_synonyms().kind_of("aponermin") == "agent"


def test_names_the_library_knows_only_steer_the_answer() -> None:
    found = _kinds("How does low-dose PDBu make AML blasts respond to TRAIL?",
                   is_unseen=lambda token: False)
    assert found["PDBu"] == "name"
    assert "low-dose" not in found
