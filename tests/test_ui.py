"""The web app end to end: ``python app.py`` on a free port, driven with ``gradio_client``.

Also small checks of the render helpers (escaping, the source panel) and of upload names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from appserver import (
    CLINICAL_FIRST_QUESTION,
    CLINICAL_NOTE_ID,
    NOTES,
    PAYLOAD_SCRIPT,
    PRECLINICAL_LEAD_ID,
    PROJECT_ROOT,
    UPLOAD_NOTE,
    App,
    call_api,
    run_app,
)

from rag.interfaces.ui.files import Upload, parse_auth, sanitize_filename, save_uploads
from rag.interfaces.ui.render import build_filters, escape, escape_markdown, sources_html
from rag.types import Answer, Citation, Passage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app: App):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(app.url, verbose=False)


ENDPOINTS = {"/ask", "/ask_clinical_first", "/search", "/status", "/documents", "/upload",
             "/delete", "/evidence_map"}


def _ask(client, question: str, k: int = 5, filters=None):  # type: ignore[no-untyped-def]
    return client.predict(question, k, filters or {}, "extractive", api_name="/ask")


# -- start ----------------------------------------------------------------------------------


def test_help_lists_the_flags(python: str, subprocess_env: dict[str, str]) -> None:
    out = subprocess.run([python, "app.py", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], env=subprocess_env,
                         check=True, timeout=60).stdout
    for flag in ("--host", "--port", "--index", "--docs", "--auth", "--no-build"):
        assert flag in out
    named = " ".join(out.split())  # argparse wraps the description
    assert all(f"{endpoint}," in named or f"{endpoint})" in named for endpoint in ENDPOINTS)


def test_startup_builds_the_missing_index_and_reports_the_url(app: App) -> None:
    out = app.output()
    assert "building the index" in out
    assert "ready in" in out and app.url in out


def test_only_the_named_endpoints_are_public(client) -> None:  # type: ignore[no-untyped-def]
    endpoints = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert endpoints == ENDPOINTS


# -- API ------------------------------------------------------------------------------------


def test_status_matches_the_cli_shape(client) -> None:  # type: ignore[no-untyped-def]
    status = client.predict(api_name="/status")
    assert status["documents"] == len(NOTES)
    assert {"chunks", "model", "dimension", "generation"} <= set(status)


def test_ask_answers_with_valid_citations(client) -> None:  # type: ignore[no-untyped-def]
    answer = _ask(client, "Why do primary CLL cells resist TRAIL?")
    assert answer["supported"] is True
    assert "[1]" in answer["answer"]
    cll = NOTES["cflip-cll.md"]
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    assert markers == {c["n"] for c in answer["citations"]}
    for c in answer["citations"]:
        assert c["doc_id"] == "cflip-cll"
        assert c["snippet"] and c["snippet"] in cll
        assert c["end"] - c["start"] == len(c["snippet"])
        assert (c["pmid"], c["doi"], c["year"]) == ("12345678", "10.1000/ltr.2004.17", 2004)
    assert set(answer) >= {"question", "passages", "timings_ms", "support_score", "mode"}


def test_ask_returns_study_designs_and_the_evidence_summary(client) -> None:  # type: ignore[no-untyped-def]
    answer = _ask(client, "Why do primary CLL cells resist TRAIL?")
    assert answer["evidence_summary"].startswith("Evidence: 1 in vitro study (2004)")
    for c in answer["citations"]:
        assert c["evidence"] == "in-vitro"
        assert "preclinical in vitro" in c["evidence_reason"]


def test_ask_clinical_first_takes_the_same_inputs_as_ask(client, app: App) -> None:  # type: ignore[no-untyped-def]
    question = "What did dulanermin with rituximab do in follicular lymphoma?"
    for endpoint in ("/ask", "/ask_clinical_first"):
        answer = client.predict(question, 3, {}, "extractive", api_name=endpoint)
        assert answer["citations"][0]["doc_id"] == CLINICAL_NOTE_ID
        assert answer["citations"][0]["evidence"] == "phase-1-2"
        assert answer["evidence_summary"].startswith("Evidence: 1 phase 1\u20132 trial")
        # plain HTTP clients send exactly four inputs, as before
        plain = call_api(app.url, endpoint.lstrip("/"), question, 3, {}, "extractive")
        assert plain["citations"][0]["doc_id"] == CLINICAL_NOTE_ID


def test_ask_clinical_first_changes_the_lead_citation(client, app: App) -> None:  # type: ignore[no-untyped-def]
    plain = client.predict(CLINICAL_FIRST_QUESTION, 3, {}, "extractive", api_name="/ask")
    assert plain["citations"][0]["doc_id"] == PRECLINICAL_LEAD_ID
    assert plain["citations"][0]["evidence"] == "in-vitro"
    first = call_api(app.url, "ask_clinical_first", CLINICAL_FIRST_QUESTION, 3, {},
                     "extractive")
    assert first["citations"][0]["doc_id"] == CLINICAL_NOTE_ID
    assert first["citations"][0]["evidence"] == "phase-1-2"


def test_ask_clinical_first_never_ranks_the_trial_lower(client) -> None:  # type: ignore[no-untyped-def]
    question = "What are the results of TRAIL agonists in lymphoma?"
    ranks = {}
    for endpoint in ("/ask", "/ask_clinical_first"):
        answer = client.predict(question, 5, {}, "extractive", api_name=endpoint)
        ranks[endpoint] = [p["doc_id"] for p in answer["passages"]].index(CLINICAL_NOTE_ID)
    # the switch only ever moves human studies ahead (how far is the library's to measure)
    assert ranks["/ask_clinical_first"] <= ranks["/ask"]


def _cells(client) -> dict[tuple[str, str], dict]:  # type: ignore[no-untyped-def]
    data = client.predict(api_name="/evidence_map")
    return {(c["disease"], c["agent"]): c for c in data["cells"]}


def test_evidence_map_endpoint(client) -> None:  # type: ignore[no-untyped-def]
    data = client.predict(api_name="/evidence_map")
    cells = _cells(client)
    assert cells[("multiple myeloma", "bortezomib")] == {
        "disease": "multiple myeloma", "agent": "bortezomib", "level": "in-vitro",
        "label": "In vitro / ex vivo", "documents": 1, "doc_ids": ["bortezomib-myeloma"]}
    assert cells[("follicular lymphoma", "dulanermin")]["level"] == "phase-1-2"
    assert {"name": "TRAIL", "documents": 3} in data["agents"]
    assert data["timeline"] == [{"year": 2011, "level": "phase-1-2",
                                 "label": "Phase 1\u20132 trial", "studies": 1,
                                 "doc_ids": [CLINICAL_NOTE_ID]}]
    assert data["undated_clinical"] == 0


def test_ask_accepts_filters_as_json_text(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.predict("Which drug restores TRAIL-induced apoptosis?", 3,
                            json.dumps({"disease": "multiple myeloma"}), "extractive",
                            api_name="/ask")
    assert {p["doc_id"] for p in answer["passages"]} == {"bortezomib-myeloma"}


def test_library_errors_come_back_as_messages(client) -> None:  # type: ignore[no-untyped-def]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown filter 'bogus'"):
        _ask(client, "TRAIL", filters={"bogus": 1})
    with pytest.raises(AppError, match="empty"):
        _ask(client, "   ")


def test_search_returns_ranked_passages(client) -> None:  # type: ignore[no-untyped-def]
    result = client.predict("bortezomib DR5 myeloma", 2, api_name="/search")
    assert result["query"] == "bortezomib DR5 myeloma"
    assert [p["rank"] for p in result["passages"]] == [1, 2][: len(result["passages"])]
    assert result["passages"][0]["doc_id"] == "bortezomib-myeloma"


def test_upload_ask_delete(client, app: App, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import handle_file

    source = tmp_path / "My Quorvane note (v2).md"
    source.write_text(UPLOAD_NOTE, encoding="utf-8")
    result = client.predict([handle_file(str(source))], api_name="/upload")
    assert result["added"] == ["quorvane-note"], result
    assert [p.name for p in app.upload_dir.iterdir()] == ["My_Quorvane_note_v2.md"]

    answer = _ask(client, "What did quorvane do to leukemia xenografts?")
    assert answer["supported"] and answer["citations"][0]["doc_id"] == "quorvane-note"
    assert answer["citations"][0]["evidence"] == "in-vivo"
    cell = _cells(client)[("acute myeloid leukemia", "quorvane")]
    assert (cell["level"], cell["doc_ids"]) == ("in-vivo", ["quorvane-note"])

    assert client.predict(["quorvane-note"], api_name="/delete") == {
        "removed": ["quorvane-note"], "not_found": []}
    ids = {d["doc_id"] for d in client.predict(api_name="/documents")}
    assert "quorvane-note" not in ids and len(ids) == len(NOTES)
    assert not list(app.upload_dir.iterdir())
    assert ("acute myeloid leukemia", "quorvane") not in _cells(client)
    after = _ask(client, "What did quorvane do to leukemia xenografts?")
    assert all(c["doc_id"] != "quorvane-note" for c in after["citations"])


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        pytest.param("tool.exe", b"MZ", "not accepted", id="wrong-type"),
        pytest.param("broken.pdf", b"%PDF-1.4 this is not a pdf", "", id="corrupt-pdf"),
        pytest.param("empty.md", b"", "", id="empty-note"),
    ],
)
def test_upload_reports_unusable_files_by_name(client, tmp_path: Path, name: str,  # type: ignore[no-untyped-def]
                                                content: bytes, reason: str) -> None:
    from gradio_client import handle_file

    path = tmp_path / name
    path.write_bytes(content)
    result = client.predict([handle_file(str(path))], api_name="/upload")
    problems = result["refused"] + result["skipped"]
    assert [p["file"] for p in problems] == [name]
    assert reason in problems[0]["reason"] and problems[0]["reason"]
    assert str(tmp_path) not in json.dumps(result)


def test_server_files_cannot_be_read_through_the_upload_endpoint(app: App) -> None:
    fake = {"path": "/etc/passwd", "orig_name": "passwd.txt", "meta": {"_type": "gradio.FileData"}}
    event = httpx.post(f"{app.url}gradio_api/call/upload", json={"data": [[fake]]}).json()
    stream = httpx.get(f"{app.url}gradio_api/call/upload/{event['event_id']}", timeout=30).text
    assert "event: error" in stream
    assert not app.upload_dir.exists() or not list(app.upload_dir.iterdir())


@pytest.mark.parametrize("target", ["docs/cflip-cll.md", "/etc/passwd", "index/CURRENT",
                                    "../../../../../etc/passwd", "/proc/self/environ",
                                    str(PROJECT_ROOT / "app.py")])
def test_no_file_outside_gradio_uploads_is_served(app: App, target: str) -> None:
    path = target if target.startswith("/") else str(app.log.parent / target)
    for url in (f"{app.url}gradio_api/file={path}", f"{app.url}file={path}",
                f"{app.url}gradio_api/file={quote(path, safe='')}"):
        response = httpx.get(url)
        assert response.status_code in (403, 404), url
        assert "c-FLIP" not in response.text and "root:" not in response.text


def test_restart_updates_a_stale_index_and_requires_login(app: App, tmp_path: Path,
                                                          subprocess_env: dict[str, str]) -> None:
    from gradio_client import Client

    shutil.copytree(app.log.parent / "index", tmp_path / "index")
    docs = app.log.parent / "docs"
    (docs / "extra.md").write_text(UPLOAD_NOTE.replace("quorvane-note", "extra-note"),
                                   encoding="utf-8")
    try:
        with run_app(tmp_path, subprocess_env, "--docs", str(docs),
                     "--auth", "reader:s3cret") as locked:
            assert (f"index: 1 added, 0 updated, 0 removed, {len(NOTES)} unchanged"
                    in locked.output())
            assert httpx.get(f"{locked.url}config").status_code in (401, 403)
            with pytest.raises(Exception):  # noqa: B017 - any refusal will do
                Client(locked.url, verbose=False)
            status = Client(locked.url, auth=("reader", "s3cret"), verbose=False).predict(
                api_name="/status")
            assert status["documents"] == len(NOTES) + 1
    finally:
        (docs / "extra.md").unlink()


# -- helpers --------------------------------------------------------------------------------


def _citation(**changes: object) -> Citation:
    data: dict = dict(n=1, doc_id="d", chunk_id="d#1", title="T", source="S", snippet="Two.",
                      start=5, end=9, score=1.0, pmid="123", doi="10.1/x")
    data.update(changes)
    return Citation(**data)


def test_escaping_leaves_no_markup() -> None:
    assert escape('<img src=x onerror="a">${x}`') == (
        "&lt;img src=x onerror=&quot;a&quot;&gt;&#36;{x}&#96;")
    assert escape_markdown("[x](javascript:alert(1)) <b>") == (
        r"\[x\]\(javascript:alert\(1\)\) &lt;b&gt;")


def test_source_panel_marks_the_cited_sentence_and_links_out() -> None:
    passage = Passage(rank=1, doc_id="d", chunk_id="d#1", title="T", text="One. Two. <b>3</b>",
                      score=1.0, start=0, end=18)
    answer = Answer("q", "Two [1].", True, (_citation(title=PAYLOAD_SCRIPT),), (passage,), {})
    panel = sources_html(answer)
    assert 'One. <mark data-n="1">Two.</mark><sup>[1]</sup> &lt;b&gt;3&lt;/b&gt;' in panel
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/123/"' in panel
    assert 'href="https://doi.org/10.1/x" target="_blank" rel="noopener noreferrer"' in panel
    assert "<script>" not in panel and "&lt;script&gt;" in panel


def test_unsupported_answers_show_closest_passages_apart() -> None:
    passage = Passage(rank=1, doc_id="d", chunk_id="d#1", title="T", text="Near.", score=0.1)
    panel = sources_html(Answer("q", "no", False, (), (passage,), {}))
    assert "No good evidence" in panel and "Closest passages" in panel and "Near." in panel


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        pytest.param("../../etc/passwd.txt", "passwd.txt", id="traversal"),
        pytest.param("C:\\Users\\x\\a b.PDF", "a_b.pdf", id="windows-path"),
        pytest.param("Лейкемия заметка.md", "Лейкемия_заметка.md", id="cyrillic"),
        pytest.param(".hidden.md", "hidden.md", id="hidden"),
        pytest.param("a" * 300 + ".md", "a" * 117 + ".md", id="too-long"),
        pytest.param("<script>.html", "script.html", id="markup"),
    ],
)
def test_upload_names_are_sanitised(raw: str, safe: str) -> None:
    assert sanitize_filename(raw) == safe


def test_filters_from_the_controls_leave_empty_ones_out() -> None:
    assert build_filters(["multiple myeloma"], [], None, " 2005-2015 ") == {
        "disease": ["multiple myeloma"], "year": "2005-2015"}
    assert build_filters(None, None, None, "") == {}


def test_uploads_over_the_size_limit_or_of_other_types_are_refused(tmp_path: Path) -> None:
    big, exe = tmp_path / "big.txt", tmp_path / "run.sh"
    big.write_bytes(b"x" * 2_000_000)
    exe.write_text("echo hi", encoding="utf-8")
    uploads = [Upload(big, "big.txt"), Upload(exe, "run.sh")]
    saved, refused = save_uploads(uploads, tmp_path / "uploads", max_mb=1)
    assert saved == [] and not list((tmp_path / "uploads").iterdir())
    assert "over the 1 MB upload limit" in refused[0].reason
    assert "type .sh is not accepted" in refused[1].reason


def test_auth_setting_accepts_a_pair_or_a_file(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# team\nana:pw1\nbo:pw:2\n", encoding="utf-8")
    assert parse_auth("ana:pw1") == [("ana", "pw1")]
    assert parse_auth(str(users)) == [("ana", "pw1"), ("bo", "pw:2")]
    assert parse_auth(None) is None
