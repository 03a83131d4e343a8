"""Reading plain text for citation export: an NLM-style citation string (``"Xia Z, Leng Y,
et al. Title. BMC Cancer. 2023;23(1):980."``), author names, and the answer sentence behind
each ``[n]`` marker; and the one place PubMed, DOI and source links are made, for the source
panel, the exports and the CLI alike.

Conservative by design: a field is filled only where the pattern is clear, and a string that
does not follow the pattern gives nothing rather than a guess.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote, urlsplit

from rag.ingest.loaders.common import coerce_doi
from rag.types import Answer

__all__ = ["ET_AL", "cited_sentences", "doi_name", "doi_url", "flat_text", "name_parts",
           "parse_source", "pubmed_url", "safe_url"]

ET_AL = "et al."  # last author entry when the source names only the first authors

_INITIALS = r"[A-Z](?:[a-z]?[A-Z]){0,3}[a-z]?"
_PARTICLES = r"(?:(?:de|del|della|di|da|dos|du|van|von|der|den|la|le|ten|ter)\s+)*"
_AUTHOR = rf"{_PARTICLES}[^\W\d_][\w'’-]*(?:\s+[^\W\d_][\w'’-]*)?\s+{_INITIALS}"
_AUTHORS = re.compile(rf"{_AUTHOR}(?:,\s*{_AUTHOR})*(?P<etal>,?\s+et al)?")
_CITE = (r"(?:(?P<year>(?:1[89]|20)\d\d)(?:\s+[A-Z][a-z]{2}(?:\s+\d{1,2})?)?"
         r"(?:;\s*(?P<volume>\d+)(?:\((?P<issue>[^()]+)\))?(?::\s*(?P<pages>\w+(?:[-–]\w+)?))?"
         r"|;\s*issue\s+(?P<issue2>\w+),\s*pp\.\s*(?P<pages2>\w+[-–]\w+))"
         r"|(?P<volume2>\d+)\((?P<issue3>[^()]+)\):\s*(?P<pages3>\w+(?:[-–]\w+)?))")
_TAIL = re.compile(rf"\.\s+(?P<journal>[^.]+?)\.\s+{_CITE}\.?(?:\s*\([^()]*\)\.?)?\s*$")
_SEGMENTS = re.compile(r"(?<!\.)\.\s+")


def parse_source(source: str) -> dict[str, Any]:
    """Fields of an NLM-style citation string, only where its pattern is clear.

    >>> parse_source("Xia Z, Leng Y, et al. Aponermin in myeloma. BMC Cancer. 2023;23(1):980.")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'journal': 'BMC Cancer', 'year': 2023, 'volume': '23', 'issue': '1', 'pages': '980',
     'authors': ('Xia Z', 'Leng Y', 'et al.'), 'title': 'Aponermin in myeloma'}

    A string that is not ``[authors.] title. journal. year;volume(issue):pages.`` (a news
    item, a registry record, two citations run together) gives ``{}``.
    """
    text = " ".join(source.split())
    tail = _TAIL.search(text)
    if not tail:
        return {}
    g = tail.groupdict()
    fields: dict[str, Any] = {"journal": g["journal"].strip()}
    if g["year"]:
        fields["year"] = int(g["year"])
    for name, value in (("volume", g["volume"] or g["volume2"]),
                        ("issue", g["issue"] or g["issue2"] or g["issue3"]),
                        ("pages", g["pages"] or g["pages2"] or g["pages3"])):
        if value:
            fields[name] = value.strip()
    segments = [s for s in _SEGMENTS.split(text[:tail.start()]) if s.strip()]
    authors = _AUTHORS.fullmatch(segments[0]) if segments else None
    if authors:
        names = re.sub(r",?\s+et al$", "", segments.pop(0)).split(",")
        fields["authors"] = (*(n.strip() for n in names), *([ET_AL] if authors["etal"] else []))
    rest = [s for s in segments if not (s.startswith("(") and s.endswith(")"))]
    if len(rest) > 1:  # more than a title before the journal: not a pattern we can read
        return {}
    if rest:
        fields["title"] = rest[0].strip()
    return fields


def name_parts(name: str) -> tuple[str, str] | None:
    """``"Xia Z"`` or ``"Xia, Z"`` -> ``("Xia", "Z")``; ``"van der Berg AB"`` keeps its
    particles; anything less clear (a group, "Castro Alves C", "John Smith") -> None."""
    if name.count(",") == 1:
        family, given = (p.strip() for p in name.split(","))
        return (family, given) if family and given else None
    match = re.fullmatch(rf"({_PARTICLES}[^\W\d_][\w'’-]*)\s+({_INITIALS})", name)
    return (match[1], match[2]) if match else None


def flat_text(value: Any) -> str:
    """One line of printable text: whitespace runs (newlines too) become one space, other
    control characters go."""
    if value is None:
        return ""
    text = " ".join(str(value).split())
    if text.isprintable():  # the common case: nothing to drop
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])*[.!?]?[\"'”’)]*")
_BOUNDARY = re.compile(r"[.!?][\"'”’)]*\s+(?=[A-Z0-9“\"(\[])|\n")


def cited_sentences(answer: Answer) -> dict[int, str]:
    """Citation number -> the answer sentence carrying its marker, without markers."""
    from rag.answer.citations import with_marker  # (keeps importing the CLI light)

    found: dict[int, str] = {}
    for c in answer.citations:  # extractive answers quote the snippet itself
        if with_marker(c.snippet, c.n) in answer.text:
            found[c.n] = c.snippet
    # any other text (a written answer, the "closest evidence" line): the sentence around
    # each marker, from the last sentence boundary before it to the punctuation after it
    text, previous_end = answer.text, 0
    for match in _MARKER.finditer(text):
        if match.start() < previous_end:
            continue
        tail = _SENTENCE_END.match(text, match.start())
        end = tail.end() if tail else match.end()
        head = text[previous_end:match.start()]
        starts = [b.end() for b in _BOUNDARY.finditer(head)]
        sentence = head[starts[-1] if starts else 0:] + text[match.start():end]
        previous_end = end
        for n in (int(x) for x in re.findall(r"\d+", match.group(1))):
            found.setdefault(n, _without_markers(sentence))
    return found


def _without_markers(sentence: str) -> str:
    text = " ".join(_MARKER.sub("", sentence).split())
    return re.sub(r"\s+(?=[.,;:!?])", "", text).lstrip("-*> ")


# -- links ------------------------------------------------------------------------------------


def pubmed_url(pmid: Any) -> str | None:
    """The PubMed page of a PMID (digits only), else None."""
    text = str(pmid).strip() if isinstance(pmid, (str, int)) else ""
    return f"https://pubmed.ncbi.nlm.nih.gov/{text}/" if text.isdigit() else None


def doi_name(doi: Any) -> str:
    """The bare DOI name (``10.1000/xyz``), "" when ``doi`` is not a DOI. The loaders store
    this form; indexes built before they did may hold ``doi:`` names or doi.org URLs."""
    return coerce_doi(doi) or ""


def doi_url(doi: Any) -> str | None:
    """The doi.org link of a DOI, else None. Everything but ``/:;._-`` and alphanumerics is
    percent-encoded, so the link is one safe token in HTML, Markdown, BibTeX and RIS alike
    (parentheses too: a Markdown link would end at ``)``)."""
    name = doi_name(doi)
    return f"https://doi.org/{quote(name, safe='/:;._-')}" if name else None


def safe_url(url: Any) -> str | None:
    """A plain http(s) link with a host, else None (no ``javascript:`` or ``data:`` URLs,
    nothing with spaces or control characters)."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    ok = (parts.scheme in ("http", "https") and parts.netloc and text.isprintable()
          and not any(ch.isspace() for ch in text))
    return text if ok else None
