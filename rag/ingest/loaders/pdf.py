"""PDF via pypdf: one section per page, so every chunk keeps its page number."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from rag.errors import DocumentLoadError
from rag.ingest.loaders.common import assemble, coerce_year, default_doc_id
from rag.settings import LoaderSettings
from rag.types import Document

# Values PDF writers fill in when the author gave none (reportlab, word processors).
_PLACEHOLDERS = {"", "untitled", "untitled document", "anonymous", "unknown"}
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+[^\s\"<>.,;)])")


def load_pdf(data: bytes, name: str, settings: LoaderSettings) -> list[Document]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a core dependency
        raise DocumentLoadError(name, "PDF support needs pypdf: pip install pypdf") from exc
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentLoadError(name, "not a PDF file (no %PDF header)")
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _decrypt(reader):
            raise DocumentLoadError(name, "encrypted PDF: a password is needed to read it")
        n_pages = len(reader.pages)
        if n_pages > settings.max_pdf_pages:
            raise DocumentLoadError(
                name,
                f"PDF has {n_pages} pages, above the limit of {settings.max_pdf_pages} "
                "(setting loader.max_pdf_pages)",
            )
        pages = [(f"page {i}", page.extract_text() or "", i)
                 for i, page in enumerate(reader.pages, start=1)]
        info: Any = reader.metadata or {}
    except DocumentLoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError, IndexError, AssertionError, ZeroDivisionError) as exc:
        raise DocumentLoadError(name, f"corrupt or unreadable PDF ({type(exc).__name__})") from exc
    except Exception as exc:
        raise DocumentLoadError(name, f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(text.strip() for _, text, _ in pages):
        raise DocumentLoadError(name, "PDF has no text layer (a scan?); run OCR on it first")
    meta = _pdf_meta(info, pages, name)
    return [
        assemble(
            pages, name=name, doc_id=default_doc_id(name), meta=meta, doc_type="pdf",
            max_chars=settings.max_chars,
        )
    ]


def _decrypt(reader: Any) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _pdf_meta(info: Any, pages: list[tuple[str, str, int]], name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    title = str(info.get("/Title") or "").strip()
    first_text = pages[0][1] if pages else ""
    if title.lower() in _PLACEHOLDERS:
        lines = [ln.strip() for ln in first_text.splitlines() if len(ln.strip()) > 8]
        title = lines[0][:200] if lines else default_doc_id(name)
    meta["title"] = title
    author = str(info.get("/Author") or "").strip()
    if author.lower() not in _PLACEHOLDERS:
        meta["authors"] = [a.strip() for a in re.split(r";|,\s(?=[A-Z])", author) if a.strip()]
    year = coerce_year(info.get("/CreationDate"))
    if year:
        meta["year"] = year
    doi = _DOI.search(first_text)
    if doi:
        meta["doi"] = doi.group(1)
    return meta
