"""Loading: files in, :class:`~rag.types.Document` objects out.

``load_file`` picks a loader by extension (and, for XML, by the root element); ``iter_files``
walks folders. Every problem with one input raises :class:`~rag.errors.DocumentLoadError`
naming the file and the reason, so a caller can report it and go on with the rest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.errors import DocumentLoadError
from rag.ingest.loaders import markup, pdf, textfiles, xmlfiles
from rag.settings import LoaderSettings
from rag.types import Document

__all__ = ["iter_files", "load_file", "read_bytes"]


def iter_files(
    paths: Iterable[str | Path], settings: LoaderSettings
) -> Iterator[tuple[Path, Path]]:
    """Yield ``(file, root)`` for every supported file under ``paths``, sorted, recursively.

    Symlinks that resolve outside their root folder are not followed (they are yielded so the
    caller can report them; ``load_file`` refuses them).
    """
    allowed = {ext.lower() for ext in settings.extensions}
    for raw in paths:
        root = Path(raw)
        if root.is_file() or (root.is_symlink() and not root.is_dir()):
            yield root, root.parent
            continue
        if not root.is_dir():
            raise DocumentLoadError(str(root), "no such file or folder")
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or name.lower() == "readme.md":
                    continue
                path = Path(folder) / name
                if path.suffix.lower() in allowed:
                    yield path, root


def load_file(
    path: Path, settings: LoaderSettings, *, root: Path | None = None, data: bytes | None = None
) -> list[Document]:
    """Load one file into one or more documents (a PubMed XML file may hold many)."""
    if data is None:
        data = read_bytes(path, settings, root=root)
    file_hash = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    name = str(path)
    if suffix == ".pdf":
        docs = pdf.load_pdf(data, name, settings)
    elif suffix in (".html", ".htm"):
        docs = markup.load_html(data, name, settings)
    elif suffix == ".xml":
        docs = xmlfiles.load_xml(data, name, settings)
    elif suffix in (".md", ".markdown"):
        docs = textfiles.load_markdown(data, name, settings)
    elif suffix == ".txt":
        docs = textfiles.load_text(data, name, settings)
    else:
        raise DocumentLoadError(name, f"unsupported file type {suffix or '(none)'}")
    return [
        Document(
            doc_id=d.doc_id,
            text=d.text,
            sections=d.sections,
            meta=d.meta,
            source_path=str(path.resolve()),
            file_hash=file_hash,
            doc_type=d.doc_type,
        )
        for d in docs
    ]


def read_bytes(path: Path, settings: LoaderSettings, *, root: Path | None = None) -> bytes:
    """Read a file after the checks that must come first: location, type, size."""
    name = str(path)
    if root is not None and path.is_symlink():
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise DocumentLoadError(name, "symlink cannot be resolved (a loop?); not followed") \
                from exc
        if not target.is_relative_to(root.resolve()):
            raise DocumentLoadError(name, "symlink points outside the indexed folder; not followed")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentLoadError(name, f"cannot read: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise DocumentLoadError(name, "not a regular file")
    limit = int(settings.max_file_mb * 1024 * 1024)
    if size > limit:
        raise DocumentLoadError(
            name,
            f"file is {size / 1048576:.1f} MB, above the {settings.max_file_mb:g} MB limit "
            "(setting loader.max_file_mb / RAG_MAX_FILE_MB)",
        )
    if size == 0:
        raise DocumentLoadError(name, "empty file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentLoadError(name, f"cannot read: {exc.strerror or exc}") from exc
