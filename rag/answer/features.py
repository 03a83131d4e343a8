"""Features of a candidate answer sentence, for the learned sentence scorer.

Each candidate is a sentence from one of the top passages. Its features say how close it is to
the question (dense and lexical), what it adds beyond the question's own words, whether it
holds the kind of answer the question asks for (a figure, a mechanism, a name, a finding, a
conclusion), the role of its section, its neighbours, and where its passage and document rank.
The weights over these features are learned (``rag/data/answer_model.json``, trained by
``python -m rag.eval.training``) and applied here as one dot product per sentence.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.question import QuestionType, expected_cues, sentence_cues
from rag.errors import ConfigError
from rag.retrieve.hybrid import Concept
from rag.store.lexical import tokenize

__all__ = ["FEATURES", "Candidate", "SentenceModel", "feature_matrix", "is_framing",
           "load_sentence_model", "novelty_of", "question_vocabulary", "section_role"]

SECTION_ROLES = ("results", "conclusions", "discussion", "background", "methods", "other")
_ROLE_PATTERNS = (
    ("methods", re.compile(r"outcome measure|method|design|setting|patient|participant|"
                           r"subject|material|intervention|measurement|procedure|data source|"
                           r"eligib|population|^study$|sample|protocol", re.I)),
    ("results", re.compile(r"result|finding|observation|outcome", re.I)),
    ("conclusions", re.compile(r"conclu|interpret|summary|main message|take-home", re.I)),
    ("discussion", re.compile(r"discussion|implication|relevance|significance|comment|"
                              r"perspective|limitation|outlook|context", re.I)),
    ("background", re.compile(r"background|introduc|context|rationale|objective|aim|purpose|"
                              r"hypothes|importance|question", re.I)),
)

_NUMBER = re.compile(
    r"(\d+(?:[.,]\d+)?\s*(?:%|percent|per cent|-?fold|mg|µg|ug|ng|pg|g/|mg/|nm|µm|um|mm|"
    r"nmol|µmol|mol|ml|months?|weeks?|days?|hours?|h\b|min|years?|patients|cases|samples|"
    r"of \d+|x\b)|\bp\s*[<=>]\s*0?[.,]\d|\b(?:hr|or|ci|rr)\b[\s:=]*\d|\d+\s*(?:to|-|–)\s*\d+|"
    r"\b\d+(?:\.\d+)?\b(?![-/]?[a-z]))", re.I)
_NUMBER_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|hundred|half|third|quarter|twice|dozen|none|all|most|majority|minority)\b"
    r"(?=\s+(?:of|\w+(?:s|ed)\b|times|patients|tumou?rs|cases|samples|cell|lines))", re.I)
_IDENTIFIER_DIGITS = re.compile(r"\b[a-z]+[-]?\d+[a-z]?\b", re.I)  # DR5, CD34, U266, p53
_MECHANISM = re.compile(
    r"\b(because|through|via|by \w+ing|"
    r"due to|owing to|mediat\w*|depend\w*|requir\w*|block\w*|inhibit\w*|suppress\w*|"
    r"prevent\w*|loss of|lack of|lacking|absence of|express\w*|upregulat\w*|up-regulat\w*|"
    r"downregulat\w*|down-regulat\w*|recruit\w*|cleav\w*|activat\w*|degrad\w*|sequester\w*|"
    r"thereby|leading to|led to|results? in|so that|whereas|instead|bind\w*|trap\w*|"
    r"methylat\w*|silenc\w*|mutat\w*|deficien\w*|restor\w*|overexpress\w*|switch\w*)\b", re.I)
_FRAMING = re.compile(
    r"\b(asked whether|asked if|examined whether|investigated|sought to|aims? to|aimed to|"
    r"to determine|to investigate|to assess|to evaluate|to examine|to test|hypothesi[sz]ed|"
    r"was designed|were enrolled|were randomi[sz]ed|the purpose|objective of|tested whether|"
    r"set out to|we studied|was studied|were studied|this study|the study (?:examined|tested|"
    r"asked|compared|used|enrolled|included)|is unclear|remains unclear|is unknown|"
    r"remain unknown|little is known|was conducted|were analy[sz]ed|we analy[sz]ed)\b", re.I)
_RESULT = re.compile(
    r"\b(showed|shown|found|increased|decreased|reduced|improved|induced|killed|blocked|"
    r"restored|sensiti[sz]ed|resistant|higher|lower|greater|fewer|more|less|significant\w*|"
    r"correlat\w*|associated|predicted|achieved|responded|prolonged|extended|abolished|"
    r"enhanced|synergi\w*|no (?:significant )?difference|did not|was not|were not)\b", re.I)
_CONCLUSION = re.compile(
    r"\b(suggest\w*|indicat\w*|conclu\w*|demonstrat\w*|support\w*|these (?:results|findings|"
    r"data)|our (?:results|findings|data)|may be|might be|could be|appears? to|"
    r"is (?:safe|effective|feasible|associated)|are (?:safe|effective|associated))\b", re.I)
_NAME = re.compile(r"\b(?:[A-Z][A-Za-z]*\d[A-Za-z0-9-]*|[A-Z]{2,}[a-z]?|[A-Za-z]+-\d+[A-Za-z]?|"
                   r"[a-z]+(?:mab|nib|ermin|platin|rubicin|taxel|stat|zomib|clax|mide))\b")

FEATURES = (
    "dense", "dense_gap", "passage_dense", "rank_prior", "doc_rank_prior", "first_doc",
    "coverage", "coverage_gap", "asked_coverage", "doc_coverage", "prev_coverage",
    "next_coverage", "novelty", "has_number", "number_count", "mechanism_cues", "framing",
    "result_cues", "conclusion_cues", "new_names", "log_words",
    "role_results", "role_conclusions", "role_discussion", "role_background", "role_methods",
    "position", "first_in_section",
    "q_quantity", "q_mechanism", "q_entity", "q_finding", "q_yesno",
    "quantity_x_number", "mechanism_x_cues", "entity_x_names", "finding_x_results",
    "yesno_x_conclusion", "yesno_x_conclusions_role", "finding_x_results_role",
    "quantity_x_results_role", "cue_match", "cue_any", "cue_missing",
    "doc_dense_gap", "doc_coverage_gap",
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate sentence with what the features need (plain data, no index objects)."""

    text: str
    section: str
    doc_id: str
    passage_rank: int  # 0-based rank of its passage
    doc_rank: int  # 0-based rank of its document among the retrieved documents
    dense: float  # cosine of the sentence vector and the question vector
    passage_dense: float  # cosine of its passage vector and the question vector
    position: float  # start offset / document length, 0..1
    first_in_section: bool
    doc_terms: str  # title and metadata tags of its document
    prev_text: str = ""
    next_text: str = ""


def question_vocabulary(question: str, concepts: Sequence[Concept]) -> set[str]:
    """The question's tokens and every token of its concepts' synonyms: a sentence that uses
    only these adds nothing ("chronic lymphocytic leukemia" restates "CLL")."""
    known = set(tokenize(question))
    for concept in concepts:
        for alternative in concept:
            known.update(alternative)
    return known


def novelty_of(tokens: set[str], known: set[str]) -> float:
    """Share of a sentence's word tokens that the question does not already say."""
    content = [t for t in tokens if not t.isdigit()]
    return sum(t not in known for t in content) / max(1, len(content))


@lru_cache(maxsize=32_768)
def _text_facts(text: str) -> tuple[int, int, int, float, int, int, frozenset[str]]:
    """Facts of a sentence that do not depend on the question (cached: library sentences
    come back question after question)."""
    return (len(text.split()), _numbers(text), len(_MECHANISM.findall(text)),
            float(bool(_FRAMING.search(text))), len(_RESULT.findall(text)),
            len(_CONCLUSION.findall(text)),
            frozenset(m.group(0).lower() for m in _NAME.finditer(text)))


def is_framing(text: str) -> bool:
    """True for a sentence that frames a study ("X and colleagues asked whether ...")."""
    return bool(_FRAMING.search(text))


def section_role(title: str) -> str:
    """``section_role("MATERIALS AND METHODS") == "methods"``; unknown titles are "other"."""
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(title):
            return role
    return "other"


def _covered(tokens: set[str], concepts: Sequence[Concept], weights: Sequence[float]) -> float:
    total = sum(weights) or 1.0
    return sum(w for w, concept in zip(weights, concepts, strict=True)
               if any(tokens.issuperset(alt) for alt in concept)) / total


def _neighbour_coverage(text: str, by_text: dict[str, float], concepts: Sequence[Concept],
                        weights: Sequence[float]) -> float:
    """Coverage of a neighbouring sentence ("" for none). A neighbour is usually a candidate
    too, whose coverage ``by_text`` already holds."""
    if not text:
        return 0.0
    known = by_text.get(text)
    return known if known is not None else _covered(set(tokenize(text)), concepts, weights)


def _numbers(text: str) -> int:
    cleaned = _IDENTIFIER_DIGITS.sub(" ", text)
    return len(_NUMBER.findall(cleaned)) + len(_NUMBER_WORDS.findall(cleaned))


def feature_matrix(qtype: QuestionType, question: str, concepts: Sequence[Concept],
                   weights: Sequence[float], candidates: Sequence[Candidate]) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate."""
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return out
    known = question_vocabulary(question, concepts)
    q_names = {m.group(0).lower() for m in _NAME.finditer(question)}
    cues = expected_cues(question)
    # "Asked" concepts: those the document's title and tags do not already name.
    asked_concepts: dict[str, tuple[list[Concept], list[float]]] = {}
    for cand in candidates:
        if cand.doc_id not in asked_concepts:
            doc_tokens = set(tokenize(cand.doc_terms))
            topic = [any(doc_tokens.issuperset(alt) for alt in c) for c in concepts]
            pairs = [(c, w) for c, w, t in zip(concepts, weights, topic, strict=True) if not t]
            asked_concepts[cand.doc_id] = ([c for c, _ in pairs], [w for _, w in pairs])
    rows = [set(tokenize(cand.text)) for cand in candidates]
    covered = [_covered(t, concepts, weights) for t in rows]
    coverage = np.array(covered, dtype=np.float32)
    by_text = dict(zip((c.text for c in candidates), covered, strict=True))
    # A document covers what any of its candidate sentences or its title/tags cover.
    per_doc_tokens: dict[str, set[str]] = {}
    for cand, tokens in zip(candidates, rows, strict=True):
        per_doc_tokens.setdefault(cand.doc_id, set(tokenize(cand.doc_terms))).update(tokens)
    doc_coverage = {doc_id: _covered(tokens, concepts, weights)
                    for doc_id, tokens in per_doc_tokens.items()}
    dense = np.array([c.dense for c in candidates], dtype=np.float32)
    top_sentence_dense, top_coverage = float(dense.max()), coverage.max()
    doc_dense: dict[str, float] = {}
    doc_cov: dict[str, float] = {}
    for cand, cov in zip(candidates, coverage.tolist(), strict=True):
        doc_dense[cand.doc_id] = max(doc_dense.get(cand.doc_id, -1.0), cand.dense)
        doc_cov[cand.doc_id] = max(doc_cov.get(cand.doc_id, 0.0), cov)
    top_dense, top_cov = max(doc_dense.values()), max(doc_cov.values())
    for i, (cand, tokens) in enumerate(zip(candidates, rows, strict=True)):
        asked, asked_w = asked_concepts[cand.doc_id]
        novelty = novelty_of(tokens, known)
        n_words, numbers, mech, framing, result, conclusion, all_names = _text_facts(cand.text)
        names = all_names - q_names
        role = section_role(cand.section)
        matched = len(sentence_cues(cand.text, cues)) if cues else 0
        is_role = {r: float(role == r) for r in SECTION_ROLES}
        values = {
            "dense": cand.dense,
            "dense_gap": cand.dense - top_sentence_dense,
            "passage_dense": cand.passage_dense,
            "rank_prior": 1.0 / (1 + cand.passage_rank),
            "doc_rank_prior": 1.0 / (1 + cand.doc_rank),
            "first_doc": float(cand.doc_rank == 0),
            "coverage": float(coverage[i]),
            "coverage_gap": float(coverage[i] - top_coverage),
            "asked_coverage": _covered(tokens, asked, asked_w) if asked else 0.0,
            "doc_coverage": doc_coverage[cand.doc_id],
            "prev_coverage": _neighbour_coverage(cand.prev_text, by_text, concepts, weights),
            "next_coverage": _neighbour_coverage(cand.next_text, by_text, concepts, weights),
            "novelty": novelty,
            "has_number": float(numbers > 0),
            "number_count": math.log1p(numbers),
            "mechanism_cues": math.log1p(mech),
            "framing": framing,
            "result_cues": math.log1p(result),
            "conclusion_cues": math.log1p(conclusion),
            "new_names": math.log1p(len(names)),
            "log_words": math.log(max(1, n_words)),
            "role_results": is_role["results"],
            "role_conclusions": is_role["conclusions"],
            "role_discussion": is_role["discussion"],
            "role_background": is_role["background"],
            "role_methods": is_role["methods"],
            "position": cand.position,
            "first_in_section": float(cand.first_in_section),
            "q_quantity": float(qtype.quantity),
            "q_mechanism": float(qtype.mechanism),
            "q_entity": float(qtype.entity),
            "q_finding": float(qtype.finding),
            "q_yesno": float(qtype.yesno),
            "quantity_x_number": float(qtype.quantity) * float(numbers > 0),
            "mechanism_x_cues": float(qtype.mechanism) * math.log1p(mech),
            "entity_x_names": float(qtype.entity) * math.log1p(len(names)),
            "finding_x_results": float(qtype.finding) * math.log1p(result),
            "yesno_x_conclusion": float(qtype.yesno) * math.log1p(conclusion),
            "yesno_x_conclusions_role": float(qtype.yesno) * is_role["conclusions"],
            "finding_x_results_role": float(qtype.finding) * is_role["results"],
            "quantity_x_results_role": float(qtype.quantity) * is_role["results"],
            "cue_match": matched / len(cues) if cues else 0.0,
            "cue_any": float(matched > 0),
            "cue_missing": float(len(cues) - matched),
            "doc_dense_gap": doc_dense[cand.doc_id] - top_dense,
            "doc_coverage_gap": doc_cov[cand.doc_id] - top_cov,
        }
        out[i] = [values[name] for name in FEATURES]
    return out


@dataclass(frozen=True)
class SentenceModel:
    """A logistic model over :data:`FEATURES` (standardised with ``mean``/``scale``)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    meta: dict[str, Any]

    def logits(self, matrix: np.ndarray) -> np.ndarray:
        return ((matrix - self.mean) / self.scale) @ self.weights + self.bias

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(x), 6) for x in self.mean],
            "scale": [round(float(x), 6) for x in self.scale],
            "weights": [round(float(x), 6) for x in self.weights],
            "bias": round(self.bias, 6),
            "meta": self.meta,
        }


def model_from_dict(data: dict[str, Any]) -> SentenceModel:
    features = tuple(data["features"])
    if features != FEATURES:
        missing = sorted(set(FEATURES) ^ set(features))
        raise ValueError(f"the sentence model's features do not match this code: {missing}; "
                         "retrain it with `python -m rag.eval.training`")
    return SentenceModel(features, np.asarray(data["mean"], np.float32),
                         np.asarray(data["scale"], np.float32),
                         np.asarray(data["weights"], np.float32), float(data["bias"]),
                         dict(data.get("meta") or {}))


@lru_cache(maxsize=4)
def load_sentence_model(path: str | None = None) -> SentenceModel:
    """The packaged model, or the one in the JSON file ``path`` (``answer.model``)."""
    try:
        if path is None:
            raw = resources.files("rag").joinpath("data/answer_model.json").read_text(
                encoding="utf-8")
        else:
            raw = Path(path).read_text(encoding="utf-8")
        return model_from_dict(json.loads(raw))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = path or "the packaged answer model"
        raise ConfigError(f"cannot load the sentence model from {where}: {exc}") from exc
