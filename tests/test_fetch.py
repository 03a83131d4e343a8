"""``python -m rag fetch pubmed`` against a stub NCBI E-utilities server on 127.0.0.1.

The stub answers in the real formats (esearch JSON or XML, efetch PubMed XML with its DOCTYPE,
PMC JATS) with records written for these tests: the PMIDs (900000xx), PMCIDs, authors and
abstracts are invented. Faults (429, 5xx, slow answers, garbled XML) are scripted per test.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest
from appserver import free_port
from pubmed_support import pubmed_article, pubmed_set

from rag.ingest.loaders import load_file
from rag.interfaces.cli import main
from rag.settings import LoaderSettings, load_settings
from rag.sources.ncbi import RateLimiter
from rag.sources.pubmed import fetch_pubmed


@dataclass(frozen=True)
class Article:
    pmid: str
    year: int
    title: str
    abstract: str
    pmcid: str | None = None


ARTICLES = [
    Article("90000001", 2009, "Decoy receptor DcR2 shields chronic lymphocytic leukemia cells "
            "from TRAIL",
            "Primary chronic lymphocytic leukemia (CLL) cells from 24 patients resisted "
            "recombinant TRAIL although they expressed DR4 and DR5. The malignant B cells carried "
            "high surface levels of the decoy receptor DcR2. Blocking DcR2 with a neutralising "
            "antibody restored caspase-8 activation and apoptosis in 18 of the 24 samples, so "
            "DcR2 explains much of the TRAIL resistance of CLL cells."),
    Article("90000002", 2012, "Bortezomib raises DR5 and sensitises myeloma cells to TRAIL",
            "Multiple myeloma cell lines treated with low-dose bortezomib increased DR5 "
            "transcription within six hours. Bortezomib combined with TRAIL killed five of six "
            "myeloma lines and CD138-positive cells from patients synergistically. Silencing DR5 "
            "abolished the synergy, placing the proteasome inhibitor upstream of receptor "
            "induction.", pmcid="PMC9000002"),
    Article("90000003", 2015, "c-FLIP overexpression blocks TRAIL signalling in Hodgkin lymphoma",
            "Hodgkin and Reed-Sternberg cell lines expressed high levels of the caspase-8 "
            "inhibitor c-FLIP. TRAIL failed to cleave caspase-8 until c-FLIP was silenced. The "
            "histone deacetylase inhibitor vorinostat lowered c-FLIP and restored TRAIL-induced "
            "apoptosis."),
    Article("90000004", 2018, "Venetoclax and a DR5 agonist in acute myeloid leukemia blasts",
            "Acute myeloid leukemia blasts that resisted a DR5 agonist antibody carried high "
            "MCL-1 and BCL-2. Venetoclax combined with the agonist eliminated leukemic stem-like "
            "cells in xenografted mice, and BH3 profiling predicted which samples responded.",
            pmcid="PMC9000004"),
    Article("90000005", 2020, "Mapatumumab in relapsed non-Hodgkin lymphoma: a phase 2 study",
            "Forty patients with relapsed follicular or diffuse large B-cell lymphoma received "
            "the DR4 agonist antibody mapatumumab every three weeks. Three partial responses were "
            "seen, all in follicular lymphoma, and no liver toxicity occurred."),
    Article("90000006", 2022, "DR4 promoter methylation in acute lymphoblastic leukemia",
            "Methylation of the DR4 promoter silenced the receptor in 30 percent of pediatric "
            "acute lymphoblastic leukemia samples. Decitabine restored DR4 expression and TRAIL "
            "sensitivity in methylated cell lines."),
]
PMIDS = [a.pmid for a in ARTICLES]

JATS_HEAD = ('<?xml version="1.0" ?>\n<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET '
             '2.0//EN" "https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">\n'
             '<pmc-articleset><article xmlns:xlink="http://www.w3.org/1999/xlink" '
             'article-type="research-article">')
JATS_FRONT = """<front><journal-meta><journal-title-group><journal-title>Journal of Test
Haematology</journal-title></journal-title-group></journal-meta><article-meta>
<article-id pub-id-type="pmid">{pmid}</article-id><article-id pub-id-type="pmc">{pmc}</article-id>
<title-group><article-title>{title}</article-title></title-group><contrib-group>
<contrib contrib-type="author"><name><surname>Tester</surname><given-names>Ada</given-names>
</name></contrib></contrib-group><pub-date pub-type="epub"><year>{year}</year></pub-date>
<abstract><p>{abstract}</p></abstract></article-meta></front>"""
JATS_BODY = """<body><sec><title>Results</title><p>Bortezomib at 5 nM raised DR5 mRNA fourfold in
myeloma cells and stabilised the receptor at the cell surface. Adding TRAIL after bortezomib
activated caspase-8 within two hours.</p></sec><sec><title>Discussion</title><p>Proteasome
inhibition restores death receptor signalling in myeloma cells that resist TRAIL alone.</p>
</sec></body>"""


def jats(a: Article, *, open_access: bool) -> str:
    front = JATS_FRONT.format(pmid=a.pmid, pmc=(a.pmcid or "").removeprefix("PMC"),
                              title=escape(a.title), year=a.year, abstract=escape(a.abstract))
    body = JATS_BODY if open_access else ("<!--The publisher of this article does not allow "
                                          "downloading of the full text in XML form.-->")
    return f"{JATS_HEAD}{front}{body}</article></pmc-articleset>\n"


@dataclass
class Seen:
    at: float
    endpoint: str  # esearch, efetch (PubMed) or pmc
    method: str
    params: dict[str, str]


class Stub:
    """The state behind the stub server: records, scripted faults and every request seen."""

    def __init__(self) -> None:
        self.articles = {a.pmid: a for a in ARTICLES}
        self.faults: dict[str, list[str]] = {"esearch": [], "efetch": [], "pmc": []}
        self.malformed: set[str] = set()
        self.esearch_format = "json"
        self.requests: list[Seen] = []
        self.searches: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.url = ""

    def seen(self, endpoint: str) -> list[Seen]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def efetched_ids(self) -> list[str]:
        ids: list[str] = []
        for r in self.seen("efetch"):
            if "id" in r.params:
                ids += r.params["id"].split(",")
            else:
                start, count = int(r.params["retstart"]), int(r.params["retmax"])
                ids += self.searches[r.params["WebEnv"]][start:start + count]
        return ids

    def answer(self, endpoint: str, params: dict[str, str]) -> tuple[int, str, str]:
        with self.lock:
            fault = self.faults[endpoint].pop(0) if self.faults[endpoint] else ""
        if fault.startswith("sleep:"):
            time.sleep(float(fault.split(":")[1]))  # the client gives up first
        elif fault.isdigit():
            return int(fault), "text/html", f"<html><body>error {fault}</body></html>"
        elif fault == "garbage":
            return 200, "text/xml", "<?xml version='1.0'?><PubmedArticleSet><PubmedArticle><Med"
        if endpoint == "esearch":
            return self.esearch(params)
        if endpoint == "pmc":
            return self.pmc(params["id"])
        return self.efetch(params)

    def esearch(self, params: dict[str, str]) -> tuple[int, str, str]:
        term = params.get("term", "")
        if "((" in term:
            return 200, "application/json", json.dumps(
                {"esearchresult": {"ERROR": "Invalid query: unbalanced parentheses"}})
        since = int(params.get("mindate", 0))
        ids = [] if "nomatch" in term else [a.pmid for a in ARTICLES if a.year >= since]
        webenv = f"MCID_{len(self.searches) + 1}"
        self.searches[webenv] = ids
        shown = ids[: int(params.get("retmax", 20))]
        if self.esearch_format == "xml":
            idlist = "".join(f"<Id>{i}</Id>" for i in shown)
            return 200, "text/xml", (
                '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC '
                '"-//NLM//DTD esearch 20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/'
                f'20060628/esearch.dtd">\n<eSearchResult><Count>{len(ids)}</Count><RetMax>'
                f"{len(shown)}</RetMax><RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>"
                f"{webenv}</WebEnv><IdList>{idlist}</IdList></eSearchResult>")
        result: dict[str, Any] = {
            "count": str(len(ids)), "retmax": str(len(shown)), "retstart": "0",
            "querykey": "1", "webenv": webenv, "idlist": shown, "translationset": [],
            "querytranslation": term}
        if "[notafield]" in term:
            result["errorlist"] = {"phrasesnotfound": [], "fieldsnotfound": ["notafield"]}
        elif not ids:
            result["errorlist"] = {"phrasesnotfound": ["nomatch"], "fieldsnotfound": []}
            result["warninglist"] = {"phrasesignored": [], "quotedphrasesnotfound": [],
                                     "outputmessages": ["No items found."]}
        return 200, "application/json", json.dumps(
            {"header": {"type": "esearch", "version": "0.3"}, "esearchresult": result})

    def efetch(self, params: dict[str, str]) -> tuple[int, str, str]:
        if "id" in params:
            ids = params["id"].split(",")
        else:
            start = int(params["retstart"])
            ids = self.searches[params["WebEnv"]][start:start + int(params["retmax"])]
        found = [self.articles[i] for i in ids if i in self.articles]
        return 200, "text/xml", pubmed_set([
            pubmed_article(a.pmid, a.title, a.abstract, year=a.year, pmcid=a.pmcid,
                           broken=a.pmid in self.malformed) for a in found])

    def pmc(self, number: str) -> tuple[int, str, str]:
        for a in ARTICLES:
            if a.pmcid == f"PMC{number}":
                return 200, "text/xml", jats(a, open_access=number == "9000002")
        return 200, "text/xml", (f'<pmc-articleset><error id="{number}">The following PMCID '
                                 f"is not available: {number}</error></pmc-articleset>")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed its socket; nothing to report


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve(urlsplit(self.path).query)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(length).decode())

        def _serve(self, query: str) -> None:
            params = {k: v[0] for k, v in parse_qs(query).items()}
            name = urlsplit(self.path).path.rsplit("/", 1)[-1]
            endpoint = {"esearch.fcgi": "esearch", "efetch.fcgi": "efetch"}.get(name, "")
            if endpoint == "efetch" and params.get("db") == "pmc":
                endpoint = "pmc"
            if not endpoint:
                self._send(404, "text/plain", "not found")
                return
            with stub.lock:
                stub.requests.append(Seen(time.monotonic(), endpoint, self.command, params))
            status, ctype, body = stub.answer(endpoint, params)
            self._send(status, ctype, body)

        def _send(self, status: int, ctype: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()
    server = _Server(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/entrez/eutils"
    yield state
    server.shutdown()
    server.server_close()


FETCH_ENV = {
    "NCBI_API_KEY": "test-key",  # 10 requests/s, so most tests run quickly
    "RAG_NCBI_EMAIL": "tests@example.org",
    "RAG_FETCH__BATCH_SIZE": "2",
    "RAG_FETCH__BACKOFF_S": "0.05",
    "RAG_FETCH__RETRIES": "3",
    "RAG_FETCH__TIMEOUT_S": "5",
}


@pytest.fixture(autouse=True)
def env(clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Small batches and quick retries; tests change single variables on top."""
    for name, value in FETCH_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))


def fetch(capsys: pytest.CaptureFixture[str], stub: Stub, out: Path, *extra: str,
          query: str = "TRAIL AND (leukemia OR lymphoma OR myeloma)") -> tuple[int, str, str]:
    code = main(["fetch", "pubmed", query, "--out", str(out), "--base-url", stub.url,
                 "--no-index", "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fetch_json(capsys: pytest.CaptureFixture[str], stub: Stub, out: Path,
               *extra: str) -> dict[str, Any]:
    code, text, err = fetch(capsys, stub, out, "--json", *extra)
    assert code == 0, err
    return json.loads(text)["fetch"]


def saved(out: Path) -> list[str]:
    return sorted(p.stem for p in out.glob("*.xml"))


@pytest.mark.parametrize("esearch_format", ["json", "xml"])
def test_pages_across_batches_one_file_per_article(capsys, stub, tmp_path, esearch_format):
    stub.esearch_format = esearch_format
    out = tmp_path / "corpus"
    code, text, _ = fetch(capsys, stub, out, "--max", "5")
    assert code == 0
    assert "PubMed: 6 records match" in text and "fetched 5, skipped 0" in text
    assert saved(out) == PMIDS[:5]
    pages = [(r.params["retstart"], r.params["retmax"]) for r in stub.seen("efetch")]
    assert pages == [("0", "2"), ("2", "2"), ("4", "1")]
    assert all(r.params["WebEnv"] == "MCID_1" and r.params["query_key"] == "1"
               for r in stub.seen("efetch"))
    search = stub.seen("esearch")[0].params
    assert search["usehistory"] == "y" and search["db"] == "pubmed"
    for r in stub.requests:
        assert (r.params["tool"], r.params["email"], r.params["api_key"]) == (
            "trail-rag", "tests@example.org", "test-key")
    docs = load_file(out / "90000003.xml", LoaderSettings())
    assert [(d.doc_id, d.meta["pmid"], d.meta["year"]) for d in docs] == [
        ("pmid-90000003", "90000003", 2015)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["query"].startswith("TRAIL AND") and manifest["finished"]
    assert {k: v["status"] for k, v in manifest["records"].items()} == dict.fromkeys(
        PMIDS[:5], "fetched")


def test_since_limits_by_publication_date(capsys, stub, tmp_path):
    report = fetch_json(capsys, stub, tmp_path / "c", "--since", "2015")
    params = stub.seen("esearch")[0].params
    assert (params["datetype"], params["mindate"], params["maxdate"]) == ("pdat", "2015", "3000")
    assert report["found"] == 4 and report["fetched"] == PMIDS[2:]


@pytest.mark.parametrize(("endpoint", "faults"), [
    pytest.param("efetch", ["429"], id="429-then-ok"),
    pytest.param("efetch", ["500", "502"], id="5xx-twice-then-ok"),
    pytest.param("esearch", ["503"], id="esearch-503-then-ok"),
])
def test_retries_rate_limit_and_server_errors(capsys, stub, tmp_path, endpoint, faults):
    stub.faults[endpoint] = list(faults)
    report = fetch_json(capsys, stub, tmp_path / "c")
    assert report["counts"] == {"fetched": 6, "skipped": 0, "failed": 0}
    assert len(stub.seen(endpoint)) == (1 if endpoint == "esearch" else 3) + len(faults)


def test_timeout_is_retried(capsys, stub, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_FETCH__TIMEOUT_S", "0.4")
    stub.faults["efetch"] = ["sleep:1.2"]
    report = fetch_json(capsys, stub, tmp_path / "c")
    assert report["counts"]["fetched"] == 6 and len(stub.seen("efetch")) == 4


def test_malformed_record_is_skipped_and_reported(capsys, stub, tmp_path):
    stub.malformed = {"90000005"}
    out = tmp_path / "c"
    code, text, _ = fetch(capsys, stub, out)
    assert code == 0
    assert "fetched 5, skipped 0 (already on disk), failed 1" in text
    assert "failed 90000005: malformed XML" in text
    assert saved(out) == [p for p in PMIDS if p != "90000005"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"]["90000005"]["status"] == "failed"
    assert "malformed XML" in manifest["records"]["90000005"]["reason"]


@pytest.mark.parametrize(("garbled", "failed"), [
    pytest.param(1, 0, id="retried-once-then-ok"), pytest.param(2, 2, id="garbled-twice")])
def test_garbled_batch_answer(capsys, stub, tmp_path, garbled, failed):
    stub.faults["efetch"] = ["garbage"] * garbled
    report = fetch_json(capsys, stub, tmp_path / "c")
    assert report["counts"]["failed"] == len(report["failed"]) == failed
    assert all("malformed efetch answer" in f["reason"] for f in report["failed"])


def test_resume_after_interrupted_run(capsys, stub, tmp_path):
    out = tmp_path / "c"
    settings = load_settings().fetch.model_copy(update={"base_url": stub.url})

    def interrupt_after_first_batch(phase: str, done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt  # as Ctrl-C would, once the first batch is saved

    with pytest.raises(KeyboardInterrupt):
        fetch_pubmed("TRAIL", out, settings, max_records=6, progress=interrupt_after_first_batch)
    assert saved(out) == PMIDS[:2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] is None and manifest["runs"][-1]["interrupted"] is True
    (out / "90000002.xml").write_bytes(b"<PubmedArticleSet><PubmedArti")  # damaged on disk
    stub.requests.clear()

    code, text, _ = fetch(capsys, stub, out, query="TRAIL")
    assert code == 0 and "fetched 5, skipped 1 (already on disk), failed 0" in text
    assert saved(out) == PMIDS
    assert sorted(stub.efetched_ids()) == PMIDS[1:]  # 90000001 was not asked for again
    first = stub.seen("efetch")[0]
    assert first.method == "POST" and first.params["id"] == "90000002"
    assert len(stub.seen("efetch")) == 3

    stub.requests.clear()
    code, text, _ = fetch(capsys, stub, out, query="TRAIL")
    assert "fetched 0, skipped 6" in text and stub.seen("efetch") == []
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert [r["interrupted"] for r in runs] == [True, False, False]


def assert_spaced(stub: Stub, per_second: float) -> list[float]:
    """Arrival times at the server honour the limit. Arrivals jitter a little on a busy
    machine (a late request makes the gap after it short), so single gaps get some slack;
    the median gap and the whole span may not."""
    times = [r.at for r in stub.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    interval = 1 / per_second
    assert statistics.median(gaps) >= 0.98 * interval, gaps
    assert min(gaps) >= 0.75 * interval, gaps
    assert times[-1] - times[0] >= len(gaps) * interval - 0.05, gaps
    return gaps


def test_rate_limit_without_api_key(capsys, stub, tmp_path, monkeypatch):
    monkeypatch.delenv("NCBI_API_KEY")
    stub.faults["efetch"] = ["429"]  # the retry is spaced as well
    report = fetch_json(capsys, stub, tmp_path / "c", "--full-text")
    assert report["counts"]["fetched"] == 6 and len(stub.requests) == 7
    gaps = assert_spaced(stub, 3.0)
    assert min(gaps) >= 0.30 or sorted(gaps)[1] >= 0.33, gaps  # at most one jittered gap
    assert all("api_key" not in r.params for r in stub.requests)


def test_rate_limit_with_api_key(capsys, stub, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_FETCH__BATCH_SIZE", "1")
    fetch_json(capsys, stub, tmp_path / "c")
    assert len(stub.requests) == 7
    gaps = assert_spaced(stub, 10.0)
    assert statistics.median(gaps) < 0.25, gaps  # faster than the keyless 1/3 s


def test_rate_limiter_spacing_on_a_fake_clock():
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    now[0] += 5
    limiter.wait()
    assert sleeps == pytest.approx([0.34, 0.34])


def test_full_text_for_open_access_articles(capsys, stub, tmp_path):
    out = tmp_path / "c"
    report = fetch_json(capsys, stub, out, "--full-text")
    assert report["full_text"]["fetched"] == ["PMC9000002"]
    skipped = {s["pmcid"]: s["reason"] for s in report["full_text"]["skipped"]}
    assert "open-access" in skipped["PMC9000004"]
    assert [r.params["id"] for r in stub.seen("pmc")] == ["9000002", "9000004"]
    [doc] = load_file(out / "PMC9000002.xml", LoaderSettings())
    assert (doc.doc_id, doc.meta["pmid"], doc.doc_type) == ("pmc-9000002", "90000002", "jats")
    assert "stabilised the receptor" in doc.text
    stub.requests.clear()
    report = fetch_json(capsys, stub, out, "--full-text")
    assert stub.seen("pmc") == [] and len(report["full_text"]["skipped"]) == 2


@pytest.mark.parametrize(("query", "code", "message"), [
    pytest.param("TRAIL AND ((myeloma", 1, "bad query: Invalid query", id="bad-query"),
    pytest.param("TRAIL[notafield]", 1, "bad query: unknown search field notafield",
                 id="unknown-field"),
    pytest.param("TRAIL AND nomatch", 4, "no PubMed records match 'TRAIL AND nomatch' "
                 "(not found in PubMed: nomatch)",
                 id="empty-result"),
])
def test_bad_query_and_empty_result(capsys, stub, tmp_path, query, code, message):
    result, _, err = fetch(capsys, stub, tmp_path / "c", query=query)
    assert result == code and message in err
    assert stub.seen("efetch") == [] and not (tmp_path / "c").exists()


def test_unreachable_server(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_FETCH__RETRIES", "1")
    port = free_port()  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    code = main(["fetch", "pubmed", "TRAIL", "--out", str(tmp_path / "c"), "--base-url", url,
                 "--no-index", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach {url}" in err and "check the network or --base-url" in err


@pytest.mark.slow
def test_fetched_articles_are_indexed_and_cited(stub, tmp_path, python, subprocess_env,
                                                open_rag):
    out, index = tmp_path / "corpus", tmp_path / "index"
    result = subprocess.run(
        [python, "-m", "rag", "fetch", "pubmed", "TRAIL", "--out", str(out), "--index",
         str(index), "--base-url", stub.url, "--full-text", "--no-progress"],
        capture_output=True, text=True, env={**subprocess_env, **FETCH_ENV}, timeout=300,
        check=False)
    assert result.returncode == 0, result.stderr
    assert "fetched 6" in result.stdout and "7 added" in result.stdout

    rag = open_rag(index)
    pmids = {doc_id: rec.meta.get("pmid") for doc_id, rec in rag.snapshot.docs.items()}
    assert pmids == {**{f"pmid-{p}": p for p in PMIDS}, "pmc-9000002": "90000002"}
    for question, pmid in [
        ("Why do chronic lymphocytic leukemia cells resist TRAIL?", "90000001"),
        ("How does bortezomib sensitise myeloma cells to TRAIL?", "90000002"),
    ]:
        answer = rag.ask(question)
        assert answer.supported and pmid in {c.pmid for c in answer.citations}, answer.text
