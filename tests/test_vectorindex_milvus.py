"""The VectorIndex contract on the Milvus backend: embedded Milvus Lite, and a Milvus Lite
server on 127.0.0.1 started here (the network path a cluster uses). Filters compile to Milvus
expressions. Needs the ``milvus`` extra (CI installs it)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``milvus-lite server`` on a free local port, for the whole module."""
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(data),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("milvus-lite server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


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
