"""Indexing runs with real FAISS: every format, bad inputs skipped with a reason, incremental
updates, changes and deletions, model mismatch, rebuild, and a writer killed in the middle of a
write. The library of every format and the killed writer use the real model; the bookkeeping
of incremental updates only needs vectors, so it runs on the fake embedder (``open_fake_rag``)."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import RAG, Settings
from rag.embed.embedder import Embedder
from rag.errors import (
    DocumentNotFoundError,
    EmptyCorpusError,
    IndexMismatchError,
)
from rag.types import IndexReport

OpenRag = Callable[..., RAG]

GOOD_IDS = {
    "pmid-40084090",  # the seed page
    "note",
    "article",
    "pmid-11111111",
    "pmid-22222222",
    "pmc-6000001",
    "paper",
    "plain",
    "utf16",
    "latin1",
}
BAD_FILES = {
    "corrupt.pdf": "corrupt or unreadable PDF",
    "encrypted.pdf": "encrypted PDF",
    "empty.txt": "empty file",
    "binary.txt": "binary data",
    "undecodable.txt": "not valid UTF-8",
    "big.txt": "limit (setting loader.max_file_mb",
    "entity_bomb.xml": "unsafe XML refused",
    "external_entity.xml": "unsafe XML refused",
    "broken_front_matter.md": "front matter is not valid YAML",
}


def _vectors(snap: Any) -> np.ndarray:
    """Every chunk vector of a snapshot, row by row."""
    return snap.chunk_vectors(np.arange(len(snap.chunks)))


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, open_rag: OpenRag, seed_page: Path,
    data_dir: Path, make_pdf: Callable[..., bytes], make_text: Callable[..., str],
) -> tuple[RAG, IndexReport, Path]:
    """One index over every format plus every kind of unreadable file, built once."""
    root = tmp_path_factory.mktemp("library")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(seed_page, corpus / seed_page.name)
    for name in ("note.md", "article.html", "pubmed_two_articles.xml", "pmc_article.xml",
                 "entity_bomb.xml", "external_entity.xml", "broken_front_matter.md"):
        shutil.copy(data_dir / name, corpus / name)
    pages = [[make_text(1, seed=10 * page + line, words=12) for line in range(25)]
             for page in range(3)]
    pages[1][0] = "Venetoclax and navitoclax sensitise myeloma cells on page two."
    (corpus / "paper.pdf").write_bytes(make_pdf(pages, title="Pages paper"))
    (corpus / "plain.txt").write_text("Plain notes\n\nFADD recruits caspase-8 to the DISC.\n")
    (corpus / "utf16.txt").write_bytes("Beta-catenin — β text in UTF-16.".encode("utf-16"))
    (corpus / "latin1.txt").write_bytes("Café au lait spots are not TRAIL.".encode("latin-1"))
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> garbage\n%%EOF")
    (corpus / "encrypted.pdf").write_bytes(make_pdf([["Secret."]], user_password="pw"))
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "undecodable.txt").write_bytes(b"\x81\x8d\x8f\x90\x9d" * 10)
    (corpus / "big.txt").write_text("TRAIL " * 6000)  # 36 KB, above the 0.02 MB limit
    settings = Settings().with_updates(**{"loader.max_file_mb": 0.02})
    rag = open_rag(root / "index", settings)
    report = rag.add([corpus])
    return rag, report, corpus


def test_every_format_is_indexed(library: tuple[RAG, IndexReport, Path]) -> None:
    rag, report, _ = library
    assert set(report.added) == GOOD_IDS
    assert {d.doc_id for d in rag.documents()} == GOOD_IDS
    assert {d.doc_id: d.doc_type for d in rag.documents()} == {
        "pmid-40084090": "pubmed-page", "note": "markdown", "article": "html",
        "pmid-11111111": "pubmed-xml", "pmid-22222222": "pubmed-xml", "pmc-6000001": "jats",
        "paper": "pdf", "plain": "text", "utf16": "text", "latin1": "text",
    }
    assert report.chunks == report.chunks_embedded == len(rag.snapshot.chunks)


def test_each_unreadable_input_is_skipped_with_its_reason(
    library: tuple[RAG, IndexReport, Path]
) -> None:
    _, report, corpus = library
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == set(BAD_FILES)
    for name, reason in BAD_FILES.items():
        assert reason in skipped[name], name
    for item in report.skipped:
        assert Path(item.path).parent == corpus


def test_stored_chunks_point_into_stored_text(library: tuple[RAG, IndexReport, Path]) -> None:
    rag, _, _ = library
    texts = {doc_id: rag.document(doc_id).text for doc_id in GOOD_IDS}
    for chunk in rag.snapshot.chunks:
        assert texts[chunk.doc_id][chunk.start : chunk.end] == chunk.text


def test_stored_chunks_fit_the_model(
    library: tuple[RAG, IndexReport, Path], embedder: Embedder
) -> None:
    chunks = library[0].snapshot.chunks
    counts = embedder.count_tokens([c.text for c in chunks])
    assert counts == [c.n_tokens for c in chunks]
    assert max(counts) <= embedder.max_chunk_tokens


def test_arrays_line_up(library: tuple[RAG, IndexReport, Path]) -> None:
    snap = library[0].snapshot
    assert _vectors(snap).shape == (len(snap.chunks), 384)
    assert np.allclose(np.linalg.norm(_vectors(snap), axis=1), 1.0, atol=1e-3)
    sentences = snap.sentences
    assert len(sentences.spans) == len(sentences.chunk_rows) == len(sentences.vector_array)
    assert np.all(np.diff(snap.sentences.chunk_rows) >= 0)
    assert {d.doc_id: d.n_chunks for d in snap.docs.values()} == {
        doc_id: sum(c.doc_id == doc_id for c in snap.chunks) for doc_id in GOOD_IDS
    }


def test_pdf_chunks_keep_pages_in_the_index(library: tuple[RAG, IndexReport, Path]) -> None:
    rag, _, _ = library
    doc = rag.document("paper")
    assert [(s.title, s.page) for s in doc.sections] == [
        ("page 1", 1), ("page 2", 2), ("page 3", 3)
    ]
    chunks = [c for c in rag.snapshot.chunks if c.doc_id == "paper"]
    for chunk in chunks:
        (page,) = [s.page for s in doc.sections if s.start <= chunk.start < s.end]
        assert chunk.page == page
    assert {c.page for c in chunks} == {1, 2, 3}


def test_metadata_is_stored(library: tuple[RAG, IndexReport, Path]) -> None:
    rag, _, _ = library
    seed = rag.document("pmid-40084090")
    assert (seed.meta["pmid"], seed.meta["pmcid"], seed.meta["doi"]) == (
        "40084090", "PMC11902984", "10.1097/BS9.0000000000000221"
    )
    assert "References" not in seed.text and "Copyright" not in seed.text
    pubmed = rag.document("pmid-11111111")
    assert pubmed.meta["mesh"][1] == "TNF-Related Apoptosis-Inducing Ligand"
    assert [s.title for s in pubmed.sections] == ["BACKGROUND", "METHODS", "RESULTS"]
    assert rag.document("note").meta["tags"] == ["venetoclax", "cll"]
    assert rag.document("article").meta["journal"] == "Leukemia Research"


@pytest.mark.parametrize(
    ("query", "doc_id"),
    [
        pytest.param("decoy receptors DcR2 protect acute myeloid leukemia blasts", "article",
                     id="html"),
        pytest.param("histone deacetylase inhibitors restore TRAIL in CLL", "pmid-11111111",
                     id="pubmed-xml"),
        pytest.param("Apo2L toxicity in nonhuman primates", "pmid-22222222", id="pubmed-xml-2"),
        pytest.param("antibody cross-linking of DR5 on myeloma cell lines", "pmc-6000001",
                     id="jats"),
        pytest.param("FADD recruits caspase-8 to the death-inducing signalling complex", "plain",
                     id="text"),
        pytest.param("World Health Organization classification of blood cancers",
                     "pmid-40084090", id="seed"),
    ],
)
def test_faiss_finds_the_document(
    library: tuple[RAG, IndexReport, Path], embedder: Embedder, query: str, doc_id: str
) -> None:
    snap = library[0].snapshot
    row = int(np.argmax(_vectors(snap) @ embedder.embed([query])[0]))
    assert snap.chunks[row].doc_id == doc_id


def test_status(library: tuple[RAG, IndexReport, Path]) -> None:
    status = library[0].status()
    assert status["documents"] == len(GOOD_IDS)
    assert status["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert status["dimension"] == 384
    assert status["chunking"]["chunk_tokens"] == Settings().chunking.chunk_tokens
    assert status["generation"] == "gen-000001"
    assert status["size_bytes"] > 0


def test_second_run_embeds_nothing(library: tuple[RAG, IndexReport, Path]) -> None:
    rag, first, corpus = library
    again = rag.add([corpus])
    assert again.chunks_embedded == 0
    assert (again.added, again.updated, again.removed) == ((), (), ())
    assert set(again.unchanged) == GOOD_IDS
    assert again.chunks == first.chunks
    assert rag.snapshot.generation == "gen-000001"
    assert sorted(p.name for p in rag.index_dir.glob("gen-*")) == ["gen-000001"]


# -- incremental updates on a small corpus -------------------------------------------------------


@pytest.fixture
def small(write_files: Callable[..., Path], open_fake_rag: OpenRag, tmp_path: Path,
          make_text: Callable[..., str]) -> tuple[RAG, Path]:
    corpus = write_files({
        "alpha.txt": f"Alpha\n\n{make_text(6, seed=1)}",
        "beta.txt": f"Beta\n\n{make_text(6, seed=2)}",
        "gamma.md": f"---\ntitle: Gamma\n---\n{make_text(6, seed=3)}",
    })
    rag = open_fake_rag(tmp_path / "index")
    report = rag.add([corpus])
    assert set(report.added) == {"alpha", "beta", "gamma"}
    return rag, corpus


def chunk_vectors(rag: RAG, doc_id: str) -> dict[str, np.ndarray]:
    snap = rag.snapshot
    return {c.chunk_id: snap.chunk_vectors([row])[0] for row, c in enumerate(snap.chunks)
            if c.doc_id == doc_id}


def test_changed_file_is_the_only_one_embedded(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    before_alpha = chunk_vectors(rag, "alpha")
    before_beta = set(chunk_vectors(rag, "beta"))
    (corpus / "beta.txt").write_text("Beta\n\nBeta now says DR4 is dispensable in myeloma.")
    report = rag.add([corpus])
    assert report.updated == ("beta",)
    assert report.added == report.removed == ()
    assert set(report.unchanged) == {"alpha", "gamma"}
    assert report.chunks_embedded == rag.snapshot.docs["beta"].n_chunks == 1
    assert rag.snapshot.generation == "gen-000002"
    assert "DR4 is dispensable" in rag.document("beta").text
    after_beta = set(chunk_vectors(rag, "beta"))
    assert after_beta and not after_beta & before_beta
    after_alpha = chunk_vectors(rag, "alpha")
    assert after_alpha.keys() == before_alpha.keys()
    for chunk_id, vector in before_alpha.items():
        assert np.array_equal(after_alpha[chunk_id], vector)


def test_deleted_file_is_removed_with_its_chunks(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    (corpus / "gamma.md").unlink()
    report = rag.add([corpus])
    assert report.removed == ("gamma",)
    assert report.chunks_embedded == 0
    snap = rag.snapshot
    assert set(snap.docs) == {"alpha", "beta"}
    assert all(c.doc_id != "gamma" for c in snap.chunks)
    assert snap.vector_index.count() == len(snap.chunks) == report.chunks
    with pytest.raises(DocumentNotFoundError):
        rag.document("gamma")


def test_changing_back_reuses_the_embedding_cache(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    original = (corpus / "alpha.txt").read_text()
    (corpus / "alpha.txt").write_text(original + "\n\nAn added paragraph about XIAP.")
    assert rag.add([corpus]).chunks_embedded >= 1
    (corpus / "alpha.txt").write_text(original)
    report = rag.add([corpus])
    assert report.updated == ("alpha",)
    assert report.chunks_embedded == 0


def test_renamed_file_keeps_its_document(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    text = rag.document("beta").text
    (corpus / "beta.txt").rename(corpus / "beta-renamed.txt")
    report = rag.add([corpus])
    assert report.skipped == ()
    assert report.added == ("beta-renamed",) and report.removed == ("beta",)
    assert report.chunks_embedded == 0  # same text, same title: the cache has it
    assert rag.document("beta-renamed").text == text
    assert set(rag.snapshot.docs) == {"alpha", "beta-renamed", "gamma"}


def test_moved_file_keeps_its_id(
    write_files: Callable[..., Path], open_fake_rag: OpenRag, tmp_path: Path, seed_page: Path
) -> None:
    corpus = write_files({"seed.txt": seed_page.read_bytes(), "other.txt": "Other text."})
    rag = open_fake_rag(tmp_path / "index")
    rag.add([corpus])
    (corpus / "pubmed").mkdir()
    (corpus / "seed.txt").rename(corpus / "pubmed" / "seed.txt")
    report = rag.add([corpus])
    assert report.skipped == () and report.removed == ()
    assert report.added == ("pmid-40084090",)
    assert set(rag.snapshot.docs) == {"pmid-40084090", "other"}
    assert rag.snapshot.docs["pmid-40084090"].source_path == str(
        (corpus / "pubmed" / "seed.txt").resolve()
    )


def test_duplicate_content_is_skipped(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    shutil.copy(corpus / "alpha.txt", corpus / "alpha-copy.txt")
    report = rag.add([corpus])
    (skip,) = report.skipped
    assert skip.path == str(corpus / "alpha-copy.txt")
    assert skip.reason == "same content as document alpha; skipped"
    assert "alpha-copy" not in rag.snapshot.docs


def test_file_that_turns_unreadable_keeps_its_last_good_version(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    text = rag.document("alpha").text
    (corpus / "alpha.txt").write_bytes(b"\x00\x01binary now")
    report = rag.add([corpus])
    (skip,) = report.skipped
    assert skip.path == str(corpus / "alpha.txt") and "binary" in skip.reason
    assert rag.document("alpha").text == text


def test_remove_by_id(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    assert rag.remove("beta") == ["beta"]
    snap = rag.snapshot
    assert set(snap.docs) == {"alpha", "gamma"}
    assert all(c.doc_id != "beta" for c in snap.chunks)
    assert snap.vector_index.count() == len(snap.chunks) == snap.manifest["chunks"]
    assert snap.manifest["documents"] == 2
    with pytest.raises(DocumentNotFoundError, match="no document with id nope"):
        rag.remove("nope")
    # the file is still there: the next run brings it back, from the cache
    report = rag.add([corpus])
    assert report.added == ("beta",) and report.chunks_embedded == 0


def test_indexing_one_folder_leaves_another_alone(
    small: tuple[RAG, Path], write_files: Callable[..., Path]
) -> None:
    rag, _ = small
    extra = write_files({"delta.txt": "Delta\n\nMcl-1 protects myeloma cells."}, folder="extra")
    report = rag.add([extra])
    assert report.added == ("delta",) and report.removed == ()
    assert set(rag.snapshot.docs) == {"alpha", "beta", "gamma", "delta"}


# -- nothing to index ----------------------------------------------------------------------------


def test_only_unreadable_files_is_an_error(
    write_files: Callable[..., Path], open_fake_rag: OpenRag, tmp_path: Path
) -> None:
    corpus = write_files({"empty.txt": "", "binary.txt": b"\x00\x01\x02"})
    rag = open_fake_rag(tmp_path / "index")
    with pytest.raises(EmptyCorpusError) as caught:
        rag.add([corpus])
    message = str(caught.value)
    assert "nothing could be indexed" in message
    assert str(corpus / "empty.txt") in message and str(corpus / "binary.txt") in message
    assert not rag.exists


def test_folder_without_supported_files_is_an_error(
    write_files: Callable[..., Path], open_fake_rag: OpenRag, tmp_path: Path
) -> None:
    corpus = write_files({"slides.pptx": b"PK", "data.json": "{}"})
    rag = open_fake_rag(tmp_path / "index")
    with pytest.raises(EmptyCorpusError, match="no supported documents found"):
        rag.add([corpus])
    assert not rag.exists


# -- model and splitter mismatch, rebuild --------------------------------------------------------


class _NoModel:
    """An embedder that fails the test when anything of it is used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the model was used ({name}) before the mismatch was found")



def test_an_update_that_only_removes_files_loads_no_model(small: tuple[RAG, Path]) -> None:
    rag, corpus = small
    before = rag.snapshot.manifest
    (corpus / "gamma.md").unlink()
    other = RAG.open(rag.index_dir, settings=rag.settings, embedder=_NoModel())
    report = other.add([corpus])
    assert report.removed == ("gamma",) and report.chunks_embedded == 0
    after = other.snapshot.manifest
    assert after["generation"] != before["generation"]
    assert (after["dimension"], after["dtype"]) == (before["dimension"], before["dtype"])
    assert set(other.snapshot.docs) == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        pytest.param({"embedding.model": "sentence-transformers/all-mpnet-base-v2"}, "model_id",
                     id="other-model"),
        pytest.param({"chunking.chunk_tokens": 96}, "chunking", id="other-chunk-size"),
        pytest.param({"chunking.overlap_tokens": 0}, "chunking", id="other-overlap"),
    ],
)
def test_mismatched_settings_are_refused(
    small: tuple[RAG, Path], change: dict[str, object], key: str
) -> None:
    rag, corpus = small
    # refused before any use of the model: _NoModel fails the test on the first one
    other = RAG.open(rag.index_dir, settings=Settings().with_updates(**change),
                     embedder=_NoModel())
    generation = rag.snapshot.generation
    with pytest.raises(IndexMismatchError) as caught:
        other.add([corpus])
    message = str(caught.value)
    assert f"built with {key}=" in message
    assert "python -m rag index --rebuild" in message
    with pytest.raises(IndexMismatchError):
        other.check_compatible()
    assert RAG.open(rag.index_dir, settings=Settings()).snapshot.generation == generation


def test_rebuild_with_new_splitter_settings(small: tuple[RAG, Path],
                                            open_fake_rag: OpenRag) -> None:
    rag, corpus = small
    before = len(rag.snapshot.chunks)
    (corpus / "beta.txt").unlink()
    finer = Settings().with_updates(**{"chunking.chunk_tokens": 32, "chunking.overlap_tokens": 0})
    rebuilt = open_fake_rag(rag.index_dir, finer)
    report = rebuilt.add([corpus], rebuild=True)
    assert set(report.added) == {"alpha", "gamma"}
    snap = rebuilt.snapshot
    assert set(snap.docs) == {"alpha", "gamma"}
    assert snap.manifest["chunking"]["chunk_tokens"] == 32
    assert len(snap.chunks) > 2 * before  # one file fewer, but far smaller chunks
    assert max(c.n_tokens for c in snap.chunks) <= 32 * 1.5
    rebuilt.check_compatible()
    assert rebuilt.add([corpus]).chunks_embedded == 0
    with pytest.raises(IndexMismatchError):
        rag.add([corpus])  # the old settings no longer match


def test_long_titles_never_push_chunks_past_the_model_input(
    write_files: Callable[..., Path], open_rag: OpenRag, tmp_path: Path, embedder: Embedder,
    make_text: Callable[..., str],
) -> None:
    # a 160-character title can be 70 tokens; with the largest chunks the model would cut the
    # end of the chunk off, and the sentences there would get no vector
    title = ("TRAIL/Apo2L-induced apoptosis in CD34+CD38- AML cells: role of c-FLIP(L), XIAP and "
             "Mcl-1 in 5-azacytidine/ABT-737-treated HL-60, U937 and MOLM-13 lines (n=12)")
    assert embedder.count_tokens([title])[0] > 60
    body = make_text(200, seed=9, words=4)  # short sentences: a cut-off tail holds whole ones
    corpus = write_files({"long.md": f"---\ntitle: \"{title}\"\n---\n{body}"})
    biggest = Settings().with_updates(**{"chunking.chunk_tokens": 1000})
    rag = open_rag(tmp_path / "index", biggest)
    rag.add([corpus])
    snap = rag.snapshot
    assert max(c.n_tokens for c in snap.chunks) > embedder.max_chunk_tokens - 30
    norms = np.linalg.norm(snap.sentences.vector_array.astype(np.float32), axis=1)
    assert len(norms) >= 200
    assert norms.min() > 0.9


# -- a writer killed in the middle of a write ----------------------------------------------------


def _writing(index: Path) -> bool:
    return any(p.name.startswith(".gen-") for p in index.iterdir())


def _assert_whole(index: Path, states: tuple[set[str], ...], embedder: Embedder) -> set[str]:
    rag = RAG.open(index, settings=Settings())
    snap = rag.snapshot
    docs = set(snap.docs)
    assert docs in states
    assert snap.vector_index.count() == len(snap.chunks)
    assert {c.doc_id for c in snap.chunks} == docs
    assert snap.manifest["documents"] == len(docs)
    for doc_id in sorted(docs)[::50]:
        text = rag.document(doc_id).text
        chunks = [c for c in snap.chunks if c.doc_id == doc_id]
        assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
        row = int(np.argmax(_vectors(snap) @ embedder.embed([chunks[0].text])[0]))
        assert snap.chunks[row].doc_id == doc_id
    return docs


@pytest.mark.slow
def test_killed_mid_write_leaves_the_old_index_loadable(
    tmp_path: Path, open_rag: OpenRag, embedder: Embedder, make_text: Callable[..., str],
    subprocess_env: dict[str, str], python: str,
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(300):
        (corpus / f"doc{i:03d}.txt").write_text(f"Note {i}\n\n{make_text(2, seed=i, words=9)}")
    pristine = tmp_path / "pristine"
    old = set(open_rag(pristine).add([corpus]).added)
    assert len(old) == 300
    for i in range(0, 20):
        (corpus / f"doc{i:03d}.txt").unlink()
    for i in range(20, 40):
        (corpus / f"doc{i:03d}.txt").write_text(f"Note {i}, revised\n\nFLIP blocks caspase-8.")
    for i in range(300, 340):
        (corpus / f"doc{i:03d}.txt").write_text(f"Note {i}\n\n{make_text(2, seed=i, words=9)}")
    new = (old - {f"doc{i:03d}" for i in range(20)}) | {f"doc{i:03d}" for i in range(300, 340)}

    rng = random.Random()
    # one kill at a random moment of the whole run, then kills at random moments after the
    # new generation's temporary folder appears (the write itself lasts a fraction of a second)
    trials = [("any time", rng.uniform(1.0, 7.0)), ("during write", 0.0),
              ("during write", rng.uniform(0.0, 0.05))]
    outcomes = []
    for number, (when, delay) in enumerate(trials):
        index = tmp_path / f"trial-{number}"
        shutil.copytree(pristine, index)
        with open(tmp_path / f"trial-{number}.log", "wb") as log:
            proc = subprocess.Popen(
                [python, "-m", "rag", "index", str(corpus), "--index", str(index), "--json",
                 "--no-progress"],
                env=subprocess_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
            )
            try:
                if when == "during write":
                    deadline = time.monotonic() + 120
                    while proc.poll() is None and not _writing(index):
                        assert time.monotonic() < deadline, "the indexer never started writing"
                        time.sleep(0.001)
                time.sleep(delay)
                proc.kill()
            finally:
                proc.wait(timeout=30)
        # the new generation's temporary folder outlived the writer: it died mid-write
        interrupted = _writing(index)
        context = f"trial {number}: killed {when} after {delay:.3f} s, mid-write={interrupted}"
        outcomes.append(context)
        state = _assert_whole(index, (old, new), embedder)
        if interrupted:
            assert state == old, context
        rerun = open_rag(index).add([corpus])
        assert set(rerun.unchanged) | set(rerun.added) | set(rerun.updated) == new, context
        assert _assert_whole(index, (new,), embedder) == new
        assert not _writing(index), f"{context}: a temporary folder was left behind"
    assert any("mid-write=True" in o for o in outcomes), f"no kill hit a write: {outcomes}"
