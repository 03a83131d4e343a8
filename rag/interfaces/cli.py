"""Command line: ``python -m rag COMMAND``. A thin shell over the facade: parse, call, print.

Exit codes: 0 success, 1 a library error (message on stderr), 2 bad usage, 3 the question had
no supporting evidence (``ask`` only, with ``--strict``), 4 a PubMed query matched nothing
(``fetch`` only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rag.errors import QueryError, RagError
from rag.interfaces.export import EXPORT_FORMATS
from rag.retrieve.filters import FILTER_KEYS
from rag.settings import Settings, load_settings

__all__ = ["main"]

FILTER_HELP = (f"{', '.join(FILTER_KEYS)}: e.g. disease=CLL, year=2005-2015, "
               "evidence='Phase 3 trial' (a study design); repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rag",
        description="TRAIL-RAG: cited answers about TRAIL resistance and TRAIL-based therapy "
        "in hematologic malignancies, from a local index: BM25 and chunk vectors in FAISS "
        "files or in Milvus (--backend).",
    )
    parser.add_argument("--settings", metavar="FILE", help="YAML/JSON settings file")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--index", metavar="DIR", help="index folder (default: index/, "
                         "or $RAG_INDEX_DIR)")
        cmd.add_argument("--json", action="store_true", help="print one JSON object")
        add_store_flags(cmd)
        return cmd

    cmd = add("index", "Index files and folders (default: seeds/); only new or changed files "
              "are embedded and files that are gone are removed.")
    cmd.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to index")
    cmd.add_argument("--rebuild", action="store_true",
                     help="discard the index and build it again (after a model change)")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")

    add("status", "Show what the index holds: documents, chunks, model, size, last update.")

    cmd = add("show", "Show a document's metadata and cleaned text (citation offsets point "
              "into this text).")
    cmd.add_argument("doc_id", metavar="DOC_ID")

    cmd = add("remove", "Remove documents from the index by id.")
    cmd.add_argument("doc_ids", nargs="+", metavar="DOC_ID")

    cmd = add("search", "Hybrid search: ranked passages for a query.")
    cmd.add_argument("query")
    cmd.add_argument("--k", type=int, default=None, help="number of passages (default 5)")
    cmd.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                     help=FILTER_HELP)

    cmd = add("ask", "Answer a question with sentence-level citations; --format bibtex, ris, "
              "csljson or markdown prints the cited references for a reference manager.")
    cmd.add_argument("question")
    cmd.add_argument("--format", choices=["text", "json", *EXPORT_FORMATS], default=None,
                     help="output: text (default), json (same as --json), or the cited "
                     "references as bibtex, ris, csljson, or markdown (answer + references)")
    cmd.add_argument("--k", type=int, default=None, help="passages to return (default 5)")
    cmd.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                     help=FILTER_HELP)
    cmd.add_argument("--mode", choices=["extractive", "llm"], default="extractive",
                     help="llm needs RAG_LLM_URL and RAG_LLM_MODEL (falls back to extractive)")
    cmd.add_argument("--strict", action="store_true",
                     help="exit with code 3 when the library holds no good evidence")

    cmd = sub.add_parser("export", help="Export the library's references (all, or those "
                         "matching filters) as BibTeX, RIS, CSL-JSON or Markdown.",
                         description="Export the references of the indexed documents, all or "
                         "those matching --filter, for a reference manager.")
    cmd.add_argument("--format", choices=EXPORT_FORMATS, default="bibtex",
                     help="bibtex (default), ris, csljson or markdown")
    cmd.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                     help=FILTER_HELP)
    cmd.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    cmd.add_argument("--index", metavar="DIR", help="index folder (default: index/, "
                     "or $RAG_INDEX_DIR)")
    add_store_flags(cmd)

    cmd = add("eval", "Evaluate retrieval and answers on JSONL question sets (must_include "
              "items, unanswerable items, and PubMedQA items with a gold PMID and conclusion).")
    cmd.add_argument("files", nargs="+", metavar="FILE.jsonl")
    cmd.add_argument("--k", type=int, default=10, help="passages retrieved per question")
    cmd.add_argument("--baselines", action="store_true",
                     help="also measure BM25-only and dense-only baselines")

    fetch = sub.add_parser("fetch", help="Fetch literature into a folder and index it.",
                           description="Fetch literature into a folder and index it.")
    fetch_sub = fetch.add_subparsers(dest="source", required=True, metavar="SOURCE")
    cmd = fetch_sub.add_parser("pubmed", help="PubMed abstracts (and PMC open-access full "
                               "text) matching a query, via NCBI E-utilities.",
                               description="Fetch PubMed records matching QUERY via NCBI "
                               "E-utilities, save one XML file per article plus a manifest, "
                               "then index the folder. Re-running resumes.")
    cmd.add_argument("query", metavar="QUERY")
    cmd.add_argument("--out", required=True, metavar="DIR", help="folder for the fetched files")
    cmd.add_argument("--max", type=int, default=200, dest="max_records", metavar="N",
                     help="most records to fetch (default 200)")
    cmd.add_argument("--since", type=int, default=None, metavar="YEAR",
                     help="only records published in or after YEAR")
    cmd.add_argument("--full-text", action="store_true",
                     help="also fetch PMC open-access JATS XML where available")
    cmd.add_argument("--index", metavar="DIR", help="index folder (default: index/)")
    add_store_flags(cmd)
    cmd.add_argument("--no-index", action="store_true", help="fetch only, do not index")
    cmd.add_argument("--base-url", metavar="URL", help="E-utilities base URL (for testing)")
    cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")

    cmd = sub.add_parser("bench", help="Benchmarks against the LangChain recipe and at scale.",
                         description="Run the benchmark harness and write a Markdown table.")
    cmd.add_argument("--quick", action="store_true", help="small sizes, a few seconds (CI)")
    cmd.add_argument("--json", action="store_true", help="print results as JSON")
    cmd.add_argument("--out", metavar="FILE", help="write the Markdown table to FILE")
    cmd.add_argument("--questions", metavar="FILE.jsonl",
                     help="question set (default tests/data/trail_questions.jsonl)")
    cmd.add_argument("--only", action="append", metavar="SECTION",
                     choices=["build", "query", "startup", "scale"],
                     help="run only this section (repeatable): build, query, startup, scale")
    return parser


def run() -> NoReturn:
    """Entry point of the ``trail-rag`` script and ``python -m rag``: :func:`main`, then exit.

    Once torch is loaded, the interpreter's normal teardown (freeing thousands of modules and
    native library state) adds about a second after the answer is printed. The command's work is
    complete by then: indexes are written atomically before ``main`` returns, and the output and
    log handlers are flushed here, so the process ends at once instead, unless a non-daemon
    thread is still running.
    """
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _reader_left()
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if "torch" in sys.modules and all(t.daemon for t in others):
        os._exit(code)
    sys.exit(code)


def add_store_flags(cmd: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--milvus-uri``, which override the store settings."""
    cmd.add_argument("--backend", choices=["faiss", "milvus"], default=None,
                     help="where chunk vectors live: faiss (embedded files, the default) or "
                     "milvus ($RAG_BACKEND)")
    cmd.add_argument("--milvus-uri", metavar="URI", default=None,
                     help="a local path for embedded Milvus Lite (e.g. ./index/milvus.db) or "
                     "http://host:19530 for a Milvus server or cluster; implies --backend "
                     "milvus ($RAG_MILVUS_URI; token from $MILVUS_TOKEN)")


def apply_store_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    changes: dict[str, Any] = {}
    if getattr(args, "milvus_uri", None):
        changes.update({"store.milvus_uri": args.milvus_uri, "store.backend": "milvus"})
    if getattr(args, "backend", None):
        changes["store.backend"] = args.backend
    return settings.with_updates(**changes) if changes else settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ask" and args.json and args.format not in (None, "json"):
        parser.error(f"ask: --json and --format {args.format} ask for two outputs; use one")
    try:
        settings = apply_store_flags(args, load_settings(args.settings))
        return _COMMANDS[args.command](args, settings)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _reader_left()
        return 0


def _reader_left() -> None:
    """``python -m rag ask ... | head``: the reader closed the pipe, which is not an error.
    Later writes (and the final flush) go to /dev/null instead of raising again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _open(args: argparse.Namespace, settings: Settings, *, query: bool = False) -> Any:
    from rag.facade import RAG

    # a query needs the model: start loading it while the index opens
    return RAG.open(args.index, settings=settings, preload_model=query)


def _emit(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=None))
    else:
        print(text)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from rag.interfaces.progress import ProgressBar
    from rag.interfaces.render import index_report_lines

    rag = _open(args, settings)
    paths = args.paths or [str(settings.docs_dir)]
    with ProgressBar(shown=not (args.no_progress or args.json)) as bar:
        report = rag.add(paths, rebuild=args.rebuild, progress=bar)
    _emit(args.json, report.to_dict(), "\n".join(index_report_lines(report)))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = _open(args, settings).status()
    text = "\n".join(f"{k}: {v}" for k, v in status.items())
    _emit(args.json, status, text)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    rag = _open(args, settings)
    doc = rag.document(args.doc_id)
    data = doc.to_dict()
    data["chunks"] = rag.snapshot.docs[doc.doc_id].n_chunks
    meta = "\n".join(f"{k}: {v}" for k, v in doc.meta.items())
    _emit(args.json, data, f"{doc.doc_id} ({doc.doc_type})\n{meta}\n\n{doc.text}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    removed = _open(args, settings).remove(args.doc_ids)
    missing = sorted(set(args.doc_ids) - set(removed))
    _emit(args.json, {"removed": removed, "not_found": missing},
          f"removed: {', '.join(removed)}" + (f"\nnot found: {', '.join(missing)}"
                                               if missing else ""))
    return 0


def parse_filters(items: Sequence[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise QueryError(f"filter {item!r} must look like key=value, e.g. disease=myeloma")
        filters[key.strip()] = value.strip()
    return filters


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    rag = _open(args, settings, query=True)
    passages = rag.search(args.query, k=args.k, filters=parse_filters(args.filter))
    data = {"query": args.query, "passages": [p.to_dict() for p in passages]}
    text = "\n\n".join(
        f"{p.rank}. [{p.score:.3f}] {p.title} ({p.doc_id}, {p.section or '-'})\n   {p.text}"
        for p in passages
    ) or "no passages"
    _emit(args.json, data, text)
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    rag = _open(args, settings, query=True)
    answer = rag.ask(args.question, k=args.k, filters=parse_filters(args.filter), mode=args.mode)
    fmt = args.format or ("json" if args.json else "text")
    if fmt in ("text", "json"):
        from rag.interfaces.render import answer_as_text

        _emit(fmt == "json", answer.to_dict(), answer_as_text(answer))
    else:
        from rag.interfaces.export import export_text, references_from_answer, to_markdown

        if fmt == "markdown":
            _write(to_markdown(answer))
        else:
            refs = references_from_answer(answer, rag)
            if not refs:
                print("note: the answer cites no source, so there is no reference to export",
                      file=sys.stderr)
            _write(export_text(fmt, refs))
    return 3 if args.strict and not answer.supported else 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from rag.interfaces.export import export_text, references_from_library

    refs = references_from_library(_open(args, settings), parse_filters(args.filter))
    text = export_text(args.format, refs)
    if not args.out:
        _write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    print(f"{len(refs)} reference{'s' if len(refs) != 1 else ''} exported"
          + (f" to {args.out}" if args.out else "")
          + ("" if refs or not args.filter else " (no document matches the filters)"),
          file=sys.stderr)
    return 0


def _write(text: str) -> None:
    """A whole export on standard output, ending with exactly one newline."""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from rag.eval.evaluate import evaluate_files, format_report

    rag = _open(args, settings)
    reports = evaluate_files(rag, [Path(f) for f in args.files], k=args.k,
                             baselines=args.baselines)
    data: dict[str, Any] = reports[0] if len(reports) == 1 else {"reports": reports}
    _emit(args.json, data, "\n\n".join(format_report(r) for r in reports))
    return 0


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from rag.interfaces.fetch_command import run_fetch

    return run_fetch(args, settings)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from rag.bench.runner import run_bench

    return run_bench(args, settings)


_COMMANDS = {
    "index": cmd_index,
    "status": cmd_status,
    "show": cmd_show,
    "remove": cmd_remove,
    "search": cmd_search,
    "ask": cmd_ask,
    "export": cmd_export,
    "eval": cmd_eval,
    "fetch": cmd_fetch,
    "bench": cmd_bench,
}
