"""Study design of each document: an ordered evidence scale, and where a level comes from.

The scale, strongest first: meta-analysis / systematic review, phase 3, randomized phase 2,
phase 1–2, observational / biomarker, in vivo, in vitro / ex vivo, mechanism, narrative review,
unknown. The first five hold human data (:data:`CLINICAL_LEVELS`).

:func:`classify_document` tries three sources in order and keeps the first that decides:

1. **front matter**: ``evidence:`` as the library notes write it (``preclinical in vitro``,
   ``clinical phase 1``, ``phase 2`` ...), or a key or label of the scale. A ``phase 2`` note is
   a randomized phase 2 when its title, source or opening text says randomised, else a
   single-arm phase 1–2 trial; ``clinical phase 1`` is phase 1–2.
2. **publication type**: PubMed publication types (``meta["publication_types"]``), then MeSH
   terms (``meta["mesh"]``): a trial's phase comes from its type or, failing that, from its
   title and abstract; an unknown type falls through to the text rules.
3. **text**: transparent rules over the title and the opening of the text (about the abstract
   or a note's study section), in this order: meta-analysis, review, trial phase (with
   randomisation), other trial-design words, observational cues, animal work, cell work,
   and molecular mechanism.

Each decision carries a short reason naming its cue ("title says 'phase III'", "text
mentions 'xenografts', 'mice'"). Bad or missing metadata degrades to the next source and
finally to "unknown"; nothing here raises on odd values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rag.types import Document

__all__ = ["CLINICAL_LEVELS", "EVIDENCE_LABELS", "EVIDENCE_LEVELS", "EvidenceLevel",
           "classify_document", "classify_text", "evidence_label", "evidence_of",
           "evidence_rank", "phase_mentions", "trial_phases", "with_evidence"]

EVIDENCE_LEVELS: tuple[str, ...] = (
    "meta-analysis", "phase-3", "randomized-phase-2", "phase-1-2", "observational", "in-vivo",
    "in-vitro", "mechanism", "review", "unknown",
)
EVIDENCE_LABELS: dict[str, str] = {
    "meta-analysis": "Meta-analysis / systematic review",
    "phase-3": "Phase 3 trial",
    "randomized-phase-2": "Randomized phase 2",
    "phase-1-2": "Phase 1\u20132 trial",
    "observational": "Observational / biomarker",
    "in-vivo": "In vivo (animal)",
    "in-vitro": "In vitro / ex vivo",
    "mechanism": "Mechanism",
    "review": "Narrative review",
    "unknown": "Unknown",
}
CLINICAL_LEVELS: frozenset[str] = frozenset(EVIDENCE_LEVELS[:5])
LEAD_CHARS = 1500  # the opening of a text: an abstract, or a note's study section


@dataclass(frozen=True)
class EvidenceLevel:
    """A document's level on the scale, why, and from which source (``basis``: "front
    matter", "publication type" or "text")."""

    level: str
    reason: str
    basis: str

    @property
    def label(self) -> str:
        return evidence_label(self.level)


def evidence_label(level: str) -> str:
    """``evidence_label("phase-3") == "Phase 3 trial"``; an unknown key reads "Unknown"."""
    return EVIDENCE_LABELS.get(level, EVIDENCE_LABELS["unknown"])


UNKNOWN = EvidenceLevel("unknown", "no study-design cue in the metadata, title or text", "text")


def evidence_rank(level: str) -> int:
    """0 for the strongest level; unknown and invalid values rank last."""
    try:
        return EVIDENCE_LEVELS.index(level)
    except ValueError:
        return len(EVIDENCE_LEVELS) - 1


def classify_document(meta: Mapping[str, Any], title: str, text: str) -> EvidenceLevel:
    """The evidence level of one document, from its front matter, its PubMed publication
    types and MeSH terms, or its title and text, in that order.

    >>> classify_document({"evidence": "preclinical in vivo"}, "", "").level
    'in-vivo'
    >>> classify_document({}, "A phase III trial of dulanermin", "").reason
    "title says 'phase III'"
    """
    meta = meta if isinstance(meta, Mapping) else {}
    title = title if isinstance(title, str) else ""
    text = text if isinstance(text, str) else ""
    return (_from_front_matter(meta, title, text) or _from_publication_types(meta, title, text)
            or classify_text(title, text))


def evidence_of(meta: Mapping[str, Any]) -> EvidenceLevel:
    """The level stored at index time (``meta["evidence_level"]``), else one classified from
    the metadata and title alone (indexes built before levels were stored). Never raises."""
    if not isinstance(meta, Mapping):
        return UNKNOWN
    level = meta.get("evidence_level")
    if isinstance(level, str) and level in EVIDENCE_LABELS:
        reason, basis = meta.get("evidence_reason"), meta.get("evidence_basis")
        return EvidenceLevel(level, reason if isinstance(reason, str) else "",
                             basis if isinstance(basis, str) else "")
    title = meta.get("title")
    return classify_document(meta, title if isinstance(title, str) else "", "")


def with_evidence(doc: Document) -> Document:
    """``doc`` with ``evidence_level``, ``evidence_reason`` and ``evidence_basis`` in its
    metadata (what the index stores; values a file brought in itself are replaced)."""
    meta = {k: v for k, v in doc.meta.items() if not k.startswith("evidence_")}
    found = classify_document(meta, doc.title, doc.text)
    return replace(doc, meta={**meta, "evidence_level": found.level,
                              "evidence_reason": found.reason, "evidence_basis": found.basis})


# -- 1. front matter ------------------------------------------------------------------------

def _norm(value: str) -> str:
    return " ".join(value.lower().replace("\u2013", "-").replace(" / ", "/").split())


_FRONT_MATTER = {
    "review": "review", "narrative review": "review", "mechanism": "mechanism",
    "mechanistic": "mechanism", "preclinical in vitro": "in-vitro", "in vitro": "in-vitro",
    "ex vivo": "in-vitro", "preclinical ex vivo": "in-vitro", "preclinical in vivo": "in-vivo",
    "in vivo": "in-vivo", "animal": "in-vivo", "observational/biomarker": "observational",
    "observational": "observational", "biomarker": "observational",
    "meta-analysis": "meta-analysis", "systematic review": "meta-analysis",
    "randomized phase 2": "randomized-phase-2", "randomised phase 2": "randomized-phase-2",
}
_FRONT_MATTER.update({key: key for key in EVIDENCE_LEVELS})
_FRONT_MATTER.update({_norm(label): key for key, label in EVIDENCE_LABELS.items()})


def _from_front_matter(meta: Mapping[str, Any], title: str, text: str) -> EvidenceLevel | None:
    raw = meta.get("evidence")
    if isinstance(raw, list) and raw:
        raw = raw[0]
    if not isinstance(raw, str) or not raw.strip():
        return None
    value = _norm(raw)
    said = f"front matter says '{raw.strip()[:60]}'"
    level = _FRONT_MATTER.get(value)
    if level is not None:
        return EvidenceLevel(level, said, "front matter") if level != "unknown" else None
    source = meta.get("source") if isinstance(meta.get("source"), str) else ""
    context = f"{title}\n{source}\n{text[:LEAD_CHARS]}"
    phases = trial_phases(value)
    if not phases and value in ("clinical", "clinical trial", "clinical study", "trial"):
        # a trial of unstated phase: the phase the title, source or opening text names
        phases, said = trial_phases(context) or {1}, said + " (phase from the text)"
    if not phases:
        return None
    if max(phases) >= 3:
        return EvidenceLevel("phase-3", said, "front matter")
    if phases == {2}:
        cue = _RANDOMIZED.search(context)
        if cue:
            return EvidenceLevel("randomized-phase-2", f"{said}; randomized ('{cue.group(0)}')",
                                 "front matter")
        return EvidenceLevel("phase-1-2", f"{said}; no randomization stated", "front matter")
    return EvidenceLevel("phase-1-2", said, "front matter")


# -- 2. publication types and MeSH terms ----------------------------------------------------

_Names = tuple[tuple[str, tuple[str, ...]], ...]
_TYPE_LEVELS: _Names = (  # checked in order; the first match decides
    ("meta-analysis", ("meta-analysis", "systematic review", "network meta-analysis")),
    ("phase-3", ("clinical trial, phase iii", "clinical trial, phase iv")),
    ("review", ("review", "practice guideline", "guideline", "consensus development conference",
                "scoping review")),
)
_TRIAL_TYPES = ("randomized controlled trial", "clinical trial, phase ii",
                "clinical trial, phase i", "clinical trial", "controlled clinical trial",
                "adaptive clinical trial", "pragmatic clinical trial", "equivalence trial")
_OBSERVATIONAL_TYPES = ("observational study", "case reports", "clinical study")
_MESH_LEVELS: _Names = (  # observational terms count only with "Humans"
    ("observational", ("cohort studies", "retrospective studies", "prospective studies",
                       "case-control studies", "cross-sectional studies", "follow-up studies",
                       "longitudinal studies", "survival analysis", "kaplan-meier estimate")),
    ("in-vivo", ("mice", "rats", "xenograft model antitumor assays", "disease models, animal",
                 "mice, nude", "mice, scid", "mice, inbred nod", "mice, knockout",
                 "mice, transgenic", "mice, inbred c57bl", "mice, inbred balb c",
                 "heterografts", "zebrafish", "macaca fascicularis", "rats, sprague-dawley")),
    ("in-vitro", ("cell line, tumor", "cell line", "in vitro techniques", "tumor cells, cultured",
                  "cells, cultured", "hl-60 cells", "jurkat cells", "k562 cells", "u937 cells",
                  "hela cells", "hct116 cells", "a549 cells", "primary cell culture")),
)


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in items if isinstance(v, (str, int, float)) and str(v).strip()]


def _from_publication_types(meta: Mapping[str, Any], title: str,
                            text: str) -> EvidenceLevel | None:
    types = {t.lower(): t for t in _strings(meta.get("publication_types"))}
    for level, names in _TYPE_LEVELS:
        hit = next((types[n] for n in names if n in types), None)
        if hit:
            return EvidenceLevel(level, f"publication type '{hit}'", "publication type")
    trial = next((types[n] for n in _TRIAL_TYPES if n in types), None)
    if trial:
        return _trial_level(trial, types, title, text)
    observational = next((types[n] for n in _OBSERVATIONAL_TYPES if n in types), None)
    if observational:
        return EvidenceLevel("observational", f"publication type '{observational}'",
                             "publication type")
    mesh = {m.lower(): m for m in _strings(meta.get("mesh"))}
    for level, names in _MESH_LEVELS:
        if level == "observational" and "humans" not in mesh:
            continue
        hit = next((mesh[n] for n in names if n in mesh), None)
        if hit:
            return EvidenceLevel(level, f"MeSH term '{hit}'", "publication type")
    return None


def _trial_level(trial: str, types: Mapping[str, str], title: str, text: str) -> EvidenceLevel:
    """A clinical trial: its phase from the publication types, else from the title and text;
    randomized from the type "Randomized Controlled Trial" or the text."""
    said = f"publication type '{trial}'"
    randomized = "randomized controlled trial" in types
    if randomized and trial.lower() != "randomized controlled trial":
        said += " and 'Randomized Controlled Trial'"
    phases = {n for name, n in (("clinical trial, phase i", 1), ("clinical trial, phase ii", 2))
              if name in types} or trial_phases(f"{title}\n{text[:LEAD_CHARS]}")
    if phases and max(phases) >= 3:
        return EvidenceLevel("phase-3", f"{said}; text says phase {max(phases)}",
                             "publication type")
    if randomized and (not phases or phases == {2}):
        extra = "" if phases else " (phase not stated)"
        return EvidenceLevel("randomized-phase-2", said + extra, "publication type")
    if phases == {2} and _RANDOMIZED.search(f"{title}\n{text[:LEAD_CHARS]}"):
        return EvidenceLevel("randomized-phase-2", f"{said}; text says randomized",
                             "publication type")
    return EvidenceLevel("phase-1-2", said, "publication type")


# -- 3. rules over the title and the text ---------------------------------------------------

_NOT = r"(?<!\bnon-)(?<!\bnon)(?<!\bnot )(?<!\bno )(?<!\bwithout )"
_PHASE = re.compile(
    r"\bphase[\s-]*(?P<a>iv|iii|ii|i|[1-4])(?:[ab])?\b(?:\s*(?:/|-|\u2013|and|or|to)\s*"
    r"(?P<b>iv|iii|ii|i|[1-4])(?:[ab])?\b)?", re.I)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_RANDOMIZED = re.compile(_NOT + r"\b(?:randomi[sz]ed|randomi[sz]ation|placebo-controlled)\b",
                         re.I)
_TRIAL_CONTEXT = re.compile(r"\b(?:trials?|patients|enrolled|participants|dose cohorts?)\b",
                            re.I)


@dataclass(frozen=True)
class _Rule:
    level: str
    pattern: re.Pattern[str]
    needs: int = 1  # distinct cues needed in the opening text


def _rule(level: str, words: str, needs: int = 1) -> _Rule:
    return _Rule(level, re.compile(_NOT + r"\b(?:" + words + r")\b", re.I), needs)


_META = _rule("meta-analysis", r"meta-?analys[ie]s|systematic(?:ally)? review(?:ed)?|"
              r"pooled analysis of \w+ (?:trials|studies)")
_REVIEW_TITLE = _rule("review", r"reviews?|overview|state of the art|perspectives?")
_REVIEW = _rule("review", r"this review|the review|a review|narrative review|we review|"
                r"reviewed how|reviewed (?:the )?(?:literature|evidence)|"
                r"review (?:article|of (?:the )?(?:literature|recent))|overview of")
_DESIGN = _rule("phase-1-2", r"first-in-human|dose[- ]escalation|maximum tolerated dose|"
                r"dose-limiting toxicit(?:y|ies)|patients (?:were )?(?:enrolled|accrued)|"
                r"enrolled \d+ patients|open-label")
_OBSERVATIONAL = _rule(
    "observational", r"cohorts?|retrospective(?:ly)?|prospective(?:ly)?|case-control|"
    r"cross-sectional|registry|overall survival|prognos\w+|predicts? (?:shorter|longer|poor|"
    r"worse|better|inferior|survival|outcome|response)|serum|plasma levels?|polymorphisms?|"
    r"genotyp\w+|somatic mutations?|for mutations|allele frequenc\w+|at diagnosis|"
    r"healthy (?:volunteers|controls|donors)|tumou?r samples from \d+", needs=2)
_IN_VIVO = _rule("in-vivo", r"xenograft(?:s|ed)?|mice|in vivo|animal models?|rats|"
                 r"(?:mouse|murine|rat) (?:[\w-]+ ){0,2}models?|tumou?r-bearing|orthotopic|"
                 r"NOD/SCID|NSG|zebrafish|(?:cynomolgus|rhesus) monkeys|nonhuman primates")
_IN_VITRO = _rule("in-vitro", r"cell lines?|in vitro|ex vivo|cultured|in culture|cultures|"
                  r"co-culture|culture (?:supernatants|medium)|viability|blasts|PBMCs?|"
                  r"patient samples|peripheral blood mononuclear cells|"
                  r"primary (?:[\w+-]+ ){0,4}(?:cells|blasts|samples)|"
                  r"[A-Z][A-Za-z]*-?\d+[A-Za-z0-9]* cells|Jurkat|HeLa|K562|HL-60")
_MECHANISM = _rule("mechanism", r"crystal structure|x-ray|structural basis|"
                   r"co-?immunoprecipitat\w+|DISC|death-inducing signal(?:l)?ing complex|"
                   r"adaptor|recruit(?:s|ed|ment)?|endocytosis|internali[sz]\w+|"
                   r"signal(?:l)?ing pathways?|binds|binding partners?", needs=2)
_SAME_CUE = {"death-inducing signaling complex": "disc", "x-ray": "crystal structure",
             "peripheral blood mononuclear cells": "pbmc", "pbmcs": "pbmc"}
_THERAPY = re.compile(r"\b(?:sensiti[sz]\w+|synerg\w+|combin\w+|inhibitors?|drugs?|therap\w+|"
                      r"patients?|blasts|leuk\w+mia|lymphomas?|myeloma|treat\w+)\b", re.I)


def classify_text(title: str, text: str) -> EvidenceLevel:
    """The level from the title and the opening of the text alone, with its reason."""
    lead = text[:LEAD_CHARS]
    for rule in (_META, _REVIEW_TITLE):
        hit = _first(rule.pattern, title)
        if hit:
            return EvidenceLevel(rule.level, f"title says '{hit}'", "text")
    for rule in (_META, _REVIEW):
        hit = _first(rule.pattern, lead)
        if hit:
            return EvidenceLevel(rule.level, f"text mentions '{hit}'", "text")
    phased = _phase_level(title, "title says") or (
        _phase_level(lead, "text mentions") if _TRIAL_CONTEXT.search(lead) else None)
    if phased:
        return phased
    for rule in (_DESIGN, _OBSERVATIONAL, _IN_VIVO):
        found = _decides(rule, title, lead)
        if found:
            return found
    mechanism = _cues(_MECHANISM.pattern, f"{title}\n{lead}")
    therapy = _cues(_THERAPY, f"{title}\n{lead}")
    if len(mechanism) >= _MECHANISM.needs and len(mechanism) >= len(therapy):
        return EvidenceLevel("mechanism", _mentions(mechanism), "text")
    found = _decides(_IN_VITRO, title, lead)
    if found:
        return found
    if len(mechanism) >= 1:
        return EvidenceLevel("mechanism", _mentions(mechanism), "text")
    return UNKNOWN


def _decides(rule: _Rule, title: str, lead: str) -> EvidenceLevel | None:
    """A rule's level when the title names one of its cues (rules needing one cue) or the
    title and the opening text name enough distinct ones."""
    hit = _first(rule.pattern, title)
    if hit and rule.needs == 1:
        return EvidenceLevel(rule.level, f"title says '{hit}'", "text")
    cues = _cues(rule.pattern, f"{title}\n{lead}")
    if len(cues) >= rule.needs:
        return EvidenceLevel(rule.level, _mentions(cues), "text")
    return None


def _phase_level(text: str, where: str) -> EvidenceLevel | None:
    match = _PHASE.search(text)
    if not match:
        return None
    phases = trial_phases(text)
    said = f"{where} '{match.group(0)}'"
    if max(phases) >= 3:
        return EvidenceLevel("phase-3", said, "text")
    randomized = _RANDOMIZED.search(text) if max(phases) == 2 else None
    if randomized:
        return EvidenceLevel("randomized-phase-2", f"{said} and '{randomized.group(0)}'", "text")
    return EvidenceLevel("phase-1-2", said, "text")


def phase_mentions(text: str) -> list[tuple[str, frozenset[int]]]:
    """Each trial phase named in ``text``, as written and as numbers:
    ``"a phase Ib/II trial"`` -> ``[("phase Ib/II", {1, 2})]``. The numeral must end a word,
    so "phase is" or "phase in" names no phase."""
    return [(match.group(0), frozenset(_ROMAN.get(part.lower()) or int(part)
                                       for part in match.group("a", "b") if part))
            for match in _PHASE.finditer(text)]


def trial_phases(text: str) -> set[int]:
    """Trial phases named in ``text``: ``"phase Ib/II"`` -> {1, 2}."""
    return {n for _, phases in phase_mentions(text) for n in phases}


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(0) if match else None


def _cues(pattern: re.Pattern[str], text: str) -> list[str]:
    """Distinct cues in order of first appearance (case-insensitive; a name and its
    abbreviation count once)."""
    seen: dict[str, str] = {}
    for match in pattern.finditer(text):
        key = match.group(0).lower().replace("signalling", "signaling")
        seen.setdefault(_SAME_CUE.get(key, key), match.group(0))
    return list(seen.values())


def _mentions(cues: Iterable[str]) -> str:
    shown = [f"'{c}'" for c in list(cues)[:3]]
    return "text mentions " + ", ".join(shown)
