"""Choosing the answer's sentences from the scored candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.answer.candidates import CandidatePool
from rag.answer.features import is_framing, novelty_of, question_vocabulary
from rag.answer.question import expected_cues, sentence_cues
from rag.retrieve.hybrid import Concept
from rag.settings import AnswerSettings
from rag.store.lexical import tokenize

__all__ = ["select_sentences"]


def select_sentences(pool: CandidatePool, scores: np.ndarray, question: str,
                     settings: AnswerSettings, concepts: Sequence[Concept] = (), *,
                     preferred_docs: Sequence[str] = ()) -> list[int]:
    """The best sentence of the first preferred document present (else of the best-retrieved
    document), then sentences that add a missing answer cue or question word."""
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


def _is_duplicate(pool: CandidatePool, i: int, chosen: list[int], threshold: float) -> bool:
    words = set(tokenize(pool.candidates[i].text))
    for j in chosen:
        other = set(tokenize(pool.candidates[j].text))
        if words and len(words & other) / len(words) >= threshold:
            return True
    return False
