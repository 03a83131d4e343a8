"""The Library tab: the documents table with search, the evidence map and timeline that
filter it, the export of the library or the current view, upload and delete.

A *view* (:mod:`rag.interfaces.ui.evidence_data`) is what a click on the map or a brush on the
timeline selected; the table, the "shown" export and the note above the table follow it. A
map cell also sets the Ask tab's disease and agent filters, a span of years its years and
evidence filters. The table lists the documents those same filters pass
(:meth:`rag.RAG.documents`), so what it shows is what Ask searches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.facade import RAG
from rag.interfaces.export import EXPORT_SUFFIX, export_text, references_from_library
from rag.interfaces.ui.evidence_data import (
    CLINICAL_LABELS,
    cell_view,
    view_filters,
    years_view,
)
from rag.interfaces.ui.evidence_view import (
    EvidencePlots,
    EvidenceView,
    build_evidence_view,
    evidence_plots,
    evidence_updates,
    year_span,
)
from rag.interfaces.ui.files import (
    UPLOAD_EXTENSIONS,
    Upload,
    remove_upload,
    save_uploads,
    session_folder,
    write_download,
)
from rag.interfaces.ui.render import (
    documents_rows,
    escape_markdown,
    filter_choices,
    index_summary,
    report_markdown,
)
from rag.settings import Settings
from rag.store.metadata import DocRecord
from rag.types import IndexReport, SkippedFile

__all__ = ["DOWNLOAD_FORMATS", "HIDDEN", "TABLE_HEADERS", "LibraryCallbacks", "LibraryTab",
           "build_library_tab", "wire_library"]

TABLE_HEADERS = ["doc id", "title", "year", "study design", "type", "chunks"]
DOWNLOAD_FORMATS = {"BibTeX": "bibtex", "RIS": "ris", "CSL-JSON": "csljson"}
SCOPES = ("Whole library", "Documents shown in the table")
HIDDEN: Any = "private"  # api_visibility of UI events: they are not API endpoints


@dataclass(frozen=True)
class LibraryTab:
    search: gr.Textbox
    refresh_btn: gr.Button
    view: gr.State
    view_note: gr.Markdown
    clear_view_btn: gr.Button
    evidence: EvidenceView
    table: gr.Dataframe
    export_format: gr.Radio
    export_scope: gr.Radio
    export_btn: gr.DownloadButton
    exported: gr.State  # the session's last export (an Exported), so a repeat is skipped
    to_delete: gr.Dropdown
    delete_btn: gr.Button
    files: gr.File
    add_btn: gr.Button
    report: gr.Markdown


@dataclass(frozen=True)
class AskFilters:
    """The Ask tab's controls that the library fills (choices) and the map sets (values)."""

    disease: gr.Dropdown
    agent: gr.Dropdown
    evidence: gr.Dropdown
    years: gr.Textbox


def build_library_tab(settings: Settings, rag: RAG) -> LibraryTab:
    """The tab's components, in the current Gradio layout context."""
    with gr.Row():
        search = gr.Textbox(placeholder="Filter by title, id or year", show_label=False, scale=4)
        refresh_btn = gr.Button("Refresh", size="sm", scale=1)
    view = gr.State({})
    try:
        docs = rag.documents()
    except RagError:
        docs = []
    evidence = build_evidence_view(year_span(docs))
    with gr.Row():
        view_note = gr.Markdown(elem_id="rag-view-note", elem_classes=["rag-view-note"])
        clear_view_btn = gr.Button("Show all documents", size="sm", scale=0,
                                   elem_id="rag-clear-view")
    table = gr.Dataframe(headers=TABLE_HEADERS, datatype="str", interactive=False, wrap=True,
                         elem_id="rag-table", max_height=420)
    with gr.Row(equal_height=True):
        export_format = gr.Radio(list(DOWNLOAD_FORMATS), value="BibTeX",
                                 label="Export format", scale=2, elem_id="rag-export-format")
        export_scope = gr.Radio(list(SCOPES), value=SCOPES[0], label="Export", scale=3,
                                elem_id="rag-export-scope")
        export_btn = gr.DownloadButton("Export references", interactive=False, scale=1,
                                       elem_id="rag-library-export")
    exported = gr.State(None)
    with gr.Row():
        to_delete = gr.Dropdown([], multiselect=True, label="Documents to delete", scale=4,
                                elem_id="rag-delete-pick")
        delete_btn = gr.Button("Delete", variant="stop", scale=1)
    files = gr.File(file_count="multiple", file_types=list(UPLOAD_EXTENSIONS),
                    label=f"Add documents ({', '.join(UPLOAD_EXTENSIONS)}; "
                    f"up to {settings.ui.max_upload_mb:g} MB each)", elem_id="rag-upload")
    add_btn = gr.Button("Add to library", variant="primary")
    report = gr.Markdown(elem_id="rag-report")
    return LibraryTab(search, refresh_btn, view, view_note, clear_view_btn, evidence, table,
                      export_format, export_scope, export_btn, exported, to_delete, delete_btn,
                      files, add_btn, report)


def wire_library(demo: gr.Blocks, tab: LibraryTab, ui: LibraryCallbacks, *,
                 summary: gr.Markdown, ask: AskFilters) -> None:
    """Connect the tab's events (none of them is an API endpoint)."""
    outputs = [summary, tab.table, tab.to_delete, ask.disease, ask.agent, ask.evidence,
               ask.years, tab.view_note, *tab.evidence.outputs]
    inputs = [tab.search, tab.view]
    demo.load(ui.refresh_library, inputs, outputs, api_visibility=HIDDEN)
    tab.refresh_btn.click(ui.refresh_library, inputs, outputs, api_visibility=HIDDEN)
    tab.search.change(ui.filter_table, inputs, [tab.table], api_visibility=HIDDEN)
    tab.add_btn.click(ui.add_files, [tab.files, *inputs], [tab.report, tab.files, *outputs],
                      api_visibility=HIDDEN, concurrency_limit=1, concurrency_id="write")
    tab.delete_btn.click(ui.delete_selected, [tab.to_delete, *inputs], [tab.report, *outputs],
                         api_visibility=HIDDEN, concurrency_limit=1, concurrency_id="write")
    view_outputs = [tab.view, tab.view_note, tab.table]
    tab.evidence.bridge.click(ui.select_cell, [tab.search], [*view_outputs, ask.disease,
                                                            ask.agent], api_visibility=HIDDEN)
    tab.evidence.cell_pick.input(ui.pick_cell, [tab.evidence.cell_pick, tab.search],
                                 [*view_outputs, ask.disease, ask.agent],
                                 api_visibility=HIDDEN)
    tab.evidence.timeline.select(ui.select_years, [tab.search],
                                 [*view_outputs, ask.years, ask.evidence],
                                 api_visibility=HIDDEN)
    tab.clear_view_btn.click(ui.clear_view, [tab.search], view_outputs, api_visibility=HIDDEN)
    # The table changes on every page load, search edit and map click; export_library skips
    # at once when the session already has the file those would give (always so for the
    # whole library until the index changes).
    gr.on([tab.table.change, tab.export_format.change, tab.export_scope.change],
          ui.export_library, [tab.export_format, tab.export_scope, *inputs, tab.exported],
          [tab.export_btn, tab.exported], api_visibility=HIDDEN, concurrency_id="read")


@dataclass(frozen=True)
class LibraryFacts:
    """What the tab shows that depends only on the index generation: computed once per
    generation (:meth:`rag.RAG.per_generation`) instead of on every page load."""

    summary: str
    docs: tuple[DocRecord, ...]  # in id order
    choices: dict[str, Any]  # filter_choices
    delete_choices: list[tuple[str, str]]
    plots: EvidencePlots


@dataclass(frozen=True)
class Exported:
    """A session's last library export: which documents, format and generation, and where."""

    key: tuple[str, ...]
    path: str


class LibraryCallbacks:
    """One method per Library tab event; ``ingest`` and ``delete`` serve the API too."""

    def __init__(self, rag: RAG, settings: Settings, downloads: Path) -> None:
        self.rag = rag
        self.settings = settings
        self.downloads = downloads

    # -- table and evidence views ---------------------------------------------------------

    def refresh_library(self, query: str = "", view: Mapping[str, Any] | None = None
                        ) -> tuple[Any, ...]:
        facts = self._facts()
        choices = facts.choices
        shown = self._shown(view)
        return (
            facts.summary,
            self._table(shown, query),
            gr.update(choices=facts.delete_choices, value=[]),
            *(gr.update(choices=choices[key]) for key in ("disease", "agent", "evidence")),
            gr.update(info=f"the library spans {choices['year_min']}–{choices['year_max']}"
                      if choices["year_min"] else None),
            view_note(view, len(shown)),
            *evidence_updates(facts.plots),
        )

    def filter_table(self, query: str, view: Mapping[str, Any] | None) -> Any:
        return self._table(self._shown(view), query)

    def select_cell(self, query: str, evt: gr.EventData) -> tuple[Any, ...]:
        data = getattr(evt, "_data", None)
        key = data.get("cell") if isinstance(data, Mapping) else None
        return self.pick_cell(key, query)

    def pick_cell(self, key: Any, query: str) -> tuple[Any, ...]:
        view = cell_view(key)
        if view is None:
            return (gr.skip(),) * 5
        choices = self._facts().choices
        ask = [_choice(choices[k], view[k]) for k in ("disease", "agent")]
        return (*self._view_outputs(query, view),
                *(gr.update(value=[v]) if v else gr.skip() for v in ask))

    def select_years(self, query: str, evt: gr.SelectData) -> tuple[Any, ...]:
        view = years_view(evt.index)
        if view is None:
            return (gr.skip(),) * 5
        low, high = view["years"]
        present = self._facts().choices["evidence"]
        return (*self._view_outputs(query, view),
                f"{low}-{high}" if low != high else str(low),
                gr.update(value=[label for label in CLINICAL_LABELS if label in present]))

    def clear_view(self, query: str) -> tuple[Any, ...]:
        return self._view_outputs(query, {})

    def _view_outputs(self, query: str, view: Mapping[str, Any]) -> tuple[Any, ...]:
        shown = self._shown(view)
        return dict(view), view_note(view, len(shown)), self._table(shown, query)

    def _facts(self) -> LibraryFacts:
        try:
            return self.rag.per_generation(("ui", "library"), self._compute_facts)
        except RagError as exc:
            return LibraryFacts(f"**Library unavailable:** {escape_markdown(exc)}", (),
                                filter_choices([]), [], evidence_plots([]))

    def _compute_facts(self) -> LibraryFacts:
        docs = tuple(self.rag.documents())
        return LibraryFacts(index_summary(self.rag.status()), docs, filter_choices(docs),
                            [(f"{d.title} ({d.doc_id})", d.doc_id) for d in docs],
                            evidence_plots(docs))

    def _shown(self, view: Mapping[str, Any] | None) -> list[DocRecord]:
        """The documents of ``view`` (all for an empty one), in id order; a view's list is
        kept per generation too (there are only as many views as map cells and years)."""
        if not view:
            return list(self._facts().docs)
        filters = view_filters(view)
        try:
            return list(self.rag.per_generation(
                ("ui", "view", json.dumps(filters, sort_keys=True)),
                lambda: tuple(self.rag.documents(filters))))
        except RagError:
            return []

    @staticmethod
    def _table(shown: Sequence[DocRecord], query: str | None) -> Any:
        rows = documents_rows(shown, query)
        return gr.update(value={"data": rows or [[""] * len(TABLE_HEADERS)],
                                "headers": TABLE_HEADERS})

    # -- export ---------------------------------------------------------------------------

    def export_library(self, fmt_label: str, scope: str, query: str,
                       view: Mapping[str, Any] | None, last: Exported | None,
                       request: gr.Request) -> tuple[Any, Any]:
        """The export button's file: the whole library, or the documents the table shows.

        A whole-library export is written once per generation and format and shared by the
        sessions; each session gets its own copy of the file. When the session already has
        the file for the same documents, format and generation, nothing is done."""
        fmt = DOWNLOAD_FORMATS.get(fmt_label, "bibtex")
        try:
            generation = self.rag.snapshot.generation
            ids = (None if scope == SCOPES[0]
                   else [row[0] for row in documents_rows(self._shown(view), query)])
            if ids is not None and len(ids) == len(self._facts().docs):
                ids = None  # every document: the same file as the whole library
            digest = "all" if ids is None else hashlib.sha256(
                "\n".join(ids).encode("utf-8")).hexdigest()
            key = (generation, fmt, digest)
            if last is not None and last.key == key and Path(last.path).is_file():
                return gr.skip(), gr.skip()
            if ids is None:
                count, text = self.rag.per_generation(("ui", "export", fmt),
                                                      lambda: self._export(fmt, None))
            else:
                count, text = self._export(fmt, ids)
        except RagError:
            count = 0
        if not count:
            return gr.update(value=None, interactive=False, label="Export references"), None
        path = write_download(session_folder(self.downloads, request.session_hash),
                              f"trail-rag-library{EXPORT_SUFFIX[fmt]}", text)
        return (gr.update(value=str(path), interactive=True,
                          label=f"Export {count} reference{'s' if count != 1 else ''} "
                          f"({fmt_label})"), Exported(key, str(path)))

    def _export(self, fmt: str, ids: list[str] | None) -> tuple[int, str]:
        if ids is not None and not ids:
            return 0, ""
        refs = references_from_library(self.rag, {"doc_id": ids} if ids else None)
        return len(refs), export_text(fmt, refs)

    # -- upload and delete ----------------------------------------------------------------

    def add_files(self, paths: list[str] | None, query: str, view: Mapping[str, Any] | None,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        uploads = [Upload(Path(p), Path(p).name) for p in paths or []]
        if not uploads:
            return ("Choose one or more files first.", gr.skip(),
                    *self.refresh_library(query, view))
        try:
            message = report_markdown(*self.ingest(uploads, progress))
        except RagError as exc:
            message = f"**Error:** {escape_markdown(exc)}"
        return (message, None, *self.refresh_library(query, view))

    def ingest(self, uploads: list[Upload], progress: gr.Progress | None = None
               ) -> tuple[IndexReport | None, list[SkippedFile]]:
        folder = Path(self.settings.ui.upload_dir)
        saved, refused = save_uploads(uploads, folder, max_mb=self.settings.ui.max_upload_mb)
        if not saved:
            return None, refused

        def report_progress(done: int, total: int) -> None:
            if progress is not None and total:
                progress((done, total), desc="Embedding", unit="passages")

        try:
            report = self.rag.add(saved, progress=report_progress)
        except RagError:
            _discard(saved)
            raise
        skipped = {Path(s.path).resolve() for s in report.skipped}
        _discard(p for p in saved if p.resolve() in skipped)  # keep only what is indexed
        return report, refused

    def delete_selected(self, doc_ids: list[str] | None, query: str,
                        view: Mapping[str, Any] | None) -> tuple[Any, ...]:
        if not doc_ids:
            return ("Choose documents to delete first.", *self.refresh_library(query, view))
        try:
            result = self.delete(doc_ids)
            message = f"**Deleted:** {', '.join(escape_markdown(d) for d in result['removed'])}"
        except RagError as exc:
            message = f"**Error:** {escape_markdown(exc)}"
        return (message, *self.refresh_library(query, view))

    def delete(self, doc_ids: Sequence[str]) -> dict[str, list[str]]:
        records = {d.doc_id: d for d in self.rag.documents()}
        removed = self.rag.remove(list(doc_ids))
        folder = Path(self.settings.ui.upload_dir)
        for doc_id in removed:
            source = records[doc_id].source_path
            if not any(d.source_path == source for d in self.rag.documents()):
                remove_upload(source, folder)
        return {"removed": removed, "not_found": sorted(set(doc_ids) - set(removed))}


def view_note(view: Mapping[str, Any] | None, shown: int) -> str:
    """What the table shows, in one line of Markdown."""
    documents = f"{shown} document{'s' if shown != 1 else ''}"
    if not view:
        return f"Showing all {documents}. Click the map or drag across the timeline to filter."
    if "years" in view:
        low, high = view["years"]
        span = f"{low}–{high}" if low != high else str(low)
        return (f"Showing {documents}: clinical studies from {span}. The Ask tab's years "
                "and evidence types are set to match.")
    return (f"Showing {documents} tagged **{escape_markdown(view.get('disease', ''))}** and "
            f"**{escape_markdown(view.get('agent', ''))}**. The Ask tab's disease and agent "
            "filters are set to match.")


def _choice(choices: Sequence[str], wanted: str) -> str | None:
    """The dropdown choice spelled like ``wanted`` (case aside), if there is one."""
    return next((c for c in choices if c.lower() == wanted.lower()), None)


def _discard(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
