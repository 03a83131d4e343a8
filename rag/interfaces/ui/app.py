"""The Gradio web UI: a chat over the library with a source panel, the Library tab
(:mod:`rag.interfaces.ui.library`, with the evidence map and timeline), and an HTTP API.

A thin shell over :class:`rag.RAG`: callbacks parse the controls, call the facade and render
the result with :mod:`rag.interfaces.ui.render`; library errors become messages, never tracebacks.

Named API endpoints (``gradio_client``): ``/ask``, ``/search``, ``/status`` return the same
JSON as the CLI's ``--json`` (``/ask_clinical_first``: ``/ask`` ranking human studies first);
``/documents``, ``/upload`` and ``/delete`` manage the library; ``/evidence_map`` returns the
Library tab's evidence map and clinical timeline as data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.facade import RAG
from rag.interfaces.export import (
    EXPORT_SUFFIX,
    export_text,
    references_from_answer,
    to_markdown,
)
from rag.interfaces.ui.evidence_data import badge_css, evidence_data
from rag.interfaces.ui.evidence_view import EVIDENCE_CSS
from rag.interfaces.ui.files import (
    Upload,
    remove_session_folder,
    session_folder,
    write_download,
)
from rag.interfaces.ui.library import (
    DOWNLOAD_FORMATS,
    HIDDEN,
    AskFilters,
    LibraryCallbacks,
    build_library_tab,
    wire_library,
)
from rag.interfaces.ui.render import (
    build_filters,
    chat_message,
    escape_markdown,
    parse_filters,
    sources_html,
    stream_steps,
)
from rag.settings import Settings
from rag.types import Answer

__all__ = ["CSS", "EXAMPLES", "build_app", "theme"]

EXAMPLES = (
    "Why are primary CLL cells resistant to TRAIL?",
    "Does bortezomib sensitize myeloma cells to TRAIL?",
    "How do decoy receptors block TRAIL-induced apoptosis?",
    "What were the results of aponermin in relapsed multiple myeloma?",
)
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
.rag-badge { display: inline-block; border-radius: 999px; padding: 0.05rem 0.55rem;
  font-size: 0.78rem; font-weight: 600; margin-left: 0.35rem; vertical-align: 0.1em;
  white-space: nowrap; }
.rag-evidence-summary { margin: 0.2rem 0 0.7rem; padding: 0.45rem 0.7rem; border-radius: 8px;
  background: var(--background-fill-secondary);
  border-left: 4px solid var(--color-accent);
  font-weight: 600; }
""" + badge_css() + EVIDENCE_CSS


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts: the page fetches nothing from the internet."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def build_app(rag: RAG, settings: Settings, *,
              examples: Sequence[str] = EXAMPLES) -> gr.Blocks:
    """The whole app. ``rag`` is shared by every session (its reads are thread-safe)."""
    modes = ["extractive", "llm"] if settings.llm.url else ["extractive"]
    # delete_cache: Gradio's own copies of uploaded files (already saved or refused by then)
    # and the downloads made for each session are deleted after an hour instead of staying
    # in the temp folder until a restart.
    with gr.Blocks(title="TRAIL-RAG", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        ui = _Callbacks(rag, settings, Path(demo.GRADIO_CACHE) / "trail-rag-downloads")
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
                with gr.Row(equal_height=True):
                    answer_format = gr.Radio(list(DOWNLOAD_FORMATS), value="BibTeX",
                                             label="Reference format", scale=2,
                                             elem_id="rag-answer-format")
                    answer_download = gr.DownloadButton(
                        "Download references", interactive=False, size="sm", scale=1,
                        elem_id="rag-answer-download")
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
                    clinical = gr.Checkbox(value=bool(settings.answer.clinical_first),
                                           label="Clinical evidence first",
                                           info="rank human studies (trials, observational "
                                           "studies) ahead of preclinical work",
                                           elem_id="rag-clinical-first")
                    disease = gr.Dropdown([], multiselect=True, label="Disease",
                                          elem_id="rag-disease")
                    agent = gr.Dropdown([], multiselect=True, label="Agent",
                                        elem_id="rag-agent")
                    evidence = gr.Dropdown([], multiselect=True, label="Evidence type")
                    years = gr.Textbox(label="Years", placeholder="e.g. 2005-2015",
                                       max_length=20, elem_id="rag-years")
                sources = gr.HTML(sources_html(None), elem_id="rag-sources")
        with gr.Tab("Library", id="library"):
            library = build_library_tab(settings, rag)

        chat_inputs = [question, history, k, disease, agent, evidence, years, mode, clinical]
        chat_outputs = [chatbot, history, sources, last_answer, question, copy_box]
        for trigger in (question.submit, ask_btn.click):
            trigger(ui.respond, chat_inputs, chat_outputs, api_visibility=HIDDEN,
                    concurrency_id="read").then(
                ui.export_answer, [last_answer, answer_format], [answer_download],
                api_visibility=HIDDEN)
        answer_format.change(ui.export_answer, [last_answer, answer_format],
                             [answer_download], api_visibility=HIDDEN)
        copy_btn.click(ui.copy_answer, [last_answer], [copy_box], api_visibility=HIDDEN)
        clear_btn.click(ui.clear, None, [chatbot, history, sources, last_answer, copy_box,
                                         answer_download],
                        api_visibility=HIDDEN, queue=False)
        wire_library(demo, library, ui.library, summary=summary,
                     ask=AskFilters(disease, agent, evidence, years))
        demo.unload(ui.forget_session)

        gr.api(ui.api_ask, api_name="ask", concurrency_id="read")
        gr.api(ui.api_ask_clinical_first, api_name="ask_clinical_first", concurrency_id="read")
        gr.api(ui.api_search, api_name="search", concurrency_id="read")
        gr.api(ui.api_status, api_name="status", concurrency_id="read")
        gr.api(ui.api_documents, api_name="documents", concurrency_id="read")
        gr.api(ui.api_evidence_map, api_name="evidence_map", concurrency_id="read")
        gr.api(ui.api_upload, api_name="upload", concurrency_limit=1, concurrency_id="write")
        gr.api(ui.api_delete, api_name="delete", concurrency_limit=1, concurrency_id="write")
    return demo


class _Callbacks:
    """One method per Ask tab event or API endpoint; the Library tab's are in ``library``."""

    def __init__(self, rag: RAG, settings: Settings, downloads: Path) -> None:
        self.rag = rag
        self.settings = settings
        self.downloads = downloads
        self.library = LibraryCallbacks(rag, settings, downloads)

    # -- chat ----------------------------------------------------------------------------

    def respond(self, question: str, history: list[dict[str, str]], k: float,
                disease: list[str] | None, agent: list[str] | None,
                evidence: list[str] | None, years: str | None,
                mode: str, clinical_first: bool = False) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield (history, history, gr.skip(), gr.skip(), "", gr.skip())
            return
        history = [*history, {"role": "user", "content": escape_markdown(question)}]
        pending = {"role": "assistant", "content": "*Searching the library…*"}
        yield ([*history, pending], history, gr.skip(), gr.skip(), "", gr.update(visible=False))
        try:
            filters = build_filters(disease, agent, evidence, years)
            answer = self.rag.ask(question, int(k), filters=filters, mode=mode,
                                  clinical_first=bool(clinical_first))
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
        return gr.update(value=to_markdown(answer), visible=True)

    def export_answer(self, answer: Answer | None, fmt_label: str,
                      request: gr.Request) -> Any:
        """The download button's file: the answer's references in the chosen format."""
        if not isinstance(answer, Answer) or not answer.citations:
            return gr.update(value=None, interactive=False, label="Download references")
        fmt = DOWNLOAD_FORMATS.get(fmt_label, "bibtex")
        refs = references_from_answer(answer, self.rag)
        path = write_download(session_folder(self.downloads, request.session_hash),
                              f"trail-rag-answer{EXPORT_SUFFIX[fmt]}", export_text(fmt, refs))
        return gr.update(value=str(path), interactive=True,
                         label=f"Download {len(refs)} reference{'s' if len(refs) != 1 else ''}"
                         f" ({fmt_label})")

    def forget_session(self, request: gr.Request) -> None:
        """A browser tab closed: delete the downloads made for it."""
        remove_session_folder(self.downloads, request.session_hash)

    def clear(self) -> tuple[Any, ...]:
        return ([], [], sources_html(None), None, gr.update(value="", visible=False),
                gr.update(value=None, interactive=False, label="Download references"))

    # -- HTTP API ------------------------------------------------------------------------

    def api_ask(self, question: str, k: int = 5,
                filters: dict[str, Any] | str | None = None,
                mode: str = "extractive") -> dict[str, Any]:
        """Answer a question with sentence-level citations (the CLI's `ask --json`), each
        citation with its study design, and the evidence summary line. Human studies rank
        first if the server's setting `answer.clinical_first` says so."""
        return self._ask(question, k, filters, mode, clinical_first=None)

    def api_ask_clinical_first(self, question: str, k: int = 5,
                               filters: dict[str, Any] | str | None = None,
                               mode: str = "extractive") -> dict[str, Any]:
        """`/ask` with evidence from human studies ranked first (the UI's "Clinical evidence
        first")."""
        return self._ask(question, k, filters, mode, clinical_first=True)

    def _ask(self, question: str, k: int, filters: dict[str, Any] | str | None, mode: str, *,
             clinical_first: bool | None) -> dict[str, Any]:
        # `/ask` keeps its four inputs: plain HTTP clients must send every input, so an added
        # fifth one would break them; the option has its own endpoint instead.
        with _api_errors():
            return self.rag.ask(question, int(k), filters=parse_filters(filters), mode=mode,
                                clinical_first=clinical_first).to_dict()

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

    def api_evidence_map(self) -> dict[str, Any]:
        """The Library tab's evidence map (disease x agent cells with their strongest study
        design, count and doc ids) and clinical timeline (studies by year and design)."""
        with _api_errors():
            return evidence_data(self.rag.documents())

    def api_upload(self, files: list[gr.FileData]) -> dict[str, Any]:
        """Save and index files; returns the index report plus the refused files."""
        uploads = [_as_upload(f) for f in files or []]
        with _api_errors():
            report, refused = self.library.ingest(uploads)
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
            return self.library.delete(ids)


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
