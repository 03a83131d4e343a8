"""Files for the web UI: saving uploads safely, writing downloads, reading the login setting.

Uploads are copied into one folder (``settings.ui.upload_dir``) under a sanitised name; only
the document types the loaders read are accepted, and only up to ``ui.max_upload_mb``.
Downloads (reference exports) are written into one folder per browser session, under the
folder Gradio serves its own temporary files from; never into the project.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError
from rag.types import SkippedFile

__all__ = [
    "UPLOAD_EXTENSIONS",
    "Upload",
    "parse_auth",
    "remove_session_folder",
    "remove_upload",
    "sanitize_filename",
    "save_uploads",
    "session_folder",
    "write_download",
]

UPLOAD_EXTENSIONS = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm", ".xml")
_MAX_NAME = 120
_MAX_NAME_BYTES = 200  # leaves room for the ".part" prefix and suffix


@dataclass(frozen=True)
class Upload:
    """One file received by the server: where Gradio put it and the name the user gave it."""

    path: Path
    name: str


def sanitize_filename(name: str) -> str:
    """A safe basename: no folders, letters (any script), digits and ``._-`` only.

    >>> sanitize_filename("../../etc/My Notes (v2).md")
    'My_Notes_v2.md'
    """
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    kept = "".join(ch if (ch.isalnum() or ch in "._-") and ch.isprintable() else "_"
                   for ch in base)
    while "__" in kept:
        kept = kept.replace("__", "_")
    stem, dot, ext = kept.rpartition(".")
    if not dot:
        stem, ext = kept, ""
    stem = stem.strip("._-")[: _MAX_NAME - len(ext) - 1] or "upload"
    # Filesystems count bytes (255 per name): 120 CJK characters are 360 bytes in UTF-8.
    while len(f"{stem}.{ext}".encode()) > _MAX_NAME_BYTES and len(stem) > 1:
        stem = stem[:-1]
    return f"{stem}.{ext.lower()}" if ext else stem


def save_uploads(files: Iterable[Upload], folder: Path, *,
                 max_mb: float) -> tuple[list[Path], list[SkippedFile]]:
    """Copy accepted files into ``folder``; return the saved paths and the refused files."""
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    refused: list[SkippedFile] = []
    for upload in files:
        reason = _refusal(upload, max_mb)
        if reason:
            refused.append(SkippedFile(upload.name, reason))
            continue
        target = folder / sanitize_filename(upload.name)
        partial = target.with_name(f".{target.name}.part")
        try:
            shutil.copyfile(upload.path, partial)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            refused.append(SkippedFile(upload.name, f"could not be saved: {exc.strerror}"))
            continue
        saved.append(target)
    return saved, refused


def _refusal(upload: Upload, max_mb: float) -> str | None:
    ext = Path(sanitize_filename(upload.name)).suffix.lower()
    if ext not in UPLOAD_EXTENSIONS:
        return (f"type {ext or '(none)'} is not accepted; use "
                f"{', '.join(UPLOAD_EXTENSIONS)}")
    if upload.path.is_symlink() or not upload.path.is_file():
        return "not a regular file"
    size_mb = upload.path.stat().st_size / 1024 / 1024
    if size_mb > max_mb:
        return f"{size_mb:.1f} MB is over the {max_mb:g} MB upload limit"
    return None


def remove_upload(source_path: str, folder: Path) -> bool:
    """Delete an uploaded file after its document left the index (only inside ``folder``)."""
    path = Path(source_path)
    try:
        inside = path.resolve().parent == folder.resolve()
    except OSError:
        return False
    if inside and path.is_file():
        path.unlink()
        return True
    return False


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``"user:password"``, or a file with one ``user:password`` per line (``#`` comments)."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_file():
        try:
            lines: Sequence[str] = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"auth file {path}: {exc.strerror}") from exc
        where = f"auth file {path}"
    else:
        lines, where = [value], "RAG_AUTH"
    users = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"{where}: expected user:password (or a file of such lines)")
        users.append((user, password))
    if not users:
        raise ConfigError(f"{where}: no user:password lines")
    return users


def session_folder(base: Path, session: str | None) -> Path:
    """The downloads folder of one browser session: ``base/<hash of the session id>`` (the id
    comes from the browser, so it never names a folder itself)."""
    digest = hashlib.sha256((session or "no-session").encode("utf-8", "replace")).hexdigest()
    return base / digest[:24]


def write_download(folder: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``folder/<content hash>/name`` and return the path. Each content gets
    its own folder, so a browser never gets an older file from its cache under the same URL."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    target = folder / digest / sanitize_filename(name)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    return target


def remove_session_folder(base: Path, session: str | None) -> None:
    """Delete a session's downloads when its browser tab closes."""
    folder = session_folder(base, session)
    if folder.resolve().parent == base.resolve():
        shutil.rmtree(folder, ignore_errors=True)
