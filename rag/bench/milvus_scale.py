"""FAISS (embedded) against Milvus Lite at 100,000 synthetic chunks, side by side.

    python -m rag.bench.milvus_scale [--n 100000] [--rounds 2] [--out FILE.md]

Every measurement runs in a fresh process (``--system NAME`` runs one), the systems alternate
round by round, and the report gives medians: build time (add + save), search latency p50/p95
over 200 queries (k = 10; the first 20 again with a disease filter), recall@10 against exact
search, disk size of what the system wrote, and the process's resident memory after loading.
The vectors and the queries are clustered random unit vectors (384 dimensions, one mixture,
:func:`rag.bench.scale.clustered_vectors`) with one document per 40 rows,
half the documents tagged AML and half CLL, so filters have something to do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from rag.bench.scale import clustered_vectors

__all__ = ["SYSTEMS", "main", "run_system"]

SYSTEMS = ("faiss-exact", "faiss-ivf-sq8", "milvus-lite-flat", "milvus-lite-ivf-sq8")
DIM = 384
QUERIES = 200


def _data(n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors and ``queries`` held-out queries drawn from one mixture of 256 clusters
    (noise of 0.6 per dimension around unnormalised Gaussian centres)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((256, DIM)).astype(np.float32)
    spread = 0.6 * DIM ** 0.5
    data = clustered_vectors(n, DIM, centres=centres, spread=spread, rng=rng)
    return data, clustered_vectors(queries, DIM, centres=centres, spread=spread, rng=rng)


def _rows(n: int) -> Any:
    from rag.store.vectors import RowTable

    docs = [f"doc-{i // 40:06d}" for i in range(n)]
    meta = {d: {"diseases": ["acute myeloid leukemia" if int(d[4:]) % 2 else
                             "chronic lymphocytic leukemia"], "year": 2000 + int(d[4:]) % 25}
            for d in dict.fromkeys(docs)}
    return RowTable(docs, meta)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size


def _make(system: str, folder: Path, rows: Any) -> Any:
    from rag.settings import StoreSettings
    from rag.store.vectors.exact import ExactIndex
    from rag.store.vectors.faiss_index import FaissIndex
    from rag.store.vectors.milvus_connect import MilvusTarget
    from rag.store.vectors.milvus_index import MilvusIndex

    if system == "faiss-exact":
        return ExactIndex(DIM, rows=rows)
    if system == "faiss-ivf-sq8":
        return FaissIndex(DIM, kind="ivf-sq8", store=StoreSettings(), rows=rows)
    kind = "FLAT" if system.endswith("flat") else "IVF_SQ8"
    target = MilvusTarget(uri=str(folder / "milvus.db"), token="", timeout_s=600,
                          prefix="bench", index_type=kind)
    return MilvusIndex.create(DIM, target=target, generation="gen-000001", rows=rows)


def run_system(system: str, n: int) -> dict[str, Any]:
    """Build, search and measure one system in this process; what it wrote is removed."""
    (data, queries), rows = _data(n, QUERIES), _rows(n)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        index = _make(system, folder, rows)
        try:
            index.add(np.arange(n), data)
            index.save(folder)
            build_s = time.perf_counter() - started
            measured = _search(index, queries, exact)
            disk_mb = _size(folder) / 1e6
        finally:
            index.close()  # frees a Milvus Lite file before its folder goes
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"system": system, "n": n, "build_s": build_s, **measured, "disk_mb": disk_mb,
            "peak_rss_mb": rss_mb}


def _search(index: Any, queries: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Search latency over every query, filtered latency over the first 20, and recall@10."""
    from rag.store.vectors import Condition, Filter

    index.search(queries[0], 10)  # warm-up
    timings, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(index.search(q, 10).ids)
        timings.append((time.perf_counter() - t) * 1000)
    aml = Filter((Condition("disease", ("acute myeloid leukemia",)),))
    filtered = []
    for q in queries[:20]:
        t = time.perf_counter()
        index.search(q, 10, filter=aml)
        filtered.append((time.perf_counter() - t) * 1000)
    recall = float(np.mean([len(set(f.tolist()) & set(e.tolist())) / 10
                            for f, e in zip(found, exact, strict=True)]))
    return {"search_ms_p50": float(np.percentile(timings, 50)),
            "search_ms_p95": float(np.percentile(timings, 95)),
            "filtered_ms_p50": float(np.percentile(filtered, 50)), "recall@10": recall}


def _render(results: dict[str, list[dict[str, Any]]], n: int) -> str:
    keys = ("build_s", "search_ms_p50", "search_ms_p95", "filtered_ms_p50", "recall@10",
            "disk_mb", "peak_rss_mb")
    lines = [f"FAISS (embedded) vs Milvus Lite, {n:,} synthetic chunks, 384 dimensions; "
             f"medians of {len(next(iter(results.values())))} alternating runs, each in its "
             "own process.", "",
             "| system | build s | search p50 ms | search p95 ms | filtered p50 ms | "
             "recall@10 | disk MB | peak RSS MB |", "|---|" + "---:|" * len(keys)]
    for system, runs in results.items():
        cells = [f"{median(r[k] for r in runs):.3f}" if k == "recall@10"
                 else f"{median(r[k] for r in runs):,.1f}" for k in keys]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.bench.milvus_scale",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    args = parser.parse_args(argv)
    if args.system:
        print(json.dumps(run_system(args.system, args.n)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in args.systems}
    for round_ in range(args.rounds):
        for system in args.systems:
            print(f"round {round_ + 1}/{args.rounds}: {system} ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", "rag.bench.milvus_scale", "--system",
                                   system, "--n", str(args.n)], capture_output=True, text=True,
                                  check=False, env={**os.environ, "OMP_NUM_THREADS": "2"})
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            results[system].append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = _render(results, args.n)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
