"""What a benchmark run measures, and with what: the plan (sizes, rounds), the inputs (the
library, the question set, a synthetic corpus) and the context that runs each measurement in
its own child process (``python -m rag.bench.tasks``). :mod:`rag.bench.runner` drives them.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.bench.tasks import RESULT_MARK
from rag.errors import RagError
from rag.settings import Settings

__all__ = ["PROJECT_ROOT", "BenchContext", "BenchPlan", "child_env", "make_synthetic_corpus",
           "plan_for", "prepare_library", "prepare_questions", "say", "uses_bf16"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_QUESTIONS = PROJECT_ROOT / "tests" / "data" / "trail_questions.jsonl"
# Characters per chunk step: ours (200 tokens, 40 overlap) advance ~690 characters through this
# prose, the recipe's (1000 characters, 200 overlap) ~800; sized so both get ``chunks``.
_CHARS_PER_CHUNK = 830


@dataclass(frozen=True)
class BenchPlan:
    """Sizes and repetitions; :func:`plan_for` gives the quick (CI) and the full plan."""

    quick: bool
    rounds: int  # timed rounds per comparison, after the warm-up
    warmup: bool
    library_docs: int | None  # None: the whole default library
    synthetic_chunks: int
    float32_corpora: tuple[str, ...]  # where ours also runs in float32, for comparison
    question_limit: int | None
    query_repeats: int  # passes over the questions inside one query process
    startup_runs: int
    scale_sizes: tuple[int, ...]
    scale_queries: int
    scale_centres: int
    scale_sweep: dict[str, list[int]] = field(default_factory=dict)
    store_sizes: tuple[int, ...] = ()  # chunks in the synthetic stores opened for their RSS


def plan_for(*, quick: bool) -> BenchPlan:
    if quick:
        return BenchPlan(quick=True, rounds=1, warmup=False, library_docs=8,
                         synthetic_chunks=30, float32_corpora=("library",), question_limit=5,
                         query_repeats=1, startup_runs=1, scale_sizes=(4_000,),
                         scale_queries=100, scale_centres=64,
                         scale_sweep={"hnsw": [32, 128], "ivf-sq8": [8, 32],
                                      "ivf-pq": [8, 32]}, store_sizes=(4_000,))
    return BenchPlan(quick=False, rounds=3, warmup=True, library_docs=None,
                     synthetic_chunks=5_000, float32_corpora=("library",),
                     question_limit=None, query_repeats=3, startup_runs=3,
                     scale_sizes=(100_000, 1_000_000), scale_queries=500, scale_centres=2048,
                     store_sizes=(200_000, 1_000_000))


@dataclass
class BenchContext:
    """One run's plan, inputs and scratch folder; :meth:`child` runs one measured task."""

    plan: BenchPlan
    settings: Settings
    work: Path
    library: Path
    questions: Path
    bf16: bool
    indexes: dict[str, Path] = field(default_factory=dict)  # "ours" / "recipe" -> library index
    counter: int = 0

    def child(self, task: str, params: dict[str, Any], label: str) -> dict[str, Any]:
        """Run ``task`` of :mod:`rag.bench.tasks` in a fresh interpreter; return its result."""
        self.counter += 1
        params = {"settings": self.settings.model_dump(mode="json"), **params}
        params_file = self.work / f"params-{self.counter:03d}.json"
        params_file.write_text(json.dumps(params), encoding="utf-8")
        say(f"{label} ...")
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rag.bench.tasks", task, str(params_file)],
            capture_output=True, text=True, env=child_env(), check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
        if proc.returncode != 0 or not lines:
            tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
            raise RagError(f"benchmark task {task} failed (exit {proc.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARK):])
        say(f"{label}: {time.perf_counter() - started:.1f} s")
        return result


# -- inputs ------------------------------------------------------------------------------


def prepare_library(settings: Settings, work: Path, plan: BenchPlan, questions: Path) -> Path:
    """The default library, or (quick) a few of its notes: first those that the questions'
    ``source`` fields cite, so that the quality figures are not all zero, then the rest."""
    source = Path(settings.docs_dir)
    if not source.is_dir():
        raise RagError(f"the default library {source} is not a folder: run from the project "
                       "root or set RAG_DOCS_DIR")
    if plan.library_docs is None:
        return source.resolve()
    from rag.eval.evaluate import load_items

    cited = {str(v).lower() for item in load_items(questions)
             for key, v in (item.get("source") or {}).items() if key in ("pmid", "doi") and v}
    notes = sorted(p for p in source.glob("*.md") if p.name.lower() != "readme.md")
    notes.sort(key=lambda p: not _cites(p, cited))  # stable: cited notes first
    target = work / "library"
    target.mkdir()
    for path in notes[: plan.library_docs]:
        shutil.copy2(path, target / path.name)
    return target


def _cites(note: Path, ids: set[str]) -> bool:
    head = note.read_text(encoding="utf-8", errors="ignore")[:2000].lower()
    return any(f'"{i}"' in head or f" {i}\n" in head for i in ids)


def prepare_questions(given: str | None, work: Path, plan: BenchPlan) -> Path:
    """The question file (default: our own question set in tests/data), cut to the plan's limit."""
    found = Path(given) if given else _QUESTIONS
    if not found.is_file():
        raise RagError(f"no question file at {found}: pass --questions FILE.jsonl")
    if plan.question_limit is None:
        return found.resolve()
    lines = [ln for ln in found.read_text(encoding="utf-8").splitlines() if ln.strip()]
    subset = work / "questions.jsonl"
    subset.write_text("\n".join(lines[: plan.question_limit]) + "\n", encoding="utf-8")
    return subset


def uses_bf16(settings: Settings) -> bool:
    """Whether ours embeds in bfloat16 on this machine with these settings."""
    from rag.embed.embedder import pick_dtype

    return pick_dtype(settings.embedding) == "bfloat16"


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def make_synthetic_corpus(source: Path, out: Path, *, chunks: int, seed: int = 0) -> dict[str, int]:
    """Write Markdown notes of shuffled sentences from ``source``'s notes, deterministically,
    sized to give at least ``chunks`` chunks to ours and to the recipe. Returns files and
    characters."""
    sentences: list[str] = []
    for path in sorted(source.glob("*.md")):
        body = path.read_text(encoding="utf-8")
        body = body.split("\n---\n", 1)[1] if body.startswith("---\n") else body
        for line in body.splitlines():
            if line.strip() and not line.lstrip().startswith(("#", "|", "-", "*")):
                sentences.extend(s.strip() for s in _SENTENCE.split(line) if len(s) > 40)
    if not sentences:
        raise RagError(f"no sentences to build a synthetic corpus from in {source}")
    rng = random.Random(seed)
    target = chunks * _CHARS_PER_CHUNK
    per_file = min(12_000, max(2_000, target // 4))
    out.mkdir(parents=True, exist_ok=True)
    written = files = 0
    while written < target:
        files += 1
        words = rng.choice(sentences).split()[:8]
        title = f"Synthetic note {files}: {' '.join(words)}".replace('"', "'")
        parts = [f'---\nid: synth-{files:04d}\ntitle: "{title}"\n---\n']
        size = 0
        while size < per_file:
            paragraph = " ".join(rng.sample(sentences, k=min(5, len(sentences))))
            if size % 3000 < len(paragraph):
                parts.append(f"## Part {len(parts)}\n")
            parts.append(paragraph + "\n")
            size += len(paragraph)
        text = "\n".join(parts)
        (out / f"synth-{files:04d}.md").write_text(text, encoding="utf-8")
        written += len(text)
    return {"files": files, "chars": written}


# -- plumbing ----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of every measured child process: offline, and this checkout first."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                      env.get("PYTHONPATH")]))
    return env


def say(message: str) -> None:
    """A progress line on stderr (stdout may carry the JSON results)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)
