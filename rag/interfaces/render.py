"""Plain-text and Markdown renderings of an answer (CLI output, "copy with references")."""

from __future__ import annotations

from rag.types import Answer, Citation

__all__ = ["answer_as_markdown", "answer_as_text", "reference_line"]


def reference_line(citation: Citation) -> str:
    ids = []
    if citation.pmid:
        ids.append(f"PMID {citation.pmid}")
    if citation.doi:
        ids.append(f"doi:{citation.doi}")
    where = citation.section or (f"page {citation.page}" if citation.page else "")
    tail = "; ".join(ids + ([where] if where else []))
    return f"{citation.source}" + (f" ({tail})" if tail else "")


def answer_as_text(answer: Answer) -> str:
    lines = [answer.text, ""]
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


def answer_as_markdown(answer: Answer) -> str:
    """The answer with a numbered reference list, for pasting into notes."""
    lines = [f"**Q:** {answer.question}", "", answer.text, ""]
    for c in answer.citations:
        links = []
        if c.pmid:
            links.append(f"[PMID {c.pmid}](https://pubmed.ncbi.nlm.nih.gov/{c.pmid}/)")
        if c.doi:
            links.append(f"[doi:{c.doi}](https://doi.org/{c.doi})")
        lines.append(f"{c.n}. {c.source}" + (f" {' '.join(links)}" if links else "")
                     + f" — \"{c.snippet}\"")
    return "\n".join(lines).rstrip() + "\n"
