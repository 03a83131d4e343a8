"""The index on disk: plain files with a manifest, generations switched atomically, and a
previous generation that survives any failed or interrupted write."""

from __future__ import annotations

import json
import mmap
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag import RAG, Settings
from rag.bench.store_memory import write_synthetic_store
from rag.errors import IndexMismatchError, IndexNotFoundError, IndexWriteError
from rag.ingest.pipeline import expected_manifest
from rag.store.manifest import FORMAT_VERSION, check_manifest, current_generation
from rag.store.snapshot import IndexSnapshot, open_snapshot
from rag.store.vectors.exact import ExactIndex
from rag.store.vectors.faiss_index import FaissIndex
from rag.types import Answer

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
    assert {"manifest.json", "meta.sqlite", "vectors.npy", "sentence_spans.npy",
            "sentence_chunks.npy", "sentence_vectors.npy", "bm25"} <= names
    assert "sentences.npz" not in names and "vectors.faiss" not in names
    assert not list(gen.rglob("*.pkl")) and not list(gen.rglob("*.pickle"))
    vectors = np.load(gen / "vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(rag.snapshot.chunks), 384)
    spans = np.load(gen / "sentence_spans.npy", allow_pickle=False)
    rows = np.load(gen / "sentence_chunks.npy", allow_pickle=False)
    sentence_vectors = np.load(gen / "sentence_vectors.npy", allow_pickle=False)
    assert (spans.dtype, rows.dtype, sentence_vectors.dtype) == (np.int64, np.int64, np.float16)
    assert spans.shape == (len(rows), 2) and sentence_vectors.shape == (len(rows), 384)
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
    hits = snap.vector_index.search(snap.chunk_vectors([0])[0], 2)
    assert int(hits.ids[0]) == 0 and hits.scores[0] == pytest.approx(1.0, abs=1e-2)


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
    assert snap.vector_index.count() == len(snap.chunks)


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


# -- memory-mapped arrays -------------------------------------------------------------------

_SENTENCE_FILES = {"spans": "sentence_spans.npy", "chunk": "sentence_chunks.npy",
                   "vectors": "sentence_vectors.npy"}


def _is_mapped(array: np.ndarray) -> bool:
    """True when ``array`` is a read-only view of a memory map, not a copy in memory."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, mmap.mmap) and not array.flags.writeable


def _old_layout(gen: Path) -> dict[str, np.ndarray]:
    """Rewrite a generation's sentence arrays as the one ``sentences.npz`` of older versions."""
    arrays = {key: np.load(gen / name, allow_pickle=False) for key, name in _SENTENCE_FILES.items()}
    np.savez(gen / "sentences.npz", **arrays)
    for name in _SENTENCE_FILES.values():
        (gen / name).unlink()
    return arrays


def _cited_from_the_documents(rag: RAG, answer: Answer) -> None:
    assert answer.citations
    for citation in answer.citations:
        assert rag.document(citation.doc_id).text[citation.start:citation.end] \
            == citation.snippet


def test_arrays_are_memory_mapped_read_only(tiny: tuple[RAG, Path]) -> None:
    rag, _ = tiny
    snap = open_snapshot(rag.index_dir)
    maps = Path("/proc/self/maps").read_text()
    gen = rag.index_dir / snap.generation
    for array, file in ((_chunk_array(snap), "vectors.npy"),
                        (snap.sentences.spans, "sentence_spans.npy"),
                        (snap.sentences.chunk_rows, "sentence_chunks.npy"),
                        (snap.sentences.vector_array, "sentence_vectors.npy")):
        assert _is_mapped(array), file
        assert str(gen / file) in maps, file
        with pytest.raises(ValueError, match="read-only"):
            array[:1] = 0
    assert _chunk_array(snap).dtype == np.float32
    assert snap.sentences.vector_array.dtype == np.float16


def _chunk_array(snap: IndexSnapshot) -> np.ndarray:
    index = snap.vector_index
    exact = index if isinstance(index, ExactIndex) else index.exact  # type: ignore[attr-defined]
    return exact.array


def test_a_flat_generation_has_no_faiss_file_and_searches_the_vectors(
        tiny: tuple[RAG, Path], open_rag: OpenRag) -> None:
    rag, _ = tiny
    reader = open_rag(rag.index_dir)
    _cited_from_the_documents(reader, reader.ask("Which receptors does TRAIL bind?"))
    assert reader.search("c-FLIP and caspase-8", k=2)[0].doc_id == "two"
    snap = reader.snapshot
    assert snap.manifest["index_type"] == "flat"
    assert isinstance(snap.vector_index, ExactIndex)
    assert not (rag.index_dir / snap.generation / "vectors.faiss").exists()


def test_an_approximate_index_is_used_as_it_is(tmp_path: Path, open_rag: OpenRag) -> None:
    written = write_synthetic_store(tmp_path / "ivf", 2_000, index_type="ivf-sq8")
    assert written["sentences"] == 3_000
    snap = open_snapshot(tmp_path / "ivf")
    assert snap.manifest["index_type"] == "ivf-sq8"
    assert (tmp_path / "ivf" / snap.generation / "vectors.faiss").is_file()
    assert isinstance(snap.vector_index, FaissIndex)
    assert snap.vector_index.approximate.ntotal == 2_000
    # a type named in the settings is searched at any size: the dense hits are FAISS's own
    # (8-bit scores), not the exact scan's
    query = snap.vector_index.exact.vectors([7])[0]
    hits = snap.vector_index.search(query, k=10)
    scores, _ = snap.vector_index.approximate.search(query.reshape(1, -1), 10)
    assert hits.ids[0] == 7 and np.array_equal(hits.scores, scores[0])
    assert not np.array_equal(hits.scores, snap.vector_index.exact.search(query, 10).scores)
    passages = open_rag(tmp_path / "ivf").search("synthetic chunk 1234 about TRAIL", k=10)
    assert "synth-000012:1234" in [p.chunk_id for p in passages]  # the vectors are random


def test_generation_with_sentences_npz_still_opens_and_answers(
        tiny: tuple[RAG, Path], open_rag: OpenRag) -> None:
    rag, corpus = tiny
    arrays = _old_layout(rag.index_dir / "gen-000001")
    old = open_rag(rag.index_dir)
    snap = old.snapshot
    assert np.array_equal(snap.sentences.spans, arrays["spans"])
    assert np.array_equal(snap.sentences.chunk_rows, arrays["chunk"])
    assert np.array_equal(snap.sentences.vector_array, arrays["vectors"])
    assert _is_mapped(_chunk_array(snap))
    assert old.status()["sentences"] == len(arrays["spans"])
    _cited_from_the_documents(old, old.ask("Which receptors does TRAIL bind?"))
    # the next write carries the unchanged chunks' sentences over, in the new layout
    (corpus / "three.txt").write_text("Three\n\nBortezomib raises DR5 on myeloma cells.")
    old.add([corpus])
    new = open_snapshot(rag.index_dir)
    gen = rag.index_dir / new.generation
    assert not (gen / "sentences.npz").exists()
    assert all((gen / name).is_file() for name in _SENTENCE_FILES.values())
    new_rows = {c.chunk_id: row for row, c in enumerate(new.chunks)}
    for row, chunk in enumerate(snap.chunks):
        before = snap.sentences.rows_of_chunk(row)
        after = new.sentences.rows_of_chunk(new_rows[chunk.chunk_id])
        assert np.array_equal(snap.sentences.spans[before], new.sentences.spans[after])
        assert np.array_equal(snap.sentences.vectors(before), new.sentences.vectors(after))
    _cited_from_the_documents(old, old.ask("Does bortezomib raise DR5?"))


def test_a_snapshot_outlives_its_deleted_generation(tiny: tuple[RAG, Path]) -> None:
    rag, corpus = tiny
    snap = open_snapshot(rag.index_dir)
    vectors = np.array(_chunk_array(snap))
    sentences = np.array(snap.sentences.vector_array)
    for n in range(Settings().store.keep_generations + 1):
        (corpus / "two.txt").write_text(f"Two\n\nVersion {n} of the second note on XIAP.")
        rag.add([corpus])
    assert not (rag.index_dir / snap.generation).exists()
    assert np.array_equal(_chunk_array(snap), vectors)  # still mapped: Linux keeps the file
    assert np.array_equal(snap.sentences.vector_array, sentences)
    doc = snap.document("two")
    assert doc is not None and "XIAP" not in doc.text
