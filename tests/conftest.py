"""Shared fixtures: settings, one real embedding model per test run, corpora made on the fly.

The model (all-MiniLM-L6-v2 from its PyPI package) takes seconds to load, so it is loaded once
per session and handed to every ``RAG`` opened through the ``open_rag`` fixture. Tests of how
the store, retrieval and answers handle vectors, not of what the model understands, use
``open_fake_rag`` instead: the same ``RAG.open`` with :class:`rag.embed.fake.HashEmbedder`, a
deterministic word-hashing embedder that loads nothing. Everything else is real: real files on
disk, real FAISS, real SQLite, no mocks.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag import RAG, Settings  # the environment above must come first
from rag.embed.embedder import Embedder
from rag.embed.fake import HashEmbedder

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "data"
SEED_PAGE = PROJECT_ROOT / "seeds" / "000_ca0d956aec0c9ee4.txt"

_WORDS = (
    "TRAIL DR4 DR5 caspase-8 FADD c-FLIP apoptosis leukemia myeloma lymphoma blasts cells "
    "bortezomib venetoclax receptor ligand resistance sensitivity signaling mitochondria Bcl-2 "
    "Mcl-1 XIAP the of and in with by after"
).split()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def seed_page() -> Path:
    return SEED_PAGE


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The defaults, independent of any ``RAG_*`` variable or settings file on this machine."""
    return Settings()


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    """The real embedding model, loaded once for the whole run."""
    return Embedder(settings.embedding)


@pytest.fixture(scope="session")
def open_rag(settings: Settings, embedder: Embedder) -> Callable[..., RAG]:
    """``open_rag(index_dir, settings=None)``: ``RAG.open`` that reuses the session's model.

    When the settings ask for the same model as the session's, the already loaded one is given
    to ``RAG.open``. With other embedding settings the RAG loads (or refuses) its own model
    when first used, as in production.
    """

    def _open(index_dir: Path, settings_: Settings | None = None) -> RAG:
        chosen = settings_ or settings
        shared = embedder if chosen.embedding == settings.embedding else None
        return RAG.open(index_dir, settings=chosen, embedder=shared)

    return _open


@pytest.fixture(scope="session")
def fake_embedder() -> HashEmbedder:
    """The test double for the model: deterministic word hashing, 64 dimensions, no torch."""
    return HashEmbedder()


@pytest.fixture(scope="session")
def open_fake_rag(settings: Settings, fake_embedder: HashEmbedder) -> Callable[..., RAG]:
    """``open_fake_rag(index_dir, settings=None)``: ``RAG.open(..., embedder=HashEmbedder())``.

    For tests of the store, retrieval and answer logic that do not depend on what the real
    model understands; an index built this way is only ever read with the same fake.
    """

    def _open(index_dir: Path, settings_: Settings | None = None) -> RAG:
        return RAG.open(index_dir, settings=settings_ or settings, embedder=fake_embedder)

    return _open


@pytest.fixture(scope="session")
def make_text() -> Callable[..., str]:
    """``make_text(n_sentences, seed=0, words=12)``: deterministic TRAIL-flavoured prose."""

    def _make(n_sentences: int, seed: int = 0, words: int = 12) -> str:
        rng = random.Random(seed)
        sentences = []
        for _ in range(n_sentences):
            body = " ".join(rng.choice(_WORDS) for _ in range(words))
            sentences.append(body[0].upper() + body[1:] + ".")
        return " ".join(sentences)

    return _make


@pytest.fixture
def write_files(tmp_path: Path) -> Callable[..., Path]:
    """``write_files({"a.txt": "text", "b.pdf": b"..."}, folder="corpus")`` -> the folder."""

    def _write(files: Mapping[str, str | bytes], folder: str = "corpus") -> Path:
        root = tmp_path / folder
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return _write


@pytest.fixture(scope="session")
def make_pdf() -> Callable[..., bytes]:
    """``make_pdf(pages, title=None, author=None, user_password=None)`` -> PDF bytes.

    ``pages`` is a list of pages, each a list of lines; an empty page list draws a shape only
    (a PDF without a text layer, like a scan).
    """
    pytest.importorskip("reportlab", reason="PDF tests need the test extra: pip install .[test]")
    from io import BytesIO

    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen import canvas

    def _make(pages: list[list[str]], *, title: str | None = None, author: str | None = None,
              user_password: str | None = None) -> bytes:
        buffer = BytesIO()
        encrypt = (pdfencrypt.StandardEncryption(user_password, ownerPassword="owner-secret",
                                                 strength=128)
                   if user_password is not None else None)
        pdf = canvas.Canvas(buffer, encrypt=encrypt)
        if title:
            pdf.setTitle(title)
        if author:
            pdf.setAuthor(author)
        for lines in pages:
            if not lines:
                pdf.rect(100, 100, 200, 200, fill=1)
            y = 760
            for line in lines:
                pdf.drawString(60, y, line)
                y -= 14
            pdf.showPage()
        pdf.save()
        return buffer.getvalue()

    return _make


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m rag`` child processes: offline, no stray RAG_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.pop("NCBI_API_KEY", None)
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """For in-process CLI runs: settings come from the defaults, not this machine's RAG_*."""
    for name in list(os.environ):
        if name.startswith("RAG_") or name == "NCBI_API_KEY":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        subprocess_env: dict[str, str]) -> Iterator[Any]:
    """``python app.py`` on a free port over the small test notes, one per test module."""
    from appserver import run_app

    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with run_app(folder, subprocess_env) as running:
        yield running


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``milvus-lite server`` on a free local port, one per test module that asks for it.

    Imports nothing from pymilvus: the modules that use it skip themselves (``importorskip``)
    when the ``milvus`` extra is missing, so the server is never started then.
    """
    from appserver import free_port

    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(data),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("milvus-lite server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)
