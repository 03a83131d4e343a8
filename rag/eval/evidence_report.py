"""How well the text rules of :mod:`rag.ingest.evidence` find a document's study design.

``python -m rag.eval.evidence_report seeds/`` loads every Markdown note under the folder,
hides its front matter, classifies it from its title and body alone
(:func:`rag.ingest.evidence.classify_text`), and compares the result with the level its
front-matter ``evidence:`` maps to. It prints the accuracy, a Markdown confusion table
(rows: front matter, columns: text rules) and, with ``--errors``, every miss with its reason.
Notes without a usable ``evidence:`` field are left out and counted.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentLoadError
from rag.ingest.evidence import EVIDENCE_LEVELS, EvidenceLevel, classify_document, classify_text
from rag.ingest.loaders import iter_files, load_file
from rag.settings import LoaderSettings

__all__ = ["Scored", "format_report", "main", "score_notes"]


@dataclass(frozen=True)
class Scored:
    """One note: the level its front matter gives and what the text rules found."""

    doc_id: str
    title: str
    expected: str
    predicted: EvidenceLevel


def score_notes(paths: Iterable[str | Path],
                settings: LoaderSettings | None = None) -> tuple[list[Scored], int]:
    """Score every Markdown note under ``paths``; returns the notes and how many were left
    out (no usable ``evidence:`` in the front matter, or unreadable)."""
    settings = settings or LoaderSettings()
    scored: list[Scored] = []
    left_out = 0
    for path, root in iter_files(list(paths), settings):
        if path.suffix.lower() not in (".md", ".markdown"):
            continue
        try:
            docs = load_file(path, settings, root=root)
        except DocumentLoadError:
            left_out += 1
            continue
        for doc in docs:
            truth = classify_document(doc.meta, doc.title, doc.text)
            if truth.basis != "front matter":
                left_out += 1
                continue
            scored.append(Scored(doc.doc_id, doc.title, truth.level,
                                 classify_text(doc.title, doc.text)))
    return scored, left_out


def format_report(scored: Sequence[Scored], left_out: int = 0, *, errors: bool = False) -> str:
    """Accuracy and a Markdown confusion table (rows: front matter; columns: text rules)."""
    total = len(scored)
    right = sum(s.expected == s.predicted.level for s in scored)
    accuracy = right / total if total else 0.0
    lines = [f"accuracy: {accuracy:.3f} ({right}/{total} notes; {left_out} left out)", ""]
    counts = Counter((s.expected, s.predicted.level) for s in scored)
    rows = [lv for lv in EVIDENCE_LEVELS if any(s.expected == lv for s in scored)]
    cols = [lv for lv in EVIDENCE_LEVELS
            if any(s.predicted.level == lv or s.expected == lv for s in scored)]
    lines.append("| front matter \\ text rules | " + " | ".join(cols) + " | recall |")
    lines.append("|---|" + "---:|" * (len(cols) + 1))
    for row in rows:
        n = sum(counts[(row, c)] for c in EVIDENCE_LEVELS)
        cells = [str(counts[(row, c)]) if counts[(row, c)] else "·" for c in cols]
        recall = counts[(row, row)] / n if n else 0.0
        lines.append(f"| {row} ({n}) | " + " | ".join(cells) + f" | {recall:.2f} |")
    if errors:
        lines.append("")
        for s in scored:
            if s.expected != s.predicted.level:
                lines.append(f"- {s.doc_id}: {s.expected} -> {s.predicted.level} "
                             f"({s.predicted.reason})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.evidence_report",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", default=["seeds"], help="folders of notes")
    parser.add_argument("--errors", action="store_true", help="list every miss and its reason")
    args = parser.parse_args(argv)
    try:
        scored, left_out = score_notes(args.paths)
    except DocumentLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not scored:
        print("error: no note with an `evidence:` field found", file=sys.stderr)
        return 1
    print(format_report(scored, left_out, errors=args.errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
