"""The synonym table (rag/data/synonyms.yaml) and query expansion with it. No model needed."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from rag.errors import ConfigError
from rag.retrieve.hybrid import query_concepts
from rag.retrieve.synonyms import (
    CASE_SENSITIVE,
    KINDS,
    build_table,
    load_synonyms,
    normalize_term,
)


def _kind_groups() -> list[tuple[str, list[str]]]:
    """(kind, names) for every group of rag/data/synonyms.yaml, in table order."""
    text = resources.files("rag").joinpath("data/synonyms.yaml").read_text(encoding="utf-8")
    return [(kind, group) for kind, groups in yaml.safe_load(text)["groups"].items()
            for group in groups or []]


KIND_GROUPS = _kind_groups()
RAW_GROUPS = [group for _, group in KIND_GROUPS]
ALL_NAMES = [(group[0], name) for group in RAW_GROUPS for name in group]


def test_table_loads() -> None:
    table = load_synonyms()
    assert len(table.groups) == len(RAW_GROUPS) > 40
    assert load_synonyms() is table  # loaded once


@pytest.mark.parametrize(("kind", "group"), KIND_GROUPS, ids=[g[0] for g in RAW_GROUPS])
def test_a_group_expands_or_names_a_kind(kind: str, group: list[str]) -> None:
    """The rule of synonyms.yaml: a group gives a question at least one other name to search
    (two names that differ after normalisation, so not just "Bcl-xL"/"BCL-XL"), or it is a
    one-name group under a declared kind, which still tells the composer what the question
    names. Names are trimmed, non-empty and written once."""
    assert all(isinstance(name, str) and name.strip() == name and name for name in group)
    assert len(set(group)) == len(group)
    assert kind in KINDS
    distinct = {normalize_term(name) for name in group}
    assert len(distinct) >= 2 or kind != "other", (
        f"{group} expands to no other name and declares no kind")


def test_every_group_has_its_declared_kind() -> None:
    table = load_synonyms()
    assert len(KIND_GROUPS) == len(table.groups)
    wrong = [(name, kind, table.kind_of(name)) for kind, group in KIND_GROUPS for name in group
             if table.kind_of(name) != kind]
    assert not wrong, wrong


@pytest.mark.parametrize(("term", "kind"), [
    ("acute myeloid leukaemia", "disease"), ("HGS-ETR1", "agent"), ("TRAIL-R2", "molecule"),
    ("paediatric", "population"), ("PFS", "measure"), ("cord blood transplant", "procedure"),
    ("sourdough", None),
])
def test_kind_of_a_name(term: str, kind: str | None) -> None:
    """A name of each kind resolves to it; a word the table does not know to None."""
    assert load_synonyms().kind_of(term) == kind


@pytest.mark.parametrize(("specific", "general", "covers"), [
    ("APL", "leukemia", True), ("APL", "AML", True), ("mantle cell lymphoma", "NHL", True),
    ("myeloma", "blood cancers", True), ("leukemia", "AML", False), ("AML", "CLL", False),
    ("NSCLC", "AML", False), ("AML", "AML", True),
])
def test_broader_names_cover_narrower_evidence(specific: str, general: str,
                                               covers: bool) -> None:
    table = load_synonyms()
    a, b = table.group_index(specific), table.group_index(general)
    assert a is not None and b is not None
    assert table.covers(a, b) is covers


@pytest.mark.parametrize(("canonical", "name"), ALL_NAMES,
                         ids=[f"{c}:{n}" for c, n in ALL_NAMES])
def test_every_name_resolves_to_its_canonical_name(canonical: str, name: str) -> None:
    table = load_synonyms()
    assert table.canonical(name) == canonical
    assert canonical in table.group_of(name)


def test_no_name_is_in_two_groups() -> None:
    owner: dict[str, str] = {}
    for group in RAW_GROUPS:
        for name in group:
            key = normalize_term(name)
            assert owner.setdefault(key, group[0]) == group[0], (
                f"{name!r} is in the groups of {owner[key]!r} and {group[0]!r}"
            )


@pytest.mark.parametrize(("canonical", "name"), ALL_NAMES,
                         ids=[f"{c}:{n}" for c, n in ALL_NAMES])
def test_every_name_is_found_in_running_text(canonical: str, name: str) -> None:
    """Written as in the table, each name is found, and it yields only its own group."""
    found = load_synonyms().find(f"Is {name} relevant here?")
    assert [group[0] for _, group in found] == [canonical]


def test_case_sensitive_names_are_in_the_table() -> None:
    table = load_synonyms()
    assert CASE_SENSITIVE
    for name in CASE_SENSITIVE:
        assert table.canonical(name) is not None, name


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("Does TRAIL kill ALL blasts?", "ALL", id="ALL-capitals"),
        pytest.param("TRAIL in pediatric (ALL) samples", "ALL", id="ALL-in-brackets"),
        pytest.param("Is OS longer with aponermin?", "overall survival", id="OS-capitals"),
        pytest.param("MM cells resist TRAIL", "MM", id="MM-capitals"),
        pytest.param("KILLER/DR5 expression", "DR5", id="KILLER/DR5"),
        pytest.param("Does IFN induce TRAIL?", "interferon", id="IFN-capitals"),
    ],
)
def test_acronyms_match_in_capitals(text: str, canonical: str) -> None:
    assert canonical in [group[0] for _, group in load_synonyms().find(text)]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("Do all cells die after TRAIL?", "ALL", id="all-cells"),
        pytest.param("All of them responded", "ALL", id="All-sentence-start"),
        pytest.param("Does the os matter?", "overall survival", id="os-lowercase"),
        pytest.param("tumours of 5 mm", "MM", id="mm-unit"),
        pytest.param("natural killer activity", "DR5", id="killer-lowercase"),
        pytest.param("a lit cell", "DcR1", id="lit-lowercase"),
    ],
)
def test_acronyms_do_not_match_in_lower_case(text: str, canonical: str) -> None:
    assert canonical not in [group[0] for _, group in load_synonyms().find(text)]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("trail-r2 levels", "DR5", id="lowercase-hyphen"),
        pytest.param("TRAIL R2 levels", "DR5", id="space-for-hyphen"),
        pytest.param("TRAIL\u2011R2 levels", "DR5", id="non-breaking-hyphen"),
        pytest.param("Acute Myeloid Leukaemia", "AML", id="british-title-case"),
        pytest.param("NF-\u03baB activation", "NF-\u03baB", id="greek-kappa"),
        pytest.param("Apo2L.0 was given", "dulanermin", id="name-with-dot"),
        pytest.param("Is DR5 expressed?", "DR5", id="before-question-mark"),
    ],
)
def test_names_match_across_spellings(text: str, canonical: str) -> None:
    assert canonical in [group[0] for _, group in load_synonyms().find(text)]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("non-Hodgkin's lymphoma", "NHL", id="apostrophe"),
        pytest.param("non-Hodgkin\u2019s lymphoma", "NHL", id="curly-apostrophe"),
        pytest.param("Hodgkins lymphoma", "Hodgkin lymphoma", id="no-apostrophe"),
        pytest.param("an IAP antagonist", "SMAC mimetic", id="acronym-inside-longer-name"),
    ],
)
def test_one_name_gives_one_group(text: str, canonical: str) -> None:
    assert [group[0] for _, group in load_synonyms().find(text)] == [canonical]


def test_longest_name_wins() -> None:
    found = load_synonyms().find("death receptor 5 on myeloma cells")
    assert [hit for hit, _ in found] == ["death receptor 5", "myeloma"]


def test_expand_adds_every_name_of_each_group_once() -> None:
    table = load_synonyms()
    extra = table.expand("DR5 and TRAIL-R2 in AML")
    assert extra == [*table.group_of("DR5"), *table.group_of("AML")]
    assert "TNFRSF10B" in extra and "acute myeloid leukemia" in extra
    assert table.expand("sourdough bread") == []


def test_query_concepts_group_synonyms_into_one_concept() -> None:
    concepts = query_concepts("Does DR5 matter in AML?")
    dr5, aml, matter = concepts[0], concepts[1], concepts[2]
    assert dr5[0] == ("dr5",)  # the question's own wording comes first
    assert ("trailr2", "trail", "r2") in dr5 and ("tnfrsf10b",) in dr5
    assert aml[0] == ("aml",) and ("acut", "myeloid", "leukemia") in aml
    assert matter == (("matter",),)
    assert len(concepts) == 3


def test_query_concepts_without_expansion_keep_only_the_words() -> None:
    assert query_concepts("Does DR5 matter in AML?", expand=False) == [
        (("dr5",),), (("matter",),), (("aml",),),
    ]


def test_lowercase_all_is_an_ordinary_word_in_queries() -> None:
    concepts = query_concepts("Do all ALL blasts respond?")
    flat = [alt for concept in concepts for alt in concept]
    assert ("acut", "lymphoblast", "leukemia") in flat


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        pytest.param([["DR5"]], "at least two names", id="one-name"),
        pytest.param([["DR5", "TRAIL-R2"], ["TRAIL R2", "KILLER"]], "two groups",
                     id="name-in-two-groups"),
        pytest.param([["DR5", " "]], "at least two names", id="blank-name"),
        pytest.param({"colour": [["red", "rouge"]]}, "unknown synonym kind", id="bad-kind"),
    ],
)
def test_bad_tables_are_refused(groups: list[list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_table(groups)
