"""The measured side of the benchmark: each task runs in its own child process.

``python -m rag.bench.tasks TASK PARAMS.json`` runs one task and prints one line,
``BENCH_RESULT {json}``, on stdout. Every result carries the process's own peak resident set
size (``ru_maxrss``) and its CPU seconds, so a figure for one system is never inflated by
another system loaded in the same interpreter. The orchestration lives in :mod:`rag.bench.runner`.

Tasks:

- ``build-ours`` / ``build-recipe``: a cold index build (fresh folder, fresh embedding cache)
  of a corpus folder; ours also runs a second, unchanged update.
- ``query-ours`` / ``query-recipe``: search / ask (ours) and ``similarity_search`` (the
  recipe) latency over a question file after a warm-up, then retrieval quality.
- ``scale``: synthetic vectors through the FAISS index types (see :mod:`rag.bench.scale`).
- ``store-build`` / ``store-open``: write a synthetic store of ``n`` chunks, then (in a fresh
  process) open it and answer questions, measuring the store's resident memory (see
  :mod:`rag.bench.store_memory`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RESULT_MARK", "TASKS", "percentiles"]

RESULT_MARK = "BENCH_RESULT "
RECIPE_CHUNK_CHARS = 1000
RECIPE_OVERLAP = 200


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of a list of milliseconds (zeros for an empty list)."""
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "n": 0}
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "mean": float(arr.mean()), "n": len(samples_ms)}


def _process_stats() -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats: dict[str, Any] = {
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "pid": os.getpid(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        stats["torch_threads"] = torch.get_num_threads()
    return stats


def _settings(params: dict[str, Any]) -> Any:
    from rag.settings import Settings

    settings = Settings.model_validate(params["settings"])
    if params.get("dtype"):
        settings = settings.with_updates(**{"embedding.dtype": params["dtype"]})
    return settings


def _questions(path: str, limit: int | None) -> list[dict[str, Any]]:
    from rag.eval.evaluate import load_items

    items = load_items(Path(path))
    return items[:limit] if limit else items


# -- index build -------------------------------------------------------------------------


def build_ours(params: dict[str, Any]) -> dict[str, Any]:
    from rag.facade import RAG

    settings = _settings(params)
    rag = RAG.open(params["index_dir"], settings=settings)
    started = time.perf_counter()
    embedder = rag.embedder()
    model_s = time.perf_counter() - started
    cpu0 = time.process_time()
    started = time.perf_counter()
    report = rag.add([params["corpus"]])
    build_s = time.perf_counter() - started
    build_cpu = time.process_time() - cpu0
    second = rag.add([params["corpus"]])
    tokens = _model_tokens(rag, embedder)
    return {
        "tokens_per_chunk": float(np.mean(tokens)) if tokens else 0.0,
        "system": "ours", "dtype": embedder.dtype, "model_load_s": model_s,
        "build_s": build_s, "build_cpu_s": build_cpu, "chunks": report.chunks_embedded,
        "documents": len(report.added), "chunks_per_s": report.chunks_embedded / build_s,
        "second_run_s": second.seconds, "second_run_embedded": second.chunks_embedded,
        "second_run_unchanged": len(second.unchanged),
    }


def _model_tokens(rag: Any, embedder: Any) -> list[int]:
    """Tokens the model reads per chunk: the chunk text plus the title prefix before it."""
    from rag.embed.embedder import title_prefix

    snap = rag.snapshot
    prefix = {doc_id: embedder.count_tokens([title_prefix(doc.title, embedder)])[0]
              for doc_id, doc in snap.docs.items()}
    return [c.n_tokens + prefix.get(c.doc_id, 0) for c in snap.chunks]


def _recipe_embeddings() -> Any:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from langchain_huggingface import HuggingFaceEmbeddings

    from rag.embed.embedder import resolve_model
    from rag.settings import DEFAULT_MODEL

    _, path = resolve_model(DEFAULT_MODEL)
    # As a user would run it: same model files, CPU, sentence-transformers' float32 default.
    return HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu"})


def build_recipe(params: dict[str, Any]) -> dict[str, Any]:
    """The LangChain recipe: DirectoryLoader + RecursiveCharacterTextSplitter(1000, 200) +
    HuggingFaceEmbeddings + FAISS.from_documents, saved with ``save_local``."""
    started = time.perf_counter()
    embeddings = _recipe_embeddings()
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model_s = time.perf_counter() - started
    cpu0 = time.process_time()
    started = time.perf_counter()
    docs = DirectoryLoader(params["corpus"], glob="**/*", loader_cls=TextLoader,
                           loader_kwargs={"encoding": "utf-8"}).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=RECIPE_CHUNK_CHARS,
                                              chunk_overlap=RECIPE_OVERLAP)
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(params["index_dir"])
    build_s = time.perf_counter() - started
    build_cpu = time.process_time() - cpu0
    tokenizer = embeddings._client.tokenizer
    tokens = [len(ids) for ids in tokenizer([c.page_content for c in chunks],
                                            add_special_tokens=False)["input_ids"]]
    return {
        "tokens_per_chunk": float(np.mean(tokens)) if tokens else 0.0,
        "system": "recipe", "dtype": str(embeddings._client.dtype).replace("torch.", ""),
        "model_load_s": model_s, "build_s": build_s,
        "build_cpu_s": build_cpu, "chunks": len(chunks),
        "documents": len(docs), "chunks_per_s": len(chunks) / build_s,
    }


# -- queries and quality -----------------------------------------------------------------


def _time_each(fn: Callable[[str], Any], questions: list[str], repeats: int) -> dict[str, float]:
    """Latency percentiles of ``fn`` over the questions, plus its CPU milliseconds per call
    (all threads), which a busy machine inflates less than wall time."""
    samples = []
    cpu = time.process_time()
    for _ in range(repeats):
        for question in questions:
            started = time.perf_counter()
            fn(question)
            samples.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / max(1, len(samples))
    return {**percentiles(samples), "cpu_ms": cpu_ms}


def _since_process_start() -> float:
    import psutil

    return time.time() - psutil.Process().create_time()


def query_ours(params: dict[str, Any]) -> dict[str, Any]:
    from rag.facade import RAG

    items = _questions(params["questions"], params.get("limit"))
    questions = [i["question"] for i in items]
    rag = RAG.open(params["index_dir"], settings=_settings(params))
    rag.ask(questions[0])
    first_answer_s = _since_process_start()
    for question in questions[: params.get("warmup", 3)]:
        rag.search(question)
        rag.ask(question)
    repeats = params.get("repeats", 1)
    search = _time_each(rag.search, questions, repeats)
    ask = _time_each(rag.ask, questions, repeats)
    result: dict[str, Any] = {
        "system": "ours", "questions": len(questions), "search_ms": search,
        "ask_ms": ask, "first_answer_s": first_answer_s,
        "chunks": len(rag.snapshot.chunks), **_process_stats(),
    }
    if params.get("quality"):
        from rag.eval.evaluate import evaluate_file

        report = evaluate_file(rag, Path(params["questions"]), k=10, baselines=True)
        result["quality"] = report["metrics"]
        result["quality_items"] = {"items": report["items"], "answerable": report["answerable"]}
    return result


def query_recipe(params: dict[str, Any]) -> dict[str, Any]:
    embeddings = _recipe_embeddings()
    if params.get("threads"):  # the recipe as tuned like ours (one thread per question)
        import torch

        torch.set_num_threads(params["threads"])
    from langchain_community.vectorstores import FAISS

    store = FAISS.load_local(params["index_dir"], embeddings,
                             allow_dangerous_deserialization=True)  # the recipe's own pickle
    items = _questions(params["questions"], params.get("limit"))
    questions = [i["question"] for i in items]
    k = _settings(params).retrieval.k  # the k ours answers with
    store.similarity_search(questions[0], k=k)
    first_answer_s = _since_process_start()
    for question in questions[: params.get("warmup", 3)]:
        store.similarity_search(question, k=k)
    search = _time_each(lambda q: store.similarity_search(q, k=k), questions,
                        params.get("repeats", 1))
    result: dict[str, Any] = {
        "system": "recipe", "questions": len(questions), "search_ms": search,
        "first_answer_s": first_answer_s, "chunks": int(store.index.ntotal),
        **_process_stats(),
    }
    if params.get("quality"):
        result["quality"] = {"langchain_recipe": _recipe_quality(store, params["questions"])}
    return result


def _recipe_quality(store: Any, path: str) -> dict[str, float]:
    from rag.eval.evaluate import rank_of_hit, retrieval_metrics

    items = [i for i in _questions(path, None) if not i.get("unanswerable")]
    ranks = [rank_of_hit([d.page_content for d in store.similarity_search(i["question"], k=10)],
                          i.get("must_include") or []) for i in items]
    return retrieval_metrics(ranks, 10)


# -- scale ---------------------------------------------------------------------------------


def scale(params: dict[str, Any]) -> dict[str, Any]:
    from rag.bench.scale import run_scale

    return {**run_scale(params), **_process_stats()}


def store_build(params: dict[str, Any]) -> dict[str, Any]:
    from rag.bench.store_memory import write_synthetic_store

    return write_synthetic_store(Path(params["index_dir"]), int(params["n"]),
                                 index_type=params.get("index_type", "auto"))


def store_open(params: dict[str, Any]) -> dict[str, Any]:
    from rag.bench.store_memory import measure_store

    return measure_store(Path(params["index_dir"]), questions=int(params.get("questions", 20)),
                         cold=bool(params.get("cold", True)))


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build-ours": build_ours,
    "build-recipe": build_recipe,
    "query-ours": query_ours,
    "query-recipe": query_recipe,
    "scale": scale,
    "store-build": store_build,
    "store-open": store_open,
}


def main(argv: list[str]) -> int:
    task, params_file = argv
    params = json.loads(Path(params_file).read_text(encoding="utf-8"))
    result = TASKS[task](params)
    for key, value in _process_stats().items():
        result.setdefault(key, value)  # query tasks measured theirs before the quality run
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
