"""The embedder: sentence-transformers with the packaged model, bfloat16 close to float32,
sentence vectors pooled from the chunk pass, and questions on ``query_threads`` without
changing the thread count for anything else. Then the test double, ``HashEmbedder``: the same
interface, deterministic, and no model or torch behind it, even through ``RAG.open``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rag.embed.embedder as embedding
from rag.embed import EmbeddingModel
from rag.embed.embedder import Embedder
from rag.embed.fake import HashEmbedder
from rag.settings import EmbeddingSettings

TEXTS = [
    "Why are primary CLL cells resistant to TRAIL?",
    "c-FLIP blocks caspase-8 activation at the DISC. " * 20,
    "x",
]


def test_default_model_is_sentence_transformers(embedder: Embedder) -> None:
    from sentence_transformers import SentenceTransformer

    assert isinstance(embedder._model, SentenceTransformer)
    assert embedder.dimension == 384 and embedder.max_seq_length == 256


@pytest.mark.slow
def test_bfloat16_matches_float32_to_rounding() -> None:
    if not embedding.cpu_has_bf16():
        pytest.skip("no native bfloat16 on this CPU")
    fast = Embedder(EmbeddingSettings(dtype="bfloat16"))
    exact = Embedder(EmbeddingSettings(dtype="float32"))
    cosines = np.sum(fast.embed(TEXTS) * exact.embed(TEXTS), axis=1)
    assert cosines.min() > 0.99


def test_chunk_vector_equals_plain_embedding(embedder: Embedder) -> None:
    text = TEXTS[1]
    [chunk] = embedder.embed_chunks([text], [""], [[(0, 48), (48, len(text))]])
    assert float(chunk.vector @ embedder.embed([text])[0]) > 0.999
    assert chunk.sentences.shape == (2, embedder.dimension)
    assert np.allclose(np.linalg.norm(chunk.sentences, axis=1), 1.0, atol=1e-3)


def test_questions_leave_the_thread_count_alone(embedder: Embedder) -> None:
    import torch

    before = torch.get_num_threads()
    vector = embedder.embed(["DR5 agonist"])
    assert torch.get_num_threads() == before
    assert vector.shape == (1, embedder.dimension)
    assert np.linalg.norm(vector[0]) == pytest.approx(1.0, abs=5e-3)  # bf16 rounding


_SKLEARN_PROBE = """
import sys
from rag.embed.embedder import Embedder
from rag.settings import EmbeddingSettings

Embedder(EmbeddingSettings())
print("sklearn imported by loading the model:", "sklearn" in sys.modules)
from sentence_transformers.util import similarity
import numpy as np
print(similarity.pairwise_distances(np.eye(2), np.eye(2)).round(4).tolist())
import sklearn.metrics
print(sklearn.metrics.pairwise_distances.__module__)
"""


def test_model_loads_without_importing_scikit_learn_which_still_works_on_call(
        subprocess_env: dict[str, str]) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _SKLEARN_PROBE], capture_output=True,
                          text=True, env=subprocess_env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "sklearn imported by loading the model: False"
    assert lines[1] == "[[0.0, 1.4142], [1.4142, 0.0]]"  # placeholder called the real function
    assert lines[2] == "sklearn.metrics.pairwise"  # a later import gets the real package


def test_models_built_at_once_in_two_threads_each_keep_their_dtype() -> None:
    # a model preloading in the background while another is built (the CLI and app preload;
    # tests and library users build their own) must not get layers of the other's dtype
    import threading

    import torch

    built: dict[str, Embedder] = {}
    errors: list[BaseException] = []

    def build(dtype: str) -> None:
        try:
            built[dtype] = Embedder(EmbeddingSettings(dtype=dtype))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=build, args=(d,)) for d in ("bfloat16", "float32")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        for dtype, expected in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
            params = {p.dtype for p in built[dtype]._model.parameters()}
            assert params == {expected}, (dtype, params)
            assert built[dtype].embed(["DR5 agonist"]).shape == (1, 384)


# -- the test double -------------------------------------------------------------------------

INTERFACE = sorted(name for name in vars(EmbeddingModel) if not name.startswith("_"))


def test_the_interface_is_what_the_real_model_and_the_fake_both_have(embedder: Embedder) -> None:
    assert INTERFACE == ["cache_key", "count_tokens", "dimension", "dtype", "embed",
                         "embed_chunks", "max_chunk_tokens", "model_id"]
    fake = HashEmbedder()
    for name in INTERFACE:
        assert hasattr(embedder, name) and hasattr(fake, name), name
    assert fake.max_chunk_tokens == embedder.max_chunk_tokens
    assert fake.cache_key != embedder.cache_key  # their vectors never share a cache entry


def test_fake_vectors_are_deterministic_unit_length_and_follow_shared_words() -> None:
    texts = [*TEXTS, "", "DR5 agonist antibodies", "agonist antibodies against DR5 in myeloma",
             "The capital of Australia"]
    vectors = HashEmbedder().embed(texts)
    assert vectors.shape == (len(texts), 64) and vectors.dtype == np.float32
    assert np.array_equal(vectors, HashEmbedder().embed(texts))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    dr5, related, unrelated = vectors[-3:]
    assert float(dr5 @ related) > 0.5 > float(dr5 @ unrelated)
    assert HashEmbedder(dimension=384).embed(texts).shape == (len(texts), 384)


def test_fake_chunk_and_sentence_vectors_are_those_of_their_text() -> None:
    fake = HashEmbedder(batch_size=2)
    texts = [TEXTS[1], TEXTS[0], "One. Two three."]
    spans = [[(0, 48), (48, len(TEXTS[1]))], [(0, len(TEXTS[0]))], [(0, 4), (5, 15)]]
    done: list[int] = []
    chunks = fake.embed_chunks(texts, ["Title\n"] * 3, spans, progress=done.append)
    assert done == [2, 1]
    for text, chunk_spans, chunk in zip(texts, spans, chunks, strict=True):
        assert np.array_equal(chunk.vector, fake.embed(["Title\n" + text])[0])
        assert np.array_equal(chunk.sentences, fake.embed([text[a:b] for a, b in chunk_spans]))
    assert fake.count_tokens(["c-FLIP blocks caspase-8.", ""]) == [8, 0]  # words and marks


_FAKE_PROBE = """
import sys
from rag import RAG
from rag.embed.fake import HashEmbedder

rag = RAG.open(sys.argv[1], embedder=HashEmbedder())
print(rag.add([sys.argv[2]]).chunks_embedded > 0, bool(rag.ask("Why is CLL resistant?").passages))
print(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
"""


def test_a_rag_given_the_fake_loads_no_model(subprocess_env: dict[str, str], tmp_path: Path,
                                             data_dir: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FAKE_PROBE, str(tmp_path / "index"),
                           str(data_dir / "answer_notes")], capture_output=True, text=True,
                          env=subprocess_env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["True True", "[]"]
