"""Answers with sentence-level citations, without an LLM by default.

How an extractive answer is composed:

1. **Candidates**: the sentences of the top passages, plus every sentence of the top few
   documents (short documents whole, long ones around their retrieved passages), because the
   answer often sits next to the passage that names the topic.
2. **Scoring**: a learned logistic model (``rag/data/answer_model.json``, trained by
   ``python -m rag.eval.training``) scores each sentence on features from
   :mod:`rag.answer.features`: closeness to the question, what it adds beyond the question's
   words, whether it holds the kind of answer asked for (a figure, a mechanism, a name ...),
   its section's role, its neighbours and its document's rank.
3. **Selection**: the best sentence of the best-retrieved document (sentences that frame a
   study, restate the question or carry none of the answer cues asked for rank lower), then
   up to two more that add an answer cue the answer still lacks (a count after a rate, say),
   stay on topic and do not repeat it; about 80 words at most.
4. **Coverage**: :mod:`rag.answer.constraints` lists what the question fixes (disease, agent, trial
   phase, population, measure, unknown names) and checks that one document covers them
   together. If one is missing the answer is not supported: it says what the library lacks
   and cites the closest evidence instead of presenting it as the answer.

``supported`` is also false when the best evidence scores below ``answer.min_support``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.candidates import CandidatePool, concept_weights, gather_candidates
from rag.answer.citations import with_marker
from rag.answer.constraints import (
    Constraint,
    Coverage,
    DocEvidence,
    check_coverage,
    covered_by,
    find_constraints,
)
from rag.answer.features import (
    FEATURES,
    feature_matrix,
    load_sentence_model,
)
from rag.answer.missing import cite, coverage_of, documents_evidence, missing_answer
from rag.answer.question import classify_question
from rag.answer.selection import select_sentences
from rag.answer.summary import clinical_bonus, prefer_clinical, with_summary
from rag.embed.embedder import Embedder
from rag.errors import QueryError
from rag.retrieve.hybrid import Retrieval, retrieve
from rag.settings import AnswerSettings, Settings
from rag.store.snapshot import IndexSnapshot
from rag.types import Answer

if TYPE_CHECKING:
    import httpx

__all__ = ["NO_EVIDENCE", "AnswerPlan", "answer_question", "compose_extractive", "plan_answer"]

NO_EVIDENCE = (
    "The library holds no good evidence for this question. The closest passages are listed "
    "below, but they do not answer it."
)
_DENSE = FEATURES.index("dense")
_COVERAGE = FEATURES.index("coverage")


def answer_question(
    question: str,
    snap: IndexSnapshot,
    embedder: Embedder,
    settings: Settings,
    *,
    k: int,
    filters: Mapping[str, Any] | None = None,
    mode: str = "extractive",
    llm_transport: httpx.BaseTransport | None = None,
) -> Answer:
    if mode not in ("extractive", "llm"):
        raise QueryError(f"unknown answer mode {mode!r}; use 'extractive' or 'llm'")
    started = time.perf_counter()
    depth = max(k, settings.answer.passages_considered)
    found = retrieve(question, snap, embedder, settings.retrieval, k=depth, filters=filters)
    if settings.answer.clinical_first:
        found = prefer_clinical(found, snap, settings.answer)
    retrieved = time.perf_counter()
    answer = compose_extractive(found, snap, settings, k=k, embedder=embedder)
    if mode == "llm":
        from rag.answer.llm import synthesize

        answer = synthesize(answer, found, snap, embedder, settings, transport=llm_transport)
    done = time.perf_counter()
    timings = {"retrieve": (retrieved - started) * 1000, "answer": (done - retrieved) * 1000,
               "total": (done - started) * 1000}
    return replace(answer, timings_ms=timings)


@dataclass(frozen=True)
class AnswerPlan:
    """What the composer settles before it picks sentences: how well the best sentence
    supports an answer, what the question fixes and which documents cover it, and the
    documents the answer should start in. Whether to refuse and where to start do not depend
    on the sentence scores (only the order of ``docs`` does), so the training script replays
    answers with the same plan (:mod:`rag.eval.training`)."""

    support: float
    low_support: bool  # below answer.min_support: no answer at all
    constraints: list[Constraint]  # what the question fixes, name-like words apart
    coverage: list[Coverage]
    docs: list[DocEvidence]  # ordered by their best sentence score
    lead_docs: list[str]  # covering every constraint, those using the question's names first

    @property
    def missing(self) -> bool:
        """A constraint no document covers: the answer says what the library lacks."""
        return any(not c.covered for c in self.coverage)

    @property
    def refused(self) -> bool:
        return self.low_support or self.missing


def plan_answer(query: str, pool: CandidatePool, matrix: np.ndarray, scores: np.ndarray,
                snap: IndexSnapshot, settings: AnswerSettings) -> AnswerPlan:
    """The :class:`AnswerPlan` for ``query`` over the candidates ``pool``."""
    support = float(np.max(0.6 * matrix[:, _DENSE] + 0.4 * matrix[:, _COVERAGE]))
    docs = documents_evidence(pool, scores, snap)
    found = find_constraints(query, is_unseen=lambda t: snap.lexical.idf(t) == 0.0)
    constraints = [c for c in found if c.kind != "name"]
    # The answer starts in a document that covers every part of the question, when one does,
    # and one that also uses the names the question uses before others.
    rank = {c.doc_id: c.doc_rank for c in pool.candidates}
    covering = [d for d in sorted(docs, key=lambda d: rank[d.doc_id])
                if all(covered_by(d, c) for c in constraints)]
    names = [c for c in found if c.kind == "name"]
    named = [d for d in covering if all(covered_by(d, c) for c in names)]
    return AnswerPlan(support, support < settings.min_support, constraints,
                      check_coverage(constraints, docs), docs,
                      [d.doc_id for d in named + covering])


def compose_extractive(found: Retrieval, snap: IndexSnapshot, settings: Settings, *,
                       k: int, embedder: Any = None) -> Answer:
    passages = tuple(found.passages[:k])
    pool = gather_candidates(found, snap, settings.answer, embedder)
    if not pool.candidates:
        return Answer(found.query, NO_EVIDENCE, False, (), passages, {}, 0.0)
    matrix = feature_matrix(classify_question(found.query), found.query, found.concepts,
                            concept_weights(found.concepts, snap), pool.candidates)
    model_path = settings.answer.model
    scores = load_sentence_model(str(model_path) if model_path else None).logits(matrix)
    scores = scores + clinical_bonus([c.doc_id for c in pool.candidates], snap, settings.answer)
    plan = plan_answer(found.query, pool, matrix, scores, snap, settings.answer)
    if plan.low_support:
        return Answer(found.query, NO_EVIDENCE, False, (), passages, {}, plan.support,
                      coverage=coverage_of(plan.coverage, ()))
    if plan.missing:
        return missing_answer(found.query, plan.constraints, plan.coverage, plan.docs, pool,
                              scores, snap, passages, plan.support)
    chosen = select_sentences(pool, scores, found.query, settings.answer, matrix=matrix,
                              preferred_docs=plan.lead_docs)
    citations = cite(pool, chosen, scores, snap)
    text = " ".join(with_marker(c.snippet, c.n) for c in citations)
    return with_summary(Answer(found.query, text, True, tuple(citations), passages, {},
                               plan.support, coverage=coverage_of(plan.coverage, citations)),
                        snap)
