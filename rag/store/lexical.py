"""Lexical search: BM25 (bm25s) over the same chunks as the dense index.

The tokenizer knows biomedical spelling: hyphenated names give both the joined form and the
parts ("c-FLIP" -> "cflip", "c", "flip"; "TRAIL-R2" -> "trailr2", "trail", "r2"), and words
are stemmed with the Snowball English stemmer when PyStemmer is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["LexicalIndex", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9\u03b1-\u03c9]+(?:[-/.][a-z0-9\u03b1-\u03c9]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PART = re.compile(r"[a-z0-9\u03b1-\u03c9]+")
STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how
    i if in into is it its itself may might more most no nor not of on or our out over own same
    should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your about after again against all am any because before below between both
    during each few further here he her him his me my once only other ourselves she whose
    also via vs versus""".split()
)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lowercase, split, keep joined and split forms of compounds, drop stopwords, stem."""
    if len(text) <= _CACHED_CHARS:
        return list(_tokenize_cached(text))
    return _tokenize(text)


_CACHED_CHARS = 2_000


@lru_cache(maxsize=32_768)
def _tokenize_cached(text: str) -> tuple[str, ...]:
    # The answer composer tokenizes the same library sentences for question after question.
    return tuple(_tokenize(text))


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        word = match.group(0).strip(".")
        if _NUMBER.fullmatch(word):
            tokens.append(word)
            continue
        parts = _PART.findall(word)
        if len(parts) > 1:
            tokens.append("".join(parts))
        tokens.extend(parts)
    tokens = [t for t in tokens if t not in STOPWORDS and (len(t) > 1 or t.isdigit())]
    stemmer = _stemmer()
    return stemmer.stemWords(tokens) if stemmer is not None and tokens else tokens


class LexicalIndex:
    """BM25 scores for a fixed list of chunk texts (row ``i`` is chunk row ``i``)."""

    def __init__(self, model: object, n_docs: int) -> None:
        self._model = model
        self.n_docs = n_docs
        self._vocab: dict[str, int] = getattr(model, "vocab_dict", {}) or {}

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25()
        if texts:
            model.index([tokenize(t) or [""] for t in texts], show_progress=False)
        return cls(model, len(texts))

    def save(self, folder: Path) -> None:
        if self.n_docs:
            self._model.save(str(folder), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> LexicalIndex:
        import bm25s

        if not n_docs:
            return cls(bm25s.BM25(), 0)
        model = bm25s.BM25.load(str(folder), mmap=False, show_progress=False, allow_pickle=False)
        return cls(model, n_docs)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the (already tokenized) query."""
        known = [t for t in query_tokens if t in self._vocab]
        if not known or not self.n_docs:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)  # type: ignore[attr-defined]

    def concept_scores(self, concepts: Sequence[Sequence[Sequence[str]]]) -> np.ndarray:
        """BM25 summed over concepts, each scored by its best-matching alternative.

        A concept is a list of alternatives (e.g. "DR5" or "TRAIL-R2" or "TNFRSF10B"), each a
        list of tokens, so synonyms widen recall without multiplying a concept's weight.
        """
        total = np.zeros(self.n_docs, dtype=np.float32)
        for alternatives in concepts:
            best: np.ndarray | None = None
            for tokens in alternatives:
                # Mean over the alternative's tokens: a spelled-out name such as "TNF-related
                # apoptosis-inducing ligand" must not outweigh the one-token "TRAIL".
                scores = self.scores(tokens) / max(1, len(tokens))
                best = scores if best is None else np.maximum(best, scores)
            if best is not None:
                total += best
        return total

    def idf_unseen(self) -> float:
        """The IDF a token would have if it occurred in no chunk."""
        return float(np.log(1 + (self.n_docs + 0.5) / 0.5))

    def idf(self, token: str) -> float:
        """Inverse document frequency of a stemmed token (0 when unknown)."""
        index = self._vocab.get(token)
        if index is None or not self.n_docs:
            return 0.0
        indptr = self._model.scores["indptr"]  # type: ignore[attr-defined]
        df = int(indptr[index + 1] - indptr[index])
        return float(np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5)))
