"""Chunking with the real tokenizer: offsets that point into the document, hard token limits,
sentence spans, sections and pages, stable ids."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from rag.embed.embedder import Embedder
from rag.ingest.chunking import split_document
from rag.ingest.cleaning import sentence_spans
from rag.ingest.loaders import load_file
from rag.settings import ChunkingSettings, Settings
from rag.types import Chunk, Document

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def split(doc: Document, embedder: Embedder, chunking: ChunkingSettings | None = None
          ) -> list[Chunk]:
    return split_document(doc, count_tokens=embedder.count_tokens,
                          max_tokens=embedder.max_chunk_tokens,
                          settings=chunking or ChunkingSettings())


def load(path: Path, content: str | bytes, settings: Settings) -> Document:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    (doc,) = load_file(path, settings.loader)
    return doc


@pytest.fixture(scope="module")
def documents(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, seed_page: Path,
    data_dir: Path, make_text: Callable[..., str], make_pdf: Callable[..., bytes],
) -> dict[str, Document]:
    """Documents of every shape the splitter meets, loaded through the real loaders."""
    folder = tmp_path_factory.mktemp("chunking")
    rng = random.Random(7)
    pdf_pages = [[make_text(1, seed=page * 100 + line, words=14) for line in range(30)]
                 for page in range(3)]
    sections = "\n\n".join(f"## Part {i}\n\n{make_text(25, seed=i)}" for i in range(6))
    return {
        "seed-page": load_file(seed_page, settings.loader)[0],
        "markdown-sections": load(folder / "sections.md", f"---\ntitle: T\n---\n{sections}",
                                  settings),
        "long-paragraph": load(folder / "paragraph.txt",
                               make_text(1, seed=3, words=4000).rstrip("."), settings),
        "many-sentences": load(folder / "sentences.txt", make_text(600, seed=4), settings),
        "line-200kb-no-spaces": load(folder / "sequence.txt",
                                     "".join(rng.choice("ACGT") for _ in range(200_000)),
                                     settings),
        "line-200kb-punctuated": load(folder / "ids.txt",
                                      ("TRAIL/DR5;caspase-8," * 10_000)[:200_000], settings),
        "line-200kb-unicode": load(folder / "greek.txt",
                                   "".join(rng.choice("αβγδεζηθλμπσω") for _ in range(200_000)),
                                   settings),
        "repeated-paragraphs": load(folder / "repeated.txt",
                                    "\n\n".join([make_text(5, seed=5)] * 30), settings),
        "pdf-3-pages": load(folder / "paper.pdf", make_pdf(pdf_pages, title="Three pages"),
                            settings),
        "jats": load_file(data_dir / "pmc_article.xml", settings.loader)[0],
        "short-between-long": load(folder / "mixed.md", "\n\n".join(
            make_text(9 if i % 2 else 1, seed=40 + i, words=16) for i in range(24)), settings),
        "seed-note": load_file(PROJECT_ROOT / "seeds" / "cpt-thalidomide-phase2-rrmm.md",
                               settings.loader)[0],
    }


DOC_NAMES = ["seed-page", "markdown-sections", "long-paragraph", "many-sentences",
             "line-200kb-no-spaces", "line-200kb-punctuated", "line-200kb-unicode",
             "repeated-paragraphs", "pdf-3-pages", "jats", "short-between-long", "seed-note"]


@pytest.fixture(scope="module")
def chunked(documents: dict[str, Document], embedder: Embedder) -> dict[str, list[Chunk]]:
    return {name: split(doc, embedder) for name, doc in documents.items()}


@pytest.mark.parametrize("name", DOC_NAMES)
def test_chunk_text_equals_document_text_at_its_span(
    name: str, documents: dict[str, Document], chunked: dict[str, list[Chunk]]
) -> None:
    doc, chunks = documents[name], chunked[name]
    assert chunks
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(doc.text)
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.doc_id == doc.doc_id


@pytest.mark.parametrize("name", DOC_NAMES)
def test_chunks_fit_the_model(
    name: str, chunked: dict[str, list[Chunk]], embedder: Embedder
) -> None:
    chunks = chunked[name]
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= embedder.max_chunk_tokens
    assert [c.n_tokens for c in chunks] == counts


@pytest.mark.parametrize("name", DOC_NAMES)
def test_chunks_follow_the_text_and_none_lies_inside_another(
    name: str, chunked: dict[str, list[Chunk]]
) -> None:
    chunks = chunked[name]
    for before, after in pairwise(chunks):
        assert before.start < after.start and before.end < after.end, (before, after)


@pytest.mark.parametrize("name", DOC_NAMES)
def test_short_chunks_remain_only_where_merging_would_overflow(
    name: str, documents: dict[str, Document], chunked: dict[str, list[Chunk]],
    embedder: Embedder
) -> None:
    small = ChunkingSettings().chunk_tokens // 4
    chunks, text = chunked[name], documents[name].text
    for i, chunk in enumerate(chunks):
        if chunk.n_tokens >= small or len(chunks) == 1:
            continue
        for j in (i - 1, i + 1):
            if 0 <= j < len(chunks):
                merged = text[min(chunk.start, chunks[j].start):max(chunk.end, chunks[j].end)]
                too_long = len(merged) > 10 * embedder.max_chunk_tokens  # the readable-chunk cap
                assert too_long or embedder.count_tokens([merged])[0] > embedder.max_chunk_tokens


@pytest.mark.parametrize("name", DOC_NAMES)
def test_chunks_cover_the_whole_text(
    name: str, documents: dict[str, Document], chunked: dict[str, list[Chunk]]
) -> None:
    text = documents[name].text
    covered = bytearray(len(text))
    for chunk in chunked[name]:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    lost = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert lost == []


@pytest.mark.parametrize("name", DOC_NAMES)
def test_chunk_sentences_are_document_sentences_inside_the_chunk(
    name: str, documents: dict[str, Document], chunked: dict[str, list[Chunk]]
) -> None:
    doc = documents[name]
    starts = {a: b for a, b in sentence_spans(doc.text)}
    for chunk in chunked[name]:
        for a, b in chunk.sentences:
            assert chunk.start <= a < b <= chunk.end
            assert a in starts and b == min(starts[a], chunk.end)
        assert list(chunk.sentences) == sorted(chunk.sentences)


@pytest.mark.parametrize("name", ["line-200kb-no-spaces", "line-200kb-unicode"])
def test_text_without_spaces_is_split_into_readable_chunks(
    name: str, chunked: dict[str, list[Chunk]], embedder: Embedder
) -> None:
    # The tokenizer reads a word over 100 characters as one [UNK]: a token count alone would
    # let 200 KB through as a single "1-token" chunk.
    chunks = chunked[name]
    assert len(chunks) > 20
    assert max(len(c.text) for c in chunks) <= 10 * embedder.max_chunk_tokens


def test_long_paragraph_chunks_are_near_the_target(
    chunked: dict[str, list[Chunk]]
) -> None:
    target = ChunkingSettings().chunk_tokens
    chunks = chunked["long-paragraph"]
    assert len(chunks) > 10
    assert sum(c.n_tokens for c in chunks) / len(chunks) <= target * 1.1


def test_smaller_target_gives_more_and_smaller_chunks(
    documents: dict[str, Document], embedder: Embedder
) -> None:
    doc = documents["many-sentences"]
    small = split(doc, embedder, ChunkingSettings(chunk_tokens=64, overlap_tokens=8))
    large = split(doc, embedder, ChunkingSettings(chunk_tokens=200, overlap_tokens=8))
    assert len(small) > 2 * len(large)
    assert max(c.n_tokens for c in small) <= 80


def test_overlap_setting(documents: dict[str, Document], embedder: Embedder) -> None:
    doc = documents["many-sentences"]
    disjoint = split(doc, embedder, ChunkingSettings(chunk_tokens=100, overlap_tokens=0))
    assert all(a.end <= b.start for a, b in pairwise(disjoint))
    overlapping = split(doc, embedder, ChunkingSettings(chunk_tokens=100, overlap_tokens=40))
    assert any(b.start < a.end for a, b in pairwise(overlapping))


def test_target_above_the_model_limit_is_capped(
    documents: dict[str, Document], embedder: Embedder
) -> None:
    chunks = split(documents["many-sentences"], embedder, ChunkingSettings(chunk_tokens=4000))
    assert max(c.n_tokens for c in chunks) <= embedder.max_chunk_tokens


def test_pdf_chunks_keep_page_numbers(
    documents: dict[str, Document], chunked: dict[str, list[Chunk]]
) -> None:
    doc = documents["pdf-3-pages"]
    chunks = chunked["pdf-3-pages"]
    assert len(chunks) >= 3
    for chunk in chunks:
        (page,) = [s.page for s in doc.sections if s.start <= chunk.start < s.end]
        assert chunk.page == page
        assert chunk.section == f"page {page}"
    assert {c.page for c in chunks} == {1, 2, 3}


def test_chunks_name_their_section(
    documents: dict[str, Document], chunked: dict[str, list[Chunk]]
) -> None:
    doc = documents["markdown-sections"]
    for chunk in chunked["markdown-sections"]:
        (title,) = [s.title for s in doc.sections if s.start <= chunk.start < s.end]
        assert chunk.section == title
    assert {c.section for c in chunked["markdown-sections"]} == {f"Part {i}" for i in range(6)}


def test_chunk_ids_are_unique_and_stable(
    documents: dict[str, Document], chunked: dict[str, list[Chunk]], embedder: Embedder
) -> None:
    for name, doc in documents.items():
        ids = [c.chunk_id for c in chunked[name]]
        assert len(set(ids)) == len(ids)
        assert all(i.startswith(f"{doc.doc_id}#") for i in ids)
    again = split(documents["many-sentences"], embedder)
    assert [c.chunk_id for c in again] == [c.chunk_id for c in chunked["many-sentences"]]


def test_repeated_text_gets_distinct_chunk_ids(tmp_path: Path, settings: Settings,
                                               embedder: Embedder,
                                               make_text: Callable[..., str]) -> None:
    para = make_text(12, seed=11)
    doc = load(tmp_path / "twice.txt", f"{para}\n\n{para}\n\n{para}", settings)
    chunks = split(doc, embedder, ChunkingSettings(chunk_tokens=200, overlap_tokens=0))
    ids = [c.chunk_id for c in chunks]
    assert len(set(c.text for c in chunks)) < len(chunks)
    assert len(set(ids)) == len(ids)
