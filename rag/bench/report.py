"""The benchmark's report: the machine it ran on, the targets, and the Markdown table."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.bench.scale import render_scale
from rag.bench.store_memory import render_store
from rag.settings import Settings

__all__ = ["machine_info", "render_markdown", "summarize_targets"]

TARGETS = {"build_ratio": 2.5, "ask_p50_ms": 30.0, "ask_p95_ms": 80.0, "scale_p50_ms": 20.0,
           "scale_recall": 0.95, "startup_s": 5.0}
_PACKAGES = ("torch", "sentence-transformers", "faiss-cpu", "langchain-community",
             "langchain-huggingface")


def machine_info(settings: Settings) -> dict[str, Any]:
    """CPU model, cores, RAM, bf16 support, package versions, date and load."""
    from rag.embed.embedder import cpu_has_bf16

    cpuinfo = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model, "cores": os.cpu_count(), "usable_cores": usable,
        "ram_gb": round(mem_kb / 2**20, 1), "bf16": cpu_has_bf16(),
        "python": platform.python_version(), "versions": versions,
        "embedding_dtype_setting": settings.embedding.dtype,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "loadavg_start": list(os.getloadavg()),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="ignore")
    except OSError:
        return ""


def summarize_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and whether it is met."""
    rows: list[dict[str, Any]] = []
    build, query = results.get("build", {}), results.get("query", {})
    quality = query.get("quality", {}) if isinstance(query, dict) else {}
    ours_q, recipe_q = quality.get("ours"), quality.get("langchain_recipe")
    quality_ok = None
    if ours_q and recipe_q:
        quality_ok = (ours_q["passage_hit@5"] >= recipe_q["passage_hit@5"]
                      and ours_q["mrr@10"] >= recipe_q["mrr@10"])
    for corpus in ("library", "synthetic"):
        ratio = build.get(corpus, {}).get("ratio", {}).get("chunks_per_s")
        if ratio is not None:
            rows.append({"target": f"index build ({corpus}) ≥ {TARGETS['build_ratio']}× the "
                         "recipe's chunks/s at equal or better quality",
                         "figure": f"×{ratio:.2f}; quality "
                         + ("equal or better" if quality_ok else "worse" if quality_ok is False
                            else "not measured"),
                         "met": ratio >= TARGETS["build_ratio"] and quality_ok is not False})
    ask = query.get("ours", {}).get("ask_ms") if isinstance(query, dict) else None
    if ask:
        rows.append({"target": "ask p50 ≤ 30 ms and p95 ≤ 80 ms (default library, no LLM)",
                     "figure": f"p50 {ask['p50']:.1f} ms, p95 {ask['p95']:.1f} ms",
                     "met": ask["p50"] <= TARGETS["ask_p50_ms"]
                     and ask["p95"] <= TARGETS["ask_p95_ms"]})
    for size in results.get("scale", {}).get("sizes", []):
        if size["n"] != max(s["n"] for s in results["scale"]["sizes"]):
            continue
        good = [r for r in size["rows"] if r["meets_latency_recall"] and r["meets_memory"]]
        best = min(good, key=lambda r: r["p50_ms"], default=None)
        rows.append({"target": f"{size['n']:,} vectors: p50 ≤ 20 ms, recall@10 ≥ 0.95, "
                     "≤ 1 GB", "figure": (f"{best['index']}: p50 {best['p50_ms']:.2f} ms, "
                                          f"recall {best['recall_at_10']:.3f}, "
                                          f"{best['index_bytes'] / 2**20:,.0f} MB")
                     if best else "no index type met all three", "met": best is not None})
    startup = results.get("startup", {}).get("seconds")
    if startup is not None:
        rows.append({"target": "startup with a built index ≤ 5 s", "figure": f"{startup:.2f} s",
                     "met": startup <= TARGETS["startup_s"]})
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    plan = results["plan"]
    threads = _first_torch_threads(results)
    bf16 = "bfloat16" if m["bf16"] and m["embedding_dtype_setting"] in ("auto", "bfloat16") \
        else m["embedding_dtype_setting"]
    lines = [
        "## Benchmarks" + (" (quick smoke run: tiny sizes, not the targets' sizes)"
                           if plan["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['ram_gb']} GB RAM, AVX-512 BF16 {'yes' if m['bf16'] else 'no'}; Python "
        f"{m['python']}, torch {m['versions']['torch']} with {threads} threads, faiss "
        f"{m['versions']['faiss-cpu']}. Ours embeds in {bf16}, the recipe in float32. "
        f"Run {m['date']}; load average {m['loadavg_start'][0]:.1f} at the start, "
        f"{m.get('loadavg_end', [0])[0]:.1f} at the end (a shared machine: each system in its "
        f"own process, alternating, {plan['rounds']} round(s)"
        + (" after a warm-up" if plan["warmup"] else "") + ", medians).",
        "",
        f"Reproduce: `HF_HUB_OFFLINE=1 {results['command']}` (or `make bench`).",
    ]
    for name, render in (("build", _render_build), ("query", _render_query),
                         ("startup", _render_startup), ("scale", _render_scale)):
        section = results.get(name)
        if section is None:
            continue
        lines.append("")
        if "error" in section:
            lines += [f"### {name}", "", f"failed: {section['error']}"]
        else:
            lines += render(section, results)
    if results.get("targets"):
        lines += ["", "### Targets", "", "| target | measured | met |", "|---|---|:-:|"]
        lines += [f"| {t['target']} | {t['figure']} | {'yes' if t['met'] else '**no**'} |"
                  for t in results["targets"]]
    return "\n".join(lines)


def _first_torch_threads(results: dict[str, Any]) -> Any:
    for run in results.get("build", {}).get("library", {}).get("runs", {}).get("ours", []):
        return run.get("torch_threads", "?")
    for run in results.get("query", {}).get("runs", {}).get("ours", []):
        return run.get("torch_threads", "?")
    return "?"


_LABELS = {"ours": "ours", "ours_float32": "ours, float32", "recipe": "LangChain recipe",
           "recipe_1thread": "LangChain recipe, torch 1 thread"}


def _render_build(section: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = ["### Index build", "",
             "Cold builds: a fresh index folder and a fresh embedding cache each run; model "
             "load is timed apart; tokens/chunk is what the model reads per chunk (ours: the "
             "chunk and the note's title before it). The synthetic corpus is "
             f"{section['synthetic'].get('corpus', {}).get('files', '?')} Markdown files of "
             "shuffled sentences from the library's notes, the same files for every system.", "",
             "| corpus | system | dtype | docs | chunks | tokens/chunk | build s | chunks/s "
             "| CPU s | model load s | peak RSS MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for corpus in ("library", "synthetic"):
        data = section.get(corpus)
        if not data:
            continue
        for name in ("ours", "ours_float32", "recipe"):
            if name in data:
                s = data[name]
                lines.append(
                    f"| {corpus} | {_LABELS[name]} | {s['dtype']} | {s['documents']} | "
                    f"{s['chunks']:,} | {s['tokens_per_chunk']:.0f} | {s['build_s']:.1f} | "
                    f"{s['chunks_per_s']:.1f} | "
                    f"{s['build_cpu_s']:.1f} | {s['model_load_s']:.1f} | "
                    f"{s['peak_rss_mb']:,.0f} |")
        ours = data["ours"]
        lines.append(f"| {corpus} | ours, second unchanged run | | | "
                     f"{ours['second_run_embedded']} embedded | | {ours['second_run_s']:.2f} | "
                     "| | | |")
    lines.append("")
    for corpus in ("library", "synthetic"):
        ratio = section.get(corpus, {}).get("ratio")
        if ratio:
            per_round = ", ".join(f"×{r:.2f}" for r in ratio["per_round_chunks_per_s"])
            text = (f"{corpus}: ours/recipe chunks/s ×{ratio['chunks_per_s']:.2f} (rounds: "
                    f"{per_round}); wall time for the same files ×{ratio['wall_time']:.2f}; "
                    f"model tokens/s ×{ratio['tokens_per_s']:.2f}")
            if "bf16_vs_float32" in ratio:
                text += f"; ours bfloat16/float32 chunks/s ×{ratio['bf16_vs_float32']:.2f}"
            lines.append(f"- {text}.")
    return lines


def _question_source(results: dict[str, Any]) -> str:
    """`` from `name.jsonl` `` for the question file the run used, or nothing if unknown."""
    path = results.get("inputs", {}).get("questions")
    return f" from `{Path(path).name}`" if path else ""


def _render_query(section: dict[str, Any], results: dict[str, Any]) -> list[str]:
    ours, recipe = section["ours"], section["recipe"]
    query = results.get("query_settings", {"k": 5, "threads": 1})
    source = _question_source(results)
    lines = ["### Query latency", "",
             f"Default library ({ours['chunks']:,} chunks ours, {recipe['chunks']:,} the "
             f"recipe's), {ours['questions']} questions{source} × "
             f"{results['plan']['query_repeats']} passes per process after a warm-up, "
             f"k = {query['k']}, no LLM; medians over processes. Ours embeds a question on "
             f"{query['threads'] or 'all'} torch thread(s) "
             "(`embedding.query_threads`); the recipe runs as installed (torch's default, one "
             "thread per core) and, for comparison, on one thread.", "",
             "| system | operation | p50 ms | p95 ms | mean ms | CPU ms/query | peak RSS MB "
             "| first answer after process start s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, op, key in (("ours", "search", "search_ms"), ("ours", "ask", "ask_ms"),
                          ("recipe", "similarity_search", "search_ms"),
                          ("recipe_1thread", "similarity_search", "search_ms")):
        if name not in section:
            continue
        s = section[name]
        d = s[key]
        lines.append(f"| {_LABELS[name]} | {op} | {d['p50']:.1f} | {d['p95']:.1f} | "
                     f"{d['mean']:.1f} | {d['cpu_ms']:.1f} | {s['peak_rss_mb']:,.0f} | "
                     f"{s['first_answer_s']:.2f} |")
    quality = section.get("quality") or {}
    if quality:
        items = section.get("quality_items", {})
        lines += ["", f"### Quality ({items.get('answerable', '?')} answerable of "
                  f"{items.get('items', '?')} questions{source}, k = 10)", "",
                  "| system | passage_hit@5 | mrr@10 | answer_hit |", "|---|---:|---:|---:|"]
        names = {"bm25_only": "BM25 only",
                 "langchain_recipe": "LangChain recipe (1000-char chunks, float32, dense)",
                 "dense_fixed_chunks": "dense over 1000-char chunks, our embedder "
                                       "(`rag eval --baselines`)",
                 "ours": "ours (hybrid, with answers)"}
        for key, label in names.items():
            if key in quality:
                q = quality[key]
                hit = q.get("answer_hit")
                lines.append(f"| {label} | {q['passage_hit@5']:.3f} | {q['mrr@10']:.3f} | "
                             f"{'-' if hit is None else f'{hit:.3f}'} |")
    return lines


def _render_startup(section: dict[str, Any], results: dict[str, Any]) -> list[str]:
    samples = ", ".join(f"{s:.2f}" for s in section["samples"])
    return ["### Startup", "",
            f"`{section['command']}` on the built default library, wall time from process "
            f"start to the printed answer: median **{section['seconds']:.2f} s** "
            f"(runs: {samples} s; CPU time {section['cpu_s']:.2f} s)."]


def _render_scale(section: dict[str, Any], results: dict[str, Any]) -> list[str]:
    return ["### Scale", "", *render_scale(section), *render_store(section.get("store", []))]
