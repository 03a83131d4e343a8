"""The synonym table (``rag/data/synonyms.yaml``) and query expansion with it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from rag.errors import ConfigError

__all__ = ["SynonymTable", "load_synonyms"]

# Acronyms that are also English words or units match only in capitals ("ALL", not "all").
CASE_SENSITIVE = frozenset({"ALL", "OS", "LIT", "KILLER", "MM", "IFN", "IAP", "IAPS", "APO2"})


def normalize_term(term: str) -> str:
    """Lowercase; hyphens, slashes, dashes and spaces all become one space; apostrophes go
    ("non-Hodgkin's lymphoma" -> "non hodgkins lymphoma")."""
    term = re.sub(r"['\u2019]", "", term.lower())
    return " ".join(re.split(r"[\s\-\u2010-\u2015/]+", term)).strip()


@dataclass(frozen=True)
class SynonymTable:
    groups: tuple[tuple[str, ...], ...]
    _index: dict[str, int]
    _pattern: re.Pattern[str]
    _exact: re.Pattern[str]

    def canonical(self, term: str) -> str | None:
        """The canonical name for ``term``, or None when the table does not know it."""
        group = self._index.get(normalize_term(term))
        return None if group is None else self.groups[group][0]

    def group_of(self, term: str) -> tuple[str, ...]:
        group = self._index.get(normalize_term(term))
        return () if group is None else self.groups[group]

    def find(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """Names in ``text`` that the table knows, each with its whole group."""
        found: list[tuple[str, tuple[str, ...]]] = []
        seen: set[int] = set()
        stripped = re.sub(r"\.(?=\s|$)|[^\w\s\-/.κα-ω]", " ", re.sub(r"['\u2019]", "", text))
        normalized = " " + normalize_term(stripped) + " "
        hits = [m.group(1) for m in self._pattern.finditer(normalized)]
        acronyms = [m.group(1).lower() for m in self._exact.finditer(f" {stripped} ")]
        # An acronym inside a longer name already found ("IAP" in "IAP antagonist") is not a
        # name of its own.
        hits += [a for a in acronyms if not any(f" {a} " in f" {hit} " for hit in hits)]
        for hit in hits:
            group = self._index[hit]
            if group not in seen:
                seen.add(group)
                found.append((hit, self.groups[group]))
        return found

    def expand(self, text: str) -> list[str]:
        """Names to add to a search for ``text``: the other names of each name it uses."""
        extra: list[str] = []
        for _, group in self.find(text):
            extra.extend(group)
        return extra


@lru_cache(maxsize=1)
def load_synonyms() -> SynonymTable:
    raw = resources.files("rag").joinpath("data/synonyms.yaml").read_text(encoding="utf-8")
    return build_table(yaml.safe_load(raw).get("groups", []))


def build_table(groups: list[list[str]]) -> SynonymTable:
    index: dict[str, int] = {}
    clean: list[tuple[str, ...]] = []
    for number, group in enumerate(groups):
        names = tuple(str(name).strip() for name in group if str(name).strip())
        if len(names) < 2:
            raise ConfigError(f"synonym group {number} needs at least two names: {group}")
        for name in names:
            key = normalize_term(name)
            if key in index and index[key] != number:
                raise ConfigError(f"synonym {name!r} appears in two groups")
            index[key] = number
        clean.append(names)
    # CASE_SENSITIVE is upper case; names keep the table's spelling ("IAPs").
    exact = sorted(
        {n for g in clean for n in g if n.upper() in CASE_SENSITIVE}, key=len, reverse=True
    )
    folded = sorted((k for k in index if k.upper() not in CASE_SENSITIVE), key=len, reverse=True)
    pattern = re.compile(r"(?<=\s)(" + "|".join(re.escape(a) for a in folded) + r")(?=\s)")
    exact_pattern = re.compile(
        r"(?<=[\s(/])(" + "|".join(re.escape(a) for a in exact) + r")(?=[\s)/,;:?])"
    )
    return SynonymTable(tuple(clean), index, pattern, exact_pattern)
