"""Plain text, PubMed-page text (the seed format) and Markdown with YAML front matter."""

from __future__ import annotations

import re
from typing import Any

import yaml

from rag.errors import DocumentLoadError
from rag.ingest.cleaning import slugify
from rag.ingest.loaders.common import (
    assemble,
    coerce_doi,
    coerce_year,
    decode_text,
    default_doc_id,
)
from rag.settings import LoaderSettings
from rag.types import Document

_ID_LINE = re.compile(r"^\s*-\s*(PMID|PMCID|DOI)\s*:\s*(\S+)\s*$", re.I)
# Lines that end the content of a PubMed page: everything after them is page furniture.
_FURNITURE_STOP = re.compile(
    r"^(Figures|References|Publication types|LinkOut - more resources|Full Text Sources|"
    r"MeSH terms|Substances|Similar articles|Cited by|Grants and funding|Related information|"
    r"Comment in|Supplementary concepts|Associated data)\s*$",
    re.I,
)
_FURNITURE_LINE = re.compile(
    r"^(Copyright\b|©|\(c\)\s|Conflict of interest( statement)?\b|Declaration of competing|"
    r"Competing interests\b|The authors declare\b|Published by\b)",
    re.I,
)
_SECTION_LINE = re.compile(
    r"^(Abstract|Background|Objectives?|Aims?|Methods?|Design|Results?|Conclusions?|"
    r"Introduction|Discussion|Summary|Purpose|Findings|Interpretation)\s*:?\s*$",
    re.I,
)


def load_text(data: bytes, name: str, settings: LoaderSettings) -> list[Document]:
    text = decode_text(data, name)
    lines = text.splitlines()
    head = lines[:12]
    if any(_ID_LINE.match(line) for line in head):
        return [_load_pubmed_page(lines, name, settings)]
    return [
        assemble(
            [("", text, None)],
            name=name,
            doc_id=default_doc_id(name),
            meta={"title": _first_line(text) or default_doc_id(name)},
            doc_type="text",
            max_chars=settings.max_chars,
        )
    ]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _load_pubmed_page(lines: list[str], name: str, settings: LoaderSettings) -> Document:
    """A PubMed record saved as text: title, ``- PMID:`` lines, abstract, page furniture."""
    meta: dict[str, Any] = {}
    title = next((ln.strip() for ln in lines if ln.strip()), "")
    meta["title"] = title
    parts: list[tuple[str, str, int | None]] = []
    section = ""
    buffer: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        id_match = _ID_LINE.match(line)
        if id_match:
            meta[id_match.group(1).lower()] = id_match.group(2).rstrip(".")
            continue
        if _FURNITURE_STOP.match(stripped):
            break
        if not stripped or stripped == title or _FURNITURE_LINE.match(stripped):
            continue
        if stripped.lower().startswith("keywords:"):
            meta["keywords"] = [k.strip(" .") for k in stripped[9:].split(";") if k.strip(" .")]
        if _SECTION_LINE.match(stripped):
            if buffer:
                parts.append((section, "\n".join(buffer), None))
            section, buffer = stripped.rstrip(":"), []
            continue
        buffer.append(stripped + "\n")  # each line of a PubMed page is its own paragraph
    if buffer:
        parts.append((section, "\n".join(buffer), None))
    doc_id = f"pmid-{meta['pmid']}" if meta.get("pmid") else default_doc_id(name)
    return assemble(
        parts, name=name, doc_id=doc_id, meta=meta, doc_type="pubmed-page",
        max_chars=settings.max_chars,
    )


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_LIST_FIELDS = ("authors", "diseases", "agents", "topics", "tags", "keywords", "mesh")
_STRING_FIELDS = ("id", "title", "source", "journal", "pmid", "pmcid", "doi", "url", "evidence",
                  "provenance")


def load_markdown(data: bytes, name: str, settings: LoaderSettings) -> list[Document]:
    block, text = split_front_matter(decode_text(data, name))
    meta = parse_front_matter(block, name) if block is not None else {}
    parts: list[tuple[str, str, int | None]] = []
    section = ""
    buffer: list[str] = []
    for line in text.splitlines():
        heading = _MD_HEADING.match(line)
        if heading:
            if buffer:
                parts.append((section, "\n".join(buffer), None))
            section, buffer = _strip_inline(heading.group(2)), []
            if heading.group(1) == "#" and "title" not in meta:
                meta["title"] = section
            continue
        if _MD_LIST.match(line):
            buffer.append("")  # each list item becomes its own paragraph
            line = _MD_LIST.sub("", line)
        buffer.append(_strip_inline(line))
    if buffer:
        parts.append((section, "\n".join(buffer), None))
    doc_id = slugify(str(meta["id"])) if meta.get("id") else default_doc_id(name)
    meta.setdefault("title", doc_id)
    return [
        assemble(
            parts, name=name, doc_id=doc_id, meta=meta, doc_type="markdown",
            max_chars=settings.max_chars,
        )
    ]


def _strip_inline(line: str) -> str:
    line = _MD_LINK.sub(r"\1", line)
    return _MD_EMPHASIS.sub(r"\2", line)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """A note's YAML front matter block (None when there is none) and the body after it."""
    match = _FRONT_MATTER.match(text)
    return (match.group(1), text[match.end():]) if match else (None, text)


def parse_front_matter(block: str, name: str) -> dict[str, Any]:
    """Parse and type-check YAML front matter; a bad field is an error naming it."""
    try:
        raw = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        raise DocumentLoadError(name, f"front matter is not valid YAML{line}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DocumentLoadError(name, "front matter must be a mapping of fields")
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if value is None:
            continue
        if key in _STRING_FIELDS:
            if isinstance(value, (dict, list)):
                raise DocumentLoadError(name, f"front matter field {key!r} must be text")
            meta[key] = str(value).strip()
        elif key == "year":
            year = coerce_year(value)
            if year is None:
                raise DocumentLoadError(name, f"front matter field 'year' is not a year: {value!r}")
            meta[key] = year
        elif key in _LIST_FIELDS:
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, (dict, list)) for v in items):
                raise DocumentLoadError(name, f"front matter field {key!r} must be a list of text")
            meta[key] = [str(v).strip() for v in items if str(v).strip()]
        else:
            meta[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
    if "pmid" in meta and not meta["pmid"].isdigit():
        raise DocumentLoadError(name, f"front matter field 'pmid' must be digits: {meta['pmid']!r}")
    if "doi" in meta:
        doi = coerce_doi(meta["doi"])
        if doi is None:
            raise DocumentLoadError(name, "front matter field 'doi' is not a DOI (10.xxxx/...): "
                                    f"{meta['doi']!r}")
        meta["doi"] = doi
    return meta
