"""The generation pointer and the manifest: which generation is live, and what built it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import IndexMismatchError, IndexNotFoundError

__all__ = ["CURRENT", "FORMAT_VERSION", "check_manifest", "current_generation", "read_manifest"]

FORMAT_VERSION = 1
CURRENT = "CURRENT"


def current_generation(folder: Path) -> str | None:
    """Name of the live generation, or None when the folder holds no whole index."""
    try:
        name = (folder / CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if name and (folder / name / "manifest.json").is_file() else None


def read_manifest(folder: Path) -> dict[str, Any]:
    generation = current_generation(folder)
    if generation is None:
        raise IndexNotFoundError(
            f"no index at {folder}: build one with `python -m rag index` (or --index DIR)"
        )
    data: dict[str, Any] = json.loads(
        (folder / generation / "manifest.json").read_text(encoding="utf-8"))
    return data


def check_manifest(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Raise IndexMismatchError when the index was built with other model/splitter settings."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {folder} has format {manifest.get('format_version')}, this version "
            f"reads {FORMAT_VERSION}: rebuild it with `python -m rag index --rebuild`"
        )
    for key in ("model_id", "dimension", "chunking"):
        if manifest.get(key) != expected.get(key):
            raise IndexMismatchError(
                f"index at {folder} was built with {key}={manifest.get(key)!r} but the settings "
                f"ask for {expected.get(key)!r}: rebuild it with `python -m rag index --rebuild` "
                "(or point --index at another folder)"
            )
