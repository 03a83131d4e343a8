"""The VectorIndex contract on the Milvus backend: embedded Milvus Lite, and a Milvus Lite
server on 127.0.0.1 (the network path a cluster uses; the ``milvus_server`` fixture in
conftest). Filters compile to Milvus expressions. Needs the ``milvus`` extra (CI installs it)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from vector_contract import *  # noqa: F403 - the shared contract tests
from vector_contract import Backend

from rag.store.vectors import Condition, Filter, RowTable, VectorIndex

if not os.environ.get("CI"):
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed")

from rag.store.vectors.milvus_connect import MilvusTarget
from rag.store.vectors.milvus_index import MilvusIndex, compile_filter

_names = itertools.count(1)


def _backend(uri: str) -> Backend:
    def make(dim: int, table: RowTable) -> VectorIndex:
        target = MilvusTarget(uri=uri, token="", timeout_s=60, prefix=f"t{next(_names)}",
                              index_type="AUTOINDEX")
        return MilvusIndex.create(dim, target=target, generation="gen-000001", rows=table)

    def reopen(index: VectorIndex, folder: Path, table: RowTable) -> VectorIndex:
        assert isinstance(index, MilvusIndex)
        index.save(folder)
        return MilvusIndex.load(folder, target=index.target, rows=table)

    return Backend(make, reopen)


@pytest.fixture(params=["lite", "server"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    if request.param == "lite":
        return _backend(str(tmp_path_factory.getbasetemp() / "lite" / "milvus.db"))
    return _backend(request.getfixturevalue("milvus_server"))


@pytest.mark.parametrize(("filter_", "expression"), [
    pytest.param(Filter((Condition("disease", ("AML", 'a "quoted" name')),)),
                 'ARRAY_CONTAINS_ANY(diseases, ["AML", "a \\"quoted\\" name"])', id="array"),
    pytest.param(Filter((Condition("year", low=2005, high=2015),
                         Condition("doc_id", ("x",)))),
                 '(year >= 2005 and year <= 2015) and (doc_id in ["x"])', id="year-and-doc"),
    pytest.param(Filter((Condition("evidence", ()),)), "(row < 0)", id="nothing-matches"),
])
def test_filters_compile_to_milvus_expressions(filter_: Filter, expression: str) -> None:
    assert compile_filter(filter_) == expression
