"""Helpers shared by the loaders: decoding bytes and assembling a document from sections."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from rag.errors import DocumentLoadError
from rag.ingest.cleaning import clean_text, slugify, strip_control
from rag.types import Document, Section

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CP1252_TEXTLIKE = re.compile(r"[\x00-\x08\x0e-\x1f]")


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes: a BOM if present, else UTF-8, else Windows-1252/Latin-1 text, with
    Windows and old Mac line ends turned into ``\n`` (so a note's front matter is found).

    Raises DocumentLoadError for binary data and for bytes that are neither.
    """
    return _unix_lines(_decode(data, name))


def _unix_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, name: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentLoadError(name, f"invalid {encoding} text: {exc.reason}") from exc
    if b"\x00" in data:
        raise DocumentLoadError(name, "contains NUL bytes: binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = ""
    sample = text[:65536]
    non_ascii = sum(1 for ch in sample if ord(ch) > 127)
    if text and not _CP1252_TEXTLIKE.search(sample) and non_ascii <= 0.2 * len(sample):
        return text
    raise DocumentLoadError(
        name,
        f"not valid UTF-8 (byte {utf8_error.start}: {utf8_error.reason}) and not readable as "
        "Latin-1 text; save it as UTF-8",
    ) from utf8_error


def assemble(
    parts: Sequence[tuple[str, str, int | None]],
    *,
    name: str,
    doc_id: str,
    meta: dict[str, Any],
    doc_type: str,
    reflow: bool = True,
    max_chars: int,
) -> Document:
    """Join ``(section title, raw text, page)`` parts into one cleaned document text."""
    chunks: list[str] = []
    sections: list[Section] = []
    pos = 0
    for title, raw, page in parts:
        body = clean_text(raw, reflow=reflow)
        if not body:
            continue
        if chunks:
            pos += 2  # the "\n\n" joiner
        sections.append(Section(title=strip_control(title).strip(), start=pos, end=pos + len(body),
                                page=page))
        chunks.append(body)
        pos += len(body)
    text = "\n\n".join(chunks)
    if not text.strip():
        raise DocumentLoadError(name, "no text found")
    if len(text) > max_chars:
        raise DocumentLoadError(
            name, f"text is {len(text):,} characters, above the limit of {max_chars:,}"
        )
    return Document(
        doc_id=doc_id, text=text, sections=tuple(sections), meta=_with_doi(_printable(meta)),
        doc_type=doc_type,
    )


def _printable(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata without control characters: titles and names are printed by the CLI and the
    UI, where an escape sequence from a hostile file must not reach a terminal."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return strip_control(value).strip()
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in meta.items()}


def _with_doi(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with its DOI as a bare DOI name, or without it when it is not one: every
    loader stores the same form, so links and exports never have to guess."""
    if "doi" not in meta:
        return meta
    doi = coerce_doi(meta["doi"])
    rest = {key: value for key, value in meta.items() if key != "doi"}
    return {**rest, "doi": doi} if doi else rest


def default_doc_id(name: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", name.replace("\\", "/").rsplit("/", 1)[-1])
    return slugify(stem)


def coerce_year(value: Any) -> int | None:
    match = re.search(r"\b(1[89]\d\d|20\d\d|2100)\b", str(value)) if value is not None else None
    return int(match.group(1)) if match else None


_DOI_PREFIX = re.compile(r"^(?:doi:\s*|(?P<url>https?://(?:dx\.)?doi\.org/))", re.IGNORECASE)
_DOI_NAME = re.compile(r"10\.\d+(?:\.\d+)*/\S+")  # "10." registrant "/" suffix


def coerce_doi(value: Any) -> str | None:
    """A DOI name (``10.1000/xyz``) from a bare name, ``doi:10.1000/xyz`` or a doi.org URL
    (whose percent-escapes are undone); None for anything else, a DOI with spaces or control
    characters included.

    >>> coerce_doi("https://doi.org/10.1000/ab%281%29")
    '10.1000/ab(1)'
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    prefix = _DOI_PREFIX.match(text)
    if prefix:
        text = text[prefix.end():]
        if prefix.group("url"):
            text = unquote(text)
    return text if _DOI_NAME.fullmatch(text) and text.isprintable() else None
