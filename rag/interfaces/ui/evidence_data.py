"""The evidence map, the clinical timeline and the study-design colours, as pure functions
from the index's document records to the DataFrames Gradio's plots draw. No Gradio here.

- The **map** crosses diseases with agents (the ``diseases`` and ``agents`` tags of each
  document): one cell per pair that some document carries, coloured by the strongest study
  design among those documents (:func:`rag.ingest.evidence.evidence_of`), with the count.
  Only the diseases and agents with the most documents are drawn; the rest are counted.
- The **timeline** places each clinical study (human data) by year and design.
- A **view** is what a click on either selects: ``{"disease": ..., "agent": ...}`` (a map
  cell) or ``{"years": [low, high]}`` (clinical studies in a span of years), and
  :func:`view_filters` turns it into the Ask filters that select its documents.

Labels are flattened to one line and shortened; the plots (Vega) draw them as text, and every
HTML the UI builds from them goes through ``render.escape``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from rag.ingest.evidence import (
    CLINICAL_LEVELS,
    EVIDENCE_LABELS,
    EVIDENCE_LEVELS,
    evidence_of,
    evidence_rank,
)

__all__ = ["CLINICAL_LABELS", "LEVEL_COLORS", "MAP_COLUMNS", "TIMELINE_COLUMNS", "EvidenceMap",
           "MapCell",
           "axis_labels", "badge_css", "badge_text_color", "build_evidence_map",
           "cell_view", "clinical_studies", "contrast_ratio", "doc_year", "evidence_data",
           "level_color_map", "map_frame", "plot_label", "tag_values", "timeline_frame",
           "view_filters", "years_view"]

# Clinical designs in greens, teals and blue (darkest = strongest), preclinical in oranges,
# the rest in greys; every colour keeps a 3:1 contrast against a white page.
LEVEL_COLORS: dict[str, str] = {
    "meta-analysis": "#00441b",
    "phase-3": "#1a7f37",
    "randomized-phase-2": "#0f766e",
    "phase-1-2": "#0e7490",
    "observational": "#2563eb",
    "in-vivo": "#9a3412",
    "in-vitro": "#d97706",
    "mechanism": "#6b7280",
    "review": "#475569",
    "unknown": "#8b8b8b",
}
DARK_TEXT, LIGHT_TEXT = "#111827", "#ffffff"
MAP_COLUMNS = ("Agent", "Disease", "Highest evidence", "Documents", "Titles", "cell")
TIMELINE_COLUMNS = ("Year", "Design", "Studies", "Titles")
CLINICAL_LABELS = tuple(EVIDENCE_LABELS[level] for level in EVIDENCE_LEVELS
                        if level in CLINICAL_LEVELS)  # strongest first
_LABEL_CHARS = 48
_TITLE_CHARS = 90
_TITLES_SHOWN = 3


class Record(Protocol):
    """What the map needs of a document (``rag.store.metadata.DocRecord`` has it)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...


# -- colours --------------------------------------------------------------------------------


def _luminance(color: str) -> float:
    channels = [int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def badge_text_color(level: str) -> str:
    """White or near-black, whichever reads better on the level's colour."""
    background = LEVEL_COLORS.get(level, LEVEL_COLORS["unknown"])
    return max((LIGHT_TEXT, DARK_TEXT), key=lambda text: contrast_ratio(text, background))


def badge_css() -> str:
    """One CSS rule per level: ``.rag-badge-phase-3 { background: ...; color: ... }``."""
    return "\n".join(
        f".rag-badge-{level} {{ background: {color}; color: {badge_text_color(level)}; }}"
        for level, color in LEVEL_COLORS.items())


def level_color_map() -> dict[str, str]:
    """Display label -> colour, for the plots' legends."""
    return {EVIDENCE_LABELS[level]: color for level, color in LEVEL_COLORS.items()}


# -- labels and tags ------------------------------------------------------------------------


def plot_label(value: Any, limit: int = _LABEL_CHARS) -> str:
    """One printable line of at most ``limit`` characters (longer text ends in "…")."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def tag_values(meta: Mapping[str, Any], field: str) -> dict[str, str]:
    """A document's tags in ``field`` (a string or a list of strings): lower-cased key -> the
    tag as written (stripped), the first spelling winning. Other values are ignored."""
    raw = meta.get(field) if isinstance(meta, Mapping) else None
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, (list, tuple)) else []
    found: dict[str, str] = {}
    for item in items:
        text = item.strip() if isinstance(item, str) else ""
        if text:
            found.setdefault(text.lower(), text)
    return found


def doc_year(meta: Mapping[str, Any]) -> int | None:
    """The publication year, if the metadata holds a plausible one."""
    year = meta.get("year") if isinstance(meta, Mapping) else None
    # The loaders store a year as a number; the filters (and so Ask) compare numbers only.
    if isinstance(year, int) and not isinstance(year, bool) and 1800 <= year <= 2200:
        return year
    return None


def _titles(titles: Sequence[str]) -> str:
    shown = [plot_label(t, _TITLE_CHARS) for t in titles[:_TITLES_SHOWN]]
    more = len(titles) - len(shown)
    return " | ".join(shown) + (f" (+{more} more)" if more > 0 else "")


# -- the map --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapCell:
    """The documents tagged with both ``disease`` and ``agent`` (tags as written)."""

    disease: str
    agent: str
    level: str  # the strongest design among them
    doc_ids: tuple[str, ...]
    titles: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.doc_ids)

    @property
    def key(self) -> str:
        """What a click on the cell sends back: ``["disease", "agent"]`` as JSON."""
        return json.dumps([self.disease, self.agent], ensure_ascii=False)


@dataclass(frozen=True)
class EvidenceMap:
    cells: tuple[MapCell, ...]
    diseases: tuple[tuple[str, int], ...]  # shown, most documents first: (tag, documents)
    agents: tuple[tuple[str, int], ...]
    hidden_diseases: int = 0
    hidden_agents: int = 0


def _top(counts: Mapping[str, set[str]], limit: int) -> list[str]:
    return sorted(counts, key=lambda key: (-len(counts[key]), key))[:limit]


def build_evidence_map(records: Iterable[Record], *, max_diseases: int = 12,
                       max_agents: int = 15) -> EvidenceMap:
    """Disease x agent cells over ``records``, for the ``max_diseases`` diseases and
    ``max_agents`` agents with the most documents. Cells are ordered strongest design first
    (the plot's legend follows that order), then by disease and agent."""
    docs = list(records)
    spelled: dict[str, str] = {}
    by_disease: dict[str, set[str]] = {}
    by_agent: dict[str, set[str]] = {}
    tagged = []
    for doc in docs:
        diseases, agents = tag_values(doc.meta, "diseases"), tag_values(doc.meta, "agents")
        for tags, bucket in ((diseases, by_disease), (agents, by_agent)):
            for key, text in tags.items():
                spelled.setdefault(key, text)
                bucket.setdefault(key, set()).add(doc.doc_id)
        tagged.append((doc, diseases, agents))
    shown_diseases, shown_agents = _top(by_disease, max_diseases), _top(by_agent, max_agents)
    cells: dict[tuple[str, str], list[Record]] = {}
    for doc, diseases, agents in tagged:
        for disease in (d for d in shown_diseases if d in diseases):
            for agent in (a for a in shown_agents if a in agents):
                cells.setdefault((disease, agent), []).append(doc)
    built = []
    for (disease, agent), members in cells.items():
        level = min((evidence_of(d.meta).level for d in members), key=evidence_rank)
        built.append(MapCell(spelled[disease], spelled[agent], level,
                             tuple(d.doc_id for d in members),
                             tuple(str(d.title) for d in members)))
    built.sort(key=lambda c: (evidence_rank(c.level), c.disease.lower(), c.agent.lower()))
    return EvidenceMap(
        tuple(built),
        tuple((spelled[d], len(by_disease[d])) for d in shown_diseases),
        tuple((spelled[a], len(by_agent[a])) for a in shown_agents),
        hidden_diseases=len(by_disease) - len(shown_diseases),
        hidden_agents=len(by_agent) - len(shown_agents),
    )


def axis_labels(emap: EvidenceMap) -> tuple[dict[str, str], dict[str, str]]:
    """Tag -> axis label with its document count, ``"multiple myeloma (20)"``, for the
    diseases and the agents."""
    def labels(tags: Sequence[tuple[str, int]]) -> dict[str, str]:
        return {tag: f"{plot_label(tag)} ({n})" for tag, n in tags}

    return labels(emap.diseases), labels(emap.agents)


def map_frame(emap: EvidenceMap) -> pd.DataFrame:
    """One row per cell (columns :data:`MAP_COLUMNS`): the axis labels, the strongest
    design's label, the count, a few titles, and the cell's key for clicks."""
    diseases, agents = axis_labels(emap)
    rows = [[agents[c.agent], diseases[c.disease], EVIDENCE_LABELS[c.level], c.count,
             _titles(c.titles), c.key] for c in emap.cells]
    frame = pd.DataFrame(rows, columns=list(MAP_COLUMNS))
    return frame.astype({"Documents": "int64"})


# -- the timeline ---------------------------------------------------------------------------


def clinical_studies(records: Iterable[Record]
                     ) -> tuple[dict[tuple[int, str], list[Record]], int]:
    """Clinical studies grouped by (year, level), strongest level first, then by year; and
    how many clinical studies have no usable year."""
    groups: dict[tuple[int, str], list[Record]] = {}
    undated = 0
    for doc in records:
        level = evidence_of(doc.meta).level
        if level not in CLINICAL_LEVELS:
            continue
        year = doc_year(doc.meta)
        if year is None:
            undated += 1
            continue
        groups.setdefault((year, level), []).append(doc)
    ordered = sorted(groups, key=lambda k: (evidence_rank(k[1]), k[0]))
    return {key: groups[key] for key in ordered}, undated


def timeline_frame(records: Iterable[Record]) -> tuple[pd.DataFrame, int]:
    """Clinical studies by year and design, one row per (year, design) with the count and a
    few titles (columns :data:`TIMELINE_COLUMNS`), strongest design first; and how many
    clinical studies have no usable year (left out)."""
    groups, undated = clinical_studies(records)
    rows = [[year, EVIDENCE_LABELS[level], len(docs), _titles([str(d.title) for d in docs])]
            for (year, level), docs in groups.items()]
    frame = pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))
    return frame.astype({"Year": "int64", "Studies": "int64"}), undated


def evidence_data(records: Iterable[Record]) -> dict[str, Any]:
    """The map and the timeline as plain data (the HTTP API's ``/evidence_map``)."""
    docs = list(records)
    emap = build_evidence_map(docs)
    groups, undated = clinical_studies(docs)
    return {
        "cells": [{"disease": c.disease, "agent": c.agent, "level": c.level,
                   "label": EVIDENCE_LABELS[c.level], "documents": c.count,
                   "doc_ids": list(c.doc_ids)} for c in emap.cells],
        "diseases": [{"name": name, "documents": n} for name, n in emap.diseases],
        "agents": [{"name": name, "documents": n} for name, n in emap.agents],
        "hidden_diseases": emap.hidden_diseases,
        "hidden_agents": emap.hidden_agents,
        "timeline": [{"year": year, "level": level, "label": EVIDENCE_LABELS[level],
                      "studies": len(members), "doc_ids": [d.doc_id for d in members]}
                     for (year, level), members in groups.items()],
        "undated_clinical": undated,
    }


# -- views: what a click selects --------------------------------------------------------------


def cell_view(key: Any) -> dict[str, str] | None:
    """The view for a clicked cell's key (``["disease", "agent"]`` as JSON); None when the
    key is not that shape."""
    try:
        value = json.loads(key) if isinstance(key, str) else None
    except ValueError:
        return None
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, str) and v.strip() for v in value)):
        return {"disease": value[0].strip(), "agent": value[1].strip()}
    return None


def years_view(span: Any) -> dict[str, list[int]] | None:
    """The view for a span of years brushed on the timeline (two numbers, any order)."""
    if not isinstance(span, (list, tuple)) or len(span) != 2:
        return None
    try:
        low, high = sorted(float(v) for v in span)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    first, last = math.ceil(low - 1e-6), math.floor(high + 1e-6)
    if first > last:  # a brush between two years: the nearer one
        first = last = round((low + high) / 2)
    return {"years": [first, last]}


def view_filters(view: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Ask filters that select ``view``'s documents (``{}`` for an empty view): a map cell
    is its disease and agent, a span of years the clinical studies of those years. The table
    lists what these filters pass (``RAG.documents``), so it shows what Ask searches."""
    if not view:
        return {}
    if "years" in view:
        low, high = view["years"]
        return {"year": [int(low), int(high)], "evidence": list(CLINICAL_LABELS)}
    return {"disease": [str(view.get("disease", ""))], "agent": [str(view.get("agent", ""))]}
