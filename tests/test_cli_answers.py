"""The answer commands of the CLI: ``ask``, ``show``, ``search`` and ``eval``.

``ask`` and ``eval`` run as real ``python -m rag`` child processes (each loads the model, so
they are marked slow); ``search`` and the error cases call ``rag.interfaces.cli.main`` in this
process, which is the same code behind the same argument parser.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from answer_support import OFF_TOPIC, ask_checked, build_index

from rag import RAG
from rag.interfaces.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How does a SMAC mimetic overcome XIAP in AML blasts?"
ANSWER_KEYS = {"question", "answer", "supported", "citations", "passages", "timings_ms"}
CITATION_KEYS = {"n", "doc_id", "chunk_id", "title", "source", "pmid", "doi", "url", "section",
                 "page", "snippet", "start", "end", "score"}
PASSAGE_KEYS = {"rank", "doc_id", "chunk_id", "title", "text", "score", "section", "page"}
METRICS = ("passage_hit@1", "passage_hit@3", "passage_hit@5", "passage_hit@10", "mrr@10",
           "answer_hit", "citation_valid", "refusal_ok", "false_refusal", "latency_ms_p50",
           "latency_ms_p95", "citations_per_answer", "answer_words")
EVAL_ITEMS = [
    {"id": "smac", "question": QUESTION, "must_include": [["birinapant"], ["XIAP"]]},
    {"id": "cll", "question": "Why are primary CLL cells resistant to TRAIL?",
     "must_include": [["TRAIL"], ["chronic lymphocytic leukemia", "CLL"]]},
    {"id": "bread", "question": OFF_TOPIC[1], "unanswerable": True},
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_rag, "cli")


@pytest.fixture(scope="module")
def run(subprocess_env: dict[str, str],
        python: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-m", "rag", *args], cwd=PROJECT_ROOT,
                              env=subprocess_env, capture_output=True, text=True,
                              timeout=300, check=False)

    return _run


def write_jsonl(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


# -- ask and show ----------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_json_matches_the_contract_and_show_offsets(
        index: RAG, run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = run("ask", QUESTION, "--index", str(index.index_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one JSON object on one line
    data = json.loads(result.stdout)
    assert set(data) >= ANSWER_KEYS
    assert data["question"] == QUESTION and data["supported"] is True
    assert set(data["timings_ms"]) == {"retrieve", "answer", "total"}
    assert data["citations"] and data["passages"]
    for citation in data["citations"]:
        assert set(citation) >= CITATION_KEYS
        assert f"[{citation['n']}]" in data["answer"]
    for passage in data["passages"]:
        assert set(passage) >= PASSAGE_KEYS
    assert data["passages"][0]["doc_id"] == "aml-smac-xiap"

    texts: dict[str, str] = {}
    for doc_id in {c["doc_id"] for c in data["citations"]}:
        shown = run("show", doc_id, "--index", str(index.index_dir), "--json")
        assert shown.returncode == 0, shown.stderr
        texts[doc_id] = json.loads(shown.stdout)["text"]
    for c in data["citations"]:
        assert texts[c["doc_id"]][c["start"]:c["end"]] == c["snippet"]


def test_show_json_gives_the_cleaned_text_and_metadata(
        index: RAG, run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = run("show", "cll-venetoclax", "--index", str(index.index_dir), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["doc_id"] == "cll-venetoclax"
    assert data["text"] == index.document("cll-venetoclax").text
    assert data["meta"]["pmid"] == "31000001" and data["meta"]["year"] == 2019
    assert data["chunks"] >= 1


def test_show_unknown_document_exits_1(
        index: RAG, run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = run("show", "no-such-note", "--index", str(index.index_dir), "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no document with id 'no-such-note'")


@pytest.mark.slow
def test_ask_into_a_pipe_the_reader_closes_early_exits_cleanly(
        index: RAG, subprocess_env: dict[str, str], python: str) -> None:
    # the CLI ends without interpreter teardown once torch is loaded: output must still be
    # flushed, and a reader that leaves (`| head -c 40`) is not an error
    command = [python, "-m", "rag", "ask", QUESTION, "--index", str(index.index_dir)]
    with subprocess.Popen(command, cwd=PROJECT_ROOT, env=subprocess_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        head = proc.stdout.read(40)
        proc.stdout.close()
        stderr = proc.stderr.read()
        code = proc.wait(timeout=300)
    assert len(head) == 40
    assert code == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.usefixtures("clean_env")
def test_ask_text_output_lists_references(index: RAG,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", QUESTION, "--index", str(index.index_dir)]) == 0
    out = capsys.readouterr().out
    assert "References:" in out and "PMID 31000003" in out
    answer = ask_checked(index, QUESTION)  # the same answer, its offsets checked
    assert out.startswith(answer.text)
    for c in answer.citations:
        assert f'[{c.n}] ' in out and f'    "{c.snippet}"' in out


@pytest.mark.usefixtures("clean_env")
def test_ask_strict_exits_3_when_refusing(index: RAG,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", OFF_TOPIC[0], "--index", str(index.index_dir), "--strict", "--json"])
    assert code == 3
    data = json.loads(capsys.readouterr().out)
    assert data["supported"] is False and data["citations"] == [] and data["passages"]


# -- search ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_search_json(index: RAG, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "XIAP and SMAC mimetics", "--index", str(index.index_dir), "--json",
                 "--k", "3"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"query", "passages"}
    assert data["query"] == "XIAP and SMAC mimetics"
    assert [p["rank"] for p in data["passages"]] == [1, 2, 3]
    assert data["passages"][0]["doc_id"] == "aml-smac-xiap"
    for p in data["passages"]:
        assert set(p) >= PASSAGE_KEYS
        assert index.document(p["doc_id"]).text[p["start"]:p["end"]] == p["text"]


@pytest.mark.usefixtures("clean_env")
def test_search_with_filters(index: RAG, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "TRAIL", "--index", str(index.index_dir), "--json", "--k", "20",
                 "--filter", "disease=lymphoma", "--filter", "year=2005-2010"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {p["doc_id"] for p in data["passages"]} == {"hodgkin-cflip", "dulanermin-nhl-trial"}


# -- bad filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "item"),
    [
        pytest.param("ask", "disease", id="ask-no-equals"),
        pytest.param("ask", "=AML", id="ask-no-key"),
        pytest.param("ask", "disease=", id="ask-no-value"),
        pytest.param("search", "disease:AML", id="search-colon"),
    ],
)
def test_bad_filter_syntax_exits_1_with_a_message(
        index: RAG, run: Callable[..., subprocess.CompletedProcess[str]], command: str,
        item: str) -> None:
    result = run(command, "TRAIL", "--index", str(index.index_dir), "--filter", item)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: filter {item!r} must look like key=value, e.g. disease=myeloma"
    )


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("item", "message"),
    [
        pytest.param("colour=red", "error: unknown filter 'colour'", id="unknown-key"),
        pytest.param("year=recent", "error: year filter 'recent'", id="bad-year"),
    ],
)
def test_bad_filter_value_exits_1_with_a_message(index: RAG, capsys: pytest.CaptureFixture[str],
                                                 item: str, message: str) -> None:
    assert main(["ask", "TRAIL", "--index", str(index.index_dir), "--filter", item]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(message)


# -- eval ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_prints_every_metric(index: RAG, tmp_path: Path,
                                  run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    path = write_jsonl(tmp_path / "tiny.jsonl", EVAL_ITEMS)
    result = run("eval", str(path), "--index", str(index.index_dir))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "3 items (2 answerable, 1 unanswerable), k=10" in out
    for metric in METRICS:
        assert f"| {metric} |" in out, metric
    for line in ("| passage_hit@1 | 1.000 |", "| answer_hit | 1.000 |",
                 "| citation_valid | 1.000 |", "| refusal_ok | 1.000 |",
                 "| false_refusal | 0.000 |"):
        assert line in out
    assert "missed:" not in out


@pytest.mark.usefixtures("clean_env")
def test_eval_json_reports_missed_items(index: RAG, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    items = [*EVAL_ITEMS,
             {"id": "impossible", "question": "Which drug is combined with rituximab?",
              "must_include": [["zebrafish"]]},
             {"id": "geography", "question": OFF_TOPIC[0], "must_include": [["Canberra"]]}]
    path = write_jsonl(tmp_path / "missed.jsonl", items)
    assert main(["eval", str(path), "--index", str(index.index_dir), "--json", "--k", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["items"], report["answerable"], report["unanswerable"]) == (5, 4, 1)
    ours = report["metrics"]["ours"]
    assert set(ours) == {m for m in METRICS if m != "passage_hit@10"}  # k=5
    assert ours["answer_hit"] == 0.5 and ours["citation_valid"] == 1.0
    assert ours["refusal_ok"] == 1.0 and ours["false_refusal"] == 0.25
    assert ours["latency_ms_p95"] >= ours["latency_ms_p50"] > 0
    missed = {m["id"]: m for m in report["missed"]}
    assert set(missed) == {"impossible", "geography"}
    assert missed["impossible"]["why"] == "answer lacks a fact"
    assert missed["geography"]["why"] == "refused"


@pytest.mark.usefixtures("clean_env")
def test_eval_bad_jsonl_exits_1(index: RAG, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "TRAIL?"}\n{not json\n', encoding="utf-8")
    assert main(["eval", str(path), "--index", str(index.index_dir)]) == 1
    assert f"{path}:2: not valid JSON" in capsys.readouterr().err
