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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.citations import make_citation, with_marker
from rag.answer.constraints import (
    Constraint,
    DocEvidence,
    check_coverage,
    closest_doc,
    covered_by,
    doc_evidence,
    find_constraints,
)
from rag.answer.features import (
    FEATURES,
    Candidate,
    feature_matrix,
    is_framing,
    load_sentence_model,
    novelty_of,
    question_vocabulary,
)
from rag.answer.question import classify_question, expected_cues, sentence_cues
from rag.embed.embedder import Embedder
from rag.errors import QueryError
from rag.retrieve.hybrid import Concept, Retrieval, retrieve
from rag.settings import AnswerSettings, Settings
from rag.store.lexical import tokenize
from rag.store.snapshot import IndexSnapshot
from rag.types import Answer, Citation, ConstraintCoverage, Passage

if TYPE_CHECKING:
    import httpx

__all__ = ["NO_EVIDENCE", "CandidatePool", "answer_question", "compose_extractive",
           "gather_candidates", "select_sentences"]

NO_EVIDENCE = (
    "The library holds no good evidence for this question. The closest passages are listed "
    "below, but they do not answer it."
)
_MIN_WORDS = 5
_DENSE = FEATURES.index("dense")
_COVERAGE = FEATURES.index("coverage")


@dataclass(frozen=True)
class CandidatePool:
    """Candidate sentences and where each one lives in the index."""

    candidates: list[Candidate]
    chunk_rows: list[int]
    sentence_rows: list[int]
    spans: list[tuple[int, int]]


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
    retrieved = time.perf_counter()
    answer = compose_extractive(found, snap, settings, k=k)
    if mode == "llm":
        from rag.answer.llm import synthesize

        answer = synthesize(answer, found, snap, embedder, settings, transport=llm_transport)
    done = time.perf_counter()
    timings = {"retrieve": (retrieved - started) * 1000, "answer": (done - retrieved) * 1000,
               "total": (done - started) * 1000}
    return Answer(question=answer.question, text=answer.text, supported=answer.supported,
                  citations=answer.citations, passages=answer.passages, timings_ms=timings,
                  support_score=answer.support_score, mode=answer.mode, notes=answer.notes,
                  coverage=answer.coverage)


def compose_extractive(found: Retrieval, snap: IndexSnapshot, settings: Settings, *,
                       k: int) -> Answer:
    passages = tuple(found.passages[:k])
    pool = gather_candidates(found, snap, settings.answer)
    if not pool.candidates:
        return Answer(found.query, NO_EVIDENCE, False, (), passages, {}, 0.0)
    matrix = feature_matrix(classify_question(found.query), found.query, found.concepts,
                            concept_weights(found.concepts, snap), pool.candidates)
    model_path = settings.answer.model
    scores = load_sentence_model(str(model_path) if model_path else None).logits(matrix)
    chosen = select_sentences(pool, scores, found.query, settings.answer, found.concepts)
    support = float(np.max(0.6 * matrix[:, _DENSE] + 0.4 * matrix[:, _COVERAGE]))
    docs = _doc_evidence(pool, scores, snap)
    constraints = find_constraints(found.query, is_unseen=lambda t: snap.lexical.idf(t) == 0.0)
    coverage = check_coverage(constraints, docs)
    if support < settings.answer.min_support:
        return Answer(found.query, NO_EVIDENCE, False, (), passages, {}, support,
                      coverage=_coverage(coverage, ()))
    if any(not c.covered for c in coverage):
        return _missing_answer(found.query, constraints, coverage, docs, pool, scores, snap,
                               passages, support)
    citations = _cite(pool, chosen, scores, snap)
    text = " ".join(with_marker(c.snippet, c.n) for c in citations)
    return Answer(found.query, text, True, tuple(citations), passages, {}, support,
                  coverage=_coverage(coverage, citations))


def concept_weights(concepts: list[Concept], snap: IndexSnapshot) -> list[float]:
    """A concept weighs as much as the rarest token (IDF) of the question's own wording; a
    word the library never uses weighs most, since no sentence can cover it."""
    unseen = snap.lexical.idf_unseen()
    weights = []
    for concept in concepts:
        idf = max((snap.lexical.idf(t) for t in concept[0]), default=0.0) if concept else 0.0
        weights.append(idf if idf > 0 else unseen)
    return weights


def gather_candidates(found: Retrieval, snap: IndexSnapshot,
                      settings: AnswerSettings) -> CandidatePool:
    """Sentences of the top passages, and of the top documents around them."""
    ranked_docs: list[str] = []
    for row in found.rows:
        doc_id = snap.chunks[row].doc_id
        if doc_id not in ranked_docs:
            ranked_docs.append(doc_id)
    passage_rank = {row: rank for rank, row in enumerate(found.rows)}
    rows: list[int] = list(found.rows[: settings.passages_considered])
    for doc_id in ranked_docs[: settings.documents_considered]:
        doc_rows = snap.doc_chunk_rows(doc_id)
        if len(doc_rows) <= settings.whole_document_chunks:
            rows.extend(doc_rows)
        else:  # a long document: its retrieved chunks and their neighbours
            hits = [i for i, r in enumerate(doc_rows) if r in passage_rank]
            rows.extend(doc_rows[j] for i in hits for j in (i - 1, i, i + 1)
                        if 0 <= j < len(doc_rows))
    pool = CandidatePool([], [], [], [])
    seen: set[tuple[str, int]] = set()
    doc_rank = {doc_id: rank for rank, doc_id in enumerate(ranked_docs)}
    unique = list(dict.fromkeys(rows))
    passage_dense = (snap.chunk_vectors(unique) @ found.query_vector).tolist() if unique else []
    for chunk_row, closeness in zip(unique, passage_dense, strict=True):
        _add_chunk(pool, chunk_row, snap, found.query_vector, seen,
                   passage_rank.get(chunk_row, len(found.rows)),
                   doc_rank.get(snap.chunks[chunk_row].doc_id, len(ranked_docs)), closeness)
    _link_neighbours(pool)
    return pool


def _add_chunk(pool: CandidatePool, chunk_row: int, snap: IndexSnapshot, qvec: np.ndarray,
               seen: set[tuple[str, int]], rank: int, doc_rank: int,
               passage_dense: float) -> None:
    chunk = snap.chunks[chunk_row]
    record = snap.docs[chunk.doc_id]
    sent_rows = snap.sentences.rows_of_chunk(chunk_row)
    if not len(sent_rows):
        return
    dense = snap.sentences.vectors(sent_rows) @ qvec
    length = max((s.end for s in record.sections), default=chunk.end) or 1
    section_starts = sorted(s.start for s in record.sections)
    terms = _doc_terms(record.title, record.meta)
    for sent_row, cosine in zip(sent_rows.tolist(), dense.tolist(), strict=True):
        start, end = snap.sentences.span(sent_row)
        if (chunk.doc_id, start) in seen:
            continue
        seen.add((chunk.doc_id, start))
        text = chunk.text[max(0, start - chunk.start): end - chunk.start]
        if len(text.split()) < _MIN_WORDS:
            continue
        section = _section_title(record.sections, start) or chunk.section
        pool.candidates.append(Candidate(
            text=text, section=section, doc_id=chunk.doc_id, passage_rank=rank,
            doc_rank=doc_rank, dense=cosine, passage_dense=passage_dense,
            position=start / length, first_in_section=start in section_starts,
            doc_terms=terms))
        pool.chunk_rows.append(chunk_row)
        pool.sentence_rows.append(sent_row)
        pool.spans.append((start, end))


def _section_title(sections: Sequence[Any], offset: int) -> str:
    title = ""
    for section in sections:
        if section.start <= offset:
            title = section.title
    return title


def _doc_terms(title: str, meta: Mapping[str, Any]) -> str:
    parts = [title]
    for key in ("agents", "diseases", "mesh", "keywords"):
        value = meta.get(key) or []
        parts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return " ".join(parts)


def _link_neighbours(pool: CandidatePool) -> None:
    """Give each candidate the text of the sentences before and after it in its document."""
    by_doc: dict[str, list[int]] = {}
    for i, cand in enumerate(pool.candidates):
        by_doc.setdefault(cand.doc_id, []).append(i)
    for members in by_doc.values():
        members.sort(key=lambda i: pool.spans[i][0])
        for position, i in enumerate(members):
            prev_text = pool.candidates[members[position - 1]].text if position else ""
            next_text = (pool.candidates[members[position + 1]].text
                         if position + 1 < len(members) else "")
            cand = pool.candidates[i]
            pool.candidates[i] = Candidate(
                cand.text, cand.section, cand.doc_id, cand.passage_rank, cand.doc_rank,
                cand.dense, cand.passage_dense, cand.position, cand.first_in_section,
                cand.doc_terms, prev_text, next_text)


def select_sentences(pool: CandidatePool, scores: np.ndarray, question: str,
                     settings: AnswerSettings, concepts: Sequence[Concept] = ()) -> list[int]:
    """The best sentence, then sentences that add a missing answer cue or question word."""
    known = question_vocabulary(question, concepts)
    # Sentences that frame a study or only restate the question rank lower: they are on topic
    # but answer nothing.
    cues = expected_cues(question)
    scores = np.array([
        score - settings.framing_penalty * is_framing(cand.text)
        - settings.restatement_penalty * (novelty_of(set(tokenize(cand.text)), known)
                                          < settings.min_novelty)
        - settings.missing_cue_penalty * bool(cues and not sentence_cues(cand.text, cues))
        for cand, score in zip(pool.candidates, scores.tolist(), strict=True)])
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    # The answer starts in the best-retrieved document: retrieval weighs the whole question
    # against whole passages, while the sentence scorer tells the answer from its neighbours.
    top_doc = min(pool.candidates, key=lambda c: (c.doc_rank, c.passage_rank)).doc_id
    first = next(i for i in order if pool.candidates[i].doc_id == top_doc)
    chosen = [first]
    have = set(sentence_cues(pool.candidates[first].text, cues))
    words = len(pool.candidates[first].text.split())
    q_tokens = set(tokenize(question))
    have_tokens = set(tokenize(pool.candidates[first].text)) & q_tokens
    shortlist = order[: settings.selection_pool]
    anchor = pool.candidates[first].doc_id
    while len(chosen) < settings.max_sentences:
        best, best_value = None, -np.inf
        for i in shortlist:
            same_doc = pool.candidates[i].doc_id == anchor
            window = settings.score_window if same_doc else settings.other_document_window
            if i in chosen or scores[i] < scores[first] - window:
                continue
            text = pool.candidates[i].text
            if words + len(text.split()) > settings.max_words:
                continue
            if _is_duplicate(pool, i, chosen, settings.duplicate_overlap):
                continue
            new_cues = len(sentence_cues(text, cues) - have)
            new_words = len((set(tokenize(text)) & q_tokens) - have_tokens)
            value = (scores[i] + settings.cue_bonus * new_cues
                     + settings.word_bonus * new_words
                     + settings.same_document_bonus * same_doc)
            if value > best_value:
                best, best_value = i, value
        if best is None:
            break
        chosen.append(best)
        text = pool.candidates[best].text
        have |= sentence_cues(text, cues)
        have_tokens |= set(tokenize(text)) & q_tokens
        words += len(text.split())
    # The answer leads with the best sentence; the others follow grouped by source, in
    # reading order.
    first_seen: dict[str, int] = {}
    for position, i in enumerate(chosen):
        first_seen.setdefault(pool.candidates[i].doc_id, position)
    rest = sorted(chosen[1:], key=lambda i: (first_seen[pool.candidates[i].doc_id],
                                             pool.spans[i][0]))
    return [chosen[0], *rest]


def _is_duplicate(pool: CandidatePool, i: int, chosen: list[int], threshold: float) -> bool:
    words = set(tokenize(pool.candidates[i].text))
    for j in chosen:
        other = set(tokenize(pool.candidates[j].text))
        if words and len(words & other) / len(words) >= threshold:
            return True
    return False


def _cite(pool: CandidatePool, chosen: Sequence[int], scores: np.ndarray,
          snap: IndexSnapshot) -> list[Citation]:
    return [make_citation(n, snap, chunk_row=pool.chunk_rows[i], start=pool.spans[i][0],
                          end=pool.spans[i][1], score=float(scores[i]))
            for n, i in enumerate(chosen, start=1)]


def _doc_evidence(pool: CandidatePool, scores: np.ndarray,
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


def _coverage(coverage: Sequence[Any],
              citations: Sequence[Citation]) -> tuple[ConstraintCoverage, ...]:
    cited: dict[str, int] = {}
    for citation in citations:
        cited.setdefault(citation.doc_id, citation.n)
    return tuple(ConstraintCoverage(c.constraint.kind, c.constraint.label, c.covered,
                                    cited.get(c.doc_id) if c.doc_id else None, c.doc_id)
                 for c in coverage)


def _missing_answer(question: str, constraints: list[Constraint], coverage: Sequence[Any],
                    docs: list[DocEvidence], pool: CandidatePool, scores: np.ndarray,
                    snap: IndexSnapshot, passages: tuple[Passage, ...],
                    support: float) -> Answer:
    """Say what the library lacks, then cite the closest evidence (not as the answer)."""
    closest = closest_doc(constraints, docs)
    in_closest = [i for i, c in enumerate(pool.candidates)
                  if closest is not None and c.doc_id == closest.doc_id]
    pick = max(in_closest or range(len(pool.candidates)), key=lambda i: scores[i])
    citations = _cite(pool, [pick], scores, snap)
    missing = [c.constraint.label for c in coverage if not c.covered
               and not (closest is not None and covered_by(closest, c.constraint))]
    if not missing:  # each part exists, just never together
        missing = [c.constraint.label for c in coverage if not c.covered]
    statement = (f"The library has no evidence on {_describe(constraints)}; missing: "
                 f"{_join(missing)}.")
    record = snap.docs[citations[0].doc_id]
    text = (f"{statement} Closest evidence: {_describe_doc(record.meta, record.title)} "
            f"[{citations[0].n}].")
    # Coverage as the closest document sees it: what it has and what it lacks.
    shown = [type(c)(c.constraint, closest is not None and covered_by(closest, c.constraint),
                     closest.doc_id if closest is not None and covered_by(closest, c.constraint)
                     else None) for c in coverage]
    return Answer(question, text, False, tuple(citations), passages, {}, support,
                  coverage=_coverage(shown, citations))


_ORDER = ("measure", "phase", "agent", "molecule", "term", "disease", "population",
          "procedure", "regulator")


def _describe(constraints: Sequence[Constraint]) -> str:
    """``"overall survival in a phase 3 trial of dulanermin in acute myeloid leukemia"``."""
    by_kind: dict[str, list[str]] = {}
    for c in constraints:
        by_kind.setdefault(c.kind, []).append(c.label)
    head = by_kind.get("agent", []) + by_kind.get("molecule", []) + by_kind.get("term", [])
    parts = [_join(by_kind["measure"])] if "measure" in by_kind else []
    subject = _join(head) if head else ""
    if "phase" in by_kind:
        subject = f"a {_join(by_kind['phase'])} trial" + (f" of {subject}" if subject else "")
    if subject:
        parts.append(("of " if parts else "") + subject)
    for kind, word in (("disease", "in"), ("population", "in"), ("procedure", "with"),
                       ("regulator", "by the")):
        if kind in by_kind:
            parts.append(f"{word} {_join(by_kind[kind])}")
    return " ".join(parts) if parts else "this question"


def _describe_doc(meta: Mapping[str, Any], title: str) -> str:
    evidence = str(meta.get("evidence") or "").strip()
    diseases = meta.get("diseases") or []
    year = meta.get("year")
    if evidence:
        text = f"a {evidence} study"
        if diseases:
            text += f" in {_join([str(d) for d in diseases][:2])}"
        return text + (f" ({year})" if year else "")
    return f"{title}" + (f" ({year})" if year else "")


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
