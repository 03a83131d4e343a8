"""HTML: visible text by section, Highwire/Dublin Core citation metadata. Scripts, styles and
embedded frames are dropped; nothing is fetched and no markup survives into the text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from rag.ingest.loaders.common import (
    assemble,
    coerce_doi,
    coerce_year,
    decode_text,
    default_doc_id,
)
from rag.settings import LoaderSettings
from rag.types import Document

_SKIP = {"script", "style", "noscript", "iframe", "object", "embed", "svg", "math", "template",
         "head", "nav", "footer", "button", "select", "form", "canvas", "audio", "video"}
_BLOCK = {"p", "div", "li", "ul", "ol", "table", "tr", "td", "th", "section", "article", "br",
          "blockquote", "pre", "dd", "dt", "dl", "figcaption", "figure", "header", "main",
          "aside", "caption", "hr", "address"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "source", "wbr"}
_META_MAP = {
    "citation_title": "title", "dc.title": "title",
    "citation_doi": "doi", "dc.identifier": "doi",
    "citation_pmid": "pmid", "citation_journal_title": "journal",
    "citation_publication_date": "year", "citation_date": "year", "dc.date": "year",
    "citation_author": "authors", "dc.creator": "authors",
}
_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_\-]+)", re.I)


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, list[str]]] = [("", [])]
        self.meta: dict[str, Any] = {}
        self.title = ""
        self._skip_depth = 0
        self._skip_stack: list[str] = []
        self._heading: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            self._read_meta(dict(attrs))
            return
        if tag == "title":
            self._in_title = True
        if tag == "body":  # HTML may omit </head>; the body always ends it
            self._skip_stack.clear()
            return
        if tag in _SKIP and tag not in _VOID:
            self._skip_stack.append(tag)
            return
        if self._skip_stack:
            return
        if tag in _HEADINGS:
            self._heading = []
        elif tag in _BLOCK:
            self.parts[-1][1].append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip_stack:
            if tag == self._skip_stack[-1]:
                self._skip_stack.pop()
            return
        if tag in _HEADINGS and self._heading is not None:
            heading = " ".join("".join(self._heading).split())
            self._heading = None
            if heading:
                self.parts.append((heading, []))
        elif tag in _BLOCK:
            self.parts[-1][1].append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip_stack:
            return
        if self._heading is not None:
            self._heading.append(data)
        else:
            self.parts[-1][1].append(data)

    def _read_meta(self, attrs: dict[str, str | None]) -> None:
        key = (attrs.get("name") or attrs.get("property") or "").lower()
        value = (attrs.get("content") or "").strip()
        field = _META_MAP.get(key)
        if not field or not value:
            return
        if field == "authors":
            self.meta.setdefault("authors", []).append(value)
        elif field == "year":
            year = coerce_year(value)
            if year:
                self.meta.setdefault("year", year)
        elif field == "doi":
            doi = coerce_doi(value)
            if doi:
                self.meta.setdefault("doi", doi)
        else:
            self.meta.setdefault(field, value)


def load_html(data: bytes, name: str, settings: LoaderSettings) -> list[Document]:
    text = _decode_html(data, name)
    parser = _Extractor()
    parser.feed(text)
    parser.close()
    meta = dict(parser.meta)
    title = " ".join(parser.title.split())
    meta.setdefault("title", title or (parser.parts[1][0] if len(parser.parts) > 1 else ""))
    if not meta["title"]:
        meta["title"] = default_doc_id(name)
    parts = [(heading, "".join(pieces), None) for heading, pieces in parser.parts]
    return [
        assemble(
            parts, name=name, doc_id=default_doc_id(name), meta=meta, doc_type="html",
            max_chars=settings.max_chars,
        )
    ]


def _decode_html(data: bytes, name: str) -> str:
    declared = _CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data, name)
