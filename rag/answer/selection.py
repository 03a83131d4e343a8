"""Choosing the answer's sentences from the scored candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.answer.candidates import CandidatePool
from rag.answer.features import FEATURES
from rag.answer.question import expected_cues, sentence_cues
from rag.settings import AnswerSettings
from rag.store.lexical import tokenize

__all__ = ["select_sentences"]

_FRAMING, _NOVELTY, _CUE_ANY = (FEATURES.index(n) for n in ("framing", "novelty", "cue_any"))


def select_sentences(pool: CandidatePool, scores: np.ndarray, question: str,
                     settings: AnswerSettings, *, matrix: np.ndarray,
                     preferred_docs: Sequence[str] = ()) -> list[int]:
    """The best sentence of the first preferred document present (else of the best-retrieved
    document), then sentences that add a missing answer cue or question word.

    ``matrix`` is the candidates' :func:`~rag.answer.features.feature_matrix` for
    ``question``: selection reads its framing, novelty and cue columns."""
    cues = expected_cues(question)
    scores = _penalized(scores, matrix, bool(cues), settings)
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    # The answer starts in the best-retrieved document: retrieval weighs the whole question
    # against whole passages, while the sentence scorer tells the answer from its neighbours.
    present = {c.doc_id for c in pool.candidates}
    top_doc = next((d for d in preferred_docs if d in present), None) or \
        min(pool.candidates, key=lambda c: (c.doc_rank, c.passage_rank)).doc_id
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


def _penalized(scores: np.ndarray, matrix: np.ndarray, has_cues: bool,
               settings: AnswerSettings) -> np.ndarray:
    """Sentences that frame a study, only restate the question or carry none of the answer
    cues asked for rank lower: they are on topic but answer nothing."""
    framing = matrix[:, _FRAMING] > 0
    # Novelty is a share of a sentence's words, held as float32: compared in float32 it falls
    # below the threshold exactly when the full-precision share does.
    restates = matrix[:, _NOVELTY] < np.float32(settings.min_novelty)
    no_cue = (matrix[:, _CUE_ANY] == 0) & has_cues
    return (np.asarray(scores, dtype=np.float64) - settings.framing_penalty * framing
            - settings.restatement_penalty * restates - settings.missing_cue_penalty * no_cue)


def _is_duplicate(pool: CandidatePool, i: int, chosen: list[int], threshold: float) -> bool:
    words = set(tokenize(pool.candidates[i].text))
    for j in chosen:
        other = set(tokenize(pool.candidates[j].text))
        if words and len(words & other) / len(words) >= threshold:
            return True
    return False
