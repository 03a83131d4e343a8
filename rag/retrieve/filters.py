"""User filters (disease, agent, evidence, topic, doc_id, year) resolved to a neutral
:class:`~rag.store.vectors.Filter` over the values stored in the index.

Disease and agent filters understand synonyms and whole words: ``disease=CLL`` matches notes
tagged "chronic lymphocytic leukemia", "ALL" never matches "small lymphocytic lymphoma", and
"Hodgkin lymphoma" never matches "non-Hodgkin lymphoma".

The evidence filter selects by study design, the level the UI shows for each document
(:func:`rag.ingest.evidence.evidence_of`): a level's key (``phase-3``) or label
("Phase 3 trial"). Other text matches the notes' own ``evidence:`` wording and selects the
levels of the notes it matches (``evidence=preclinical``). The condition names levels, which
the indexer stores with every document (PubMed records too), so it stays a handful of values
however large the library.

The resolved filter names stored values only, so every vector backend can compile it (a row
mask for numpy and FAISS, an expression for a database).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rag.errors import QueryError
from rag.ingest.evidence import EVIDENCE_LABELS, evidence_of
from rag.retrieve.synonyms import load_synonyms, normalize_term
from rag.store.vectors import META_FIELDS, Condition, Filter, meta_values

__all__ = ["FILTER_KEYS", "build_filter", "matching_docs", "year_range"]

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
        elif key == "evidence":
            wanted = value if isinstance(value, (list, tuple, set)) else [value]
            conditions.append(_evidence_condition([str(w) for w in wanted], docs))
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
    target = normalize_term(table.canonical(wanted) or wanted)
    name = normalize_term(table.canonical(stored) or stored)
    return target == name or _has_term(normalize_term(stored), target) or _has_term(name, target)


def _has_term(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as whole words, not negated.

    Whole words: "ALL" must not match "small lymphocytic lymphoma", nor "clinical" match
    "preclinical in vitro". Not negated: "Hodgkin lymphoma" must not match "non-Hodgkin
    lymphoma" (both normalised, so "non hodgkin lymphoma"), the opposite disease."""
    if not term:
        return False
    padded, needle = f" {text} ", f" {term} "
    start = padded.find(needle)
    while start >= 0:
        if not padded[:start + 1].endswith(" non "):
            return True
        start = padded.find(needle, start + 1)
    return False


def _level_key(text: str) -> str:
    return " ".join(text.lower().replace("\u2013", "-").split())


# A level by its key or its label, spelled loosely ("phase 1-2 trial" for "Phase 1–2 trial").
_LEVEL_NAMES = {**{_level_key(key): key for key in EVIDENCE_LABELS},
                **{_level_key(label): key for key, label in EVIDENCE_LABELS.items()}}


def _evidence_condition(wanted: Iterable[str], docs: Mapping[str, Any]) -> Condition:
    """Documents whose evidence level is one of those named in ``wanted``, or the level of a
    document whose own ``evidence:`` wording matches one of the other values."""
    levels: set[str] = set()
    words: list[str] = []
    for value in wanted:
        level = _LEVEL_NAMES.get(_level_key(value))
        if level is not None:
            levels.add(level)
        elif value.strip():
            words.append(value)
    worded = {v for v in _stored_values(docs, "evidence") if any(_term_matches(w, v)
                                                                 for w in words)}
    levels.update(evidence_of(record.meta).level for record in docs.values()
                  if any(str(v) in worded for v in meta_values(record.meta, "evidence")))
    if all(META_FIELDS["evidence"] in record.meta for record in docs.values()):
        return Condition("evidence", tuple(sorted(levels)))
    # An index built before levels were stored: name the documents instead.
    return Condition("doc_id", tuple(sorted(
        doc_id for doc_id, record in docs.items() if evidence_of(record.meta).level in levels)))


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
