"""The data objects that cross module boundaries.

All are frozen dataclasses with a ``to_dict()`` that gives the JSON shape used by the CLI's
``--json``, the HTTP API and the saved metadata. Hot loops work on numpy arrays instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ConstraintCoverage",
    "Document",
    "IndexReport",
    "Passage",
    "Section",
    "SkippedFile",
    "Span",
]

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of a document's cleaned text (``start``/``end`` index into it)."""

    title: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One loaded document: cleaned text, its sections and metadata.

    ``text`` is the cleaned text that every chunk and citation offset points into.
    ``meta`` holds title, authors, year, journal, pmid, pmcid, doi, url and free tags
    (diseases, agents, evidence, topics, mesh ...).
    """

    doc_id: str
    text: str
    sections: tuple[Section, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    source_path: str = ""
    file_hash: str = ""
    doc_type: str = "text"

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.doc_id)

    def to_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        data = {
            "doc_id": self.doc_id,
            "title": self.title,
            "doc_type": self.doc_type,
            "source_path": self.source_path,
            "file_hash": self.file_hash,
            "meta": self.meta,
            "sections": [asdict(s) for s in self.sections],
        }
        if with_text:
            data["text"] = self.text
        return data


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document, ready to embed. ``start:end`` index into the document text;
    ``sentences`` are document-level sentence spans that start inside the chunk."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    section: str = ""
    page: int | None = None
    sentences: tuple[Span, ...] = ()
    n_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sentences"] = [list(s) for s in self.sentences]
        return data


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with its rank and fused score."""

    rank: int
    doc_id: str
    chunk_id: str
    title: str
    text: str
    score: float
    section: str = ""
    page: int | None = None
    start: int = 0
    end: int = 0
    dense_score: float = 0.0
    lexical_score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "text": self.text,
            "score": round(self.score, 6),
            "section": self.section,
            "page": self.page,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """Citation ``n``: ``snippet`` equals the document text at ``start:end``."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    source: str
    snippet: str
    start: int
    end: int
    score: float
    pmid: str | None = None
    doi: str | None = None
    url: str | None = None
    section: str = ""
    page: int | None = None
    authors: str = ""
    journal: str = ""
    year: int | None = None
    evidence: str = "unknown"  # a key of rag.ingest.evidence.EVIDENCE_LEVELS
    evidence_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 6)
        return data


@dataclass(frozen=True, slots=True)
class ConstraintCoverage:
    """One part of the question (a disease, agent, trial phase, population, measure ...) and
    whether the cited evidence covers it; ``citation`` is the ``n`` of a citation from the
    covering document, when one is cited."""

    kind: str
    label: str
    covered: bool
    citation: int | None = None
    doc_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer: text with ``[n]`` markers, its citations and the passages behind it.

    ``coverage`` lists the question's constraints and which of them the evidence covers; when
    a key constraint is missing, ``supported`` is false and ``text`` says what is missing
    before quoting the closest evidence. ``evidence_summary`` is one line on the study designs
    behind the citations ("Evidence: 1 phase 3 trial (2023), 2 in vitro studies (2003–2009)");
    empty when nothing is cited.
    """

    question: str
    text: str
    supported: bool
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    timings_ms: dict[str, float]
    support_score: float = 0.0
    mode: str = "extractive"
    notes: tuple[str, ...] = ()
    coverage: tuple[ConstraintCoverage, ...] = ()
    evidence_summary: str = ""

    @property
    def missing(self) -> tuple[ConstraintCoverage, ...]:
        return tuple(c for c in self.coverage if not c.covered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "supported": self.supported,
            "support_score": round(self.support_score, 4),
            "mode": self.mode,
            "notes": list(self.notes),
            "coverage": [c.to_dict() for c in self.coverage],
            "evidence_summary": self.evidence_summary,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """An input that was not indexed, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What one indexing run did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    chunks: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    index_dir: str = ""

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_dir": self.index_dir,
            "added": list(self.added),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
            "skipped": [s.to_dict() for s in self.skipped],
            "counts": {
                "added": len(self.added),
                "updated": len(self.updated),
                "removed": len(self.removed),
                "unchanged": len(self.unchanged),
                "skipped": len(self.skipped),
            },
            "chunks": self.chunks,
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 1),
        }
