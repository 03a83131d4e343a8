"""The synonym table (``rag/data/synonyms.yaml``): names of one thing, what kind of thing it
is (a disease, an agent, a molecule, a population ...) and which broader names cover it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from rag.errors import ConfigError

__all__ = ["KINDS", "SynonymTable", "build_table", "load_synonyms", "normalize_term"]

KINDS = ("molecule", "process", "agent", "disease", "population", "procedure", "regulator",
         "measure", "other")

# Acronyms that are also English words or units match only in capitals ("ALL", not "all").
CASE_SENSITIVE = frozenset({"ALL", "OS", "LIT", "KILLER", "MM", "IFN", "IAP", "IAPS", "APO2", "HR",
                            "FL", "BL", "PK", "ATO", "EMA", "BAK", "BID", "CPT"})


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
    kinds: tuple[str, ...] = ()  # kind of each group
    broader: dict[int, frozenset[int]] | None = None  # group -> broader groups (transitive)

    def kind_of(self, term: str) -> str | None:
        """``kind_of("myeloma") == "disease"``; None for names the table does not know."""
        group = self._index.get(normalize_term(term))
        return None if group is None or not self.kinds else self.kinds[group]

    def group_index(self, term: str) -> int | None:
        return self._index.get(normalize_term(term))

    def covers(self, specific: int, general: int) -> bool:
        """True when evidence about group ``specific`` also answers a question about group
        ``general`` (the same group, or a broader one: AML covers leukemia)."""
        return specific == general or general in (self.broader or {}).get(specific, frozenset())

    def canonical(self, term: str) -> str | None:
        """The canonical name for ``term``, or None when the table does not know it."""
        group = self._index.get(normalize_term(term))
        return None if group is None else self.groups[group][0]

    def group_of(self, term: str) -> tuple[str, ...]:
        group = self._index.get(normalize_term(term))
        return () if group is None else self.groups[group]

    def find(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """Names in ``text`` that the table knows, each with its whole group."""
        return [(hit, self.groups[group]) for hit, group in self.matches(text)]

    def matches(self, text: str) -> list[tuple[str, int]]:
        """Names in ``text`` that the table knows, each with its group's index; one name per
        group, in the order the groups first appear."""
        found: list[tuple[str, int]] = []
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
                found.append((hit, group))
        return found

    def groups_in(self, text: str) -> set[int]:
        """Indices of the groups that ``text`` names."""
        return {group for _, group in self.matches(text)}

    def expand(self, text: str) -> list[str]:
        """Names to add to a search for ``text``: the other names of each name it uses."""
        extra: list[str] = []
        for _, group in self.find(text):
            extra.extend(group)
        return extra


@lru_cache(maxsize=1)
def load_synonyms() -> SynonymTable:
    raw = resources.files("rag").joinpath("data/synonyms.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw) or {}
    return build_table(data.get("groups", []), broader=data.get("broader") or {})


def build_table(groups: list[list[str]] | dict[str, list[list[str]]], *,
                broader: dict[str, list[str]] | None = None) -> SynonymTable:
    """A table from a list of groups (kind "other") or a mapping of kind to groups."""
    by_kind = groups if isinstance(groups, dict) else {"other": groups}
    unknown = [kind for kind in by_kind if kind not in KINDS]
    if unknown:
        raise ConfigError(f"unknown synonym kind {unknown[0]!r}; use one of {', '.join(KINDS)}")
    index: dict[str, int] = {}
    clean: list[tuple[str, ...]] = []
    kinds: list[str] = []
    for kind, kind_groups in by_kind.items():
        for group in kind_groups or []:
            number = len(clean)
            names = tuple(str(name).strip() for name in group if str(name).strip())
            if not names or (kind == "other" and len(names) < 2):
                raise ConfigError(f"synonym group {number} needs at least two names: {group}")
            for name in names:
                key = normalize_term(name)
                if key in index and index[key] != number:
                    raise ConfigError(f"synonym {name!r} appears in two groups")
                index[key] = number
            clean.append(names)
            kinds.append(kind)
    # CASE_SENSITIVE is upper case; names keep the table's spelling ("IAPs").
    exact = sorted(
        {n for g in clean for n in g if n.upper() in CASE_SENSITIVE}, key=len, reverse=True
    )
    folded = sorted((k for k in index if k.upper() not in CASE_SENSITIVE), key=len, reverse=True)
    pattern = re.compile(r"(?<=\s)(" + "|".join(re.escape(a) for a in folded) + r")(?=\s)")
    exact_pattern = re.compile(
        r"(?<=[\s(/])(" + "|".join(re.escape(a) for a in exact) + r")(?=[\s)/,;:?])"
    )
    return SynonymTable(tuple(clean), index, pattern, exact_pattern, tuple(kinds),
                        _broader_closure(broader or {}, index))


def _broader_closure(broader: dict[str, list[str]],
                     index: dict[str, int]) -> dict[int, frozenset[int]]:
    direct: dict[int, set[int]] = {}
    for name, parents in broader.items():
        child = index.get(normalize_term(name))
        if child is None:
            raise ConfigError(f"broader: {name!r} is not a name in the synonym table")
        for parent in parents or []:
            group = index.get(normalize_term(str(parent)))
            if group is None:
                raise ConfigError(f"broader: {parent!r} is not a name in the synonym table")
            direct.setdefault(child, set()).add(group)
    closed: dict[int, frozenset[int]] = {}
    for child in direct:
        seen: set[int] = set()
        todo = list(direct[child])
        while todo:
            group = todo.pop()
            if group not in seen:
                seen.add(group)
                todo.extend(direct.get(group, ()))
        closed[child] = frozenset(seen - {child})
    return closed
