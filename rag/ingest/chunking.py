"""Splitting documents into chunks measured in the embedding model's own tokens.

The whole document is split by langchain's ``RecursiveCharacterTextSplitter`` at paragraph, line,
sentence, clause and word boundaries. The splitter runs on characters for speed: the token
target is turned into a character budget with the document's measured characters-per-token
ratio, then every chunk is counted with the real tokenizer and any chunk above the model's
limit is split again, so no chunk is ever silently truncated by the model.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from rag.ingest.cleaning import sentence_spans
from rag.settings import ChunkingSettings
from rag.types import Chunk, Document, Section, Span

__all__ = ["TokenCounter", "section_at", "split_document"]

TokenCounter = Callable[[Sequence[str]], list[int]]

_SEPARATORS = [
    "\n\n",
    "\n",
    r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])",
    r"(?<=[;:])\s+",
    r"(?<=,)\s+",
    " ",
    "",
]
_RATIO_SAMPLE = 20_000
# The tokenizer maps an over-long word to one [UNK] token, so text without spaces can measure
# thousands of characters per token; capping the ratio keeps such chunks to a readable size.
_MAX_CHARS_PER_TOKEN = 10.0
# A chunk under this fraction of the target (a short section between long paragraphs, the
# tail of a re-split piece) is merged into a neighbour when the two still fit the model.
_SMALL_FRACTION = 0.25


def split_document(
    doc: Document,
    *,
    count_tokens: TokenCounter,
    max_tokens: int,
    settings: ChunkingSettings,
) -> list[Chunk]:
    """Split ``doc`` into chunks whose text equals ``doc.text[start:end]``.

    ``max_tokens`` is the hard limit (the model's sequence length less special tokens and the
    title prefix); ``settings.chunk_tokens`` is the target size.
    """
    target = min(settings.chunk_tokens, max_tokens)
    overlap = min(settings.overlap_tokens, target // 2)
    sentences = sentence_spans(doc.text)
    starts = [s[0] for s in sentences]
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    ratio = _chars_per_token(doc.text, count_tokens)
    spans = _split_span(doc.text, 0, target, overlap, ratio, max_tokens, count_tokens)
    small = max(1, int(target * _SMALL_FRACTION))
    spans = _absorb_small(doc.text, _drop_contained(spans), small, max_tokens, count_tokens)
    section_starts = [s.start for s in doc.sections]
    for (start, end), n_tokens in spans:
        text = doc.text[start:end]
        first, last = bisect_left(starts, start), bisect_left(starts, end)
        section = section_at(doc.sections, section_starts, start)
        chunks.append(
            Chunk(
                chunk_id=_chunk_id(doc.doc_id, text, seen),
                doc_id=doc.doc_id,
                text=text,
                start=start,
                end=end,
                section=section.title if section else "",
                page=section.page if section else None,
                sentences=tuple(_clip(s, end) for s in sentences[first:last]),
                n_tokens=n_tokens,
            )
        )
    return chunks


def _split_span(
    body: str,
    offset: int,
    target: int,
    overlap: int,
    ratio: float,
    max_tokens: int,
    count_tokens: TokenCounter,
) -> list[tuple[Span, int]]:
    # imported here: only indexing splits, and the import costs ~0.2 s of every query's start-up
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    overlap_chars = int(overlap * ratio)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max(32, int(target * ratio)),
        chunk_overlap=overlap_chars,
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=True,
    )
    pieces = [p for p in splitter.split_text(body) if p.strip()]
    counts = count_tokens(pieces) if pieces else []
    out: list[tuple[Span, int]] = []
    cursor = 0
    for piece, n_tokens in zip(pieces, counts, strict=True):
        local = body.find(piece, cursor)
        if local < 0:  # cannot happen for a splitter that only cuts; keep the guard cheap
            local = body.find(piece)
        # The next piece starts at most ``overlap_chars`` before this one ends; searching from
        # there keeps a piece of repeated text at its own place, not at an earlier copy.
        cursor = max(local + 1, local + len(piece) - overlap_chars)
        start, end = offset + local, offset + local + len(piece)
        if n_tokens <= max_tokens:
            out.append(((start, end), n_tokens))
        elif len(piece) > 1:
            smaller = max(1, target // 2)
            out.extend(
                _split_span(piece, start, smaller, overlap // 2, ratio * 0.7, max_tokens,
                            count_tokens)
            )
    return out


def _drop_contained(spans: list[tuple[Span, int]]) -> list[tuple[Span, int]]:
    """Drop a chunk that lies inside its neighbour: the splitter's overlap can carry a whole
    short piece into the next chunk, which then repeats it word for word."""
    out: list[tuple[Span, int]] = []
    for span, n_tokens in spans:
        while out and span[0] <= out[-1][0][0] and out[-1][0][1] <= span[1]:
            out.pop()
        if out and out[-1][0][0] <= span[0] and span[1] <= out[-1][0][1]:
            continue
        out.append((span, n_tokens))
    return out


def _absorb_small(
    body: str,
    spans: list[tuple[Span, int]],
    min_tokens: int,
    max_tokens: int,
    count_tokens: TokenCounter,
) -> list[tuple[Span, int]]:
    """Merge each chunk of fewer than ``min_tokens`` tokens into the neighbour that gives the
    smaller result, if that result fits ``max_tokens``. A few words alone make a poor passage:
    too little context to rank well or to cite."""
    max_chars = int(_MAX_CHARS_PER_TOKEN * max_tokens)
    out = list(spans)
    i = 0
    while i < len(out):
        (start, end), n_tokens = out[i]
        if n_tokens >= min_tokens or len(out) == 1:
            i += 1
            continue
        options = []
        for j in (i - 1, i + 1):
            if 0 <= j < len(out):
                lo, hi = min(start, out[j][0][0]), max(end, out[j][0][1])
                if hi - lo > max_chars:  # e.g. text without spaces, where tokens say little
                    continue
                merged = count_tokens([body[lo:hi]])[0]
                if merged <= max_tokens:
                    options.append((merged, j, (lo, hi)))
        if not options:
            i += 1
            continue
        merged, j, span = min(options)
        first = min(i, j)
        out[first : first + 2] = [(span, merged)]
        i = first  # the merged chunk may itself still be small
    return out


def section_at(sections: Sequence[Section], starts: Sequence[int], offset: int) -> Section | None:
    """The section that contains character ``offset`` (sections are sorted by start)."""
    index = bisect_right(starts, offset) - 1
    return sections[index] if index >= 0 else (sections[0] if sections else None)


def _chars_per_token(body: str, count_tokens: TokenCounter) -> float:
    sample = body[:_RATIO_SAMPLE]
    n_tokens = count_tokens([sample])[0] if sample else 0
    return min(_MAX_CHARS_PER_TOKEN, max(1.0, len(sample) / max(1, n_tokens)))


def _clip(span: Span, end: int) -> Span:
    return (span[0], min(span[1], end))


def _chunk_id(doc_id: str, text: str, seen: dict[str, int]) -> str:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    base = f"{doc_id}#{digest}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"
