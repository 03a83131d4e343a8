"""Train the answer composer's sentence scorer from question sets with known answers.

    python -m rag.eval.training --set index QUESTIONS.jsonl [--set OTHER_INDEX OTHER.jsonl ...] \\
        --out rag/data/answer_model.json [--folds 5]

Each ``--set`` pairs an index with a question file in the evaluation format (``must_include``
groups, or a PubMedQA ``gold`` PMID and conclusion). For every answerable question the
composer's own candidates are gathered and featurised exactly as at answer time; a sentence is
a positive when it holds at least half of the facts the question needs (the ``must_include``
groups that the question's own words do not already satisfy), or, for ``gold`` items, when at
least 60% of its words occur in the gold conclusion of the gold document.

The model is a logistic regression on feature differences between a positive and a negative
sentence of the same question (mostly of the same document: telling the answer from its
neighbours is the hard part), with an L2 penalty, solved by Newton's method in numpy. Every
question weighs the same within its set; ``--weight`` scales a set. ``--folds`` also reports
cross-validated answer metrics, so that the gain is measured on questions the model has not
seen. The output is a small JSON file (feature names, scaling, weights) for review.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.candidates import CandidatePool, concept_weights, gather_candidates
from rag.answer.extractive import AnswerPlan, plan_answer
from rag.answer.features import FEATURES, SentenceModel, feature_matrix
from rag.answer.question import classify_question
from rag.answer.selection import select_sentences
from rag.eval.evaluate import (
    gold_quoted,
    is_target,
    item_targets,
    load_items,
    satisfies,
    words_of,
)
from rag.retrieve.hybrid import retrieve
from rag.settings import Settings, load_settings

__all__ = ["Example", "collect", "fit", "main"]


@dataclass
class Example:
    """One answerable question with its candidates, features and labels."""

    item: dict[str, Any]
    pool: CandidatePool
    matrix: np.ndarray
    labels: np.ndarray  # 0..1 per candidate
    weight: float
    concepts: list[Any]
    plan: AnswerPlan  # refusals and the documents the answer starts in, as at answer time


def collect(index_dir: Path, path: Path, settings: Settings, *,
            weight: float = 1.0) -> list[Example]:
    from rag.facade import RAG

    rag = RAG.open(index_dir, settings=settings)
    snap = rag.snapshot
    embedder = rag.embedder()
    examples = []
    for item in load_items(path):
        if item.get("unanswerable"):
            continue
        found = retrieve(item["question"], snap, embedder, settings.retrieval,
                         k=max(10, settings.answer.passages_considered))
        pool = gather_candidates(found, snap, settings.answer, embedder)
        if not pool.candidates:
            continue
        matrix = feature_matrix(classify_question(found.query), found.query, found.concepts,
                                concept_weights(found.concepts, snap), pool.candidates)
        labels = np.array([_label(item, c.text, snap.docs[c.doc_id].meta)
                           for c in pool.candidates], dtype=np.float32)
        plan = plan_answer(found.query, pool, matrix, np.zeros(len(labels)), snap,
                           settings.answer)
        examples.append(Example(item, pool, matrix, labels, weight, found.concepts, plan))
    return examples


def _label(item: dict[str, Any], text: str, meta: Mapping[str, Any]) -> float:
    """The same tests as the evaluation: a sentence of the gold document that quotes the gold
    conclusion, or the share of the needed facts a sentence holds."""
    gold = item.get("gold")
    if isinstance(gold, dict):
        if not is_target(meta, *item_targets(item)):
            return 0.0
        return float(gold_quoted(text, set(words_of(str(gold.get("text") or "")))))
    must = item.get("must_include") or []
    needed = [g for g in must if not satisfies(item["question"], [g])] or must
    if not needed:
        return 0.0
    return sum(satisfies(text, [g]) for g in needed) / len(needed)


def _pairs(examples: Sequence[Example], scale: np.ndarray, *, seed: int = 0,
           max_pairs: int = 60, other_docs: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    weights: list[float] = []
    for ex in examples:
        positive = np.flatnonzero(ex.labels >= 0.5)
        if not len(positive):
            continue
        gold_docs = {ex.pool.candidates[i].doc_id for i in positive}
        negative = [j for j in np.flatnonzero(ex.labels < 0.5)
                    if ex.pool.candidates[j].doc_id in gold_docs or rng.random() < other_docs]
        pairs = [(i, j) for i in positive for j in negative]
        if not pairs:
            continue
        if len(pairs) > max_pairs:
            pairs = [pairs[k] for k in rng.choice(len(pairs), max_pairs, replace=False)]
        for i, j in pairs:
            rows.append((ex.matrix[i] - ex.matrix[j]) / scale)
            weights.append(ex.weight / len(pairs))
    return np.asarray(rows, dtype=np.float64), np.asarray(weights, dtype=np.float64)


def fit(examples: Sequence[Example], *, l2: float = 1.0, meta: dict[str, Any] | None = None,
        ) -> SentenceModel:
    """Pairwise logistic regression (no intercept) by Newton's method."""
    stacked = np.vstack([ex.matrix for ex in examples]).astype(np.float64)
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale[scale == 0] = 1.0
    diffs, weights = _pairs(examples, scale)
    # Each difference is a positive example and its negation a negative one: the model is
    # symmetric, so fitting sigmoid(w.d) = 1 on the differences alone is the same problem.
    w = np.zeros(diffs.shape[1])
    weights = weights / weights.sum() * len(examples)
    for _ in range(50):
        z = diffs @ w
        p = 1.0 / (1.0 + np.exp(-z))
        grad = diffs.T @ (weights * (p - 1.0)) + l2 * w
        hess = (diffs * (weights * p * (1 - p))[:, None]).T @ diffs + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return SentenceModel(FEATURES, mean.astype(np.float32), scale.astype(np.float32),
                         w.astype(np.float32), 0.0, meta or {})


def evaluate(model: SentenceModel, examples: Sequence[Example],
             settings: Settings) -> dict[str, float]:
    hits = gold = cites = words = 0
    n_must = n_gold = 0
    answered = 0
    for ex in examples:
        n_must += bool(ex.item.get("must_include"))
        n_gold += isinstance(ex.item.get("gold"), dict)
        if ex.plan.refused:
            continue  # refused, as the composer would: a miss (its closest evidence aside)
        scores = model.logits(ex.matrix)
        chosen = select_sentences(ex.pool, scores, ex.item["question"], settings.answer,
                                  matrix=ex.matrix, preferred_docs=ex.plan.lead_docs)
        text = " ".join(ex.pool.candidates[i].text for i in chosen)
        answered += 1
        cites += len(chosen)
        words += len(text.split())
        if ex.item.get("must_include"):
            hits += satisfies(text, ex.item["must_include"])
        if isinstance(ex.item.get("gold"), dict):
            gold += any(ex.labels[i] >= 0.5 for i in chosen)
    n = max(1, answered)
    return {"answer_hit": hits / max(1, n_must), "gold_cited": gold / max(1, n_gold),
            "citations_per_answer": cites / n, "answer_words": words / n}


def cross_validate(sets: list[list[Example]], settings: Settings, *, folds: int,
                   l2: float) -> list[dict[str, float]]:
    """Per set: metrics of models that never saw the questions they answer."""
    rng = np.random.default_rng(0)
    assignment = [rng.permutation(len(s)) % folds for s in sets]
    predictions: list[list[dict[str, float]]] = [[] for _ in sets]
    for fold in range(folds):
        train = [ex for s, a in zip(sets, assignment, strict=True)
                 for ex, f in zip(s, a, strict=True) if f != fold]
        model = fit(train, l2=l2)
        for k, (s, a) in enumerate(zip(sets, assignment, strict=True)):
            held = [ex for ex, f in zip(s, a, strict=True) if f == fold]
            if held:
                predictions[k].append({**evaluate(model, held, settings), "n": len(held)})
    out = []
    for parts in predictions:
        total = sum(p["n"] for p in parts)
        out.append({key: sum(p[key] * p["n"] for p in parts) / total
                    for key in parts[0] if key != "n"})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs=2, action="append", required=True,
                        metavar=("INDEX_DIR", "FILE.jsonl"), help="an index and its questions")
    parser.add_argument("--weight", type=float, action="append", default=[],
                        help="weight of each --set, in order (default 1)")
    parser.add_argument("--out", metavar="FILE", help="write the model here (JSON)")
    parser.add_argument("--folds", type=int, default=0, help="also cross-validate")
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty")
    args = parser.parse_args(argv)
    settings = load_settings()
    sets = []
    for number, (index_dir, path) in enumerate(args.set):
        weight = args.weight[number] if number < len(args.weight) else 1.0
        sets.append(collect(Path(index_dir), Path(path), settings, weight=weight))
        print(f"{path}: {len(sets[-1])} answerable questions", file=sys.stderr)
    if args.folds > 1:
        for (_, path), metrics in zip(args.set, cross_validate(sets, settings, folds=args.folds,
                                                               l2=args.l2), strict=True):
            shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            print(f"{args.folds}-fold cross-validated on {Path(path).name}: {shown}")
    all_examples = [ex for s in sets for ex in s]
    model = fit(all_examples, l2=args.l2, meta={
        "trained_on": [f"{Path(p).name} ({len(s)} questions)" for (_, p), s in
                       zip(args.set, sets, strict=True)],
        "l2": args.l2, "weights": [args.weight[i] if i < len(args.weight) else 1.0
                                   for i in range(len(sets))],
    })
    for (_, path), s in zip(args.set, sets, strict=True):
        shown = ", ".join(f"{k} {v:.3f}" for k, v in evaluate(model, s, settings).items())
        print(f"trained model on {Path(path).name} (seen questions): {shown}")
    if args.out:
        Path(args.out).write_text(json.dumps(model.to_dict(), indent=1) + "\n",
                                  encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
