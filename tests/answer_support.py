"""Shared by the answer-layer tests: the small note corpus and the citation checks.

The corpus is ``tests/data/answer_notes/``: eight Markdown notes with front matter, each about
one TRAIL topic in its own words. ``myeloma-trail-r2`` names the receptor only as "TRAIL-R2"
(never "DR5"), and ``mcl-disc-repeats`` repeats one paragraph twelve times with a different
cell line, so it splits into many near-identical chunks.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rag import RAG, Answer

NOTES_DIR = Path(__file__).resolve().parent / "data" / "answer_notes"
NOTE_IDS = frozenset(path.stem for path in NOTES_DIR.glob("*.md"))
MARKER = re.compile(r"\[(\d+)\]")

# Question -> the note that answers it.
ON_TOPIC = {
    "How does a SMAC mimetic overcome XIAP in AML blasts?": "aml-smac-xiap",
    "Why are primary CLL cells resistant to TRAIL?": "cll-venetoclax",
    "What did the phase 2 trial of dulanermin with rituximab find?": "dulanermin-nhl-trial",
    "How do histone deacetylase inhibitors affect c-FLIP in Hodgkin lymphoma?": "hodgkin-cflip",
    "Do decoy receptors protect CML cells from TRAIL?": "cml-decoy-receptors",
}
OFF_TOPIC = ("What is the capital of Australia?", "How do I bake sourdough bread?")


def build_index(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG],
                name: str) -> RAG:
    """Copy the notes into a fresh tmp folder and index them there with ``open_rag`` (the real
    model) or ``open_fake_rag`` (the fake embedder)."""
    root = tmp_path_factory.mktemp(name)
    notes = root / "notes"
    shutil.copytree(NOTES_DIR, notes)
    rag = open_rag(root / "index")
    report = rag.add([notes])
    assert set(report.added) == NOTE_IDS, report.to_dict()
    return rag


def check_citations(rag: RAG, answer: Answer) -> None:
    """Every citation's snippet is exactly the document text at ``start:end``, citations are
    numbered 1..N, every ``[n]`` in the text names one of them and every one is used."""
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    for c in answer.citations:
        text = rag.document(c.doc_id).text
        assert 0 <= c.start < c.end <= len(text), (c.start, c.end, len(text))
        assert text[c.start:c.end] == c.snippet, (c.doc_id, c.start, c.end, c.snippet)
        assert c.snippet.strip() == c.snippet and c.snippet
        assert c.chunk_id.startswith(f"{c.doc_id}#")
    markers = {int(n) for n in MARKER.findall(answer.text)}
    assert markers <= set(numbers), f"markers {markers} name no citation in {numbers}"
    assert markers == set(numbers), f"citations {numbers} are not all used in the text"


def ask_checked(rag: RAG, question: str, **kwargs: object) -> Answer:
    """``rag.ask`` plus :func:`check_citations` on what comes back."""
    answer = rag.ask(question, **kwargs)  # type: ignore[arg-type]
    check_citations(rag, answer)
    return answer
