"""The Library tab's evidence map and clinical timeline: Gradio's native scatter plots (Vega)
over the DataFrames of :mod:`rag.interfaces.ui.evidence_data`.

Gradio's plot ``.select`` event reports an x-axis brush (a range), not the clicked point, so
it serves the timeline (brush a span of years). A map cell is picked by a click: the plot sits
inside a ``gr.HTML`` whose script reads the clicked mark's data row (Vega keeps it on the SVG
element) and sends the row's cell key, nothing else, as the HTML component's click event. A
dropdown lists the same cells for keyboards and screen readers.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from rag.interfaces.ui.evidence_data import (
    LEVEL_COLORS,
    EvidenceMap,
    Record,
    build_evidence_map,
    doc_year,
    level_color_map,
    map_frame,
    timeline_frame,
)
from rag.interfaces.ui.render import escape_markdown

__all__ = ["EVIDENCE_CSS", "EvidencePlots", "EvidenceView", "build_evidence_view",
           "evidence_plots", "evidence_updates", "year_span"]

# The click bridge: only a string from the data row (the cell key) leaves the plot.
MAP_CLICK_JS = """
const cellAt = (event) => {
  const stack = [event.target, ...document.elementsFromPoint(event.clientX, event.clientY)];
  for (const node of stack) {
    const row = node && node.__data__ && node.__data__.datum;
    if (row && typeof row.cell === 'string' && element.contains(node)) return row.cell;
  }
  return null;
};
element.addEventListener('click', (event) => {
  const cell = cellAt(event);
  if (cell !== null) trigger('click', {cell: cell});
});
"""
# Vega draws small unfilled rings; filled, wide-stroked discs are easier to see and to click.
_DISC = "#{plot} .mark-symbol.role-mark path[stroke=\"{color}\"] {{ fill: {color}; }}"
EVIDENCE_CSS = "\n".join([
    "#rag-evidence-map .mark-symbol.role-mark path { stroke-width: 10px; opacity: 1; "
    "cursor: pointer; }",
    "#rag-timeline .mark-symbol.role-mark path { stroke-width: 6px; opacity: 0.95; }",
    *(_DISC.format(plot=plot, color=color) for plot in ("rag-evidence-map", "rag-timeline")
      for color in LEVEL_COLORS.values()),
    ".rag-plot-title h4 { margin: 0.6rem 0 0; }",
])
MIN_YEAR_SPAN = 30  # a shorter x axis gets ticks between whole years


@dataclass(frozen=True)
class EvidenceView:
    bridge: gr.HTML
    map_plot: gr.ScatterPlot
    map_note: gr.Markdown
    cell_pick: gr.Dropdown
    timeline: gr.ScatterPlot
    timeline_note: gr.Markdown

    @property
    def outputs(self) -> list[Any]:
        """The components :func:`evidence_updates` fills, in its order."""
        return [self.map_plot, self.map_note, self.cell_pick, self.timeline,
                self.timeline_note]


def build_evidence_view(x_lim: Sequence[int]) -> EvidenceView:
    """The map and the timeline, in the current Gradio layout context; ``x_lim``: the
    timeline's years (:func:`year_span`)."""
    colors = level_color_map()
    with gr.Accordion("Evidence map and clinical timeline", open=True):
        gr.Markdown("#### Evidence map: disease × agent", elem_classes=["rag-plot-title"])
        with gr.HTML(html_template="<div class='rag-map-bridge'>@children</div>",
                     js_on_load=MAP_CLICK_JS, elem_id="rag-map-bridge") as bridge:
            map_plot = gr.ScatterPlot(
                x="Agent", y="Disease", color="Highest evidence", color_map=colors,
                tooltip=["Documents", "Titles"], x_title="Agent (documents)",
                y_title="Disease (documents)", color_title="Strongest study design",
                x_label_angle=-35, height=420, elem_id="rag-evidence-map")
        map_note = gr.Markdown(elem_id="rag-map-note")
        cell_pick = gr.Dropdown([], label="Or choose a cell", value=None,
                                elem_id="rag-cell-pick")
        gr.Markdown("#### Clinical studies by year and design", elem_classes=["rag-plot-title"])
        timeline = gr.ScatterPlot(
            x="Year", y="Design", color="Design", color_map=colors,
            tooltip=["Studies", "Titles"], x_axis_format="d", x_lim=list(x_lim),
            height=260, color_title="Study design", elem_id="rag-timeline")
        timeline_note = gr.Markdown(elem_id="rag-timeline-note")
    return EvidenceView(bridge, map_plot, map_note, cell_pick, timeline, timeline_note)


@dataclass(frozen=True)
class EvidencePlots:
    """The map's and the timeline's data for one set of records (what :func:`evidence_updates`
    sends; the Library tab keeps one per index generation)."""

    map_frame: pd.DataFrame
    map_note: str
    cells: list[tuple[str, str]]
    timeline: pd.DataFrame
    timeline_note: str


def evidence_plots(records: Iterable[Record]) -> EvidencePlots:
    docs = list(records)
    emap = build_evidence_map(docs)
    timeline, undated = timeline_frame(docs)
    return EvidencePlots(map_frame(emap), map_note(emap), cell_choices(emap), timeline,
                         timeline_note(len(timeline), int(timeline["Studies"].sum()), undated))


def evidence_updates(plots: EvidencePlots) -> tuple[Any, ...]:
    """Fresh values for :attr:`EvidenceView.outputs`. Only the plots' data changes: Gradio
    redraws a plot whose data and settings change together with the previous data (it reads
    the frames, never changes them, so one pair serves every session)."""
    return (plots.map_frame, plots.map_note, gr.update(choices=plots.cells, value=None),
            plots.timeline, plots.timeline_note)


def year_span(docs: Iterable[Record], *, first: int = 1990) -> list[int]:
    """The timeline's x axis, fixed when the app starts: from 1990 (or the library's first
    year) to next year (or the library's last), whole years, at least :data:`MIN_YEAR_SPAN`
    wide so that the ticks fall on whole years."""
    years = [y for y in (doc_year(d.meta) for d in docs) if y is not None]
    low = min([first, *years]) - 1
    high = max([datetime.date.today().year, *years]) + 1
    return [min(low, high - MIN_YEAR_SPAN), high]


def map_note(emap: EvidenceMap) -> str:
    if not emap.cells:
        return "*No document is tagged with both a disease and an agent yet.*"
    note = ("Each dot is a disease × agent pair; its colour is the strongest study design "
            "among the documents tagged with both, the axes count documents per disease and "
            "agent. Hover for the count and titles; click a dot to list its documents below "
            "and set the Ask tab's filters.")
    hidden = [f"{n} more {what}" for n, what in ((emap.hidden_diseases, "diseases"),
                                                 (emap.hidden_agents, "agents")) if n]
    if hidden:
        note += (f" Showing the {len(emap.diseases)} diseases and {len(emap.agents)} agents "
                 f"with the most documents; other: {' and '.join(hidden)} not drawn.")
    return f"*{escape_markdown(note)}*"


def timeline_note(points: int, studies: int, undated: int) -> str:
    if not points:
        note = "No clinical study (trial, observational or meta-analysis) with a year yet."
    else:
        note = (f"{studies} clinical stud{'y' if studies == 1 else 'ies'} with a year; drag "
                "across years to list them below.")
    if undated:
        note += f" {undated} without a year {'is' if undated == 1 else 'are'} not shown."
    return f"*{escape_markdown(note)}*"


def cell_choices(emap: EvidenceMap) -> list[tuple[str, str]]:
    """Dropdown options, biggest cells first: ``("multiple myeloma × TRAIL: 5", key)``."""
    cells: Sequence[Any] = sorted(emap.cells, key=lambda c: (-c.count, c.disease, c.agent))
    return [(f"{c.disease} × {c.agent}: {c.count} document{'s' if c.count != 1 else ''}",
             c.key) for c in cells]
