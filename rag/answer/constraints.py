"""The parts of a question that evidence must match: its disease, agent, molecule, population,
trial phase, measure, and names the library has never seen.

An answer about dulanermin in lung cancer does not answer a question about dulanermin in AML.
:func:`find_constraints` reads a question's constraints with the synonym table (so "AML" and
"acute myeloid leukaemia" are one constraint) and a few patterns (trial phase, unknown names);
:func:`check_coverage` decides, document by document, which constraints the evidence covers.
The constraints that a question fixes to one value (one disease, one agent ...) must be covered
by the same document as each other constraint: a trial of the agent in another disease is not
evidence for the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.ingest.evidence import phase_mentions, trial_phases
from rag.retrieve.synonyms import SynonymTable, load_synonyms
from rag.store.lexical import tokenize

__all__ = ["KEY_KINDS", "Constraint", "Coverage", "DocEvidence", "check_coverage",
           "closest_doc", "covered_by", "doc_evidence", "find_constraints"]

# Kinds a supported answer must cover. Processes (apoptosis ...) and "other" words only widen
# the search; "name" constraints (names the library knows, not in the synonym table) only
# steer which document the answer starts in.
KEY_KINDS = ("disease", "agent", "molecule", "population", "procedure", "regulator", "phase",
             "measure", "term")
# A word the library has never seen counts as a constraint when it looks like a name: it has a
# digit (JAK2, V617F), a capital inside it (lncRNA) or is capitalised mid-sentence (Budd-Chiari).
_NAMEISH = re.compile(r"^(?:[A-Za-z]*\d[\w-]*|[a-z]+[A-Z][\w-]*|[A-Z][\w-]+)$")
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
_NAME = re.compile(r"^(?:[A-Za-z]*\d[A-Za-z\d]*|[a-z]+[A-Z]\w*|[A-Z]{3,}[a-z]?)$")
# Drug names by their INN stems (-mab antibodies, -nib kinase inhibitors, -ermin TRAIL
# ligands ...), so that an agent the synonym table does not list is still a constraint.
_DRUG = re.compile(r"\b[a-z]{3,}(?:mab|nib|ermin|zomib|toclax|lisib|ciclib|parib|platin|"
                   r"rubicin|taxel|tecan|mustine|citabine|darabine|inostat|lidomide|"
                   r"methasone)\b", re.I)


@dataclass(frozen=True, slots=True)
class Constraint:
    """One part of a question. ``group`` is its synonym group (None for phases and terms)."""

    kind: str
    label: str
    group: int | None = None
    phases: frozenset[int] = frozenset()
    token: str = ""  # the stemmed token of a "term" constraint


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether the evidence covers one constraint, and which document does."""

    constraint: Constraint
    covered: bool
    doc_id: str | None = None


@dataclass(frozen=True, slots=True)
class DocEvidence:
    """What one document offers to constraint checks."""

    doc_id: str
    groups: frozenset[int]
    phases: frozenset[int]
    tokens: frozenset[str]


def find_constraints(question: str, *, is_unseen: Callable[[str], bool] | None = None,
                     table: SynonymTable | None = None) -> list[Constraint]:
    """The question's constraints, in the order they appear.

    ``is_unseen(token)`` says whether a stemmed token never occurs in the library; such
    name-like words become "term" constraints that no document can cover.
    """
    table = table or load_synonyms()
    found: list[Constraint] = []
    covered_tokens: set[str] = set()
    for hit, group in table.matches(question):  # one name per group
        kind = table.kinds[group] if table.kinds else "other"
        covered_tokens.update(tokenize(hit))
        if kind in KEY_KINDS:
            found.append(Constraint(kind, _label(question, hit, table.groups[group][0]), group))
    for match in _DRUG.finditer(question):
        tokens = tokenize(match.group(0))
        if tokens and not covered_tokens.issuperset(tokens):
            covered_tokens.update(tokens)
            found.append(Constraint("agent", match.group(0), token=tokens[0]))
    # Questions and documents read trial phases the same way (so "phase in" is no phase).
    for written, phases in phase_mentions(question):
        found.append(Constraint("phase", written, phases=phases))
        covered_tokens.update(tokenize(written))
    if is_unseen is not None:
        words = _WORD.findall(question)
        # In a question written in capitals, capitals say nothing: only a digit marks a name.
        shouting = not any(c.islower() for c in question)
        for position, word in enumerate(words):
            if (position == 0 or shouting) and not re.search(r"\d|[a-z][A-Z]", word):
                continue  # a capital at the start is grammar, not a name
            if not _NAMEISH.match(word) or len(word) < 4:
                continue
            tokens = tokenize(word)
            # A compound ("TRAIL-triggered") is new only if one of its parts is.
            parts = tokens[1:] if len(tokens) > 1 else tokens
            new = [t for t in parts if not t.isdigit() and is_unseen(t)]
            if new and not covered_tokens.issuperset(new):
                covered_tokens.update(new)
                found.append(Constraint("term", word, token=new[0]))
            elif not new and _is_name(word) and not covered_tokens.issuperset(tokens):
                # A name the library knows (PDBu, KMTR2): not a reason to refuse, but the
                # answer should come from a document that uses it.
                covered_tokens.update(tokens)
                found.append(Constraint("name", word, token=tokens[0]))
    return found


def _is_name(word: str) -> bool:
    """``PDBu``, ``KMTR2``, ``lncRNA``, ``ABT-737``: every part of it looks like a name (so
    ``TRAIL-triggered`` is not one)."""
    parts = [p for p in re.split(r"[-/]", word) if p]
    return bool(parts) and all(p.isdigit() or _NAME.match(p) for p in parts) and \
        not all(p.isdigit() for p in parts)


def _label(question: str, hit: str, canonical: str) -> str:
    """The constraint as the question wrote it ("acute myeloid leukaemia", not "AML")."""
    pattern = r"[\s\-/]+".join(re.escape(part) for part in hit.split())
    match = re.search(pattern, question, re.I)
    return match.group(0) if match else canonical


def doc_evidence(doc_id: str, texts: Iterable[str], meta: Mapping[str, Any], *,
                 table: SynonymTable | None = None) -> DocEvidence:
    """Synonym groups, trial phases and tokens that a document's text and metadata name."""
    table = table or load_synonyms()
    parts = [str(meta.get("title") or "")]
    for key in ("diseases", "agents", "mesh", "keywords", "publication_types", "topics"):
        value = meta.get(key) or []
        parts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    parts.extend(texts)
    text = "\n".join(parts)
    groups = frozenset(table.groups_in(text))
    # The library notes' study design ("clinical phase 1") names a phase too.
    phases = trial_phases(text) | trial_phases(str(meta.get("evidence") or ""))
    return DocEvidence(doc_id, groups, frozenset(phases), frozenset(tokenize(text)))


def _covers(doc: DocEvidence, constraint: Constraint, table: SynonymTable) -> bool:
    if constraint.kind == "phase":
        return bool(doc.phases & constraint.phases)
    if constraint.kind in ("term", "name") or (constraint.group is None and constraint.token):
        return constraint.token in doc.tokens
    group = constraint.group
    return group is not None and any(table.covers(g, group) for g in doc.groups)


def check_coverage(constraints: Sequence[Constraint], docs: Sequence[DocEvidence], *,
                   table: SynonymTable | None = None) -> list[Coverage]:
    """Coverage of each constraint by ``docs`` (best first).

    A constraint counts as covered by a document only when that document also covers every
    constraint of another kind that the question fixes to a single value. Several values of
    one kind ("dulanermin or aponermin") may be covered by different documents.
    """
    table = table or load_synonyms()
    counts: dict[str, int] = {}
    for c in constraints:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    single = [c for c in constraints if counts[c.kind] == 1]
    out: list[Coverage] = []
    for constraint in constraints:
        context = [s for s in single if s.kind != constraint.kind]
        doc_id = next((d.doc_id for d in docs
                       if _covers(d, constraint, table)
                       and all(_covers(d, s, table) for s in context)), None)
        out.append(Coverage(constraint, doc_id is not None, doc_id))
    return out


def closest_doc(constraints: Sequence[Constraint], docs: Sequence[DocEvidence], *,
                table: SynonymTable | None = None) -> DocEvidence | None:
    """The document that covers the most constraints (the first one on a tie)."""
    table = table or load_synonyms()
    best, best_count = None, -1
    for doc in docs:
        count = sum(_covers(doc, c, table) for c in constraints)
        if count > best_count:
            best, best_count = doc, count
    return best


def covered_by(doc: DocEvidence, constraint: Constraint,
               table: SynonymTable | None = None) -> bool:
    return _covers(doc, constraint, table or load_synonyms())
