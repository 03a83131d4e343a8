"""TRAIL-RAG: cited answers about TRAIL resistance and TRAIL-based therapy in blood cancers.

>>> from rag import RAG
>>> rag = RAG.open("index")                                   # doctest: +SKIP
>>> answer = rag.ask("Why are primary CLL cells resistant to TRAIL?")  # doctest: +SKIP
"""

from __future__ import annotations

from rag.errors import (
    ConfigError,
    DocumentLoadError,
    DocumentNotFoundError,
    EmptyCorpusError,
    FetchError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexUnusableError,
    IndexWriteError,
    MissingExtraError,
    QueryError,
    RagError,
)
from rag.facade import RAG
from rag.settings import Settings, load_settings
from rag.types import (
    Answer,
    Chunk,
    Citation,
    ConstraintCoverage,
    Document,
    IndexReport,
    Passage,
    Section,
    SkippedFile,
)

__version__ = "0.1.0"

__all__ = [
    "RAG",
    "Answer",
    "Chunk",
    "Citation",
    "ConfigError",
    "ConstraintCoverage",
    "Document",
    "DocumentLoadError",
    "DocumentNotFoundError",
    "EmptyCorpusError",
    "FetchError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexReport",
    "IndexUnusableError",
    "IndexWriteError",
    "MissingExtraError",
    "Passage",
    "QueryError",
    "RagError",
    "Section",
    "Settings",
    "SkippedFile",
    "load_settings",
]
