"""Can Milvus's built-in BM25 replace the local BM25 for the Milvus backend? Measured here.

    python -m rag.bench.milvus_lexical --index index QUESTIONS.jsonl [...] [--uri /tmp/x.db]

The chunks of a built index are copied into a Milvus collection with a ``text`` field, a BM25
``Function`` that fills a sparse field, and the chunk vectors. For every question, four
rankings of the top 10 chunks are scored with the evaluation's passage and document hits:

- ``local hybrid``: our retrieval (dense + local BM25 over synonym concepts, convex fusion,
  MMR), as the product runs;
- ``milvus bm25 in our fusion``: the same, with the lexical candidates and scores taken from
  Milvus BM25 over the question plus its synonyms instead of the local index;
- ``milvus hybrid_search``: Milvus alone, dense + BM25 fused by its RRF ranker;
- ``local bm25`` and ``milvus bm25``: each lexical ranker alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.eval.evaluate import (
    is_target,
    item_targets,
    load_items,
    rank_of_hit,
    retrieval_metrics,
)
from rag.facade import RAG
from rag.retrieve.hybrid import query_concepts, retrieve
from rag.retrieve.synonyms import load_synonyms
from rag.settings import load_settings

__all__ = ["main"]

Ranker = Callable[[str], list[int]]


def _collection(rag: RAG, uri: str) -> tuple[Any, str]:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    snap = rag.snapshot
    client = MilvusClient(uri)
    name = "lexical_experiment"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=snap.vector_index.dimension)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX",
                     metric_type="BM25")
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=params)
    rows = list(range(len(snap.chunks)))
    vectors = snap.chunk_vectors(rows)
    for start in range(0, len(rows), 1_000):
        client.insert(name, [{"row": r, "text": snap.chunks[r].text,
                              "vector": vectors[r].tolist()} for r in rows[start:start + 1_000]])
    client.load_collection(name)
    return client, name


def _expanded(question: str) -> str:
    names = [name for _, group in load_synonyms().find(question) for name in group]
    return " ".join([question, *names])


def rankers(rag: RAG, client: Any, name: str) -> dict[str, Ranker]:
    from pymilvus import AnnSearchRequest, RRFRanker

    snap, embedder, settings = rag.snapshot, rag.embedder(), rag.settings.retrieval

    def milvus_bm25(question: str, limit: int = 50) -> list[tuple[int, float]]:
        hits = client.search(name, data=[_expanded(question)], anns_field="sparse",
                             limit=limit, output_fields=["row"],
                             search_params={"metric_type": "BM25"})[0]
        # Milvus Lite returns BM25 as negative distances, best first: use the order.
        return [(int(h["entity"]["row"]), float(len(hits) - i)) for i, h in enumerate(hits)]

    def local_hybrid(question: str) -> list[int]:
        return retrieve(question, snap, embedder, settings, k=10).rows

    def milvus_lexical_in_ours(question: str) -> list[int]:
        original = snap.lexical
        scores = np.zeros(len(snap.chunks), dtype=np.float32)
        for row, score in milvus_bm25(question):
            scores[row] = score

        class _Lexical:  # the local index's interface, answered from Milvus
            def concept_scores(self, concepts: Any) -> np.ndarray:
                return scores

        snap.lexical = _Lexical()  # type: ignore[assignment]
        try:
            return retrieve(question, snap, embedder, settings, k=10).rows
        finally:
            snap.lexical = original

    def milvus_hybrid(question: str) -> list[int]:
        vector = embedder.embed([question])[0].tolist()
        requests = [AnnSearchRequest(data=[_expanded(question)], anns_field="sparse",
                                     param={"metric_type": "BM25"}, limit=50),
                    AnnSearchRequest(data=[vector], anns_field="vector",
                                     param={"metric_type": "IP"}, limit=50)]
        hits = client.hybrid_search(name, requests, ranker=RRFRanker(60), limit=10,
                                    output_fields=["row"])[0]
        return [int(h["entity"]["row"]) for h in hits]

    def local_bm25(question: str) -> list[int]:
        scores = snap.lexical.concept_scores(query_concepts(question))
        return [int(i) for i in np.argsort(-scores)[:10] if scores[i] > 0]

    return {"local hybrid (shipped)": local_hybrid,
            "milvus bm25 in our fusion": milvus_lexical_in_ours,
            "milvus hybrid_search (RRF)": milvus_hybrid,
            "local bm25 alone": local_bm25,
            "milvus bm25 alone": lambda q: [r for r, _ in milvus_bm25(q, 10)]}


def score(rag: RAG, items: Sequence[dict[str, Any]], ranker: Ranker) -> dict[str, float]:
    snap = rag.snapshot
    ranks: list[int | None] = []
    doc_hits = []
    for item in items:
        rows = ranker(item["question"])
        if item.get("must_include"):
            ranks.append(rank_of_hit([snap.chunks[r].text for r in rows], item["must_include"]))
        pmids, dois = item_targets(item)
        if pmids or dois:
            doc_hits.append(len(rows) > 0 and is_target(
                snap.docs[snap.chunks[rows[0]].doc_id].meta, pmids, dois))
    out = retrieval_metrics(ranks, 10) if ranks else {}
    if doc_hits:
        out["doc_hit@1"] = float(np.mean(doc_hits))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.bench.milvus_lexical",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE.jsonl")
    parser.add_argument("--index", required=True, metavar="DIR")
    parser.add_argument("--uri", default=None, help="Milvus Lite file or server URL")
    args = parser.parse_args(argv)
    rag = RAG.open(args.index, settings=load_settings())
    with tempfile.TemporaryDirectory(prefix="milvus-lexical-") as tmp:
        client, name = _collection(rag, args.uri or str(Path(tmp) / "lexical.db"))
        try:
            _report(rag, rankers(rag, client, name), args.files)
        finally:
            client.drop_collection(name)
            client.close()
    return 0


def _report(rag: RAG, ranking: dict[str, Ranker], files: Sequence[str]) -> None:
    for path in files:
        items = [i for i in load_items(Path(path)) if not i.get("unanswerable")]
        print(f"\n{Path(path).name} ({len(items)} answerable)")
        results = {label: score(rag, items, ranker) for label, ranker in ranking.items()}
        keys = [k for k in ("passage_hit@1", "passage_hit@5", "mrr@10", "doc_hit@1")
                if any(k in r for r in results.values())]
        print("| ranking | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        for label, metrics in results.items():
            print(f"| {label} | " + " | ".join(f"{metrics.get(k, 0):.3f}" for k in keys) + " |")


if __name__ == "__main__":
    sys.exit(main())
