"""Cleaning: the canonical text every offset points into, and sentence spans within it."""

from __future__ import annotations

from itertools import pairwise

import pytest

from rag.ingest.cleaning import clean_text, sentence_spans, slugify


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("Apo-\nptosis is induced", "Apoptosis is induced", id="hyphen-across-lines"),
        pytest.param("DR5-\nAgonist", "DR5- Agonist", id="hyphen-kept-before-capital"),
        pytest.param("TRAIL  \t binds\u00a0DR5", "TRAIL binds DR5", id="spaces-collapsed"),
        pytest.param("a wrapped\nline of\ntext", "a wrapped line of text", id="lines-reflowed"),
        pytest.param("one\n\n\n\n two", "one\n\ntwo", id="paragraphs-one-blank-line"),
        pytest.param("crlf\r\nline\r\rnext", "crlf line\n\nnext", id="crlf-and-cr"),
        pytest.param("zero\u200bwidth\x00 and\x07 bell\ufeff", "zerowidth and bell",
                     id="control-characters-dropped"),
        pytest.param("\ufb01broblasts \u2460", "fibroblasts 1", id="nfkc"),
        pytest.param("Intro text\n- first item\n- second item", "Intro text\n\n- first item\n\n"
                     "- second item", id="list-items-own-paragraph"),
        pytest.param("   \n \n\t", "", id="blank"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_clean_text_without_reflow_keeps_lines() -> None:
    assert clean_text("line one\nline  two\n\npara", reflow=False) == "line one\nline two\n\npara"


def test_clean_text_is_idempotent() -> None:
    raw = "Apo-\nptosis  in\nCLL.\n\n\n- item\n\u00a0Text\ufb01 end."
    once = clean_text(raw)
    assert clean_text(once) == once


def test_sentence_spans_respect_abbreviations() -> None:
    text = ("TRAIL binds DR5 (Fig. 1). Smith et al. showed it kills AML cells, e.g. HL-60 and "
            "U937 cells vs. controls. J. Smith agreed! Is DR4 needed? Yes")
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "TRAIL binds DR5 (Fig. 1).",
        "Smith et al. showed it kills AML cells, e.g. HL-60 and U937 cells vs. controls.",
        "J. Smith agreed!",
        "Is DR4 needed?",
        "Yes",
    ]


def test_sentence_spans_end_at_paragraphs() -> None:
    text = "A heading without a stop\n\nFirst sentence. Second one.\nThird line"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "A heading without a stop", "First sentence.", "Second one.", "Third line"
    ]


def test_sentence_spans_of_a_range_are_absolute() -> None:
    text = "Skip this. Keep this one. And this."
    start = text.index("Keep")
    spans = sentence_spans(text, start, len(text))
    assert [text[a:b] for a, b in spans] == ["Keep this one.", "And this."]
    assert spans[0][0] == start


def test_sentence_spans_are_trimmed_and_ordered() -> None:
    text = clean_text("  First one.   Second  one!\n\n\n  (Third) one? \"Quoted.\" Last")
    spans = sentence_spans(text)
    assert spans == sorted(spans)
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start
    for a, b in spans:
        assert text[a:b] == text[a:b].strip() and b > a


def test_sentence_spans_of_empty_text() -> None:
    assert sentence_spans("") == []
    assert sentence_spans("   ") == []


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("TRAIL & DR5 (1999)", "trail-dr5-1999"),
        ("Étude sur l'apoptose", "etude-sur-l-apoptose"),
        ("---", "doc"),
        ("x" * 100, "x" * 60),
    ],
)
def test_slugify(value: str, slug: str) -> None:
    assert slugify(value) == slug
