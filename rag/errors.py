"""The errors that TRAIL-RAG raises.

Every error derives from :class:`RagError`. Each message says what went wrong and, where there
is one, what to do next; the CLI and the UI print the message and never a traceback.

    RagError
    ├── ConfigError            a setting has a bad value
    ├── DocumentLoadError      one input file could not be read (the run goes on)
    ├── IndexUnusableError     the index on disk cannot be used
    │   ├── IndexNotFoundError     no index at that folder yet
    │   ├── IndexMismatchError     built with another model or splitter settings
    │   └── IndexWriteError        writing failed (disk full, permissions); the old index stays
    ├── EmptyCorpusError       nothing could be indexed
    ├── DocumentNotFoundError  no document with that id
    ├── QueryError             a question or a filter is not usable
    ├── MissingExtraError      an optional dependency is not installed
    └── FetchError             a literature fetch failed
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DocumentLoadError",
    "DocumentNotFoundError",
    "EmptyCorpusError",
    "FetchError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexUnusableError",
    "IndexWriteError",
    "MissingExtraError",
    "QueryError",
    "RagError",
]


class RagError(Exception):
    """Base class of every error raised by TRAIL-RAG."""


class ConfigError(RagError):
    """A setting (from a file, the environment or an argument) has a bad value."""


class DocumentLoadError(RagError):
    """One input could not be read; ``path`` names it and ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexUnusableError(RagError):
    """The index folder cannot be used as it is."""


class IndexNotFoundError(IndexUnusableError):
    """No index exists at the given folder."""


class IndexMismatchError(IndexUnusableError):
    """The index was built with another model, dimension or splitter settings."""


class IndexWriteError(IndexUnusableError):
    """Writing the index failed; the previous index is still in place."""


class EmptyCorpusError(RagError):
    """No input could be indexed."""


class DocumentNotFoundError(RagError):
    """No indexed document has the given id."""


class QueryError(RagError):
    """A question, query or filter cannot be used."""


class MissingExtraError(RagError):
    """An optional dependency is missing; the message names the install command."""


class FetchError(RagError):
    """Fetching from PubMed/PMC failed."""
