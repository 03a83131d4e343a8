"""The ``fetch pubmed`` command: fetch with :func:`rag.sources.pubmed.fetch_pubmed`, print a
summary, then index the folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.errors import FetchError
from rag.interfaces.progress import ProgressBar
from rag.interfaces.render import index_report_lines
from rag.settings import Settings
from rag.sources.ncbi import MAX_SEARCH_IDS
from rag.sources.pubmed import MANIFEST, FetchReport, fetch_pubmed

__all__ = ["format_report", "run_fetch"]

_LIST_LIMIT = 20


def run_fetch(args: argparse.Namespace, settings: Settings) -> int:
    """``python -m rag fetch pubmed``: fetch, print a summary, then index ``--out``.

    Exit codes: 0 done (single failures are listed), 1 fetch error, 2 bad arguments,
    4 no record matches the query.
    """
    if args.base_url:
        settings = settings.with_updates(**{"fetch.base_url": args.base_url})
    problem = _check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    bar = ProgressBar(shown=not (args.no_progress or args.json))
    try:
        report = fetch_pubmed(args.query, args.out, settings.fetch, max_records=args.max_records,
                              since=args.since, full_text=args.full_text, progress=bar.phase)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if any(Path(args.out).glob("*.xml")):
            print(f"records fetched so far stay in {args.out}; run the same command again to "
                  "resume", file=sys.stderr)
        return 1
    finally:
        bar.close()
    data: dict[str, Any] = {"fetch": report.to_dict()}
    if report.found == 0:
        if args.json:
            print(json.dumps(data, ensure_ascii=False))
        since = f" published in or after {args.since}" if args.since else ""
        notes = f" ({'; '.join(report.notes)})" if report.notes else ""
        print(f"no PubMed records match {args.query!r}{since}{notes}", file=sys.stderr)
        return 4
    if not args.json:
        print(format_report(report), flush=True)  # before indexing, which may take a while
    if not args.no_index:
        data["index"] = _index_folder(args, settings, bar)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    return 0


def _index_folder(args: argparse.Namespace, settings: Settings, bar: ProgressBar) -> Any:
    from rag.facade import RAG

    with bar:
        report = RAG.open(args.index, settings=settings).add([args.out], progress=bar)
    if not args.json:
        print("\n".join(index_report_lines(report, max_skipped=_LIST_LIMIT)))
    return report.to_dict()


def format_report(report: FetchReport) -> str:
    since = f" (since {report.since})" if report.since else ""
    lines = [f"PubMed: {report.found} records match {report.query!r}{since}; "
             f"{report.wanted} wanted",
             f"fetched {len(report.fetched)}, skipped {len(report.skipped)} (already on disk), "
             f"failed {len(report.failed)}"]
    lines += _listing("failed", report.failed)
    if report.text_fetched or report.text_skipped or report.text_failed:
        lines.append(f"full text (PMC open access): {len(report.text_fetched)} fetched, "
                     f"{len(report.text_skipped)} skipped, {len(report.text_failed)} failed")
        lines += _listing("skipped", report.text_skipped) + _listing("failed", report.text_failed)
    lines += [f"note: {note}" for note in report.notes]
    lines.append(f"files written: {report.files_written} to {report.out_dir} "
                 f"(see {MANIFEST}) in {report.seconds:.1f} s")
    return "\n".join(lines)


def _listing(label: str, items: dict[str, str]) -> list[str]:
    lines = [f"  {label} {key}: {why}" for key, why in list(items.items())[:_LIST_LIMIT]]
    if len(items) > _LIST_LIMIT:
        lines.append(f"  ... and {len(items) - _LIST_LIMIT} more (see {MANIFEST})")
    return lines


def _check_args(args: argparse.Namespace) -> str | None:
    if not args.query.strip():
        return "the query is empty"
    if not 1 <= args.max_records <= MAX_SEARCH_IDS:
        return f"--max must be between 1 and {MAX_SEARCH_IDS} (PubMed's limit per search)"
    if args.since is not None and not 1800 <= args.since <= 3000:
        return f"--since {args.since} is not a plausible publication year"
    return None
