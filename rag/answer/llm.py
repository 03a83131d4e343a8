"""Optional LLM synthesis through any OpenAI-compatible chat endpoint (Ollama, vLLM,
llama.cpp server), configured by ``llm.url`` / ``RAG_LLM_URL`` and ``llm.model``.

The prompt holds only the numbered passages. The reply is checked sentence by sentence: every
``[n]`` must name a passage, and each sentence must be supported by a sentence of a passage it
cites (dense similarity of pooled sentence vectors, or word overlap). Supported sentences are
kept and cite that exact source sentence; the rest are dropped and counted in a note. When the
endpoint fails, times out or returns nothing usable, the extractive answer is returned with a
note saying why. ``transport`` (an ``httpx.BaseTransport``, e.g. ``httpx.MockTransport``)
replaces the network, which is how tests talk to a fake endpoint.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from rag.answer.summary import with_summary
from rag.embed import EmbeddingModel
from rag.ingest.cleaning import sentence_spans
from rag.retrieve.hybrid import Retrieval
from rag.settings import Settings
from rag.store.lexical import tokenize
from rag.store.snapshot import IndexSnapshot
from rag.types import Answer, Citation

if TYPE_CHECKING:
    import httpx

__all__ = ["build_messages", "synthesize"]

_MARKERS = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_SUPPORT_COSINE = 0.6
_SUPPORT_OVERLAP = 0.6
SYSTEM_PROMPT = (
    "You answer questions about TRAIL biology and TRAIL-based therapy for researchers. Use only "
    "the numbered passages given. Write 1-5 short sentences. End every sentence with the "
    "number of the passage that supports it in square brackets, like [2]. If the passages do "
    "not answer the question, reply exactly: NO EVIDENCE."
)


def build_messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(passages, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"},
    ]


def synthesize(extractive: Answer, found: Retrieval, snap: IndexSnapshot,
               embedder: EmbeddingModel, settings: Settings, *,
               transport: httpx.BaseTransport | None = None) -> Answer:
    """Rewrite the answer with the LLM when one is configured; never loses the extractive one.

    ``transport`` carries the HTTP request (default: the network)."""
    llm = settings.llm
    if not llm.url or not llm.model:
        return _with_note(extractive, "no LLM endpoint configured (set RAG_LLM_URL and "
                          "RAG_LLM_MODEL); showing the extractive answer")
    if not extractive.supported:
        return extractive
    rows = found.rows[: settings.answer.passages_considered]
    try:
        reply = _chat(build_messages(found.query, [snap.chunks[r].text for r in rows]), settings,
                      transport=transport)
    except _LLMError as exc:
        return _with_note(extractive, f"LLM endpoint failed ({exc}); showing the extractive "
                          "answer")
    if reply.strip().upper().startswith("NO EVIDENCE"):
        return _with_note(extractive, "the LLM found no answer in the passages; showing the "
                          "extractive answer")
    sentences, citations, dropped = _verify(reply, rows, snap, embedder)
    if not sentences:
        return _with_note(extractive, "no sentence of the LLM reply was supported by its cited "
                          "passage; showing the extractive answer")
    notes = (f"{dropped} unsupported LLM sentence(s) dropped",) if dropped else ()
    return with_summary(replace(extractive, text=" ".join(sentences), citations=tuple(citations),
                                mode="llm", notes=extractive.notes + notes), snap)


class _LLMError(Exception):
    pass


def _chat(messages: list[dict[str, str]], settings: Settings, *,
          transport: httpx.BaseTransport | None = None) -> str:
    import httpx

    llm = settings.llm
    url = llm.url.rstrip("/") if llm.url else ""
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    headers = {"Authorization": f"Bearer {llm.api_key}"} if llm.api_key else {}
    body = {"model": llm.model, "messages": messages, "temperature": 0,
            "max_tokens": llm.max_tokens, "stream": False}
    try:
        with httpx.Client(transport=transport, timeout=llm.timeout_s) as client:
            response = client.post(url, json=body, headers=headers)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
    except httpx.TimeoutException as exc:
        raise _LLMError(f"timed out after {llm.timeout_s:g} s") from exc
    except httpx.HTTPStatusError as exc:
        raise _LLMError(f"HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise _LLMError(f"cannot reach {url}: {type(exc).__name__}") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _LLMError("the reply was not an OpenAI-style chat completion") from exc
    if not isinstance(content, str) or not content.strip():
        raise _LLMError("empty reply")
    return content


def _verify(reply: str, rows: list[int], snap: IndexSnapshot,
            embedder: EmbeddingModel) -> tuple[list[str], list[Citation], int]:
    from rag.answer.citations import make_citation

    text = " ".join(reply.split())
    spans = sentence_spans(text)
    pieces = [text[a:b] for a, b in spans]
    if not pieces:
        return [], [], 0
    bare = [_MARKERS.sub("", p) for p in pieces]  # support is judged on the words alone
    vectors = embedder.embed(bare)
    kept: list[str] = []
    citations: list[Citation] = []
    dropped = 0
    for piece, words, vector in zip(pieces, bare, vectors, strict=True):
        numbers = _marker_numbers(piece)
        if not numbers or any(n < 1 or n > len(rows) for n in numbers):
            dropped += 1
            continue
        best = _best_support(words, vector, [rows[n - 1] for n in numbers], snap)
        if best is None:
            dropped += 1
            continue
        chunk_row, sent_row, score = best
        start, end = snap.sentences.span(sent_row)
        n = len(citations) + 1
        citations.append(make_citation(n, snap, chunk_row=chunk_row, start=start, end=end,
                                       score=score))
        kept.append(_tidy(words).rstrip(".") + f" [{n}].")
    return kept, citations, dropped


def _tidy(text: str) -> str:
    """``"A binds B  ."`` (a sentence whose markers were cut out) -> ``"A binds B."``."""
    return re.sub(r"\s+(?=[.,;:!?])", "", " ".join(text.split()))


def _marker_numbers(piece: str) -> list[int]:
    numbers: list[int] = []
    for group in _MARKERS.findall(piece):
        numbers.extend(int(x) for x in re.findall(r"\d+", group))
    return numbers


def _best_support(sentence: str, vector: np.ndarray, chunk_rows: list[int],
                  snap: IndexSnapshot) -> tuple[int, int, float] | None:
    words = set(tokenize(sentence))
    best: tuple[int, int, float] | None = None
    for chunk_row in chunk_rows:
        chunk = snap.chunks[chunk_row]
        rows = snap.sentences.rows_of_chunk(chunk_row)
        cosines = snap.sentences.vectors(rows) @ vector
        for sent_row, cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
            a, b = snap.sentences.span(sent_row)
            source = set(tokenize(chunk.text[max(0, a - chunk.start): b - chunk.start]))
            overlap = len(words & source) / max(1, len(words))
            score = max(cosine, overlap)
            if (cosine >= _SUPPORT_COSINE or overlap >= _SUPPORT_OVERLAP) and (
                    best is None or score > best[2]):
                best = (chunk_row, sent_row, score)
    return best


def _with_note(answer: Answer, note: str) -> Answer:
    return replace(answer, notes=(*answer.notes, note))
