"""Start the TRAIL-RAG web app: ``python app.py`` (``--help`` lists the flags).

Opens the index (building it from the documents folder, with a progress bar, when it is
missing; bringing it up to date when files changed), then serves the Gradio UI and its HTTP
API on 127.0.0.1:7860. Settings come from ``RAG_*`` variables; flags override them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="TRAIL-RAG web app: chat with cited answers, a library tab and an HTTP API "
        "(gradio_client endpoints /ask, /ask_clinical_first, /search, /status, /documents, "
        "/evidence_map, /upload, /delete). Flags override the RAG_* environment variables.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1, $RAG_HOST)")
    parser.add_argument("--port", type=int, help="port (default 7860, $RAG_PORT)")
    parser.add_argument("--index", metavar="DIR", help="index folder (default index/, "
                        "$RAG_INDEX_DIR)")
    parser.add_argument("--docs", metavar="DIR", help="documents indexed at startup (default "
                        "seeds/, $RAG_DOCS_DIR)")
    parser.add_argument("--auth", metavar="USER:PASSWORD|FILE", help="require a login: "
                        "user:password, or a file of such lines ($RAG_AUTH)")
    parser.add_argument("--upload-dir", metavar="DIR", help="where uploads are saved (default "
                        "uploads/, $RAG_UPLOAD_DIR)")
    parser.add_argument("--no-build", action="store_true", help="serve the index as it is: "
                        "do not build or update it from the documents folder")
    parser.add_argument("--settings", metavar="FILE", help="YAML/JSON settings file")
    from rag.interfaces.cli import add_store_flags

    add_store_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rag.errors import RagError

    try:
        from rag.interfaces.ui.files import parse_auth

        settings = _settings(args)
        auth = parse_auth(settings.ui.auth)  # a bad login setting fails before any indexing
        rag = _open_index(settings, build=not args.no_build)
        return _serve(rag, settings, auth)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace) -> Any:
    from rag.interfaces.cli import apply_store_flags
    from rag.settings import load_settings

    settings = apply_store_flags(args, load_settings(args.settings))
    flags = {"ui.host": args.host, "ui.port": args.port, "index_dir": args.index,
             "docs_dir": args.docs, "ui.auth": args.auth, "ui.upload_dir": args.upload_dir}
    updates = {key: value for key, value in flags.items() if value is not None}
    return settings.with_updates(**updates) if updates else settings


def _open_index(settings: Any, *, build: bool) -> Any:
    from rag.errors import IndexNotFoundError
    from rag.facade import RAG
    from rag.interfaces.progress import ProgressBar
    from rag.interfaces.render import index_report_lines

    rag = RAG.open(settings.index_dir, settings=settings)
    docs = Path(settings.docs_dir)
    if build and (docs.exists() or not rag.exists):
        verb = "updating" if rag.exists else "building"
        print(f"{verb} the index in {settings.index_dir}/ from {docs}/ …", file=sys.stderr)
        with ProgressBar() as bar:
            report = rag.add([docs], progress=bar)
        print("\n".join(index_report_lines(report, brief=True)), file=sys.stderr)
    if not rag.exists:
        raise IndexNotFoundError(f"no index at {settings.index_dir}; run without --no-build "
                                 "or `python -m rag index` first")
    rag.check_compatible()
    return rag


def _serve(rag: Any, settings: Any, auth: list[tuple[str, str]] | None) -> int:
    from rag.interfaces.ui.app import CSS, build_app, theme

    ui = settings.ui
    if auth is None and not _is_loopback(ui.host):
        print(f"warning: serving on {ui.host} without a login; anyone who can reach this "
              "machine can read and change the library. Set RAG_AUTH=user:password.",
              file=sys.stderr)
    demo = build_app(rag, settings)
    # Reads share one queue group of `concurrency` workers; writes run one at a time. A
    # bounded queue refuses a flood at once instead of holding it in memory.
    demo.queue(default_concurrency_limit=ui.concurrency, max_size=ui.queue_size)
    demo.launch(
        server_name=ui.host, server_port=ui.port, share=False, auth=auth,
        auth_message="TRAIL-RAG: log in" if auth else None,
        max_file_size=int(ui.max_upload_mb * 1024 * 1024), allowed_paths=[],
        show_error=True, prevent_thread_lock=True, quiet=True, css=CSS, theme=theme(),
        ssr_mode=False, mcp_server=False, enable_monitoring=False, pwa=False,
        # Gradio keeps ~50 KB of state per session and makes one per API call: its default of
        # 10,000 sessions let memory grow by ~500 MB under load.
        state_session_capacity=ui.sessions,
    )
    url = f"http://{ui.host}:{ui.port}/"
    print(f"TRAIL-RAG ready in {time.perf_counter() - STARTED:.1f} s at {url} "
          f"({rag.status()['documents']} documents); Ctrl+C to stop", flush=True)
    # Load the embedding model after the port is up, so startup stays short; the first
    # question waits for it (queries block on the RAG's lock until it is ready).
    rag.preload_model()
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        demo.close()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
