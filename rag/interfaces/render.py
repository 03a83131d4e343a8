"""Plain-text rendering of an answer (CLI output) and of an indexing run's report
(``python -m rag index``, ``fetch`` and the web app's startup). The Markdown of an answer
with its references is :func:`rag.interfaces.export.to_markdown`."""

from __future__ import annotations

from rag.interfaces.citation_strings import doi_name, pubmed_url
from rag.types import Answer, Citation, IndexReport

__all__ = ["answer_as_text", "index_counts", "index_report_lines", "reference_line"]


def reference_line(citation: Citation) -> str:
    """``source (PMID 123; doi:10.1000/x; section)``: the ids that the links of the source
    panel and the exports are made from, and nothing that would not make one."""
    ids = []
    if pubmed_url(citation.pmid):
        ids.append(f"PMID {citation.pmid}")
    if doi_name(citation.doi):
        ids.append(f"doi:{doi_name(citation.doi)}")
    where = citation.section or (f"page {citation.page}" if citation.page else "")
    tail = "; ".join(ids + ([where] if where else []))
    return f"{citation.source}" + (f" ({tail})" if tail else "")


def answer_as_text(answer: Answer) -> str:
    lines = [answer.text, ""]
    if answer.evidence_summary:
        lines += [answer.evidence_summary, ""]
    if answer.coverage:
        lines.append("Question parts: " + "; ".join(
            f"{c.label} ({c.kind}) " + (f"covered [{c.citation}]" if c.covered and c.citation
                                        else "covered" if c.covered else "MISSING")
            for c in answer.coverage))
        lines.append("")
    if answer.citations:
        lines.append("References:")
        for c in answer.citations:
            lines.append(f"[{c.n}] {reference_line(c)}")
            lines.append(f"    \"{c.snippet}\"")
    if not answer.supported and answer.passages and not answer.missing:
        lines.append("Closest passages:")
        for p in answer.passages:
            lines.append(f"  {p.rank}. {p.title} ({p.doc_id}): {p.text[:200]}")
    lines += [f"note: {n}" for n in answer.notes]
    return "\n".join(lines).rstrip()


def index_counts(report: IndexReport) -> str:
    """The documents an indexing run touched, e.g.
    ``"2 added, 0 updated, 0 removed, 5 unchanged, 1 skipped"``."""
    return (f"{len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.removed)} removed, {len(report.unchanged)} unchanged, "
            f"{len(report.skipped)} skipped")


def index_report_lines(report: IndexReport, *, brief: bool = False,
                       max_skipped: int | None = None) -> list[str]:
    """What an indexing run did, one line each: the index folder, the document counts, every
    skipped file with its reason, and the chunks embedded and how fast.

    ``brief``: only the counts (as ``index: ...``) and the skipped files, for the web app's
    startup. ``max_skipped``: list at most this many skipped files, then how many more.
    """
    lines = ([f"index: {index_counts(report)}"] if brief
             else [f"index: {report.index_dir}", f"documents: {index_counts(report)}"])
    shown = report.skipped if max_skipped is None else report.skipped[:max_skipped]
    lines += [f"  skipped {_printable(s.path)}: {s.reason}" for s in shown]
    if len(report.skipped) > len(shown):
        lines.append(f"  ... and {len(report.skipped) - len(shown)} more skipped")
    if not brief:
        lines.append(f"chunks: {report.chunks} in the index, {report.chunks_embedded} embedded "
                     f"in {report.seconds:.2f} s ({report.chunks_per_second:.1f} chunks/s)")
    return lines


def _printable(name: str) -> str:
    """A file name fit for a terminal: newlines and escape sequences shown as ``\\n``,
    ``\\x1b``, never acted on."""
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)
