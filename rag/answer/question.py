"""What a question asks for: its answer type and the cue words behind it.

The answer composer scores sentences by how well they answer, and the kind of answer depends on
the question: a figure for "how many / what response rate", a mechanism for "why / how does",
a name for "which agent / which cell lines", a finding for "what did X show", a conclusion for
a yes/no question. The cue lists are general English and biomedical reporting language, not
tuned to any question set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ANSWER_CUES", "QuestionType", "classify_question", "expected_cues", "sentence_cues"]

_QUANTITY = re.compile(
    r"\b(how (many|much|long|often|high|low|large|fast|frequent(ly)?)|"
    r"what (percentage|proportion|fraction|share|dose|doses|dosage|rate|number|level|"
    r"concentration|amount|size|duration)|"
    r"percent(age)?|proportion|rate|rates|ratio|median|mean|average|half[- ]life|dose|doses|"
    r"dosage|affinity|ic50|ec50|kd|orr|pfs|os|survival|hazard|incidence|frequency|duration|"
    r"number of|mtd|maximum tolerated|response|responses|how fast|time to|months|weeks|"
    r"fold|odds|risk|yield|accuracy|sensitivity|specificity|efficacy|how large|how big|"
    r"how (sensitive|effective|potent|active|toxic|common|frequent|strong|well|safe|"
    r"quickly|rapidly|durable)|what fraction|size|allocat\w*|randomi[sz]ed|enrol\w*|"
    r"toxicit\w*|concentration|level|levels|count|counts)\b", re.I)
_MECHANISM = re.compile(
    r"(^|\b)(why|how (does|do|did|is|are|was|were|can|could|might)|mechanism|mechanisms|"
    r"mechanistic|explain|explains|cause|causes|caused|through what|by what|what makes|"
    r"basis|pathway|pathways|mediate|mediates|underlie|underlies|drive|drives|"
    r"resist|resistance|confer|confers|protect|protects|sensiti[sz]e|sensiti[sz]es)\b", re.I)
_ENTITY = re.compile(
    r"^\s*(which|name|list|identify|what (\w+[- ]){0,3}(agent|agents|drug|drugs|gene|genes|"
    r"protein|proteins|receptor|receptors|cell|cells|line|lines|kinase|antibody|antibodies|"
    r"inhibitor|inhibitors|molecule|marker|markers|compound|mutation|mutations|factor|"
    r"factors|enzyme|ligand|combination|partner|target|targets|mirna|microrna|type|types))\b",
    re.I)
_FINDING = re.compile(
    r"\b(show|shows|showed|shown|find|finds|found|result|results|outcome|outcomes|effect|"
    r"effects|benefit|improve|improved|demonstrate|demonstrated|report|reported|reveal|"
    r"revealed|impact|activity|compare|compared|versus|vs)\b", re.I)
_YESNO = re.compile(
    r"^\s*(is|are|was|were|does|do|did|can|could|should|will|would|has|have|had|may|might)\b",
    re.I)


@dataclass(frozen=True, slots=True)
class QuestionType:
    """Flags for the kinds of answer a question asks for (several may hold at once)."""

    quantity: bool
    mechanism: bool
    entity: bool
    finding: bool
    yesno: bool


def classify_question(question: str) -> QuestionType:
    """``classify_question("What was the ORR with aponermin?").quantity`` is True."""
    text = " ".join(question.split())
    return QuestionType(
        quantity=bool(_QUANTITY.search(text)),
        mechanism=bool(_MECHANISM.search(text)),
        entity=bool(_ENTITY.search(text)),
        finding=bool(_FINDING.search(text)),
        yesno=bool(_YESNO.search(text)),
    )


# Answer cues: when a question matches the left pattern, a sentence that answers it usually
# matches the right one (the answer-type matching of classic question answering). A question may
# expect several cues ("how large was the trial and how were patients allocated": a count and
# an allocation), and the composer tries to cover each.
_N = r"\d+(?:[.,]\d+)?"
ANSWER_CUES: dict[str, tuple[str, str]] = {
    "share": (
        r"\b(share|percentage|percent|proportion|fraction|how often|how frequent\w*|frequency|"
        r"incidence|prevalence|how common|what rate|rate of|rates of|how many of)\b",
        rf"{_N}\s*%|\bpercent\b|\b{_N}\s+(?:of|out of)\s+(?:the\s+)?{_N}\b|\b{_N}/{_N}\b|"
        r"\b(?:half|a third|one third|two thirds|a quarter|majority|minority|most|few|none|"
        r"every|all)\b"),
    "count": (
        r"\b(how many|number of|how large|how big|size of|sample size|enrol\w*|cohort|"
        r"how much treatment)\b",
        rf"\b{_N}\s+(?:\w+\s+){{0,3}}(?:patients|cases|samples|subjects|participants|"
        r"tumou?rs|lines|mice|people|adults|children|doses|cycles|biopsies|blasts|donors)\b|"
        rf"\bn\s*=\s*{_N}|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
        r"fifteen|twenty|thirty|forty|fifty|nineteen|hundred)\b(?:\s+\w+){0,2}\s+"
        r"(?:patients|cases|samples|tumou?rs|lines|mice|subjects|doses)\b|\benrolled\b|"
        rf"\b{_N}\s+(?:of|out of)\s+{_N}\b"),
    "duration": (
        r"\b(how long|duration|median (?:overall |progression[- ]free )?survival|half[- ]life|"
        r"time to|follow[- ]up|how quickly|how fast|how rapidly|months|weeks|pfs|os)\b",
        rf"\b{_N}\s*(?:months?|weeks?|days?|hours?|h|min|minutes|years?)\b|half[- ]life"),
    "dose": (
        r"\b(dose|doses|dosage|dosing|schedule|regimen|mg|how much .{0,40}"
        r"(?:given|receive\w*|administ\w*)|concentration|concentrations|dose levels?)\b",
        rf"\b{_N}\s*(?:[-–]\s*{_N}\s*)?(?:mg|µg|μg|ug|ng|g|mcg|iu|u)\b(?:\s*/\s*(?:kg|m2|m²|ml|"
        r"l|day|d))?|\bevery\s+\d+\s+(?:days|weeks|hours)\b|\b(?:weekly|daily|once|twice)\b|"
        r"\bdays?\s+\d+\s*(?:[-–]|to|and)\s*\d+\b|\bcycles?\b|\bintravenous\w*|\bi\.v\.|"
        r"\binfus\w*"),
    "potency": (
        r"\b(affinity|kd|ic50|ec50|potency|potent|binding strength|how strongly)\b",
        rf"\b{_N}\s*(?:nm|pm|µm|μm|mm|nmol|µmol)\b|\b(?:kd|ic50|ec50)\b|\baffinity\b"),
    "response": (
        r"\b(response rate|orr|overall response|responses?|efficacy|activity|benefit|"
        r"how effective|respond\w*|remission|clinical activity)\b",
        r"\b(?:respon\w+|remission|complete response|partial response|stable disease|orr|"
        r"objective|mixed response|clinical benefit|cr|pr|ncr|vgpr)\b"),
    "survival": (
        r"\b(survival|outcome|outcomes|prognos\w*|os|pfs|relapse|mortality|death|live longer)\b",
        r"\b(?:survival|prognos\w*|outcome|relapse\w*|died|death|mortality|hazard|hr|pfs|os|"
        r"event-free)\b"),
    "safety": (
        r"\b(toxic\w*|safety|safe|adverse|side effects?|tolerab\w*|tolerated|hepatotox\w*|"
        r"liver (?:injury|damage|toxicity)|dlt|mtd|dose[- ]limiting|maximum tolerated)\b",
        r"\b(?:toxicit\w*|adverse|grade\s*[1-5]|tolerat\w*|dose-limiting|dlts?|mtd|"
        r"hepatotox\w*|alt|ast|transaminase\w*|liver|safe\w*|well tolerated|no mtd)\b"),
    "mechanism": (
        r"(?:^|\b)(why|how (?:does|do|did|is|are|was|were|can|could|might)|mechanism\w*|"
        r"explain\w*|cause\w*|through what|by what|what makes|basis|how .{0,40}(?:engage|"
        r"work|act|kill|block|protect|resist|sensiti[sz]e|damage|control|regulate))\b",
        r"\b(?:because|through|via|due to|owing to|mediat\w+|depend\w+|requir\w+|block\w*|"
        r"inhibit\w*|suppress\w*|prevent\w*|loss of|lack\w*|absence|express\w*|"
        r"(?:up|down)-?regulat\w+|recruit\w*|cleav\w*|activat\w+|degrad\w+|sequester\w*|"
        r"thereby|leading to|led to|result\w* in|so that|bind\w*|trap\w*|methylat\w+|"
        r"silenc\w+|mutat\w+|deficien\w+|restor\w+|overexpress\w+|switch\w*|by \w+ing)\b"),
    "location": (
        r"\b(where|which (?:domain|region|part|site|compartment|exon)|locali[sz]\w*|located|"
        r"fall|cluster)\b",
        r"\b(?:in the|within|inside|domains?|regions?|nucle\w+|membrane|surface|cytoplasm\w*|"
        r"chromosom\w+|locus|exons?|sites?|lipid rafts?|compartment)\b"),
    "comparison": (
        r"\b(versus|vs\.?|compared?|comparison|differ\w*|difference|distinguish\w*|contrast|"
        r"than|better|worse|more|less|relative to|or only|rather than)\b",
        r"\b(?:than|whereas|while|versus|vs|compared|similar\w*|differ\w*|unlike|but|"
        r"only|more|less|higher|lower|greater|fewer|both|neither|same)\b"),
    "example": (
        r"\b(examples?|which|name|list|such as|what (?:\w+[- ]){0,3}(?:cells?|agents?|drugs?|"
        r"genes?|proteins?|receptors?|lines?|antibod\w+|inhibitors?|molecules?|markers?|"
        r"compounds?|mutations?|factors?|enzymes?|types?|kinases?|partners?|targets?))\b",
        r"\b(?:such as|including|e\.g\.|for example|namely|like)\b|\([^)]{2,40}\)|"
        r"\b[A-Z][A-Za-z]*\d[\w-]*|\b[A-Z]{2,}\b"),
    "definition": (
        r"^\s*(what (?:is|are|was|were) (?:a |an |the )?\w+(?:[- ]\w+)?\??$|define|describe)",
        r"\b(?:is an?|are|refers to|known as|also called|consists? of|a \w+ (?:that|which))\b"),
    "year": (
        r"\b(when|what year|which year|approv\w*|first (?:approved|reported|described))\b",
        r"\b(?:19|20)\d\d\b|\b(?:january|february|march|april|may|june|july|august|september|"
        r"october|november|december)\b|\bapprov\w*"),
    "model": (
        r"\b(which cell lines?|what model|which model|in which (?:cells|mice|patients)|"
        r"cell lines?|xenograft|in vivo|in vitro|animal)\b",
        r"\b(?:cell lines?|lines?|mice|xenograft\w*|primary|samples|in vivo|in vitro|"
        r"ex vivo|patients|[A-Z]{1,4}-?\d{1,4}[A-Za-z]?)\b"),
    "effect": (
        r"^\s*(?:does|do|did|can|could|is|are|was|were|will|would)\b.{0,120}\b(?:increase|"
        r"decrease|improve|reduce|enhance|block|sensiti[sz]e|kill|protect|prime|raise|lower|"
        r"restore|overcome|predict|affect|change|alter|help|work|harm|impair)\w*",
        r"\b(?:increas\w+|decreas\w+|improv\w+|reduc\w+|enhanc\w+|block\w*|sensiti[sz]\w+|"
        r"kill\w*|protect\w*|rais\w+|lower\w*|restor\w+|overc\w+|predict\w*|did not|"
        r"no (?:significant )?(?:effect|difference|change)|unchanged|synerg\w+|impair\w*)\b"),
}
_CUE_RES = {name: (re.compile(q, re.I | re.M), re.compile(s, re.I))
            for name, (q, s) in ANSWER_CUES.items()}


def expected_cues(question: str) -> tuple[str, ...]:
    """Answer cues a question asks for, e.g. ``("share", "survival")`` for "What share of
    AML patients show high DcR1, and what does that mean for outcome?"."""
    text = " ".join(question.split())
    return tuple(name for name, (q, _) in _CUE_RES.items() if q.search(text))


def sentence_cues(sentence: str, cues: tuple[str, ...]) -> frozenset[str]:
    """Which of ``cues`` a sentence carries."""
    return _all_cues(sentence) & frozenset(cues)


@lru_cache(maxsize=32_768)
def _all_cues(sentence: str) -> frozenset[str]:
    # Library sentences come back question after question; their cues never change.
    return frozenset(name for name, (_, pattern) in _CUE_RES.items() if pattern.search(sentence))
