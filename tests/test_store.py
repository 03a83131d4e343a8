"""The index on disk: plain files with a manifest, generations switched atomically, and a
previous generation that survives any failed or interrupted write."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag import RAG, Settings
from rag.errors import IndexMismatchError, IndexNotFoundError, IndexWriteError
from rag.indexing import expected_manifest
from rag.store import FORMAT_VERSION, check_manifest, current_generation, open_snapshot

OpenRag = Callable[..., RAG]


@pytest.fixture
def tiny(write_files: Callable[..., Path], open_rag: OpenRag, tmp_path: Path
         ) -> tuple[RAG, Path]:
    corpus = write_files({
        "one.txt": "One\n\nTRAIL binds DR4 and DR5 on leukemia cells.",
        "two.txt": "Two\n\nc-FLIP blocks caspase-8 at the DISC.",
    })
    rag = open_rag(tmp_path / "index")
    rag.add([corpus])
    return rag, corpus


def test_generation_is_plain_files(tiny: tuple[RAG, Path]) -> None:
    rag, _ = tiny
    gen = rag.index_dir / "gen-000001"
    assert (rag.index_dir / "CURRENT").read_text().strip() == "gen-000001"
    names = {p.name for p in gen.iterdir()}
    assert {"manifest.json", "meta.sqlite", "vectors.npy", "sentences.npz", "bm25"} <= names
    assert not list(gen.rglob("*.pkl")) and not list(gen.rglob("*.pickle"))
    vectors = np.load(gen / "vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(rag.snapshot.chunks), 384)
    with np.load(gen / "sentences.npz", allow_pickle=False) as sentences:
        assert set(sentences.files) == {"spans", "chunk", "vectors"}
    manifest = json.loads((gen / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["chunking"] == expected_manifest(Settings())["chunking"]
    assert manifest["generation"] == "gen-000001"
    assert (manifest["documents"], manifest["chunks"]) == (2, len(rag.snapshot.chunks))


def test_snapshot_round_trip(tiny: tuple[RAG, Path]) -> None:
    rag, corpus = tiny
    snap = open_snapshot(rag.index_dir)
    doc = snap.document("one")
    assert doc is not None
    assert doc.text == "One\n\nTRAIL binds DR4 and DR5 on leukemia cells."
    assert doc.source_path == str((corpus / "one.txt").resolve())
    assert snap.document("missing") is None
    assert snap.vector_index.ntotal == len(snap.chunks)
    scores, rows = snap.vector_index.search(snap.vectors[:1], 1)
    assert rows[0][0] == 0 and scores[0][0] == pytest.approx(1.0, abs=1e-4)


def test_no_index_yet(tmp_path: Path) -> None:
    rag = RAG.open(tmp_path / "nothing", settings=Settings())
    assert not rag.exists
    with pytest.raises(IndexNotFoundError, match="build one with `python -m rag index`"):
        rag.status()


def test_current_pointing_at_a_missing_generation(tiny: tuple[RAG, Path]) -> None:
    rag, _ = tiny
    (rag.index_dir / "CURRENT").write_text("gen-000099\n")
    assert current_generation(rag.index_dir) is None
    with pytest.raises(IndexNotFoundError):
        RAG.open(rag.index_dir, settings=Settings()).status()


def test_old_generations_are_pruned(tiny: tuple[RAG, Path]) -> None:
    rag, corpus = tiny
    for n in range(3):
        (corpus / "two.txt").write_text(f"Two\n\nVersion {n} of the second note on XIAP.")
        rag.add([corpus])
    assert rag.snapshot.generation == "gen-000004"
    kept = Settings().store.keep_generations
    gens = sorted(p.name for p in rag.index_dir.glob("gen-*"))
    assert gens == [f"gen-{n:06d}" for n in range(5 - kept, 5)]


def test_a_reader_follows_the_writer(tiny: tuple[RAG, Path]) -> None:
    writer, corpus = tiny
    reader = RAG.open(writer.index_dir, settings=Settings())
    assert set(reader.snapshot.docs) == {"one", "two"}
    (corpus / "three.txt").write_text("Three\n\nBortezomib raises DR5.")
    writer.add([corpus])
    assert reader.refresh() is True
    assert set(reader.snapshot.docs) == {"one", "two", "three"}
    assert reader.refresh() is False


def test_failed_write_keeps_the_previous_index(tiny: tuple[RAG, Path]) -> None:
    rag, corpus = tiny
    # a file where the writer wants its temporary folder makes the write fail
    (rag.index_dir / f".gen-000002.tmp-{os.getpid()}").write_text("in the way")
    (corpus / "three.txt").write_text("Three\n\nMcl-1 and TRAIL.")
    with pytest.raises(IndexWriteError, match="the previous index is unchanged"):
        rag.add([corpus])
    assert not (rag.index_dir / "gen-000002").exists()
    again = RAG.open(rag.index_dir, settings=Settings())
    assert set(again.snapshot.docs) == {"one", "two"}
    assert again.snapshot.generation == "gen-000001"


def test_generation_left_unswitched_by_a_killed_writer(
    tiny: tuple[RAG, Path], open_rag: OpenRag
) -> None:
    # a writer killed after renaming its generation into place, before switching CURRENT
    rag, corpus = tiny
    shutil.copytree(rag.index_dir / "gen-000001", rag.index_dir / "gen-000002")
    (rag.index_dir / "gen-000002" / "vectors.npy").write_bytes(b"half written")
    assert set(RAG.open(rag.index_dir, settings=Settings()).snapshot.docs) == {"one", "two"}
    (corpus / "three.txt").write_text("Three\n\nVenetoclax and TRAIL.")
    report = open_rag(rag.index_dir).add([corpus])
    assert report.added == ("three",)
    snap = RAG.open(rag.index_dir, settings=Settings()).snapshot
    assert snap.generation == "gen-000002"
    assert set(snap.docs) == {"one", "two", "three"}
    assert len(snap.vectors) == len(snap.chunks)


def test_stale_temporary_folder_is_cleaned(tiny: tuple[RAG, Path]) -> None:
    rag, corpus = tiny
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = rag.index_dir / f".gen-000002.tmp-{dead}"
    stale.mkdir()
    (stale / "meta.sqlite").write_bytes(b"partial")
    pointer = rag.index_dir / f".CURRENT.tmp-{dead}"  # killed between writing and switching
    pointer.write_text("gen-000002\n")
    (corpus / "three.txt").write_text("Three\n\nXIAP antagonists.")
    rag.add([corpus])
    assert not stale.exists() and not pointer.exists()
    assert rag.snapshot.generation == "gen-000002"


@pytest.mark.parametrize(
    ("manifest_change", "message"),
    [
        pytest.param({"format_version": 0}, "has format 0", id="format-version"),
        pytest.param({"model_id": "other/model"}, "model_id='other/model'", id="model"),
        pytest.param({"dimension": 768}, "dimension=768", id="dimension"),
        pytest.param({"chunking": {"chunk_tokens": 1}}, "chunking=", id="chunking"),
    ],
)
def test_check_manifest(tmp_path: Path, manifest_change: dict[str, object], message: str
                        ) -> None:
    expected = expected_manifest(Settings(), 384)
    check_manifest(dict(expected), expected, tmp_path)
    with pytest.raises(IndexMismatchError) as caught:
        check_manifest({**expected, **manifest_change}, expected, tmp_path)
    assert message in str(caught.value)
    assert "--rebuild" in str(caught.value)
