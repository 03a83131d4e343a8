"""The Milvus backend end to end, with the real model: index, ask with citations, filter,
remove a document, reopen in a new process, refuse a mismatched index, and keep the previous
generation serving when a writer is killed. Milvus Lite for the single-process cases, a
``milvus-lite server`` on 127.0.0.1 for the multi-process ones."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from answer_support import NOTES_DIR, check_citations

from rag import RAG, IndexMismatchError, Settings

if not os.environ.get("CI"):
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed")

from rag.store.vectors.milvus_connect import connect, target_for

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Why are primary CLL cells resistant to TRAIL?"


def _settings(uri: str, **more: object) -> Settings:
    return Settings().with_updates(**{"store.backend": "milvus", "store.milvus_uri": uri,
                                      **more})


@pytest.fixture
def lite(tmp_path: Path, open_rag: Callable[..., RAG]) -> Iterator[tuple[RAG, Path]]:
    notes = tmp_path / "notes"
    shutil.copytree(NOTES_DIR, notes)
    rag = open_rag(tmp_path / "index", _settings(str(tmp_path / "index" / "milvus.db")))
    rag.add([notes])
    yield rag, notes
    rag.close()


def test_ask_cites_and_filters_through_milvus(lite: tuple[RAG, Path]) -> None:
    rag, _ = lite
    assert rag.snapshot.manifest["index_type"] == "milvus"
    assert (rag.index_dir / rag.snapshot.generation / "milvus.json").is_file()
    assert not (rag.index_dir / rag.snapshot.generation / "vectors.npy").exists()
    answer = rag.ask(QUESTION)
    check_citations(rag, answer)
    assert answer.supported and answer.citations[0].doc_id == "cll-venetoclax"
    passages = rag.search("TRAIL resistance", k=5, filters={"disease": "CLL"})
    assert passages and {p.doc_id for p in passages} == {"cll-venetoclax"}
    assert rag.search("TRAIL", k=5, filters={"year": "1990-1991"}) == []
    docs = rag.snapshot.docs
    level = docs["cll-venetoclax"].meta["evidence_level"]
    by_level = rag.search("TRAIL resistance", k=5, filters={"evidence": level})
    assert "cll-venetoclax" in {p.doc_id for p in by_level}
    assert all(docs[p.doc_id].meta["evidence_level"] == level for p in by_level)


def test_remove_switches_generations_and_drops_old_collections(
        lite: tuple[RAG, Path]) -> None:
    rag, notes = lite
    target = target_for(rag.settings.store, rag.index_dir)
    client = connect(target)
    assert rag.remove("cll-venetoclax") == ["cll-venetoclax"]
    passages = rag.search(QUESTION, k=10)
    assert passages and all(p.doc_id != "cll-venetoclax" for p in passages)
    (notes / "cll-venetoclax.md").unlink()
    (notes / "extra.md").write_text("---\nid: extra\ntitle: Extra note on DR5\n---\nDR5 "
                                    "agonists kill some lymphoma lines.", encoding="utf-8")
    rag.add([notes])
    assert rag.snapshot.generation == "gen-000003"
    names = set(client.list_collections())
    assert {"trailrag_gen_000002", "trailrag_gen_000003"} <= names  # keep_generations = 2
    assert "trailrag_gen_000001" not in names
    assert client.describe_alias("trailrag_live")["collection_name"] == "trailrag_gen_000003"


def test_a_new_process_serves_the_same_index(lite: tuple[RAG, Path], python: str,
                                             subprocess_env: dict[str, str]) -> None:
    rag, _ = lite
    rag.remove("cll-venetoclax")
    rag.close()  # Milvus Lite: one process at a time
    env = {**subprocess_env, "RAG_BACKEND": "milvus",
           "RAG_MILVUS_URI": str(rag.index_dir / "milvus.db")}
    done = subprocess.run([python, "-m", "rag", "search", QUESTION, "--index",
                           str(rag.index_dir), "--json", "--k", "10"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    ids = {p["doc_id"] for p in (found["passages"] if isinstance(found, dict) else found)}
    assert ids and "cll-venetoclax" not in ids


def test_close_frees_milvus_lite_for_a_reader_with_default_settings(
        lite: tuple[RAG, Path], open_rag: Callable[..., RAG], python: str,
        subprocess_env: dict[str, str]) -> None:
    rag, _ = lite
    rag.close()
    reader = open_rag(rag.index_dir, Settings())  # the backend comes from the index itself
    assert reader.snapshot.manifest["index_type"] == "milvus"
    assert reader.search(QUESTION, k=3)
    reader.close()  # must free the Lite file although the settings never named Milvus
    done = subprocess.run([python, "-m", "rag", "search", QUESTION, "--index",
                           str(rag.index_dir), "--json", "--k", "3"], cwd=PROJECT_ROOT,
                          env=subprocess_env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_a_mismatched_index_is_refused(lite: tuple[RAG, Path],
                                       open_rag: Callable[..., RAG]) -> None:
    rag, _ = lite
    other = open_rag(rag.index_dir, rag.settings.with_updates(**{"chunking.chunk_tokens": 120}))
    with pytest.raises(IndexMismatchError, match="chunking"):
        other.ask(QUESTION)


def test_a_killed_writer_leaves_the_previous_generation_serving(
        milvus_server: str, tmp_path: Path, open_rag: Callable[..., RAG], python: str,
        subprocess_env: dict[str, str], make_text: Callable[..., str]) -> None:
    notes = tmp_path / "notes"
    shutil.copytree(NOTES_DIR, notes)
    settings = _settings(milvus_server, **{"store.milvus_prefix": "crash"})
    rag = open_rag(tmp_path / "index", settings)
    rag.add([notes])
    for i in range(60):  # enough new text that the next write takes a while
        (notes / f"bulk-{i:02d}.txt").write_text(f"Bulk {i}\n\n" + make_text(60, seed=i))
    env = {**subprocess_env, "RAG_BACKEND": "milvus", "RAG_MILVUS_URI": milvus_server,
           "RAG_STORE__MILVUS_PREFIX": "crash"}
    client = connect(target_for(settings.store, rag.index_dir))
    writer = subprocess.Popen([python, "-m", "rag", "index", str(notes), "--index",
                               str(rag.index_dir), "--no-progress"], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    # Kill the writer as soon as its new collection exists: in the middle of its Milvus write.
    while "crash_gen_000002" not in client.list_collections():
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never began"
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    rag.refresh()
    assert rag.snapshot.generation == "gen-000001"  # CURRENT never moved
    answer = rag.ask(QUESTION)
    check_citations(rag, answer)
    assert answer.supported
    assert client.describe_alias("crash_live")["collection_name"] == "crash_gen_000001"
    rag.add([notes])  # the next write replaces the half-written collection and finishes
    live = rag.snapshot.generation
    assert live == "gen-000002"
    names = {n for n in client.list_collections() if n.startswith("crash_gen_")}
    assert names <= {f"crash_{p.name.replace('-', '_')}" for p in rag.index_dir.glob("gen-*")}
    assert f"crash_{live.replace('-', '_')}" in names
    check_citations(rag, rag.ask(QUESTION))
