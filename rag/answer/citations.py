"""Citations: one sentence of an indexed document, with its exact span and its reference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rag.ingest.chunking import section_at
from rag.ingest.evidence import evidence_of
from rag.store.snapshot import IndexSnapshot
from rag.types import Citation

__all__ = ["make_citation", "with_marker"]

_END = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)$")


def make_citation(n: int, snap: IndexSnapshot, *, chunk_row: int, start: int, end: int,
                  score: float) -> Citation:
    """Citation ``n`` for the sentence at ``start:end`` of the document behind ``chunk_row``.

    The snippet is cut from the chunk text, which is the document's cleaned text at the same
    offsets, so ``snippet == document.text[start:end]``.
    """
    chunk = snap.chunks[chunk_row]
    record = snap.docs[chunk.doc_id]
    meta = record.meta
    snippet = chunk.text[start - chunk.start: end - chunk.start]
    section = section_at(record.sections, [s.start for s in record.sections], start)
    authors = meta.get("authors") or []
    evidence = evidence_of(meta)
    return Citation(
        n=n, doc_id=chunk.doc_id, chunk_id=chunk.chunk_id, title=record.title,
        source=str(meta.get("source") or _reference(meta, record.title)),
        snippet=snippet, start=start, end=end, score=score,
        pmid=_opt(meta.get("pmid")), doi=_opt(meta.get("doi")), url=_opt(meta.get("url")),
        section=section.title if section else chunk.section,
        page=section.page if section else chunk.page,
        authors=", ".join(authors) if isinstance(authors, list) else str(authors),
        journal=str(meta.get("journal") or ""),
        year=meta.get("year") if isinstance(meta.get("year"), int) else None,
        evidence=evidence.level, evidence_reason=evidence.reason,
    )


def with_marker(snippet: str, n: int) -> str:
    """``"TRAIL binds DR5."`` -> ``"TRAIL binds DR5 [1]."``"""
    match = _END.search(snippet)
    if match:
        return f"{snippet[: match.start()]} [{n}]{match.group(1)}"
    return f"{snippet} [{n}]"


def _reference(meta: Mapping[str, Any], title: str) -> str:
    authors = meta.get("authors") or []
    lead = (authors[0] + (" et al" if len(authors) > 1 else "")) if authors else ""
    parts = [str(p).rstrip(".") for p in (lead, title, meta.get("journal"), meta.get("year")) if p]
    return ". ".join(parts) + "." if parts else ""


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
