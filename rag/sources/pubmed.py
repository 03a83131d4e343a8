"""Fetch PubMed records (and PMC open-access full text) into a folder, then index it.

Each article is saved as ``DIR/<PMID>.xml``, a ``<PubmedArticleSet>`` holding one
``<PubmedArticle>``; with full text, open-access articles also as ``DIR/PMC<n>.xml`` (JATS).
``DIR/manifest.json`` records the query and what was fetched, skipped or failed, and when.
Records already on disk are not fetched again, so re-running a command resumes it.

>>> with EutilsClient(settings.fetch) as client:                    # doctest: +SKIP
...     report = fetch_pubmed("TRAIL AND myeloma", "corpus/pubmed", settings.fetch,
...                           client=client, max_records=50)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.settings import FetchSettings
from rag.sources.ncbi import (
    MAX_SEARCH_IDS,
    Batch,
    EutilsClient,
    EutilsHTTPError,
    SearchResult,
    classify_jats,
    read_record,
    split_pubmed_set,
)

__all__ = ["MANIFEST", "FetchReport", "Progress", "fetch_pubmed"]

Progress = Callable[[str, int, int], None]  # (phase, done, total)
MANIFEST = "manifest.json"
_NOT_RETURNED = "not returned by efetch (withdrawn, or not a journal article)"


@dataclass
class FetchReport:
    """What one fetch run did. ``skipped`` were already on disk."""

    query: str
    since: int | None
    out_dir: str
    found: int = 0
    wanted: int = 0
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    text_fetched: list[str] = field(default_factory=list)
    text_skipped: dict[str, str] = field(default_factory=dict)
    text_failed: dict[str, str] = field(default_factory=dict)
    files_written: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    completed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query, "since": self.since, "out_dir": self.out_dir,
            "found": self.found, "wanted": self.wanted,
            "counts": {"fetched": len(self.fetched), "skipped": len(self.skipped),
                       "failed": len(self.failed)},
            "fetched": self.fetched, "skipped": self.skipped,
            "failed": [{"pmid": k, "reason": v} for k, v in self.failed.items()],
            "full_text": {
                "fetched": self.text_fetched,
                "skipped": [{"pmcid": k, "reason": v} for k, v in self.text_skipped.items()],
                "failed": [{"pmcid": k, "reason": v} for k, v in self.text_failed.items()],
            },
            "files_written": self.files_written, "seconds": round(self.seconds, 3),
            "notes": self.notes, "completed": self.completed,
        }


def fetch_pubmed(query: str, out_dir: str | Path, settings: FetchSettings, *,
                 max_records: int = 200, since: int | None = None, full_text: bool = False,
                 client: EutilsClient | None = None,
                 progress: Progress | None = None) -> FetchReport:
    """Save the first ``max_records`` PubMed records matching ``query`` under ``out_dir``.

    Raises FetchError for a bad query or an unreachable server; single bad records are
    reported in the returned :class:`FetchReport` instead.
    """
    if client is None:
        with EutilsClient(settings) as own:
            return fetch_pubmed(query, out_dir, settings, max_records=max_records, since=since,
                                full_text=full_text, client=own, progress=progress)
    started, started_at = time.perf_counter(), _now()
    report = FetchReport(query=query, since=since, out_dir=str(out_dir))
    search = client.esearch(query, since=since, retmax=max_records)
    report.found, report.notes = search.count, list(search.notes)
    if search.count > MAX_SEARCH_IDS and max_records > MAX_SEARCH_IDS:
        report.notes.append(f"PubMed hands out only the first {MAX_SEARCH_IDS} records of "
                            "a search; narrow the query (e.g. --since) for the rest")
    wanted = list(dict.fromkeys(search.ids))[:max_records]
    report.wanted = len(wanted)
    if not wanted:  # nothing matched: leave the disk alone
        report.completed = True
        report.seconds = time.perf_counter() - started
        return report
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(folder, {"query": query, "since": since, "max_records": max_records,
                                  "full_text": full_text, "started": started_at})
    try:
        pmcids = _fetch_records(client, search, wanted, folder, report, manifest,
                                batch_size=settings.batch_size, progress=progress)
        if full_text:
            _fetch_full_texts(client, pmcids, folder, report, manifest, progress=progress)
        report.completed = True
    finally:
        report.seconds = time.perf_counter() - started
        manifest.finish(report)
    return report


def _fetch_records(client: EutilsClient, search: SearchResult, wanted: list[str], folder: Path,
                   report: FetchReport, manifest: _Manifest, *, batch_size: int,
                   progress: Progress | None) -> dict[str, str]:
    """Fetch the wanted records not on disk; return ``{pmid: pmcid}`` for those with one."""
    have: dict[str, str | None] = {}
    for pmid in wanted:
        stored = read_record(folder / f"{pmid}.xml", pmid)
        if stored is not None:
            have[pmid] = stored.pmcid
            report.skipped.append(pmid)
            manifest.mark("records", pmid, "skipped", "already on disk", keep_fetched=True)
    wanted_set = set(wanted)
    if progress is not None:
        progress("records", 0, len(wanted))
    for start in range(0, len(wanted), batch_size):
        window = wanted[start:start + batch_size]
        missing = [pmid for pmid in window if pmid not in have]
        if missing:
            batch = _fetch_batch(client, search, start=start, window=window, missing=missing)
            for record in batch.records:
                if record.pmid in wanted_set and record.pmid not in have:
                    _write_atomic(folder / f"{record.pmid}.xml", record.xml)
                    have[record.pmid] = record.pmcid
                    report.fetched.append(record.pmid)
                    report.files_written += 1
                    manifest.mark("records", record.pmid, "fetched", file=f"{record.pmid}.xml",
                                  pmcid=record.pmcid)
            reasons = dict(batch.problems)
            report.notes += [f"a record without a readable PMID was skipped: {why}"
                             for pmid, why in batch.problems if pmid == "?"]
            for pmid in missing:
                if pmid not in have:
                    report.failed[pmid] = reasons.get(pmid) or batch.error or _NOT_RETURNED
                    manifest.mark("records", pmid, "failed", report.failed[pmid])
            manifest.save()
        if progress is not None:
            progress("records", min(start + batch_size, len(wanted)), len(wanted))
    return {pmid: pmcid for pmid, pmcid in have.items() if pmcid}


def _fetch_batch(client: EutilsClient, search: SearchResult, *, start: int,
                 window: Sequence[str], missing: Sequence[str]) -> Batch:
    """One efetch: history-server paging for a whole window, else by id (a resumed run).
    A garbled answer is asked for once more."""
    use_history = len(missing) == len(window) and bool(search.webenv)
    batch = Batch(())
    for _ in range(2):
        try:
            body = (client.efetch_pubmed_history(search, start=start, count=len(window))
                    if use_history else client.efetch_pubmed_ids(missing))
        except EutilsHTTPError as exc:
            return Batch((), usable=False, error=str(exc))
        batch = split_pubmed_set(body)
        if batch.usable:
            break
    return batch


def _fetch_full_texts(client: EutilsClient, pmcids: dict[str, str], folder: Path,
                      report: FetchReport, manifest: _Manifest, *,
                      progress: Progress | None) -> None:
    """JATS XML for records with a PMC id; articles outside the open-access subset are
    skipped (and not asked for again on a re-run)."""
    for done, (pmid, pmcid) in enumerate(pmcids.items()):
        if progress is not None:
            progress("full text", done, len(pmcids))
        path = folder / f"{pmcid}.xml"
        earlier = manifest.data["full_text"].get(pmcid, {})
        if _jats_problem(path) is None:
            report.text_skipped[pmcid] = "already on disk"
            continue
        if earlier.get("status") == "skipped":
            report.text_skipped[pmcid] = f"{earlier.get('reason')} (checked {earlier.get('time')})"
            continue
        try:
            body = client.efetch_pmc(pmcid)
        except EutilsHTTPError as exc:
            report.text_failed[pmcid] = str(exc)
            manifest.mark("full_text", pmcid, "failed", str(exc), pmid=pmid)
            continue
        status, reason = classify_jats(body)
        if status == "fetched":
            _write_atomic(path, body)
            report.text_fetched.append(pmcid)
            report.files_written += 1
        else:
            (report.text_skipped if status == "skipped" else report.text_failed)[pmcid] = reason
        manifest.mark("full_text", pmcid, status, reason or None, pmid=pmid,
                      file=path.name if status == "fetched" else None)
        manifest.save()
    if progress is not None and pmcids:
        progress("full text", len(pmcids), len(pmcids))


def _jats_problem(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return "missing"
    return classify_jats(data)[1] or None


class _Manifest:
    """``manifest.json``: the runs, and per PMID / PMCID the last status, reason and time."""

    def __init__(self, folder: Path, run: dict[str, Any]) -> None:
        self.path = folder / MANIFEST
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("records"), dict):
            data = {"format_version": 1, "source": "pubmed", "records": {}, "full_text": {},
                    "runs": []}
        self.data = data
        self.run = {**run, "finished": None}
        self.data["runs"].append(self.run)
        self.data.update(query=run["query"], since=run["since"], started=self.run["started"],
                         finished=None)

    def mark(self, kind: str, key: str, status: str, reason: str | None = None, *,
             keep_fetched: bool = False, **extra: Any) -> None:
        entries = self.data[kind]
        if keep_fetched and entries.get(key, {}).get("status") == "fetched":
            return  # keep the record of when it was fetched
        entry = {"status": status, "time": _now(), "reason": reason, **extra}
        entries[key] = {k: v for k, v in entry.items() if v is not None}

    def finish(self, report: FetchReport) -> None:
        counts = report.to_dict()["counts"]
        self.run.update(finished=_now() if report.completed else None,
                        interrupted=not report.completed, found=report.found, **counts)
        self.data["finished"] = self.run["finished"]
        self.save()

    def save(self) -> None:
        _write_atomic(self.path, json.dumps(self.data, indent=1, ensure_ascii=False).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a hidden temporary file (the indexer skips dot-files) and rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
