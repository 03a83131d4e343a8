"""The benchmark harness: ``python -m rag bench [--quick] [--json] [--out FILE]``.

Compares TRAIL-RAG with the common LangChain recipe (RecursiveCharacterTextSplitter(1000, 200)
+ HuggingFaceEmbeddings with the same model files + FAISS) on one machine:

- build: cold index builds of the default library and of a synthetic corpus of 5,000+ chunks,
  ours (bfloat16 where the CPU has it, and float32) against the recipe, alternating, in rounds;
- query: search / ask latency against the recipe's ``similarity_search``, with peak RSS;
- quality: BM25 only, the recipe and ours on the development question set;
- startup: process start to the first answered question, through the real CLI;
- scale: FAISS index types on synthetic vectors (:mod:`rag.bench.scale`), and the resident
  memory of a synthetic store opened and queried (:mod:`rag.bench.store_memory`).

The plan, the inputs and the child-process plumbing are in :mod:`rag.bench.plan`; each
measured system runs in its own child process (:mod:`rag.bench.tasks`); figures are medians
over rounds run after a warm-up. The Markdown comes from :mod:`rag.bench.report`.
Needs the ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from statistics import median
from typing import Any

from rag.bench.plan import (
    BenchContext,
    child_env,
    make_synthetic_corpus,
    plan_for,
    prepare_library,
    prepare_questions,
    say,
    uses_bf16,
)
from rag.errors import MissingExtraError, RagError
from rag.settings import Settings

__all__ = ["SECTIONS", "run_bench"]

SECTIONS = ("build", "query", "startup", "scale")


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sections, print or write the Markdown table (and JSON with ``--json``)."""
    _check_extra()
    from rag.bench.report import machine_info, render_markdown, summarize_targets

    plan = plan_for(quick=bool(args.quick))
    only = [s for s in (getattr(args, "only", None) or SECTIONS)]
    results: dict[str, Any] = {"plan": asdict(plan), "machine": machine_info(settings),
                               "command": _command(args),
                               "query_settings": {"k": settings.retrieval.k,
                                                  "threads": settings.embedding.query_threads}}
    failed = False
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        questions = prepare_questions(getattr(args, "questions", None), work, plan)
        ctx = BenchContext(plan, settings, work, prepare_library(settings, work, plan, questions),
                           questions, uses_bf16(settings))
        results["inputs"] = {"library": str(ctx.library), "questions": str(ctx.questions)}
        for name in SECTIONS:
            if name not in only:
                continue
            try:
                results[name] = _SECTIONS[name](ctx)
            except Exception as exc:  # one broken section must not lose the others
                failed = True
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                say(f"section {name} failed: {exc}")
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["targets"] = summarize_targets(results)
    markdown = render_markdown(results)
    if args.out:
        Path(args.out).write_text(markdown + "\n", encoding="utf-8")
        say(f"wrote {args.out}")
    if args.json:
        print(json.dumps(results, indent=None, default=str))
    elif not args.out:
        print(markdown)
    return 1 if failed else 0


def _check_extra() -> None:
    for module in ("langchain_community", "langchain_huggingface", "psutil"):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"the benchmark needs {module}: pip install -e \".[bench]\""
            ) from exc


# -- sections ----------------------------------------------------------------------------


def _build_section(ctx: BenchContext) -> dict[str, Any]:
    synthetic = ctx.work / "synthetic"
    made = make_synthetic_corpus(Path(ctx.settings.docs_dir), synthetic,
                                 chunks=ctx.plan.synthetic_chunks)
    out: dict[str, Any] = {}
    for name, corpus in (("library", ctx.library), ("synthetic", synthetic)):
        warm = ctx.plan.warmup and name == "library"  # later runs find everything warm
        out[name] = _compare_builds(ctx, name, corpus, warmup=warm)
    out["synthetic"]["corpus"] = made
    return out


def _build_systems(ctx: BenchContext, corpus_name: str) -> list[tuple[str, str, dict[str, Any]]]:
    systems: list[tuple[str, str, dict[str, Any]]] = [("ours", "build-ours", {}),
                                                       ("recipe", "build-recipe", {})]
    if ctx.bf16 and corpus_name in ctx.plan.float32_corpora:
        systems.append(("ours_float32", "build-ours", {"dtype": "float32"}))
    return systems


def _compare_builds(ctx: BenchContext, corpus_name: str, corpus: Path, *,
                    warmup: bool) -> dict[str, Any]:
    systems = _build_systems(ctx, corpus_name)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in systems}
    if warmup:
        for name, task, extra in systems:
            ctx.child(task, {"corpus": str(corpus), **extra,
                             "index_dir": str(ctx.work / f"warm-{corpus_name}-{name}")},
                      f"build {corpus_name}: warm-up {name}")
    for round_no in range(ctx.plan.rounds):
        shift = round_no % len(systems)
        for name, task, extra in systems[shift:] + systems[:shift]:  # alternate the order
            index_dir = ctx.work / f"idx-{corpus_name}-{name}-{round_no}"
            runs[name].append(ctx.child(
                task, {"corpus": str(corpus), "index_dir": str(index_dir), **extra},
                f"build {corpus_name}: round {round_no + 1}/{ctx.plan.rounds} {name}"))
            if corpus_name == "library" and name in ("ours", "recipe"):
                ctx.indexes[name] = index_dir
    summary = {name: _summarize_build(r) for name, r in runs.items()}
    ours, recipe = summary["ours"], summary["recipe"]
    summary["ratio"] = {
        "chunks_per_s": ours["chunks_per_s"] / recipe["chunks_per_s"],
        "wall_time": recipe["build_s"] / ours["build_s"],
        "tokens_per_s": (ours["chunks_per_s"] * ours["tokens_per_chunk"])
        / (recipe["chunks_per_s"] * recipe["tokens_per_chunk"]),
        "per_round_chunks_per_s": [o["chunks_per_s"] / r["chunks_per_s"]
                                   for o, r in zip(runs["ours"], runs["recipe"], strict=True)],
    }
    if "ours_float32" in summary:
        summary["ratio"]["bf16_vs_float32"] = (ours["chunks_per_s"]
                                               / summary["ours_float32"]["chunks_per_s"])
    summary["runs"] = runs
    return summary


def _summarize_build(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(median(r[key] for r in runs))

    out: dict[str, Any] = {
        "dtype": runs[0]["dtype"], "chunks": runs[0]["chunks"], "documents": runs[0]["documents"],
        "build_s": med("build_s"), "chunks_per_s": med("chunks_per_s"),
        "build_cpu_s": med("build_cpu_s"), "model_load_s": med("model_load_s"),
        "tokens_per_chunk": med("tokens_per_chunk"),
        "peak_rss_mb": med("peak_rss_mb"), "rounds": len(runs),
    }
    if "second_run_s" in runs[0]:
        out["second_run_s"] = med("second_run_s")
        out["second_run_embedded"] = max(r["second_run_embedded"] for r in runs)
    return out


def _ensure_library_indexes(ctx: BenchContext) -> None:
    for name, task in (("ours", "build-ours"), ("recipe", "build-recipe")):
        if name not in ctx.indexes:
            index_dir = ctx.work / f"idx-library-{name}-query"
            ctx.child(task, {"corpus": str(ctx.library), "index_dir": str(index_dir)},
                      f"build library for queries: {name}")
            ctx.indexes[name] = index_dir


def _query_section(ctx: BenchContext) -> dict[str, Any]:
    _ensure_library_indexes(ctx)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "recipe": []}
    runs["recipe_1thread"] = []
    order: list[tuple[str, str, dict[str, Any]]] = [
        ("ours", "query-ours", {}), ("recipe", "query-recipe", {}),
        ("recipe_1thread", "query-recipe", {"threads": 1})]
    for round_no in range(ctx.plan.rounds):
        shift = round_no % len(order)
        for name, task, extra in order[shift:] + order[:shift]:  # alternate the order
            index = ctx.indexes["ours" if name == "ours" else "recipe"]
            runs[name].append(ctx.child(task, {
                "index_dir": str(index), "questions": str(ctx.questions),
                "repeats": ctx.plan.query_repeats, "quality": round_no == 0 and not extra,
                **extra}, f"query: round {round_no + 1}/{ctx.plan.rounds} {name}"))
    out: dict[str, Any] = {}
    for name, results in runs.items():
        out[name] = {
            "search_ms": _median_dist(r["search_ms"] for r in results),
            "peak_rss_mb": float(median(r["peak_rss_mb"] for r in results)),
            "first_answer_s": float(median(r["first_answer_s"] for r in results)),
            "questions": results[0]["questions"], "chunks": results[0]["chunks"],
            "rounds": len(results),
        }
        if "ask_ms" in results[0]:
            out[name]["ask_ms"] = _median_dist(r["ask_ms"] for r in results)
    quality = {**runs["ours"][0].get("quality", {}), **runs["recipe"][0].get("quality", {})}
    out["quality"] = {key: quality[key] for key in
                      ("bm25_only", "langchain_recipe", "dense_fixed_chunks", "ours")
                      if key in quality}
    out["quality_items"] = runs["ours"][0].get("quality_items", {})
    out["runs"] = runs
    return out


def _median_dist(dists: Any) -> dict[str, float]:
    items = list(dists)
    return {key: float(median(d[key] for d in items)) for key in ("p50", "p95", "mean",
                                                                   "cpu_ms")} | {
        "n": int(sum(d["n"] for d in items))}


def _startup_section(ctx: BenchContext) -> dict[str, Any]:
    _ensure_library_indexes(ctx)
    from rag.eval.evaluate import load_items

    question = load_items(ctx.questions)[0]["question"]
    command = [sys.executable, "-m", "rag", "ask", "--index", str(ctx.indexes["ours"]),
               question, "--json"]
    samples, cpu = [], []
    for run in range(ctx.plan.startup_runs + (1 if ctx.plan.warmup else 0)):
        say(f"startup: run {run + 1}")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=child_env(),
                              check=False)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RagError(f"`python -m rag ask` failed: {proc.stderr.strip()[-500:]}")
        if run > 0 or not ctx.plan.warmup:
            samples.append(elapsed)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"seconds": float(median(samples)), "samples": samples,
            "cpu_s": float(median(cpu)),
            "command": "python -m rag ask --index DIR QUESTION --json"}


def _scale_section(ctx: BenchContext) -> dict[str, Any]:
    from rag.bench.scale import recommend

    sizes = [ctx.child("scale", {
        "n": n, "queries": ctx.plan.scale_queries, "centres": ctx.plan.scale_centres,
        "sweep": ctx.plan.scale_sweep, "sweep_queries": min(200, ctx.plan.scale_queries),
        "scratch": str(ctx.work),
    }, f"scale: {n:,} vectors") for n in ctx.plan.scale_sizes]
    return {"sizes": sizes, "recommendation": recommend(sizes), "store": _store_memory(ctx)}


def _store_memory(ctx: BenchContext) -> list[dict[str, Any]]:
    """Per size: a synthetic store written by one child, opened and queried by another."""
    out = []
    for n in ctx.plan.store_sizes:
        index_dir = ctx.work / f"store-{n}"
        built = ctx.child("store-build", {"n": n, "index_dir": str(index_dir)},
                          f"store: write {n:,} chunks")
        opened = ctx.child("store-open", {"index_dir": str(index_dir)},
                           f"store: open {n:,} chunks")
        out.append({**opened, "build_s": built["build_s"], "store_bytes": built["bytes"]})
        shutil.rmtree(index_dir, ignore_errors=True)
    return out


_SECTIONS: dict[str, Callable[[BenchContext], dict[str, Any]]] = {
    "build": _build_section,
    "query": _query_section,
    "startup": _startup_section,
    "scale": _scale_section,
}


# -- plumbing ----------------------------------------------------------------------------


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m rag bench"]
    if args.quick:
        parts.append("--quick")
    if getattr(args, "only", None):
        parts += [f"--only {s}" for s in args.only]
    if args.out:
        parts.append(f"--out {args.out}")
    return " ".join(parts)
