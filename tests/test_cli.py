"""The command line over the index: index, status, show, remove; JSON output and exit codes.

Commands run in-process through ``rag.interfaces.cli.main`` (the model's files are already
in memory, so each run's own model loads in a fraction of a second); one run goes through
``python -m rag``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag.interfaces.cli import main

pytestmark = pytest.mark.usefixtures("clean_env")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run the CLI; return its exit code, its stdout (parsed when JSON) and its stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


@pytest.fixture
def corpus(write_files: Callable[..., Path], seed_page: Path) -> Path:
    return write_files({
        "seed.txt": seed_page.read_bytes(),
        "note.md": "---\ntitle: A note\nyear: 2020\n---\n## Findings\n\nDR5 clusters on blasts.",
        "broken.pdf": b"%PDF-1.7 broken",
    })


@pytest.fixture
def indexed(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    index = tmp_path / "index"
    code, _, err = run(capsys, "index", str(corpus), "--index", str(index), "--json")
    assert code == 0, err
    return index


def test_index_json(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "index"
    code, data, err = run(capsys, "index", str(corpus), "--index", str(index), "--json")
    assert code == 0, err
    assert sorted(data["added"]) == ["note", "pmid-40084090"]
    assert data["counts"] == {"added": 2, "updated": 0, "removed": 0, "unchanged": 0,
                              "skipped": 1}
    (skipped,) = data["skipped"]
    assert skipped["path"] == str(corpus / "broken.pdf")
    assert "PDF" in skipped["reason"]
    assert data["chunks"] == data["chunks_embedded"] > 0
    assert data["index_dir"] == str(index)

    code, again, _ = run(capsys, "index", str(corpus), "--index", str(index), "--json")
    assert code == 0
    assert again["chunks_embedded"] == 0
    assert again["counts"]["unchanged"] == 2


def test_index_text_report_names_skipped_files(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "index", str(corpus), "--index", str(tmp_path / "i"),
                       "--no-progress")
    assert code == 0
    assert "documents: 2 added, 0 updated, 0 removed, 0 unchanged, 1 skipped" in out
    assert f"skipped {corpus / 'broken.pdf'}: " in out


def test_status_json(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, status, _ = run(capsys, "status", "--index", str(indexed), "--json")
    assert code == 0
    assert status["documents"] == 2
    assert status["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert status["dimension"] == 384
    assert status["generation"] == "gen-000001"
    assert status["chunks"] >= 2


def test_show_json(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "show", "pmid-40084090", "--index", str(indexed), "--json")
    assert code == 0
    assert doc["doc_id"] == "pmid-40084090"
    assert doc["meta"]["pmcid"] == "PMC11902984"
    assert doc["text"].startswith("Hematological malignancies")
    assert doc["chunks"] >= 1
    assert doc["sections"][0]["title"] == "Abstract"


def test_show_unknown_document(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "nope", "--index", str(indexed))
    assert code == 1
    assert err.startswith("error: no document with id 'nope'")
    assert "Traceback" not in err


def test_remove_json(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = run(capsys, "remove", "note", "nope", "--index", str(indexed), "--json")
    assert code == 0
    assert data == {"removed": ["note"], "not_found": ["nope"]}
    code, status, _ = run(capsys, "status", "--index", str(indexed), "--json")
    assert status["documents"] == 1
    code, _, err = run(capsys, "remove", "note", "--index", str(indexed))
    assert code == 1 and "no document with id note" in err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({"empty.txt": "", "bad.pdf": b"not a pdf"}, "nothing could be indexed",
                     id="only-unreadable-files"),
        pytest.param({"notes.docx": b"PK"}, "no supported documents found",
                     id="no-supported-files"),
    ],
)
def test_nothing_to_index_is_a_failure(
    write_files: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    files: dict[str, str | bytes], message: str,
) -> None:
    corpus = write_files(files, folder="bad")
    code, out, err = run(capsys, "index", str(corpus), "--index", str(tmp_path / "i"), "--json")
    assert code == 1
    assert out == ""
    assert err.startswith("error: ") and message in err
    for name in files if message == "nothing could be indexed" else ():
        assert str(corpus / name) in err


def test_missing_folder_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "index", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i"))
    assert code == 1
    assert "no such file or folder" in err


def test_status_without_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--index", str(tmp_path / "none"))
    assert code == 1
    assert "no index at" in err and "python -m rag index" in err


def test_mismatch_then_rebuild(
    corpus: Path, indexed: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAG_CHUNKING__CHUNK_TOKENS", "64")
    code, _, err = run(capsys, "index", str(corpus), "--index", str(indexed))
    assert code == 1
    assert "chunk_tokens" in err and "python -m rag index --rebuild" in err
    code, data, err = run(capsys, "index", str(corpus), "--index", str(indexed), "--rebuild",
                          "--json")
    assert code == 0, err
    assert sorted(data["added"]) == ["note", "pmid-40084090"]
    code, status, _ = run(capsys, "status", "--index", str(indexed), "--json")
    assert status["chunking"]["chunk_tokens"] == 64
    assert status["generation"] == "gen-000002"


def test_settings_file(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("loader:\n  max_file_mb: 0.0005\n")
    code, data, _ = run(capsys, "--settings", str(settings), "index", str(corpus), "--index",
                        str(tmp_path / "i"), "--json")
    assert code == 0
    reasons = {Path(s["path"]).name: s["reason"] for s in data["skipped"]}
    assert "above the 0.0005 MB limit" in reasons["seed.txt"]
    assert data["added"] == ["note"]


def test_python_dash_m_rag(
    indexed: Path, subprocess_env: dict[str, str], python: str, tmp_path: Path
) -> None:
    done = subprocess.run([python, "-m", "rag", "status", "--index", str(indexed), "--json"],
                          env=subprocess_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents"] == 2
    failed = subprocess.run([python, "-m", "rag", "show", "nope", "--index", str(indexed)],
                            env=subprocess_env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr


@pytest.mark.parametrize("command", ["search", "ask", "export"])
def test_filter_help_names_every_filter_key(command: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from rag.retrieve.filters import FILTER_KEYS

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(key in text.split("--filter KEY=VALUE", 1)[1] for key in FILTER_KEYS)
