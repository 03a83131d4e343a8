"""HTML and Markdown for the web UI. Pure functions: no Gradio, no retrieval.

Every piece of document text or metadata that reaches the page passes through :func:`escape`
(HTML) or :func:`escape_markdown` (chat messages, reports), so a document holding
``<script>`` or ``<img onerror=...>`` shows as text and runs nothing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rag.errors import QueryError
from rag.ingest.evidence import EVIDENCE_LEVELS, evidence_label, evidence_of
from rag.interfaces.citation_strings import doi_name, doi_url, pubmed_url, safe_url
from rag.interfaces.ui.evidence_data import LEVEL_COLORS, doc_year, tag_values
from rag.types import Answer, Citation, IndexReport, Passage, SkippedFile

__all__ = [
    "badge_html",
    "build_filters",
    "chat_message",
    "documents_rows",
    "escape",
    "escape_markdown",
    "evidence_summary_html",
    "filter_choices",
    "index_summary",
    "parse_filters",
    "report_markdown",
    "sources_html",
]

_LINK = 'target="_blank" rel="noopener noreferrer"'
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~$.>])")
_CONTEXT_CHARS = 280
_DOC_TEXT = Callable[[str], "str | None"]


# -- escaping -----------------------------------------------------------------------------


def escape(value: Any) -> str:
    """HTML-escape text for element content and quoted attributes. ``$`` and backticks are
    encoded too, so no template syntax survives into the page."""
    return html.escape(str(value), quote=True).replace("$", "&#36;").replace("`", "&#96;")


def escape_markdown(value: Any) -> str:
    """Text that Markdown renders literally: HTML escaped, punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def _link(url: str, label: str, css: str) -> str:
    return f'<a class="{css}" href="{escape(url)}" {_LINK}>{escape(label)}</a>'


# -- chat -----------------------------------------------------------------------------------


def chat_message(answer: Answer, *, text: str | None = None) -> str:
    """The assistant's chat bubble (Markdown). ``text`` is a prefix while streaming."""
    body = escape_markdown(answer.text if text is None else text)
    if not answer.supported and not answer.missing:
        body = ("**No good evidence in the library for this question.** "
                "The closest passages are shown separately in the source panel.")
    elif not answer.supported and text is None:
        body = "**Not answered: a part of the question is missing from the library.** " + body
    lines = [body]
    if text is None:
        if answer.evidence_summary:
            lines.append(f"*{escape_markdown(answer.evidence_summary)}*")
        if answer.coverage:
            lines.append(coverage_markdown(answer))
        if answer.supported and answer.citations:
            lines.append(f"*{len(answer.citations)} cited sentence"
                         f"{'s' if len(answer.citations) != 1 else ''}; "
                         "sources in the panel on the right.*")
        lines += [f"*note: {escape_markdown(n)}*" for n in answer.notes]
    return "\n\n".join(lines)


def coverage_markdown(answer: Answer) -> str:
    """``Covers: ✓ dulanermin · ✓ phase 3 · ✗ acute myeloid leukemia``."""
    parts = [("✓ " if c.covered else "✗ ") + escape_markdown(c.label)
             + (f" [{c.citation}]" if c.citation else "") for c in answer.coverage]
    return "*Question parts in the evidence:* " + " · ".join(parts)


def coverage_html(answer: Answer) -> str:
    """The question's parts, each marked covered or missing, for the source panel."""
    if not answer.coverage:
        return ""
    items = "".join(
        f'<li class="rag-part rag-part-{"covered" if c.covered else "missing"}" '
        f'data-covered="{"yes" if c.covered else "no"}" title="{escape(c.kind)}">'
        f'{"✓" if c.covered else "✗"} {escape(c.label)} '
        f'<span class="rag-muted">{escape(c.kind)}</span></li>'
        for c in answer.coverage)
    return (f'<div class="rag-coverage"><h4>Question parts in the evidence</h4>'
            f'<ul class="rag-parts">{items}</ul></div>')


def stream_steps(text: str, *, words_per_step: int = 6) -> list[str]:
    """Growing prefixes of ``text``, for showing an answer progressively."""
    words = text.split(" ")
    return [" ".join(words[:i]) for i in range(words_per_step, len(words), words_per_step)]


# -- evidence -------------------------------------------------------------------------------


def badge_html(level: str, reason: str = "") -> str:
    """A study-design badge: the level's label, coloured by level, the reason on hover.
    An unknown key shows as "Unknown"."""
    label = evidence_label(level)
    css = level if level in LEVEL_COLORS else "unknown"  # a class badge_css styles, never raw text
    return (f'<span class="rag-badge rag-badge-{css}" title="{escape(reason or label)}">'
            f"{escape(label)}</span>")


def evidence_summary_html(answer: Answer) -> str:
    """The answer's evidence summary line for the top of the source panel ("" if none)."""
    if not answer.evidence_summary:
        return ""
    return f'<p class="rag-evidence-summary">{escape(answer.evidence_summary)}</p>'


# -- source panel ---------------------------------------------------------------------------


def sources_html(answer: Answer | None, doc_text: _DOC_TEXT | None = None) -> str:
    """The source panel: one card per cited passage, the cited sentences in ``<mark>``.

    ``doc_text(doc_id)`` supplies a document's text for citations whose passage is not among
    ``answer.passages`` (the answer may cite sentences from a few passages deeper).
    """
    if answer is None:
        return ('<div class="rag-sources rag-empty">Sources for the answer appear here: '
                "title, authors, journal, year, PubMed and DOI links, and the passage with "
                "the cited sentence highlighted.</div>")
    if not answer.supported and answer.missing and answer.citations:
        return _missing_html(answer, doc_text)
    if not answer.supported:
        return _unsupported_html(answer)
    cards = [_card_html(group, answer.passages, doc_text)
             for group in _group_by_chunk(answer.citations)]
    return (f'<div class="rag-sources">{evidence_summary_html(answer)}<h3>Sources</h3>'
            f'<ol class="rag-cites">{"".join(cards)}</ol>{coverage_html(answer)}</div>')


def _missing_html(answer: Answer, doc_text: _DOC_TEXT | None) -> str:
    """A part of the question is not in the library: say so, then the closest evidence."""
    missing = ", ".join(escape(c.label) for c in answer.missing)
    cards = [_card_html(group, answer.passages, doc_text)
             for group in _group_by_chunk(answer.citations)]
    return (
        '<div class="rag-sources"><div class="rag-warning rag-missing" role="alert">'
        f"<strong>Missing from the library:</strong> {missing}. The evidence below is the "
        "closest the library holds; it does <em>not</em> answer the question.</div>"
        f"{evidence_summary_html(answer)}{coverage_html(answer)}<h3>Closest evidence</h3>"
        f'<ol class="rag-cites">{"".join(cards)}</ol></div>'
    )


def _unsupported_html(answer: Answer) -> str:
    items = "".join(
        f'<li class="rag-closest"><div class="rag-cite-head"><strong>{escape(p.title)}</strong>'
        f' <span class="rag-muted">({escape(p.doc_id)}'
        f'{", " + escape(p.section) if p.section else ""})</span></div>'
        f'<blockquote class="rag-passage">{escape(_trim(p.text, 500))}</blockquote></li>'
        for p in answer.passages
    )
    return (
        '<div class="rag-sources"><div class="rag-warning" role="alert"><strong>No good '
        "evidence.</strong> The library holds nothing that answers this question well; the "
        "passages below are the closest matches and are <em>not</em> cited as evidence.</div>"
        f'<h3>Closest passages</h3><ol class="rag-closest-list">{items}</ol></div>'
    )


def _group_by_chunk(citations: Iterable[Citation]) -> list[list[Citation]]:
    groups: dict[str, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.chunk_id, []).append(c)
    return list(groups.values())


def _card_html(group: list[Citation], passages: Sequence[Passage],
               doc_text: _DOC_TEXT | None) -> str:
    first = group[0]
    numbers = "".join(f'<span class="rag-n" id="cite-{c.n}">[{c.n}]</span>' for c in group)
    meta = [x for x in (first.authors, first.journal, str(first.year or "")) if x]
    where = first.section or (f"page {first.page}" if first.page else "")
    if where:
        meta.append(f"section: {where}" if first.section else where)
    links = [_link(u, f"PubMed {first.pmid}", "rag-pubmed") for u in [pubmed_url(first.pmid)]
             if u]
    links += [_link(u, f"doi:{doi_name(first.doi)}", "rag-doi") for u in [doi_url(first.doi)]
              if u]
    if not links:
        links += [_link(u, "source", "rag-url") for u in [safe_url(first.url)] if u]
    source = (f'<div class="rag-source-line">{escape(first.source)}</div>'
              if first.source and first.title not in first.source else "")
    return (
        f'<li class="rag-cite"><div class="rag-cite-head">{numbers} '
        f'<strong class="rag-title">{escape(first.title)}</strong> '
        f"{badge_html(first.evidence, first.evidence_reason)}</div>"
        f'<div class="rag-meta">{escape(" · ".join(meta))}</div>{source}'
        f'<div class="rag-links">{" ".join(links)}</div>'
        f'<blockquote class="rag-passage">{_passage_html(group, passages, doc_text)}'
        "</blockquote></li>"
    )


def _passage_html(group: list[Citation], passages: Sequence[Passage],
                  doc_text: _DOC_TEXT | None) -> str:
    """The passage around the cited sentences, each wrapped in ``<mark>``."""
    first = group[0]
    base, text = 0, ""
    passage = next((p for p in passages if p.chunk_id == first.chunk_id), None)
    if passage is not None:
        base, text = passage.start, passage.text
    elif doc_text is not None and (full := doc_text(first.doc_id)):
        base = max(0, min(c.start for c in group) - _CONTEXT_CHARS)
        text = full[base: max(c.end for c in group) + _CONTEXT_CHARS]
    spans: list[tuple[int, int, int]] = []
    for c in sorted(group, key=lambda c: c.start):
        lo = c.start - base
        if not (lo >= 0 and text[lo: lo + len(c.snippet)] == c.snippet):
            lo = text.find(c.snippet)
        if lo >= 0 and (not spans or lo >= spans[-1][1]):
            spans.append((lo, lo + len(c.snippet), c.n))
    if not spans:  # the passage is gone or changed: show the cited sentences alone
        return " … ".join(f'<mark data-n="{c.n}">{escape(c.snippet)}</mark> <sup>[{c.n}]</sup>'
                          for c in group)
    out, pos = [], 0
    for lo, hi, n in spans:
        out.append(escape(text[pos:lo]))
        out.append(f'<mark data-n="{n}">{escape(text[lo:hi])}</mark><sup>[{n}]</sup>')
        pos = hi
    out.append(escape(text[pos:]))
    return "".join(out)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


# -- library --------------------------------------------------------------------------------


def documents_rows(docs: Iterable[Any], query: str | None = "") -> list[list[Any]]:
    """Rows for the library table (doc id, title, year, study design, type, chunks), filtered
    by ``query``."""
    needle = (query or "").strip().lower()
    rows = []
    for d in docs:
        year = doc_year(d.meta)
        row = [d.doc_id, d.title, year, evidence_of(d.meta).label, d.doc_type, d.n_chunks]
        if not needle or needle in f"{d.doc_id} {d.title} {year or ''}".lower():
            rows.append(row)
    return rows


def filter_choices(docs: Iterable[Any]) -> dict[str, Any]:
    """Filter values present in the index: diseases and agents (each as first written), the
    study designs by label (strongest first), and the first and last year."""
    found: dict[str, dict[str, str]] = {"disease": {}, "agent": {}}
    levels: set[str] = set()
    years: list[int] = []
    for d in docs:
        for key, field in (("disease", "diseases"), ("agent", "agents")):
            for lower, text in tag_values(d.meta, field).items():
                found[key].setdefault(lower, text)
        levels.add(evidence_of(d.meta).level)
        year = doc_year(d.meta)
        if year is not None:
            years.append(year)
    choices: dict[str, Any] = {k: sorted(v.values(), key=str.lower) for k, v in found.items()}
    choices["evidence"] = [evidence_label(level) for level in EVIDENCE_LEVELS if level in levels]
    choices["year_min"] = min(years, default=None)
    choices["year_max"] = max(years, default=None)
    return choices


def build_filters(disease: Sequence[str] | None, agent: Sequence[str] | None,
                  evidence: Sequence[str] | None, years: str | None) -> dict[str, Any]:
    """The filters dict for ``RAG.ask`` from the UI controls (empty controls are left out).
    ``years`` is a year or a range such as ``2005-2015``; the library checks it."""
    filters: dict[str, Any] = {}
    for key, value in (("disease", disease), ("agent", agent), ("evidence", evidence)):
        if value:
            filters[key] = list(value)
    if years and years.strip():
        filters["year"] = years.strip()
    return filters


def parse_filters(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """API filters: a dict, a JSON object as text, or nothing."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise QueryError(f"filters must be a JSON object, e.g. "
                             f'{{"disease": "myeloma"}}: {exc}') from exc
    if not isinstance(value, Mapping):
        raise QueryError('filters must be a JSON object, e.g. {"disease": "myeloma"}')
    return dict(value)


def index_summary(status: Mapping[str, Any]) -> str:
    return (f"**{status.get('documents', 0)}** documents · **{status.get('chunks', 0)}** "
            f"passages · model {escape_markdown(status.get('model') or '?')}")


def report_markdown(report: IndexReport | None, refused: Sequence[SkippedFile],
                    names: Mapping[str, str] | None = None) -> str:
    """What an upload did, by file name (never the server's folders)."""
    names = names or {}

    def name(path: str) -> str:
        return escape_markdown(names.get(path) or path.replace("\\", "/").rsplit("/", 1)[-1])

    lines = []
    if report is not None:
        for label, ids in (("Added", report.added), ("Updated", report.updated),
                           ("Already indexed", report.unchanged)):
            if ids:
                lines.append(f"**{label}:** {', '.join(escape_markdown(i) for i in ids)}")
        if report.chunks_embedded:
            lines.append(f"{report.chunks_embedded} passage"
                         f"{'s' if report.chunks_embedded != 1 else ''} embedded in "
                         f"{report.seconds:.1f} s; the chat uses them now.")
    problems = [*refused, *(report.skipped if report else ())]
    if problems:
        lines.append("**Not indexed:**")
        lines += [f"- {name(s.path)}: {escape_markdown(s.reason)}" for s in problems]
    return "\n\n".join(lines) or "Nothing to add."
