"""Coverage of the question's constraints by the evidence, and the answer that says plainly
what the library lacks (then cites the closest evidence, not as the answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.answer.candidates import CandidatePool
from rag.answer.citations import make_citation
from rag.answer.constraints import Constraint, DocEvidence, closest_doc, covered_by, doc_evidence
from rag.answer.summary import join_words, with_summary
from rag.store.snapshot import IndexSnapshot
from rag.types import Answer, Citation, ConstraintCoverage, Passage

__all__ = ["cite", "coverage_of", "documents_evidence", "missing_answer"]


def cite(pool: CandidatePool, chosen: Sequence[int], scores: np.ndarray,
          snap: IndexSnapshot) -> list[Citation]:
    return [make_citation(n, snap, chunk_row=pool.chunk_rows[i], start=pool.spans[i][0],
                          end=pool.spans[i][1], score=float(scores[i]))
            for n, i in enumerate(chosen, start=1)]


def documents_evidence(pool: CandidatePool, scores: np.ndarray,
                  snap: IndexSnapshot) -> list[DocEvidence]:
    """What each candidate document covers, documents ordered by their best sentence."""
    best: dict[str, float] = {}
    for cand, score in zip(pool.candidates, scores.tolist(), strict=True):
        best[cand.doc_id] = max(best.get(cand.doc_id, -np.inf), score)
    out = []
    for doc_id in sorted(best, key=lambda d: -best[d]):
        key = ("doc_evidence", doc_id)
        evidence = snap.derived.get(key)
        if evidence is None:
            record = snap.docs[doc_id]
            texts = [snap.chunks[r].text for r in snap.doc_chunk_rows(doc_id)]
            evidence = doc_evidence(doc_id, texts, {**record.meta, "title": record.title})
            snap.derived[key] = evidence
        out.append(evidence)
    return out


def coverage_of(coverage: Sequence[Any],
              citations: Sequence[Citation]) -> tuple[ConstraintCoverage, ...]:
    cited: dict[str, int] = {}
    for citation in citations:
        cited.setdefault(citation.doc_id, citation.n)
    return tuple(ConstraintCoverage(c.constraint.kind, c.constraint.label, c.covered,
                                    cited.get(c.doc_id) if c.doc_id else None, c.doc_id)
                 for c in coverage)


def missing_answer(question: str, constraints: list[Constraint], coverage: Sequence[Any],
                    docs: list[DocEvidence], pool: CandidatePool, scores: np.ndarray,
                    snap: IndexSnapshot, passages: tuple[Passage, ...],
                    support: float) -> Answer:
    """Say what the library lacks, then cite the closest evidence (not as the answer)."""
    closest = closest_doc(constraints, docs)
    in_closest = [i for i, c in enumerate(pool.candidates)
                  if closest is not None and c.doc_id == closest.doc_id]
    pick = max(in_closest or range(len(pool.candidates)), key=lambda i: scores[i])
    citations = cite(pool, [pick], scores, snap)
    missing = [c.constraint.label for c in coverage if not c.covered
               and not (closest is not None and covered_by(closest, c.constraint))]
    if not missing:  # each part exists, just never together
        missing = [c.constraint.label for c in coverage if not c.covered]
    statement = (f"The library has no evidence on {_describe(constraints)}; missing: "
                 f"{join_words(missing)}.")
    record = snap.docs[citations[0].doc_id]
    text = (f"{statement} Closest evidence: {_describe_doc(record.meta, record.title)} "
            f"[{citations[0].n}].")
    # Coverage as the closest document sees it: what it has and what it lacks.
    shown = [type(c)(c.constraint, closest is not None and covered_by(closest, c.constraint),
                     closest.doc_id if closest is not None and covered_by(closest, c.constraint)
                     else None) for c in coverage]
    return with_summary(Answer(question, text, False, tuple(citations), passages, {}, support,
                               coverage=coverage_of(shown, citations)), snap)


_ORDER = ("measure", "phase", "agent", "molecule", "term", "disease", "population",
          "procedure", "regulator")


def _describe(constraints: Sequence[Constraint]) -> str:
    """``"overall survival in a phase 3 trial of dulanermin in acute myeloid leukemia"``."""
    by_kind: dict[str, list[str]] = {}
    for c in constraints:
        by_kind.setdefault(c.kind, []).append(c.label)
    head = by_kind.get("agent", []) + by_kind.get("molecule", []) + by_kind.get("term", [])
    parts = [join_words(by_kind["measure"])] if "measure" in by_kind else []
    subject = join_words(head) if head else ""
    if "phase" in by_kind:
        subject = f"a {join_words(by_kind['phase'])} trial" + (f" of {subject}" if subject else "")
    if subject:
        parts.append(("of " if parts else "") + subject)
    for kind, word in (("disease", "in"), ("population", "in"), ("procedure", "with"),
                       ("regulator", "by the")):
        if kind in by_kind:
            parts.append(f"{word} {join_words(by_kind[kind])}")
    return " ".join(parts) if parts else "this question"


def _describe_doc(meta: Mapping[str, Any], title: str) -> str:
    evidence = str(meta.get("evidence") or "").strip()
    diseases = meta.get("diseases") or []
    year = meta.get("year")
    if evidence:
        text = f"a {evidence} study"
        if diseases:
            text += f" in {join_words([str(d) for d in diseases][:2])}"
        return text + (f" ({year})" if year else "")
    return f"{title}" + (f" ({year})" if year else "")
