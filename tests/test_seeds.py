"""Validate the evidence notes in seeds/ (front matter, body, uniqueness, topic coverage).

Run: python -m pytest tests/test_seeds.py -q
Uses only pyyaml and the standard library.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = PROJECT_ROOT / "seeds"
TOPIC_MAP = PROJECT_ROOT.parent / "shared" / "corpus" / "topics.md"

# Markdown files in seeds/ (and sub-folders) are notes, except README.md (any case) and hidden
# files/folders -- the same files the indexer loads as Markdown.
NOTE_SUFFIXES = (".md", ".markdown")


def _is_note(path: Path) -> bool:
    rel = path.relative_to(SEEDS_DIR)
    return (
        path.is_file()
        and path.suffix.lower() in NOTE_SUFFIXES
        and not any(part.startswith(".") for part in rel.parts)
        and path.name.lower() != "readme.md"
    )


MIN_NOTES = 90
MIN_TOPIC_KEYS = 90
MIN_BODY_WORDS = 150
MAX_BODY_WORDS = 400
YEAR_MIN, YEAR_MAX = 1950, 2026

ALLOWED_EVIDENCE = {
    "review",
    "mechanism",
    "preclinical in vitro",
    "preclinical in vivo",
    "clinical phase 1",
    "phase 2",
    "phase 3",
    "observational/biomarker",
}

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")
PMID_RE = re.compile(r"^[0-9]+$")
FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)

# "## Part N" headings; "#### N. title" (parts 1, 2) and "#### TNN. title" (part 3).
PART_RE = re.compile(r"^##\s+Part\s+(\d+)\b")
H2_RE = re.compile(r"^##\s")
NUM_TOPIC_RE = re.compile(r"^####\s+(\d+)\.\s")
T_TOPIC_RE = re.compile(r"^####\s+T(\d+)\.\s")
FENCE_RE = re.compile(r"^\s*(```|~~~)")

NOTE_FILES = sorted(p for p in SEEDS_DIR.rglob("*") if _is_note(p))


# --------------------------------------------------------------------------- helpers


def split_note(path: Path) -> tuple[object, str]:
    """Return (parsed front matter, body). Raises AssertionError with a readable message."""
    text = path.read_text(encoding="utf-8")
    m = FRONT_MATTER_RE.match(text)
    assert m, f"{path.name}: no YAML front matter between leading '---' lines"
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:  # pragma: no cover - message path
        raise AssertionError(f"{path.name}: front matter is not valid YAML: {exc}") from exc
    return meta, m.group(2)


def load_meta(path: Path) -> dict:
    meta, _ = split_note(path)
    assert isinstance(meta, dict), (
        f"{path.name}: front matter is not a mapping (got {type(meta).__name__})"
    )
    return meta


def safe_meta(path: Path) -> dict:
    """Front matter for cross-note tests; per-note tests report parse errors separately."""
    try:
        return load_meta(path)
    except AssertionError:
        return {}


def normalise_source(source: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", source.casefold()).split())


def parse_topic_map(path: Path) -> list[str]:
    keys: list[str] = []
    part: int | None = None
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = PART_RE.match(line)
        if m:
            part = int(m.group(1))
            continue
        if H2_RE.match(line):  # any other level-2 heading ends the current part
            part = None
            continue
        if part in (1, 2):
            m = NUM_TOPIC_RE.match(line)
            if m:
                keys.append(f"p{part}-{int(m.group(1)):02d}")
        elif part == 3:
            m = T_TOPIC_RE.match(line)
            if m:
                keys.append(f"p3-{int(m.group(1)):02d}")
    return keys


def topic_map_keys() -> list[str]:
    if not TOPIC_MAP.is_file():
        pytest.fail(
            f"topic map not found at {TOPIC_MAP} (expected ../shared/corpus/topics.md "
            "relative to the project root); topic coverage cannot be checked"
        )
    return parse_topic_map(TOPIC_MAP)


def note_param(paths):
    return pytest.mark.parametrize(
        "path", paths, ids=[p.relative_to(SEEDS_DIR).as_posix() for p in paths]
    )


# --------------------------------------------------------------------------- per-note tests


def test_enough_notes():
    assert len(NOTE_FILES) >= MIN_NOTES, (
        f"expected at least {MIN_NOTES} notes in seeds/, found {len(NOTE_FILES)}"
    )


@note_param(NOTE_FILES)
def test_front_matter_is_mapping(path):
    load_meta(path)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


@note_param(NOTE_FILES)
def test_required_fields(path):
    meta = load_meta(path)
    problems = []
    for field in ("id", "title", "source", "evidence"):
        if field not in meta:
            problems.append(f"missing {field!r}")
        elif not isinstance(meta[field], str) or not meta[field].strip():
            problems.append(f"{field!r} must be a non-empty string, got {meta[field]!r}")
    year = meta.get("year")
    if "year" not in meta:
        problems.append("missing 'year'")
    elif not isinstance(year, int) or isinstance(year, bool) or not YEAR_MIN <= year <= YEAR_MAX:
        problems.append(f"'year' must be an int in {YEAR_MIN}..{YEAR_MAX}, got {year!r}")
    for field in ("diseases", "agents"):
        if field not in meta:
            problems.append(f"missing {field!r}")
        elif not _is_str_list(meta[field]):
            problems.append(f"{field!r} must be a list of strings, got {meta[field]!r}")
    topics = meta.get("topics")
    if "topics" not in meta:
        problems.append("missing 'topics'")
    elif not _is_str_list(topics) or not topics:
        problems.append(f"'topics' must be a non-empty list of strings, got {topics!r}")
    if not any(meta.get(k) for k in ("pmid", "doi", "url")):
        problems.append("needs at least one of pmid / doi / url")
    assert not problems, f"{path.name}: " + "; ".join(problems)


@note_param(NOTE_FILES)
def test_id_is_slug_matching_file_name(path):
    meta = load_meta(path)
    note_id = meta.get("id")
    assert isinstance(note_id, str) and ID_RE.match(note_id), (
        f"{path.name}: id {note_id!r} is not a slug matching {ID_RE.pattern}"
    )
    assert note_id == path.stem, (
        f"{path.name}: id {note_id!r} must equal the file name without .md ({path.stem!r})"
    )


@note_param(NOTE_FILES)
def test_identifier_formats(path):
    meta = load_meta(path)
    problems = []
    if "pmid" in meta:
        pmid = meta["pmid"]
        if not (isinstance(pmid, str) and PMID_RE.match(pmid)):
            problems.append(f"pmid must be a quoted string of digits, got {pmid!r}")
    if "doi" in meta:
        doi = meta["doi"]
        if not (isinstance(doi, str) and doi.startswith("10.")):
            problems.append(f"doi must be a string starting with '10.', got {doi!r}")
    if "url" in meta:
        url = meta["url"]
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            problems.append(f"url must start with http:// or https://, got {url!r}")
    assert not problems, f"{path.name}: " + "; ".join(problems)


@note_param(NOTE_FILES)
def test_evidence_value(path):
    evidence = load_meta(path).get("evidence")
    assert evidence in ALLOWED_EVIDENCE, (
        f"{path.name}: evidence {evidence!r} not one of {sorted(ALLOWED_EVIDENCE)}"
    )


@note_param(NOTE_FILES)
def test_body_word_count(path):
    _, body = split_note(path)
    words = len(body.split())
    assert MIN_BODY_WORDS <= words <= MAX_BODY_WORDS, (
        f"{path.name}: body has {words} words, expected {MIN_BODY_WORDS}..{MAX_BODY_WORDS}"
    )


# --------------------------------------------------------------------------- cross-note tests


def test_ids_unique():
    seen: dict[str, list[str]] = defaultdict(list)
    for path in NOTE_FILES:
        note_id = safe_meta(path).get("id")
        if isinstance(note_id, str):
            seen[note_id].append(path.name)
    dupes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dupes, f"duplicate ids: {dupes}"


def test_no_shared_sources():
    by_kind: dict[str, dict[str, list[str]]] = {
        "pmid": defaultdict(list),
        "doi": defaultdict(list),
        "source": defaultdict(list),
    }
    for path in NOTE_FILES:
        meta = safe_meta(path)
        if isinstance(meta.get("pmid"), (str, int)):
            by_kind["pmid"][str(meta["pmid"]).strip()].append(path.name)
        if isinstance(meta.get("doi"), str):
            by_kind["doi"][meta["doi"].strip().casefold()].append(path.name)
        if isinstance(meta.get("source"), str):
            by_kind["source"][normalise_source(meta["source"])].append(path.name)
    problems = [
        f"same {kind} {value!r}: {files}"
        for kind, groups in by_kind.items()
        for value, files in groups.items()
        if value and len(files) > 1
    ]
    assert not problems, "notes share a source:\n" + "\n".join(problems)


def test_topic_map_parses():
    keys = topic_map_keys()
    assert len(keys) >= MIN_TOPIC_KEYS, (
        f"topic map yielded only {len(keys)} keys (expected >= {MIN_TOPIC_KEYS}); "
        "parsing bug or truncated map"
    )
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"topic map has duplicate topic numbers: {dupes}"


def test_every_map_topic_is_covered():
    keys = topic_map_keys()
    used = {
        t
        for path in NOTE_FILES
        for t in (safe_meta(path).get("topics") or [])
        if isinstance(t, str)
    }
    missing = [k for k in keys if k not in used]
    assert not missing, f"topic-map keys not covered by any note: {missing}"


def test_note_topics_are_known():
    keys = set(topic_map_keys())
    unknown = []
    for path in NOTE_FILES:
        for topic in safe_meta(path).get("topics") or []:
            if not isinstance(topic, str) or (topic not in keys and not topic.startswith("gap-")):
                unknown.append(f"{path.name}: {topic!r}")
    assert not unknown, "topic keys that are neither in the topic map nor gap-*:\n" + "\n".join(
        unknown
    )
