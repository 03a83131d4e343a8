"""Connections to Milvus: embedded Milvus Lite (a local path) or a server/cluster (a URL).

``pymilvus`` is an optional extra (``pip install 'trail-rag[milvus]'``) imported only here.
One client per URI and token is shared by the process: Milvus Lite keeps a lock on its data
folder while a client is open, so two clients on one Lite file in one process would fight.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, MissingExtraError

__all__ = ["MilvusTarget", "collection_name", "connect", "is_lite", "redact", "release",
           "target_for"]

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str], Any] = {}
_REMOTE = re.compile(r"^(https?|tcp|grpc)://", re.I)


@dataclass(frozen=True)
class MilvusTarget:
    """Where the vectors live and how to reach them."""

    uri: str
    token: str
    timeout_s: float
    prefix: str
    index_type: str


def is_lite(uri: str) -> bool:
    """A local path (not a URL) means embedded Milvus Lite."""
    return not _REMOTE.match(uri)


def redact(uri: str) -> str:
    """The URI without credentials, for manifests and messages."""
    return re.sub(r"//[^/@]*@", "//", uri)


def target_for(store: Any, index_dir: Path | None) -> MilvusTarget:
    """The Milvus target for the store settings (default: ``<index_dir>/milvus.db``)."""
    uri = store.milvus_uri or (str(Path(index_dir) / "milvus.db") if index_dir else None)
    if not uri:
        raise ConfigError("store.backend is milvus but no store.milvus_uri is set "
                          "(RAG_MILVUS_URI or --milvus-uri)")
    if is_lite(uri):  # absolute, so readers in another directory find the same file
        uri = str(Path(uri).expanduser().resolve())
    return MilvusTarget(uri=uri, token=store.milvus_token or "",
                        timeout_s=float(store.milvus_timeout_s), prefix=store.milvus_prefix,
                        index_type=store.milvus_index_type)


def collection_name(prefix: str, generation: str) -> str:
    """``trailrag_gen_000007``: one collection per index generation."""
    return f"{prefix}_{generation.replace('-', '_')}"


def connect(target: MilvusTarget) -> Any:
    """A shared ``MilvusClient`` for ``target`` (created on first use)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingExtraError(
            "the milvus backend needs pymilvus and milvus-lite: pip install 'trail-rag[milvus]'"
        ) from exc
    key = (target.uri, target.token)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if is_lite(target.uri):
                Path(target.uri).expanduser().resolve().parent.mkdir(parents=True,
                                                                     exist_ok=True)
            try:
                client = MilvusClient(uri=target.uri, token=target.token or "",
                                      timeout=target.timeout_s)
            except Exception as exc:  # pymilvus raises several of its own types
                hint = (" (Milvus Lite lets one process open its file at a time: stop the other "
                        "process, or serve it with `milvus-lite server` or a Milvus cluster)"
                        if is_lite(target.uri) else "")
                raise ConfigError(f"cannot connect to Milvus at {redact(target.uri)}: "
                                  f"{_message(exc)}{hint}") from exc
            _CLIENTS[key] = client
        return client


def release(target: MilvusTarget) -> None:
    """Close this process's client for ``target``; for Milvus Lite also free the data file, so
    that another process can open it."""
    with _LOCK:
        client = _CLIENTS.pop((target.uri, target.token), None)
    if client is None:
        return
    with contextlib.suppress(Exception):
        client.close()
    if is_lite(target.uri):
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(target.uri)


def _message(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
