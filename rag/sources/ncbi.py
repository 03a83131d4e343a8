"""A small NCBI E-utilities client (rate-limited, retrying, polite) and its answer formats.

Every request carries ``tool``, ``email`` and (when set) ``api_key``; requests are spaced at
most 3 per second, or 10 per second with an API key, as NCBI asks. 429 and 5xx answers,
timeouts and lost connections are retried with exponential backoff and jitter, honouring
``Retry-After``; then :class:`~rag.errors.FetchError` says what failed.

>>> with EutilsClient(Settings().fetch) as client:           # doctest: +SKIP
...     hits = client.esearch("TRAIL AND myeloma", retmax=20)
...     xml = client.efetch_pubmed_ids(hits.ids)
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_safely

from rag.errors import FetchError
from rag.ingest.loaders.xmlfiles import jats_articles, local_name
from rag.settings import FetchSettings

__all__ = [
    "Batch",
    "EutilsClient",
    "EutilsHTTPError",
    "RateLimiter",
    "Record",
    "SearchResult",
    "classify_jats",
    "parse_esearch",
    "read_record",
    "split_pubmed_set",
]

MAX_SEARCH_IDS = 10_000  # PubMed's esearch hands out at most the first 10,000 ids
MAX_DELAY_S = 60.0
_PMID_RE = re.compile(rb"<PMID[^>]*>\s*(\d+)\s*</PMID>")
_ARTICLE_RE = re.compile(rb"<PubmedArticle[\s>].*?</PubmedArticle>", re.S)
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>\n'


class EutilsHTTPError(FetchError):
    """E-utilities answered with an HTTP error status (the network itself works)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RateLimiter:
    """Spaces calls at least ``1 / per_second`` seconds apart on a monotonic clock."""

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        # A 2% margin so that jitter on the way to the server cannot look like a burst.
        self.interval = 1.02 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def for_ncbi(cls, api_key: str | None) -> RateLimiter:
        """NCBI's published limits: 3 requests/s, 10 requests/s with an API key."""
        return cls(10.0 if api_key else 3.0)

    def wait(self) -> None:
        with self._lock:
            delay = self._next - self._clock()
            if delay > 0:
                self._sleep(delay)
            self._next = self._clock() + self.interval


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What esearch found: the total, the first ids and the history-server handle."""

    count: int
    ids: tuple[str, ...]
    webenv: str = ""
    query_key: str = ""
    notes: tuple[str, ...] = ()


class EutilsClient:
    """esearch and efetch over one pooled HTTP connection. Use as a context manager."""

    def __init__(self, settings: FetchSettings, *, limiter: RateLimiter | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.limiter = limiter or RateLimiter.for_ncbi(settings.api_key)
        self._sleep = sleep
        self._http = httpx.Client(timeout=settings.timeout_s, transport=transport,
                                  headers={"User-Agent": f"{settings.tool} (TRAIL-RAG)"})

    def __enter__(self) -> EutilsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def esearch(self, term: str, *, since: int | None = None, retmax: int = 0) -> SearchResult:
        """Search PubMed, keeping the result on the history server (``usehistory=y``)."""
        params = {"db": "pubmed", "term": term, "usehistory": "y", "retmode": "json",
                  "retmax": str(min(retmax, MAX_SEARCH_IDS))}
        if since is not None:
            params |= {"datetype": "pdat", "mindate": str(since), "maxdate": "3000"}
        return parse_esearch(self.request("esearch.fcgi", params).content, term)

    def efetch_pubmed_history(self, search: SearchResult, *, start: int, count: int) -> bytes:
        """PubMed XML for ``count`` records from ``start`` of a history-server result."""
        params = {"db": "pubmed", "WebEnv": search.webenv, "query_key": search.query_key,
                  "retstart": str(start), "retmax": str(count), "retmode": "xml",
                  "rettype": "abstract"}
        return self.request("efetch.fcgi", params).content

    def efetch_pubmed_ids(self, pmids: Sequence[str]) -> bytes:
        """PubMed XML for the given PMIDs (POSTed, so long lists are fine)."""
        params = {"db": "pubmed", "id": ",".join(pmids), "retmode": "xml", "rettype": "abstract"}
        return self.request("efetch.fcgi", params, post=True).content

    def efetch_pmc(self, pmcid: str) -> bytes:
        """JATS XML of one PMC article (full text only for the open-access subset)."""
        number = pmcid.upper().removeprefix("PMC")
        return self.request("efetch.fcgi", {"db": "pmc", "id": number, "retmode": "xml"}).content

    def request(self, endpoint: str, params: Mapping[str, str], *,
                post: bool = False) -> httpx.Response:
        """One rate-limited request with retries; raises FetchError when they run out."""
        url = f"{self.base_url}/{endpoint}"
        data = {**params, **self._polite_params()}
        attempts = self.settings.retries + 1
        problem, status = "", 0
        retry_after: float | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._delay(attempt - 1, retry_after))
            retry_after = None
            self.limiter.wait()
            try:
                response = (self._http.post(url, data=data) if post
                            else self._http.get(url, params=data))
            except httpx.TimeoutException:
                problem, status = f"no answer within {self.settings.timeout_s:g} s", 0
                continue
            except httpx.TransportError as exc:
                problem, status = f"{type(exc).__name__}: {exc}", 0
                continue
            status = response.status_code
            if status < 400:
                return response
            problem = f"HTTP {status} {response.reason_phrase}".strip()
            if status != 429 and status < 500:
                raise EutilsHTTPError(f"{endpoint}: {problem}: {_error_text(response)}", status)
            retry_after = _retry_after(response.headers.get("Retry-After"))
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        if status:
            raise EutilsHTTPError(f"{endpoint}: {problem} after {tries}", status)
        raise FetchError(f"cannot reach {self.base_url}: {problem} ({tries}); "
                         "check the network or --base-url")

    def _polite_params(self) -> dict[str, str]:
        extra = {"tool": self.settings.tool}
        if self.settings.email:
            extra["email"] = self.settings.email
        if self.settings.api_key:
            extra["api_key"] = self.settings.api_key
        return extra

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Retry-After if the server gave one, else exponential backoff; plus up to 25% jitter."""
        base = retry_after if retry_after is not None else self.settings.backoff_s * 2**retry
        return min(base, MAX_DELAY_S) * (1 + random.uniform(0, 0.25))


def parse_esearch(body: bytes, term: str) -> SearchResult:
    """Read an esearch answer (JSON or XML). A query NCBI rejects raises FetchError."""
    text = body.lstrip()
    if text.startswith(b"{"):
        return _esearch_from_json(body, term)
    if text.startswith(b"<"):
        return _esearch_from_xml(body, term)
    raise FetchError(f"esearch: unexpected answer: {_excerpt(body.decode('utf-8', 'replace'))}")


def _esearch_from_json(body: bytes, term: str) -> SearchResult:
    try:
        data = json.loads(body, strict=False)  # NCBI's JSON may hold raw control characters
    except ValueError as exc:
        raise FetchError(f"esearch: malformed JSON answer: {exc}") from exc
    result = data.get("esearchresult") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise FetchError(f"esearch: unexpected answer: {_excerpt(json.dumps(data))}")
    errors = result.get("errorlist") or {}
    warnings = result.get("warninglist") or {}
    return _search_result(
        term,
        error=str(result.get("ERROR") or ""),
        count=result.get("count", 0),
        ids=result.get("idlist") or [],
        webenv=str(result.get("webenv") or ""),
        query_key=str(result.get("querykey") or ""),
        fields_not_found=errors.get("fieldsnotfound") or [],
        phrases_not_found=errors.get("phrasesnotfound") or [],
        warnings=[str(w) for values in warnings.values() if isinstance(values, list)
                  for w in values],
    )


def _esearch_from_xml(body: bytes, term: str) -> SearchResult:
    try:
        root = parse_safely(body)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise FetchError(f"esearch: malformed XML answer: {exc}") from exc
    return _search_result(
        term,
        error=root.findtext("ERROR") or "",
        count=root.findtext("Count") or 0,
        ids=[el.text or "" for el in root.iterfind("IdList/Id")],
        webenv=root.findtext("WebEnv") or "",
        query_key=root.findtext("QueryKey") or "",
        fields_not_found=[el.text for el in root.iterfind("ErrorList/FieldNotFound") if el.text],
        phrases_not_found=[el.text for el in root.iterfind("ErrorList/PhraseNotFound")
                           if el.text],
        warnings=[el.text for el in root.iterfind("WarningList/*") if el.text],
    )


def _search_result(term: str, *, error: str, count: Any, ids: Sequence[Any], webenv: str,
                   query_key: str, fields_not_found: Sequence[Any],
                   phrases_not_found: Sequence[Any], warnings: Sequence[str]) -> SearchResult:
    if error:
        raise FetchError(f"bad query: {error} (query: {term!r})")
    if fields_not_found:
        raise FetchError(f"bad query: unknown search field {', '.join(map(str, fields_not_found))}"
                         f" (query: {term!r}); see PubMed's field tags, e.g. [tiab], [mh]")
    try:
        total = int(count)
    except (TypeError, ValueError) as exc:
        raise FetchError(f"esearch: count {count!r} is not a number") from exc
    notes = ([f"not found in PubMed: {', '.join(map(str, phrases_not_found))}"]
             if phrases_not_found else [])
    notes += [w for w in warnings if w != "No items found."]
    clean_ids = tuple(str(i).strip() for i in ids if str(i).strip().isdigit())
    return SearchResult(total, clean_ids, webenv, query_key, tuple(notes))


# -- efetch answers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One PubMed article as the bytes of its own file."""

    pmid: str
    xml: bytes
    pmcid: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """An efetch answer split into records. ``problems`` pairs a PMID ("?" if unreadable)
    with why its record was dropped; ``usable`` is False for a wholly garbled answer."""

    records: tuple[Record, ...]
    problems: tuple[tuple[str, str], ...] = ()
    usable: bool = True
    error: str = ""


def split_pubmed_set(body: bytes) -> Batch:
    """Split an efetch ``PubmedArticleSet`` into one record per article. A malformed article
    is dropped and named in ``problems``; the others are kept."""
    try:
        root = parse_safely(body)
    except DefusedXmlException as exc:
        return Batch((), usable=False, error=f"unsafe XML refused ({type(exc).__name__})")
    except ET.ParseError:
        return _split_segments(body)
    if local_name(root.tag) != "PubmedArticleSet":
        text = " ".join(" ".join(root.itertext()).split())[:200]
        return Batch((), usable=False, error=f"unexpected efetch answer <{root.tag}> {text}")
    records, problems = [], []
    for article in root.findall("PubmedArticle"):
        try:
            records.append(_record_from(article))
        except _BadRecordError as exc:
            pmid = (article.findtext("MedlineCitation/PMID") or "").strip() or "?"
            problems.append((pmid, str(exc)))
    return Batch(tuple(records), tuple(problems))


def _split_segments(body: bytes) -> Batch:
    """The answer as a whole does not parse: parse each ``<PubmedArticle>`` on its own."""
    records, problems = [], []
    for match in _ARTICLE_RE.finditer(body):
        found = _PMID_RE.search(match.group(0))
        pmid = found.group(1).decode() if found else "?"
        try:
            records.append(_record_from(parse_safely(match.group(0))))
        except DefusedXmlException as exc:
            problems.append((pmid, f"unsafe XML refused ({type(exc).__name__})"))
        except ET.ParseError as exc:
            problems.append((pmid, f"malformed XML: {exc}"))
        except _BadRecordError as exc:
            problems.append((pmid, str(exc)))
    if records:
        return Batch(tuple(records), tuple(problems))
    why = problems[0][1] if problems else "no PubmedArticle records"
    return Batch((), tuple(problems), usable=False, error=f"malformed efetch answer: {why}")


class _BadRecordError(Exception):
    pass


def _record_from(article: ET.Element) -> Record:
    pmid = (article.findtext("MedlineCitation/PMID") or "").strip()
    if not pmid.isdigit():
        raise _BadRecordError("a PubmedArticle without a valid PMID")
    if article.find("MedlineCitation/Article") is None:
        raise _BadRecordError(f"PMID {pmid}: no Article element")
    article.tail = "\n"
    xml = _XML_HEAD + ET.tostring(article, encoding="utf-8") + b"</PubmedArticleSet>\n"
    return Record(pmid, xml, _pmcid_of(article))


def _pmcid_of(article: ET.Element) -> str | None:
    for article_id in article.iterfind("PubmedData/ArticleIdList/ArticleId"):
        value = (article_id.text or "").strip().upper()
        if article_id.get("IdType") == "pmc" and value.removeprefix("PMC").isdigit():
            return f"PMC{value.removeprefix('PMC')}"
    return None


def read_record(path: Path, pmid: str) -> Record | None:
    """The record saved at ``path`` if it parses and holds ``pmid``, else None."""
    try:
        root = parse_safely(path.read_bytes())
    except (OSError, ET.ParseError, DefusedXmlException):
        return None
    article = root.find("PubmedArticle")
    if article is None or (article.findtext("MedlineCitation/PMID") or "").strip() != pmid:
        return None
    return Record(pmid, b"", _pmcid_of(article))


def classify_jats(body: bytes) -> tuple[str, str]:
    """("fetched", "") for a full-text JATS article, else ("skipped"/"failed", reason)."""
    try:
        root = parse_safely(body)
    except DefusedXmlException as exc:
        return "failed", f"unsafe XML refused ({type(exc).__name__})"
    except ET.ParseError as exc:
        return "failed", f"malformed XML: {exc}"
    articles = jats_articles(root)
    if not articles:
        said = " ".join(" ".join(root.itertext()).split())[:200]
        return "skipped", "no JATS article returned" + (f": {said}" if said else "")
    if articles[0].find("body") is None:
        return "skipped", "not in the PMC open-access subset (no full-text body)"
    return "fetched", ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_text(response: httpx.Response) -> str:
    """NCBI's own words for an error: the ``error`` field of a JSON body (which is all we
    show, since the rest echoes the API key), else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return _excerpt(response.text)
    return _excerpt(str(data.get("error") if isinstance(data, dict) else data))


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
