"""The evidence behind an answer: a one-line summary of the cited study designs, and the
optional clinical-first ordering.

:func:`summarize_evidence` counts the cited documents by evidence level (strongest first),
with their years and, for human studies, their diseases, all from metadata:

    Evidence: 1 phase 3 trial in multiple myeloma (2023), 2 in vitro studies (2003–2009);
    no human data for acute myeloid leukemia.

The closing clause names each disease of the question that no cited human study covers
(synonyms and broader terms count: a trial in AML covers a question about leukemia).

Clinical first (``answer.clinical_first``, off by default) does two things, both measured in
the README: retrieved passages from human studies move ahead of others whose relevance is
within ``answer.clinical_margin`` of the top passage's (so the answer leads with the
best-retrieved clinical document when one is about as relevant), and clinical sentences get
``answer.clinical_bonus`` logits in sentence selection. Both scale with the level: full for a
meta-analysis, 0.6 of it for an observational study, nothing for preclinical work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rag.ingest.evidence import (
    CLINICAL_LEVELS,
    EVIDENCE_LEVELS,
    EvidenceLevel,
    evidence_of,
    evidence_rank,
)
from rag.retrieve.hybrid import Retrieval
from rag.retrieve.synonyms import SynonymTable, load_synonyms
from rag.settings import AnswerSettings
from rag.store.snapshot import IndexSnapshot
from rag.types import Answer, Citation, ConstraintCoverage

__all__ = ["clinical_bonus", "clinical_weight", "doc_level", "join_words", "prefer_clinical",
           "summarize_evidence", "with_summary"]

_NOUNS = {
    "meta-analysis": ("meta-analysis", "meta-analyses"),
    "phase-3": ("phase 3 trial", "phase 3 trials"),
    "randomized-phase-2": ("randomized phase 2 trial", "randomized phase 2 trials"),
    "phase-1-2": ("phase 1\u20132 trial", "phase 1\u20132 trials"),
    "observational": ("observational/biomarker study", "observational/biomarker studies"),
    "in-vivo": ("in vivo study", "in vivo studies"),
    "in-vitro": ("in vitro study", "in vitro studies"),
    "mechanism": ("mechanism study", "mechanism studies"),
    "review": ("narrative review", "narrative reviews"),
    "unknown": ("source of unknown design", "sources of unknown design"),
}


def summarize_evidence(citations: Sequence[Citation],
                       coverage: Sequence[ConstraintCoverage] = (), *,
                       metadata: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """One line on the study designs behind ``citations``; "" when nothing is cited.

    ``metadata`` maps a cited doc_id to its metadata (diseases, title, MeSH terms); ``coverage``
    gives the question's diseases (kind "disease").

    >>> from rag.types import Citation
    >>> cite = Citation(1, "d", "d#0", "T", "", "s", 0, 1, 1.0, year=2009, evidence="in-vitro")
    >>> summarize_evidence([cite])
    'Evidence: 1 in vitro study (2009).'
    """
    if not citations:
        return ""
    metadata = metadata or {}
    docs: dict[str, Citation] = {}
    for citation in citations:
        docs.setdefault(citation.doc_id, citation)
    by_level: dict[str, list[Citation]] = {}
    for citation in docs.values():
        level = citation.evidence if citation.evidence in _NOUNS else "unknown"
        by_level.setdefault(level, []).append(citation)
    parts = [_group(level, by_level[level], metadata)
             for level in EVIDENCE_LEVELS if level in by_level]
    line = "Evidence: " + ", ".join(parts)
    lacking = _without_human_data(coverage, [c for c in docs.values()
                                             if c.evidence in CLINICAL_LEVELS], metadata)
    if lacking:
        line += "; no human data for " + join_words(lacking, "or")
    return line + "."


def with_summary(answer: Answer, snap: IndexSnapshot) -> Answer:
    """``answer`` with its evidence summary, from the index's metadata of the cited sources."""
    metadata = {c.doc_id: _meta(snap, c.doc_id) for c in answer.citations}
    return replace(answer, evidence_summary=summarize_evidence(
        answer.citations, answer.coverage, metadata=metadata))


def doc_level(snap: IndexSnapshot, doc_id: str) -> EvidenceLevel:
    """The evidence level of an indexed document (cached on the snapshot)."""
    key = ("evidence_level", doc_id)
    found = snap.derived.get(key)
    if found is None:
        found = evidence_of(_meta(snap, doc_id))
        snap.derived[key] = found
    return found


def clinical_weight(level: str) -> float:
    """1.0 for a meta-analysis, 0.9 phase 3, 0.8 randomized phase 2, 0.7 phase 1–2,
    0.6 observational; 0 for everything without human data."""
    return 1.0 - 0.1 * evidence_rank(level) if level in CLINICAL_LEVELS else 0.0


def prefer_clinical(found: Retrieval, snap: IndexSnapshot,
                    settings: AnswerSettings) -> Retrieval:
    """The same passages, human studies moved ahead of others within ``clinical_margin`` of
    the top passage's score (a fraction of it), then renumbered."""
    if not found.passages:
        return found
    top = max(abs(p.score) for p in found.passages) or 1.0
    keyed = [(p.score / top + settings.clinical_margin
              * clinical_weight(doc_level(snap, p.doc_id).level), -i)
             for i, p in enumerate(found.passages)]
    order = sorted(range(len(found.passages)), key=lambda i: keyed[i], reverse=True)
    passages = [replace(found.passages[i], rank=n) for n, i in enumerate(order, start=1)]
    return replace(found, passages=passages, rows=[found.rows[i] for i in order])


def clinical_bonus(doc_ids: Sequence[str], snap: IndexSnapshot,
                   settings: AnswerSettings) -> np.ndarray:
    """Logits added to each candidate sentence (by its document) when clinical_first is on."""
    if not settings.clinical_first:
        return np.zeros(len(doc_ids))
    return np.array([settings.clinical_bonus * clinical_weight(doc_level(snap, d).level)
                     for d in doc_ids])


def _meta(snap: IndexSnapshot, doc_id: str) -> dict[str, Any]:
    record = snap.docs.get(doc_id)
    return {**record.meta, "title": record.title} if record is not None else {}


def _group(level: str, cited: list[Citation], metadata: Mapping[str, Mapping[str, Any]]) -> str:
    singular, plural = _NOUNS[level]
    text = f"{len(cited)} {singular if len(cited) == 1 else plural}"
    if level in CLINICAL_LEVELS:
        diseases: list[str] = []
        for citation in cited:
            diseases.extend(_strings(metadata.get(citation.doc_id, {}).get("diseases")))
        diseases = list(dict.fromkeys(diseases))
        if diseases:
            shown = diseases[:2] + ([f"{len(diseases) - 2} more"] if len(diseases) > 2 else [])
            text += " in " + join_words(shown)
    years = sorted({c.year for c in cited if isinstance(c.year, int)})
    if years:
        text += f" ({years[0]})" if len(years) == 1 else f" ({years[0]}\u2013{years[-1]})"
    return text


def _without_human_data(coverage: Sequence[ConstraintCoverage], clinical: Sequence[Citation],
                        metadata: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The question's diseases that no cited human study covers."""
    table = load_synonyms()
    lacking = []
    for item in coverage:
        if item.kind != "disease":
            continue
        if item.covered and any(c.doc_id == item.doc_id for c in clinical):
            continue
        wanted = table.groups_in(item.label)
        if not any(_covers(metadata.get(c.doc_id, {}), c.title, wanted, table)
                   for c in clinical):
            lacking.append(item.label)
    return list(dict.fromkeys(lacking))


def _covers(meta: Mapping[str, Any], title: str, wanted: set[int], table: SynonymTable) -> bool:
    text = " ; ".join([title, *_strings(meta.get("diseases")), *_strings(meta.get("mesh"))])
    have = table.groups_in(text)
    return any(table.covers(g, w) for g in have for w in wanted)


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [str(v) for v in items if isinstance(v, str) and v.strip()]


def join_words(items: Sequence[str], word: str = "and") -> str:
    """``join_words(["AML", "CLL", "AML", "MM"])`` -> ``"AML, CLL and MM"`` (each once)."""
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
