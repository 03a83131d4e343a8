"""The benchmark harness: the quick run end to end (as CI runs it), and its pure parts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rag.bench.plan import make_synthetic_corpus
from rag.bench.scale import recommend

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = PROJECT_ROOT / "tests" / "data" / "trail_questions.jsonl"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, python: str,
              subprocess_env: dict[str, str]) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.md"
    proc = subprocess.run(
        [python, "-m", "rag", "bench", "--quick", "--json", "--out", str(out),
         "--questions", str(QUESTIONS)],
        cwd=PROJECT_ROOT, env=subprocess_env, capture_output=True, text=True, timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: dict[str, Any] = json.loads(proc.stdout)
    results["_markdown"] = out.read_text(encoding="utf-8")
    return results


@pytest.mark.slow
def test_quick_run_has_every_section(quick_run: dict[str, Any]) -> None:
    for section in ("machine", "build", "query", "startup", "scale", "targets"):
        assert section in quick_run and "error" not in quick_run[section], section
    machine = quick_run["machine"]
    assert machine["cores"] >= 1 and machine["cpu"]
    markdown = quick_run["_markdown"]
    for heading in ("### Index build", "### Query latency", "### Quality", "### Startup",
                    "### Scale", "### Targets"):
        assert heading in markdown
    assert machine["cpu"] in markdown


@pytest.mark.slow
def test_quick_run_builds(quick_run: dict[str, Any]) -> None:
    for corpus in ("library", "synthetic"):
        data = quick_run["build"][corpus]
        for system in ("ours", "recipe"):
            assert data[system]["chunks"] > 0
            assert data[system]["chunks_per_s"] > 0
            assert data[system]["peak_rss_mb"] > 0
        assert data["ours"]["second_run_embedded"] == 0  # unchanged: nothing embedded
        assert data["ratio"]["chunks_per_s"] > 0
    if "ours_float32" in quick_run["build"]["library"]:
        assert quick_run["build"]["library"]["ours_float32"]["dtype"] == "float32"


@pytest.mark.slow
def test_quick_run_queries_and_quality(quick_run: dict[str, Any]) -> None:
    query = quick_run["query"]
    for name, op in (("ours", "search_ms"), ("ours", "ask_ms"), ("recipe", "search_ms")):
        latency = query[name][op]
        assert 0 < latency["p50"] <= latency["p95"]
    for system in ("bm25_only", "langchain_recipe", "ours"):
        metrics = query["quality"][system]
        assert 0.0 <= metrics["passage_hit@5"] <= 1.0
        assert 0.0 <= metrics["mrr@10"] <= 1.0
    assert 0.0 <= query["quality"]["ours"]["answer_hit"] <= 1.0
    assert quick_run["startup"]["seconds"] > 0


@pytest.mark.slow
def test_quick_run_scale(quick_run: dict[str, Any]) -> None:
    (size,) = quick_run["scale"]["sizes"]
    kinds = {row["index"] for row in size["rows"]}
    assert kinds == {"flat", "hnsw", "ivf-sq8", "ivf-pq"}
    for row in size["rows"]:
        assert 0.0 <= row["recall_at_10"] <= 1.0
        assert row["index_bytes"] > 0 and row["build_s"] >= 0
        assert 0 < row["p50_ms"] <= row["p95_ms"]
    flat = next(r for r in size["rows"] if r["index"] == "flat")
    assert flat["recall_at_10"] == pytest.approx(1.0)
    assert quick_run["scale"]["recommendation"][0]["n"] == size["n"]
    (store,) = quick_run["scale"]["store"]
    assert store["n"] == 4_000 and store["index_type"] == "flat"
    for stage in ("before", "opened", "asked"):
        assert 0 < store[stage]["uss_mb"] <= store[stage]["rss_mb"]
    assert store["asked"]["rss_mb"] >= store["before"]["rss_mb"]
    assert "Store open RSS" in quick_run["_markdown"]


def test_synthetic_corpus_is_deterministic(tmp_path: Path) -> None:
    seeds = PROJECT_ROOT / "seeds"
    first = make_synthetic_corpus(seeds, tmp_path / "a", chunks=20)
    second = make_synthetic_corpus(seeds, tmp_path / "b", chunks=20)
    assert first == second and first["chars"] >= 20 * 690
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _row(index: str, *, p50: float, recall: float, size: int) -> dict[str, Any]:
    return {"index": index, "p50_ms": p50, "recall_at_10": recall, "index_bytes": size,
            "meets_latency_recall": p50 <= 20 and recall >= 0.95,
            "meets_memory": size <= 1_000_000_000}


@pytest.mark.parametrize(("rows", "expected"), [
    pytest.param([_row("flat", p50=8, recall=1.0, size=150_000_000),
                  _row("ivf-sq8", p50=0.2, recall=0.99, size=40_000_000)], "flat",
                 id="exact-while-fast-enough"),
    pytest.param([_row("flat", p50=60, recall=1.0, size=1_536_000_000),
                  _row("hnsw", p50=0.5, recall=1.0, size=1_800_000_000),
                  _row("ivf-sq8", p50=0.9, recall=0.98, size=400_000_000),
                  _row("ivf-pq", p50=0.3, recall=0.55, size=60_000_000)], "ivf-sq8",
                 id="smallest-index-within-targets"),
    pytest.param([_row("flat", p50=60, recall=1.0, size=1_536_000_000)], None,
                 id="nothing-qualifies"),
])
def test_recommend(rows: list[dict[str, Any]], expected: str | None) -> None:
    (pick,) = recommend([{"n": 1_000_000, "rows": rows}])
    assert pick["index"] == expected


@pytest.mark.parametrize("system", ["faiss-exact", "faiss-ivf-sq8"])
def test_the_milvus_comparison_measures_and_leaves_nothing_behind(
        system: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from rag.bench.milvus_scale import run_system

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_system(system, 3000)
    assert result["disk_mb"] > 3000 * 384 * 4 / 1e6  # the vectors were written ...
    assert 0.5 < result["recall@10"] <= 1.0
    assert list(tmp_path.iterdir()) == []  # ... and removed with their folder
