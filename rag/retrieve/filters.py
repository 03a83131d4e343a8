"""User filters (disease, agent, evidence, topic, doc_id, year) resolved to a neutral
:class:`~rag.store.vectors.Filter` over the values stored in the index.

Disease and agent filters understand synonyms and whole words: ``disease=CLL`` matches notes
tagged "chronic lymphocytic leukemia", and "ALL" never matches "small lymphocytic lymphoma".
The resolved filter names stored values only, so every vector backend can compile it (a row
mask for numpy and FAISS, an expression for a database).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rag.errors import QueryError
from rag.retrieve.synonyms import load_synonyms, normalize_term
from rag.store.vectors import META_FIELDS, Condition, Filter, meta_values

__all__ = ["FILTER_KEYS", "build_filter", "year_range"]

FILTER_KEYS = ("disease", "agent", "evidence", "doc_id", "year", "year_min", "year_max", "topic")


def build_filter(filters: Mapping[str, Any], docs: Mapping[str, Any]) -> Filter:
    """Resolve ``filters`` against the documents' metadata (``docs``: doc_id -> record with
    ``.meta``). Raises QueryError for an unknown key or a malformed year."""
    unknown = [key for key in filters if key not in FILTER_KEYS]
    if unknown:
        raise QueryError(
            f"unknown filter {', '.join(map(repr, unknown))}; use {', '.join(FILTER_KEYS)}"
        )
    conditions: list[Condition] = []
    for key, value in filters.items():
        if value in (None, "", [], ()):
            continue
        if key == "doc_id":
            wanted = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
            conditions.append(Condition("doc_id", tuple(sorted({str(v).strip()
                                                                for v in wanted}))))
        elif key in ("year", "year_min", "year_max"):
            low, high = year_range(key, value)
            conditions.append(Condition("year", low=low, high=high))
        else:
            wanted = value if isinstance(value, (list, tuple, set)) else [value]
            stored = _stored_values(docs, META_FIELDS[key])
            matches = tuple(sorted(v for v in stored
                                   if any(_term_matches(str(w), v) for w in wanted)))
            conditions.append(Condition(key, matches))
    return Filter(tuple(conditions))


def _stored_values(docs: Mapping[str, Any], field: str) -> set[str]:
    values: set[str] = set()
    for record in docs.values():
        values.update(str(v) for v in meta_values(record.meta, field))
    return values


def _term_matches(wanted: str, stored: str) -> bool:
    table = load_synonyms()
    target = f" {normalize_term(table.canonical(wanted) or wanted)} "
    # Whole words only: "ALL" must not match "small lymphocytic lymphoma", nor "clinical"
    # match "preclinical in vitro".
    name = f" {normalize_term(table.canonical(stored) or stored)} "
    return target == name or target in f" {normalize_term(stored)} " or target in name


def year_range(key: str, value: Any) -> tuple[int, int]:
    """``("year", "2005-2015") -> (2005, 2015)``; ``("year_min", 2010) -> (2010, 9999)``."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    elif key == "year_min":
        low, high = value, 9999
    elif key == "year_max":
        low, high = 0, value
    else:
        parts = re.split(r"\s*(?:-|–|\.\.|to)\s*", str(value).strip())
        low, high = (parts[0], parts[-1]) if len(parts) == 2 else (parts[0], parts[0])
    try:
        return int(low or 0), int(high or 9999)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"year filter {value!r} must be a year or a range like 2005-2015") \
            from exc


def matching_docs(filter_: Filter, docs: Mapping[str, Any]) -> Iterable[str]:
    """Document ids that pass ``filter_``."""
    return (doc_id for doc_id, record in docs.items() if filter_.passes(doc_id, record.meta))
