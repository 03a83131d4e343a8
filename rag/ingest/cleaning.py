"""Text cleaning and sentence spans.

``clean_text`` turns extracted text into the canonical form that is stored and cited: unicode
NFKC, control characters dropped, words hyphenated across line breaks joined, runs of spaces
collapsed, wrapped lines re-flowed and paragraphs separated by one blank line.
``sentence_spans`` finds sentences in cleaned text as ``(start, end)`` offsets.
"""

from __future__ import annotations

import re
import unicodedata

from rag.types import Span

__all__ = ["clean_text", "sentence_spans", "slugify", "strip_control"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2028\u2029\ufeff]")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n[ \t]*(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLOCK_START = re.compile(r"^(?:[-*\u2022]\s|\d{1,3}[.)]\s|#{1,6}\s|\|)")


def clean_text(raw: str, *, reflow: bool = True) -> str:
    """Return the canonical cleaned form of ``raw``.

    >>> clean_text("Apo-\\nptosis  is   induced\\nby TRAIL.\\n\\n\\nNew para.")
    'Apoptosis is induced by TRAIL.\\n\\nNew para.'
    """
    text = unicodedata.normalize("NFKC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\t", " ")
    text = _CONTROL.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    text = _SPACES.sub(" ", text)
    paragraphs = []
    for block in re.split(r"\n[ ]*\n", text):
        lines = [line.strip() for line in block.split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            continue
        paragraphs.extend(_reflow(lines) if reflow else ["\n".join(lines)])
    return "\n\n".join(paragraphs)


def strip_control(value: str) -> str:
    """``value`` without control characters (e.g. a terminal escape in a PDF title).

    >>> strip_control("\\x1b[2JTitle\\x07")
    '[2JTitle'
    """
    return _CONTROL.sub("", value.replace("\t", " ").replace("\n", " ").replace("\r", " "))


def _reflow(lines: list[str]) -> list[str]:
    """Join wrapped lines; list items and headings start a paragraph of their own."""
    out: list[str] = []
    for line in lines:
        if out and not _BLOCK_START.match(line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


_ABBREVIATIONS = {
    "al", "e.g", "i.e", "fig", "figs", "vs", "approx", "no", "nos", "dr", "prof", "cf", "ca",
    "resp", "ref", "refs", "vol", "st", "mr", "ms", "eq", "inc", "ltd", "co", "jr", "sr",
    "etc", "var", "sp", "spp", "min", "max", "suppl", "ed", "eds", "dept", "univ", "mol",
}
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space and a plausible start.
_BOUNDARY = re.compile(
    r"[.!?][\"'\u201d\u2019)\]]*"  # the end mark and any closing quotes or brackets
    r"(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9\u0391-\u03a9])"  # then space and a capital or digit
)
_PARAGRAPH = re.compile(r"\n+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]`` as absolute offsets, whitespace trimmed.

    >>> t = "TRAIL binds DR5 (Fig. 1). It kills AML cells, e.g. HL-60. Done"
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['TRAIL binds DR5 (Fig. 1).', 'It kills AML cells, e.g. HL-60.', 'Done']
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    pos = start
    for para in _PARAGRAPH.split(text[start:end]):
        para_start = text.find(para, pos, end) if para else pos
        if para_start < 0:
            para_start = pos
        cut = para_start
        for match in _BOUNDARY.finditer(text, para_start, para_start + len(para)):
            if _is_abbreviation(text, match.start()):
                continue
            spans.append((cut, match.end()))
            cut = match.end()
        spans.append((cut, para_start + len(para)))
        pos = para_start + len(para)
    return [trimmed for span in spans if (trimmed := _trim(text, span)) is not None]


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    if word in _ABBREVIATIONS:
        return True
    # Initials such as "J." in author lists, but not a sentence that ends in "DR5." or "I."
    return len(word) == 1 and word.isalpha() and text[word_start].isupper() and word != "i"


def _trim(text: str, span: Span) -> Span | None:
    a, b = span
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return (a, b) if b > a else None


def slugify(value: str, *, max_length: int = 60) -> str:
    """Lowercase ASCII slug: ``"TRAIL & DR5 (1999)" -> "trail-dr5-1999"``."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-") or "doc"
