"""Citation export: the references behind an answer, or the library's documents, as BibTeX,
RIS, CSL-JSON or Markdown, for reference managers.

>>> answer = rag.ask("Why are primary CLL cells resistant to TRAIL?")   # doctest: +SKIP
>>> print(to_bibtex(references_from_answer(answer, rag)))                # doctest: +SKIP
>>> print(export_text("ris", references_from_library(rag, {"disease": "CLL"})))  # doctest: +SKIP

Values come from each document's metadata. The library's notes carry one ``source`` citation
string instead of separate fields; :func:`parse_source` reads authors, title, journal, year,
volume, issue and pages out of it only where the pattern is clear and leaves the rest empty.
Text is escaped for each format, so a hostile title stays literal text: no LaTeX command or
unbalanced brace in BibTeX, no line break (and so no extra tag) in RIS, no markup in Markdown.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rag.ingest.evidence import evidence_label, evidence_of
from rag.interfaces.citation_strings import (
    ET_AL,
    cited_sentences,
    doi_name,
    doi_url,
    flat_text,
    name_parts,
    parse_source,
    pubmed_url,
    safe_url,
)
from rag.types import Answer, Citation

if TYPE_CHECKING:
    from rag.facade import RAG

__all__ = ["ET_AL", "EXPORT_FORMATS", "EXPORT_SUFFIX", "Reference", "export_text",
           "parse_source", "references_from_answer", "references_from_library", "to_bibtex",
           "to_csljson", "to_markdown", "to_ris"]

EXPORT_FORMATS = ("bibtex", "ris", "csljson", "markdown")
EXPORT_SUFFIX = {"bibtex": ".bib", "ris": ".ris", "csljson": ".json", "markdown": ".md"}


@dataclass(frozen=True, slots=True)
class Reference:
    """One cited document. Empty strings (and ``year=None``) mean "not known".

    ``authors`` are display names as the source gives them ("Xia Z"), ending with
    :data:`ET_AL` when the list was cut short; ``evidence`` is a study-design key of
    ``rag.ingest.evidence`` ("phase-3", "in-vitro", ..., "unknown"); ``notes`` are the answer
    sentences that cite the document, quoted: ``“TRAIL binds DR5.” [1]``.
    """

    key: str
    title: str
    authors: tuple[str, ...] = ()
    journal: str = ""
    year: int | None = None
    volume: str = ""
    issue: str = ""
    pages: str = ""
    pmid: str = ""
    doi: str = ""
    url: str = ""
    evidence: str = "unknown"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["authors"], data["notes"] = list(self.authors), list(self.notes)
        return data


# -- building references ---------------------------------------------------------------------


def references_from_answer(answer: Answer, rag: RAG) -> list[Reference]:
    """One reference per cited document, in citation order, each with the answer sentences
    that cite it as quoted notes."""
    docs = rag.snapshot.docs
    sentences = cited_sentences(answer)
    order: list[str] = []
    cited: dict[str, list[Citation]] = {}
    for c in answer.citations:
        if c.doc_id not in cited:
            order.append(c.doc_id)
        cited.setdefault(c.doc_id, []).append(c)
    refs = []
    for doc_id in order:
        first = cited[doc_id][0]
        record = docs.get(doc_id)
        meta = record.meta if record is not None else _citation_meta(first)
        notes: dict[str, list[int]] = {}
        for c in cited[doc_id]:
            notes.setdefault(sentences.get(c.n) or c.snippet, []).append(c.n)
        quoted = tuple(f"“{flat_text(s)}” [{', '.join(map(str, ns))}]" for s, ns in notes.items())
        refs.append(_reference(meta, record.title if record else first.title,
                               evidence=first.evidence or "unknown", notes=quoted))
    return _with_keys(refs)


def references_from_library(rag: RAG, filters: Mapping[str, Any] | None = None
                            ) -> list[Reference]:
    """Every document of the index, or those passing ``filters`` (the keys of ``ask``:
    disease, agent, evidence, topic, doc_id, year), in document-id order."""
    refs = [_reference(d.meta, d.title, evidence=evidence_of(d.meta).level)
            for d in rag.documents(filters)]
    return _with_keys(refs)


def _reference(meta: Mapping[str, Any], fallback_title: str, *, evidence: str,
               notes: tuple[str, ...] = ()) -> Reference:
    parsed = parse_source(str(meta.get("source") or ""))
    authors = meta.get("authors")
    names = ([str(a) for a in authors] if isinstance(authors, list)
             else authors.split(", ") if isinstance(authors, str) and authors
             else list(parsed.get("authors", ())))
    year = meta.get("year")  # a number, as the loaders store it
    pmid = flat_text(meta.get("pmid"))
    pmid = pmid if pubmed_url(pmid) else ""
    return Reference(
        key="", title=flat_text(parsed.get("title") or meta.get("title") or fallback_title),
        authors=tuple(n for n in (flat_text(a) for a in names) if n),
        journal=flat_text(meta.get("journal") or parsed.get("journal")),
        year=year if isinstance(year, int) and not isinstance(year, bool) else parsed.get("year"),
        volume=flat_text(meta.get("volume") or parsed.get("volume")),
        issue=flat_text(meta.get("issue") or parsed.get("issue")),
        pages=flat_text(meta.get("pages") or parsed.get("pages")),
        pmid=pmid, doi=doi_name(meta.get("doi")),
        url=safe_url(meta.get("url")) or pubmed_url(pmid) or "",
        evidence=evidence or "unknown", notes=notes,
    )


def _citation_meta(c: Citation) -> dict[str, Any]:
    """The metadata a citation carries, for a document no longer in the index."""
    return {"title": c.title, "authors": c.authors, "journal": c.journal, "year": c.year,
            "pmid": c.pmid, "doi": c.doi, "url": c.url, "source": c.source}


def _with_keys(refs: list[Reference]) -> list[Reference]:
    """Give each reference a stable citation key, ``surname + year + title word``, with a
    letter appended to repeats: ``xia2023aponermin``, ``xia2023aponerminb``."""
    used: set[str] = set()
    tried: dict[str, int] = {}  # suffixes a base has used up, so repeats do not start over
    out = []
    for ref in refs:
        base = _key_base(ref)
        count = tried.get(base, 0)
        while (key := _suffixed(base, count)) in used:
            count += 1
        tried[base] = count
        used.add(key)
        out.append(replace(ref, key=key))
    return out


def _suffixed(base: str, count: int) -> str:
    """``base``, then ``base`` + b, c ... z, then + 27, 28 ..."""
    return base if count == 0 else base + (chr(ord("a") + count) if count < 26 else str(count + 1))


_STOPWORDS = frozenset("a an the of in on for and or with to by from at as is are".split())


def _key_base(ref: Reference) -> str:
    first = next((a for a in ref.authors if a != ET_AL), "")
    parts = name_parts(first)
    surname = _ascii_word(parts[0] if parts else first.split(" ")[0] if first else "")
    words = (_ascii_word(w) for w in ref.title.split())
    word = next((w for w in words if len(w) > 2 and w not in _STOPWORDS), "")
    if not surname:  # no author: the title word leads, so a key never starts with a digit
        return f"{word}{ref.year or ''}" or "ref"
    return f"{surname}{ref.year or ''}{word}"


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


# -- formats ---------------------------------------------------------------------------------


def export_text(fmt: str, refs: Sequence[Reference]) -> str:
    """``refs`` in one of :data:`EXPORT_FORMATS` (Markdown: a numbered reference list)."""
    writers = {"bibtex": to_bibtex, "ris": to_ris, "csljson": to_csljson,
               "markdown": _references_markdown}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; use {', '.join(EXPORT_FORMATS)}")
    return writers[fmt](refs)


def _design_keyword(ref: Reference) -> str:
    return "" if ref.evidence in ("", "unknown") else evidence_label(ref.evidence)


def _note_lines(ref: Reference) -> list[str]:
    keyword = _design_keyword(ref)
    return ([f"Study design: {keyword}"] if keyword else []) + list(ref.notes)


def _page_range(pages: str) -> tuple[str, str]:
    first, _, last = re.sub(r"\s*[-–]+\s*", "-", pages).partition("-")
    return first, last


_BIB_CHARS = {"\\": r"\textbackslash{}", "%": r"\%", "&": r"\&", "#": r"\#", "_": r"\_",
              "$": r"\$", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_BIB_SPECIAL = re.compile(r"[{}\\%&#_$~^]")  # what _bib changes
_VERBATIM_SPECIAL = re.compile(r"[{}\\ ]")  # what _bib_verbatim may change


def _paired_braces(text: str) -> set[int]:
    """Positions of the braces in ``text`` that pair up."""
    paired: set[int] = set()
    opened: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            paired.update((opened.pop(), i))
    return paired


def _bib(value: Any) -> str:
    """Text for a BibTeX field read as literal text: LaTeX specials escaped, braces as
    ``\\{ \\}`` where they pair up and as ``\\textbraceleft{}`` / ``\\textbraceright{}``
    where they do not (BibTeX counts ``\\{`` as a brace), so a field never ends early and
    never runs a command."""
    text = flat_text(value)
    if not _BIB_SPECIAL.search(text):
        return text
    paired = _paired_braces(text)
    return "".join(
        ("\\" + ch if i in paired else r"\textbraceleft{}" if ch == "{" else r"\textbraceright{}")
        if ch in "{}" else _BIB_CHARS.get(ch, ch)
        for i, ch in enumerate(text))


def _bib_verbatim(value: Any) -> str:
    """A URL or DOI (verbatim fields) as it is, but with unpaired braces, backslashes and
    spaces percent-encoded, so that the field cannot end early."""
    text = flat_text(value)
    if not _VERBATIM_SPECIAL.search(text):
        return text
    paired = _paired_braces(text)
    return "".join(quote(ch) if (ch in "{}" and i not in paired) or ch in "\\ " else ch
                   for i, ch in enumerate(text))


def _bib_name(name: str) -> str:
    if name == ET_AL:
        return "others"
    parts = name_parts(name)
    return f"{_bib(parts[0])}, {_bib(parts[1])}" if parts else "{" + _bib(name) + "}"


def to_bibtex(refs: Iterable[Reference]) -> str:
    """``@article`` entries; PMID in ``pmid``, study design in ``keywords`` and ``note``,
    the quoted answer sentences in ``note``."""
    entries = []
    for ref in refs:
        fields = [
            ("author", " and ".join(_bib_name(a) for a in ref.authors)),
            ("title", "{" + _bib(ref.title) + "}" if ref.title else ""),
            ("journal", _bib(ref.journal)), ("year", str(ref.year or "")),
            ("volume", _bib(ref.volume)), ("number", _bib(ref.issue)),
            ("pages", "--".join(p for p in _page_range(_bib(ref.pages)) if p)),
            ("doi", _bib_verbatim(ref.doi)), ("pmid", ref.pmid), ("url", _bib_verbatim(ref.url)),
            ("keywords", _bib(_design_keyword(ref))),
            ("note", "; ".join(_bib(n) for n in _note_lines(ref))),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        key = re.sub(r"[^A-Za-z0-9_:.-]", "", ref.key) or "ref"  # a key cannot end the entry
        entries.append(f"@article{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


def _ris_name(name: str) -> str:
    parts = name_parts(name)
    return f"{parts[0]}, {parts[1]}" if parts else flat_text(name)


def to_ris(refs: Iterable[Reference]) -> str:
    """RIS records (``TY  - JOUR`` ... ``ER  - ``); PMID in ``AN``; one line per tag, so
    text holding line breaks cannot start a tag of its own."""
    records = []
    for ref in refs:
        first, last = _page_range(ref.pages)
        tags = [("TY", "JOUR"), ("ID", ref.key)]
        tags += [("AU", _ris_name(a)) for a in ref.authors if a != ET_AL]
        tags += [("TI", ref.title), ("T2", ref.journal), ("JO", ref.journal),
                 ("PY", str(ref.year or "")), ("VL", ref.volume), ("IS", ref.issue),
                 ("SP", first), ("EP", last), ("DO", ref.doi), ("UR", ref.url),
                 ("AN", ref.pmid), ("KW", _design_keyword(ref))]
        tags += [("N1", n) for n in _note_lines(ref)]
        lines = [f"{tag}  - {flat_text(value)}" for tag, value in tags if flat_text(value)]
        records.append("\n".join([*lines, "ER  - "]) + "\n")
    return "\n".join(records)


def _csl_author(name: str) -> dict[str, str]:
    parts = name_parts(name)
    return {"family": parts[0], "given": parts[1]} if parts else {"literal": name}


def to_csljson(refs: Iterable[Reference]) -> str:
    """A CSL-JSON array of ``article-journal`` items (as Zotero, pandoc and citeproc read)."""
    items = []
    for ref in refs:
        item: dict[str, Any] = {"id": ref.key, "type": "article-journal", "title": ref.title}
        authors = [_csl_author(a) for a in ref.authors if a != ET_AL]
        optional: dict[str, Any] = {
            "author": authors, "container-title": ref.journal,
            "issued": {"date-parts": [[ref.year]]} if ref.year else None,
            "volume": ref.volume, "issue": ref.issue, "page": ref.pages, "PMID": ref.pmid,
            "DOI": ref.doi, "URL": ref.url, "keyword": _design_keyword(ref),
            "note": "\n".join(_note_lines(ref)),
        }
        item.update({k: v for k, v in optional.items() if v})
        items.append(item)
    text = json.dumps(items, ensure_ascii=False, indent=2)
    # the same JSON, but safe to paste inside an HTML <script> block too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~])")


def _md(value: Any) -> str:
    """Text that Markdown shows literally: no links, HTML, emphasis or code."""
    return _MD_SPECIAL.sub(r"\\\1", flat_text(value))


def _md_links(pmid: str | None, doi: str | None) -> str:
    links = [f"[PMID {pmid}]({url})" for url in [pubmed_url(pmid)] if url]
    links += [f"[doi:{_md(doi_name(doi))}]({url})" for url in [doi_url(doi)] if url]
    return " ".join(links)


def to_markdown(answer: Answer) -> str:
    """The answer with a numbered reference list (one entry per ``[n]``), for notes."""
    pieces = re.split(r"(\[\d+\])", flat_text(answer.text))
    text = "".join(p if re.fullmatch(r"\[\d+\]", p) else _MD_SPECIAL.sub(r"\\\1", p)
                   for p in pieces)
    lines = [f"**Q:** {_md(answer.question)}", "", text, ""]
    if answer.evidence_summary:
        lines += [f"*{_md(answer.evidence_summary)}*", ""]
    for c in answer.citations:
        level = c.evidence or "unknown"
        design = "" if level == "unknown" else f" — {_md(evidence_label(level))}"
        links = _md_links(c.pmid, c.doi)
        lines.append(f"{c.n}. {_md(c.source)}" + (f" {links}" if links else "") + design
                     + f" — “{_md(c.snippet)}”")
    return "\n".join(lines).rstrip() + "\n"


def _references_markdown(refs: Iterable[Reference]) -> str:
    lines = []
    for i, ref in enumerate(refs, start=1):
        where = ";".join(p for p in (str(ref.year or ""), ref.volume) if p)
        where += (f"({ref.issue})" if ref.issue else "") + (f":{ref.pages}" if ref.pages else "")
        authors = ", ".join(ref.authors)
        parts = [_md(p).rstrip(".") for p in (authors, ref.title) if p]
        parts += [f"*{_md(ref.journal)}*"] if ref.journal else []
        parts += [_md(where)] if where else []
        links = _md_links(ref.pmid, ref.doi)
        design = _design_keyword(ref)
        lines.append(f"{i}. " + ". ".join(parts) + "." + (f" {links}" if links else "")
                     + (f" — {_md(design)}" if design else ""))
        lines += [f"   - {_md(n)}" for n in ref.notes]
    return "\n".join(lines) + ("\n" if lines else "")
