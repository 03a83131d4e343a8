"""The Gradio web UI: a chat over the library, a source panel, a library tab, an HTTP API.

A thin shell over :class:`rag.RAG`: callbacks parse the controls, call the facade and render
the result with :mod:`rag.interfaces.ui.render`; library errors become messages, never tracebacks.

Named API endpoints (``gradio_client``): ``/ask``, ``/search``, ``/status`` return the same
JSON as the CLI's ``--json``; ``/documents``, ``/upload`` and ``/delete`` manage the library.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.facade import RAG
from rag.interfaces.render import answer_as_markdown
from rag.interfaces.ui.files import UPLOAD_EXTENSIONS, Upload, remove_upload, save_uploads
from rag.interfaces.ui.render import (
    build_filters,
    chat_message,
    documents_rows,
    escape_markdown,
    filter_choices,
    index_summary,
    parse_filters,
    report_markdown,
    sources_html,
    stream_steps,
)
from rag.settings import Settings
from rag.types import Answer, SkippedFile

__all__ = ["CSS", "EXAMPLES", "build_app", "theme"]

EXAMPLES = (
    "Why are primary CLL cells resistant to TRAIL?",
    "Does bortezomib sensitize myeloma cells to TRAIL?",
    "How do decoy receptors block TRAIL-induced apoptosis?",
    "What were the results of aponermin in relapsed multiple myeloma?",
)
TABLE_HEADERS = ["doc id", "title", "year", "type", "chunks"]
CSS = """
.rag-sources { font-size: 0.95rem; line-height: 1.45; }
.rag-sources h3 { margin: 0.2rem 0 0.6rem; }
.rag-cites, .rag-closest-list { padding-left: 0; list-style: none; }
.rag-cite, .rag-closest { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 0.6rem 0.8rem; margin-bottom: 0.7rem; }
.rag-n { font-weight: 700; margin-right: 0.25rem; color: var(--color-accent); }
.rag-meta, .rag-source-line, .rag-muted { color: var(--body-text-color-subdued);
  font-size: 0.85rem; }
.rag-links a { margin-right: 0.8rem; font-size: 0.85rem; }
.rag-passage { margin: 0.5rem 0 0; padding-left: 0.7rem;
  border-left: 3px solid var(--border-color-primary); white-space: pre-wrap; }
.rag-passage mark { background: #fff3a3; color: #111; padding: 0 2px; border-radius: 2px; }
.rag-warning { background: #fff4e5; color: #6b3d00; border: 1px solid #f0b35b;
  border-radius: 8px; padding: 0.6rem 0.8rem; margin-bottom: 0.7rem; }
.rag-empty { color: var(--body-text-color-subdued); }
.rag-coverage h4 { margin: 0.8rem 0 0.3rem; }
.rag-parts { list-style: none; padding-left: 0; display: flex; flex-wrap: wrap; gap: 0.4rem; }
.rag-part { border-radius: 999px; padding: 0.1rem 0.6rem; font-size: 0.85rem; }
.rag-part-covered { background: #e6f4ea; color: #14532d; }
.rag-part-missing { background: #fde8e8; color: #7f1d1d; font-weight: 600; }
"""
_HIDDEN: Any = "private"  # UI events are not API endpoints


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts: the page fetches nothing from the internet."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def build_app(rag: RAG, settings: Settings, *,
              examples: Sequence[str] = EXAMPLES) -> gr.Blocks:
    """The whole app. ``rag`` is shared by every session (its reads are thread-safe)."""
    ui = _Callbacks(rag, settings)
    modes = ["extractive", "llm"] if settings.llm.url else ["extractive"]
    # delete_cache: Gradio's own copies of uploaded files (already saved or refused by then)
    # are deleted after an hour instead of staying in the temp folder until a restart.
    with gr.Blocks(title="TRAIL-RAG", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## TRAIL-RAG\nCited answers about TRAIL resistance and TRAIL-based "
                    "therapy in blood cancers, from your local library.")
        summary = gr.Markdown(elem_id="rag-summary")
        history = gr.State([])
        last_answer = gr.State(None)
        with gr.Tab("Ask", id="ask"), gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="rag-chat",
                                     feedback_options=None, buttons=["copy"])
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask about TRAIL, DR4/DR5, "
                                          "sensitizers, trials…", show_label=False,
                                          scale=5, elem_id="rag-question", max_length=4000)
                    ask_btn = gr.Button("Ask", variant="primary", scale=1,
                                        elem_id="rag-ask")
                gr.Examples([[q] for q in examples], inputs=[question],
                            label="Example questions")
                with gr.Row():
                    copy_btn = gr.Button("Copy answer with references", size="sm",
                                         elem_id="rag-copy")
                    clear_btn = gr.Button("Clear conversation", size="sm")
                copy_box = gr.Textbox(label="Answer with references (Markdown)", lines=8,
                                      visible=False, buttons=["copy"],
                                      elem_id="rag-copy-box")
            with gr.Column(scale=2):
                with gr.Accordion("Options", open=False):
                    k = gr.Slider(1, 20, value=settings.retrieval.k, step=1,
                                  label="Passages")
                    mode = gr.Radio(modes, value="extractive", label="Answer mode",
                                    info=None if settings.llm.url else
                                    "LLM mode needs RAG_LLM_URL")
                    disease = gr.Dropdown([], multiselect=True, label="Disease")
                    agent = gr.Dropdown([], multiselect=True, label="Agent")
                    evidence = gr.Dropdown([], multiselect=True, label="Evidence type")
                    years = gr.Textbox(label="Years", placeholder="e.g. 2005-2015",
                                       max_length=20)
                sources = gr.HTML(sources_html(None), elem_id="rag-sources")
        with gr.Tab("Library", id="library"):
            with gr.Row():
                lib_search = gr.Textbox(placeholder="Filter by title, id or year",
                                        show_label=False, scale=4)
                refresh_btn = gr.Button("Refresh", size="sm", scale=1)
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype="str", interactive=False,
                                 wrap=True, elem_id="rag-table", max_height=420)
            with gr.Row():
                to_delete = gr.Dropdown([], multiselect=True, label="Documents to delete",
                                        scale=4)
                delete_btn = gr.Button("Delete", variant="stop", scale=1)
            files = gr.File(file_count="multiple", file_types=list(UPLOAD_EXTENSIONS),
                            label=f"Add documents ({', '.join(UPLOAD_EXTENSIONS)}; "
                            f"up to {settings.ui.max_upload_mb:g} MB each)")
            add_btn = gr.Button("Add to library", variant="primary")
            report = gr.Markdown(elem_id="rag-report")

        library_outputs = [summary, table, to_delete, disease, agent, evidence, years]
        chat_inputs = [question, history, k, disease, agent, evidence, years, mode]
        chat_outputs = [chatbot, history, sources, last_answer, question, copy_box]
        for trigger in (question.submit, ask_btn.click):
            trigger(ui.respond, chat_inputs, chat_outputs, api_visibility=_HIDDEN,
                    concurrency_id="read")
        copy_btn.click(ui.copy_answer, [last_answer], [copy_box], api_visibility=_HIDDEN)
        clear_btn.click(ui.clear, None, [chatbot, history, sources, last_answer, copy_box],
                        api_visibility=_HIDDEN, queue=False)
        demo.load(ui.refresh_library, [lib_search], library_outputs, api_visibility=_HIDDEN)
        refresh_btn.click(ui.refresh_library, [lib_search], library_outputs,
                          api_visibility=_HIDDEN)
        lib_search.change(ui.filter_table, [lib_search], [table], api_visibility=_HIDDEN)
        add_btn.click(ui.add_files, [files, lib_search], [report, files, *library_outputs],
                      api_visibility=_HIDDEN, concurrency_limit=1, concurrency_id="write")
        delete_btn.click(ui.delete_selected, [to_delete, lib_search],
                         [report, *library_outputs], api_visibility=_HIDDEN,
                         concurrency_limit=1, concurrency_id="write")

        gr.api(ui.api_ask, api_name="ask", concurrency_id="read")
        gr.api(ui.api_search, api_name="search", concurrency_id="read")
        gr.api(ui.api_status, api_name="status", concurrency_id="read")
        gr.api(ui.api_documents, api_name="documents", concurrency_id="read")
        gr.api(ui.api_upload, api_name="upload", concurrency_limit=1, concurrency_id="write")
        gr.api(ui.api_delete, api_name="delete", concurrency_limit=1, concurrency_id="write")
    return demo


class _Callbacks:
    """One method per UI event or API endpoint."""

    def __init__(self, rag: RAG, settings: Settings) -> None:
        self.rag = rag
        self.settings = settings

    # -- chat ----------------------------------------------------------------------------

    def respond(self, question: str, history: list[dict[str, str]], k: float,
                disease: list[str] | None, agent: list[str] | None,
                evidence: list[str] | None, years: str | None,
                mode: str) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield (history, history, gr.skip(), gr.skip(), "", gr.skip())
            return
        history = [*history, {"role": "user", "content": escape_markdown(question)}]
        pending = {"role": "assistant", "content": "*Searching the library…*"}
        yield ([*history, pending], history, gr.skip(), gr.skip(), "", gr.update(visible=False))
        try:
            filters = build_filters(disease, agent, evidence, years)
            answer = self.rag.ask(question, int(k), filters=filters, mode=mode)
        except RagError as exc:
            reply = {"role": "assistant", "content": f"**Error:** {escape_markdown(exc)}"}
            yield ([*history, reply], [*history, reply], gr.skip(), None, "", gr.skip())
            return
        if answer.supported:
            for prefix in stream_steps(answer.text):
                step = {"role": "assistant", "content": chat_message(answer, text=prefix)}
                yield ([*history, step], history, gr.skip(), gr.skip(), "", gr.skip())
                time.sleep(0.03)
        history = [*history, {"role": "assistant", "content": chat_message(answer)}]
        yield (history, history, sources_html(answer, self._doc_text), answer, "", gr.skip())

    def _doc_text(self, doc_id: str) -> str | None:
        try:
            return self.rag.document(doc_id).text
        except RagError:
            return None

    def copy_answer(self, answer: Answer | None) -> Any:
        if answer is None:
            return gr.update(value="Ask a question first.", visible=True)
        return gr.update(value=answer_as_markdown(answer), visible=True)

    def clear(self) -> tuple[Any, ...]:
        return [], [], sources_html(None), None, gr.update(value="", visible=False)

    # -- library -------------------------------------------------------------------------

    def refresh_library(self, query: str = "") -> tuple[Any, ...]:
        try:
            docs = self.rag.documents()
            summary = index_summary(self.rag.status())
        except RagError as exc:
            docs, summary = [], f"**Library unavailable:** {escape_markdown(exc)}"
        choices = filter_choices(docs)
        delete_choices = [(f"{d.title} ({d.doc_id})", d.doc_id) for d in docs]
        return (
            summary,
            self._table(documents_rows(docs, query)),
            gr.update(choices=delete_choices, value=[]),
            *(gr.update(choices=choices[key]) for key in ("disease", "agent", "evidence")),
            gr.update(info=f"the library spans {choices['year_min']}–{choices['year_max']}"
                      if choices["year_min"] else None),
        )

    def filter_table(self, query: str) -> Any:
        try:
            return self._table(documents_rows(self.rag.documents(), query))
        except RagError:
            return self._table([])

    @staticmethod
    def _table(rows: list[list[Any]]) -> Any:
        return gr.update(value={"data": rows or [["", "", "", "", ""]],
                                "headers": TABLE_HEADERS})

    def add_files(self, paths: list[str] | None, query: str,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        uploads = [Upload(Path(p), Path(p).name) for p in paths or []]
        if not uploads:
            return ("Choose one or more files first.", gr.skip(),
                    *self.refresh_library(query))
        try:
            result = self._ingest(uploads, progress)
            message = report_markdown(*result)
        except RagError as exc:
            message = f"**Error:** {escape_markdown(exc)}"
        return (message, None, *self.refresh_library(query))

    def _ingest(self, uploads: list[Upload],
                progress: gr.Progress | None = None) -> tuple[Any, list[SkippedFile]]:
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

    def delete_selected(self, doc_ids: list[str] | None, query: str) -> tuple[Any, ...]:
        if not doc_ids:
            return ("Choose documents to delete first.", *self.refresh_library(query))
        try:
            result = self._delete(doc_ids)
            message = f"**Deleted:** {', '.join(escape_markdown(d) for d in result['removed'])}"
        except RagError as exc:
            message = f"**Error:** {escape_markdown(exc)}"
        return (message, *self.refresh_library(query))

    def _delete(self, doc_ids: Sequence[str]) -> dict[str, list[str]]:
        records = {d.doc_id: d for d in self.rag.documents()}
        removed = self.rag.remove(list(doc_ids))
        folder = Path(self.settings.ui.upload_dir)
        for doc_id in removed:
            source = records[doc_id].source_path
            if not any(d.source_path == source for d in self.rag.documents()):
                remove_upload(source, folder)
        return {"removed": removed, "not_found": sorted(set(doc_ids) - set(removed))}

    # -- HTTP API ------------------------------------------------------------------------

    def api_ask(self, question: str, k: int = 5,
                filters: dict[str, Any] | str | None = None,
                mode: str = "extractive") -> dict[str, Any]:
        """Answer a question with sentence-level citations (the CLI's `ask --json`)."""
        with _api_errors():
            return self.rag.ask(question, int(k), filters=parse_filters(filters),
                                mode=mode).to_dict()

    def api_search(self, query: str, k: int = 5,
                   filters: dict[str, Any] | str | None = None) -> dict[str, Any]:
        """Hybrid search: ranked passages (the CLI's `search --json`)."""
        with _api_errors():
            passages = self.rag.search(query, int(k), filters=parse_filters(filters))
            return {"query": query, "passages": [p.to_dict() for p in passages]}

    def api_status(self) -> dict[str, Any]:
        """What the index holds (the CLI's `status --json`)."""
        with _api_errors():
            return self.rag.status()

    def api_documents(self) -> list[dict[str, Any]]:
        """The indexed documents: id, title, type, metadata and chunk count."""
        with _api_errors():
            return [{"doc_id": d.doc_id, "title": d.title, "doc_type": d.doc_type,
                     "meta": d.meta, "chunks": d.n_chunks} for d in self.rag.documents()]

    def api_upload(self, files: list[gr.FileData]) -> dict[str, Any]:
        """Save and index files; returns the index report plus the refused files."""
        uploads = [_as_upload(f) for f in files or []]
        with _api_errors():
            report, refused = self._ingest(uploads)
        data = report.to_dict() if report else {"added": [], "updated": [], "unchanged": [],
                                                "skipped": []}
        data.pop("index_dir", None)
        # "file", not "path": gradio_client would try to download a dict with a "path" key
        data["skipped"] = [{"file": Path(s["path"]).name, "reason": s["reason"]}
                           for s in data["skipped"]]
        data["refused"] = [{"file": s.path, "reason": s.reason} for s in refused]
        return data

    def api_delete(self, doc_ids: list[str] | str) -> dict[str, list[str]]:
        """Remove documents by id (the CLI's `remove --json`)."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        with _api_errors():
            return self._delete(ids)


def _discard(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _as_upload(item: Any) -> Upload:
    if isinstance(item, Mapping):
        path = str(item.get("path") or "")
        return Upload(Path(path), str(item.get("orig_name") or Path(path).name))
    path = str(getattr(item, "path", item))
    return Upload(Path(path), str(getattr(item, "orig_name", None) or Path(path).name))


class _api_errors:  # noqa: N801 - used like a function
    """Turn library errors into ``gr.Error`` so API clients get the message, not a trace."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if isinstance(exc, RagError):
            raise gr.Error(str(exc), print_exception=False) from exc
