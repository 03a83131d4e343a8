"""The web app's evidence pieces without a server: the map and timeline DataFrames, the views a
click selects, the badge and summary HTML, the colours, the CLI's summary line and the
download files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rag.ingest.evidence import EVIDENCE_LABELS, EVIDENCE_LEVELS
from rag.interfaces.render import answer_as_text
from rag.interfaces.ui.evidence_data import (
    LEVEL_COLORS,
    MAP_COLUMNS,
    TIMELINE_COLUMNS,
    badge_css,
    badge_text_color,
    build_evidence_map,
    cell_view,
    contrast_ratio,
    evidence_data,
    map_frame,
    plot_label,
    timeline_frame,
    view_filters,
    years_view,
)
from rag.interfaces.ui.files import (
    remove_session_folder,
    session_folder,
    write_download,
)
from rag.interfaces.ui.render import badge_html, chat_message, filter_choices, sources_html
from rag.retrieve.filters import build_filter, matching_docs
from rag.types import Answer, Citation, Passage

HOSTILE = "Payload <script>alert(1)</script> <img src=x onerror=alert(2)> ${alert(3)} `x`"


@dataclass(frozen=True)
class Doc:
    doc_id: str
    title: str
    meta: dict[str, Any] = field(default_factory=dict)


def _doc(doc_id: str, evidence: str | None = None, **meta: Any) -> Doc:
    if evidence is not None:
        meta["evidence_level"] = evidence
    return Doc(doc_id, meta.pop("title", f"Title of {doc_id}"), meta)


DOCS = [
    _doc("mm-trial", "phase-3", diseases=["multiple myeloma"], agents=["aponermin", "TRAIL"],
         year=2023),
    _doc("mm-cells", "in-vitro", diseases=["Multiple Myeloma"], agents=["trail"], year=2004),
    _doc("mm-mice", "in-vivo", diseases=["multiple myeloma"], agents=["TRAIL"], year=2010),
    _doc("aml-obs", "observational", diseases="acute myeloid leukemia", agents=["TRAIL"]),
    _doc("cll-no-level", diseases=["chronic lymphocytic leukemia"], agents=["TRAIL"],
         year=2015),  # no stored level: classified from the metadata alone -> unknown
    _doc("bad-tags", "in-vitro", diseases=[None, 3.5, True, ""], agents={"x": 1}, year=True),
    _doc("hostile", "phase-1-2", title=HOSTILE, diseases=["mantle cell lymphoma"],
         agents=["TRAIL"], year=2019),
]


def _in_view(view: dict[str, Any]) -> set[str]:
    """The documents the Library table lists for ``view``: those its Ask filters pass."""
    docs = {d.doc_id: d for d in DOCS}
    return set(matching_docs(build_filter(view_filters(view), docs), docs))


def _cells(docs: list[Doc] = DOCS) -> dict[tuple[str, str], Any]:
    return {(c.disease, c.agent): c for c in build_evidence_map(docs).cells}


# -- the map --------------------------------------------------------------------------------


def test_a_cell_has_the_strongest_level_and_counts_each_document_once() -> None:
    cells = _cells()
    myeloma = cells[("multiple myeloma", "aponermin")]
    assert (myeloma.level, myeloma.doc_ids) == ("phase-3", ("mm-trial",))
    trail = cells[("multiple myeloma", "TRAIL")]  # tags match whatever their case
    assert trail.level == "phase-3" and trail.count == 3
    assert set(trail.doc_ids) == {"mm-trial", "mm-cells", "mm-mice"}
    assert cells[("acute myeloid leukemia", "TRAIL")].level == "observational"
    assert cells[("chronic lymphocytic leukemia", "TRAIL")].level == "unknown"


def test_bad_tags_are_skipped_without_error() -> None:
    emap = build_evidence_map(DOCS)
    names = {name for name, _ in emap.diseases + emap.agents}
    assert not names & {"3.5", "True", "None", "x", ""}
    assert all(c.disease and c.agent for c in emap.cells)
    assert build_evidence_map([]).cells == ()


def test_the_map_keeps_the_diseases_and_agents_with_most_documents() -> None:
    emap = build_evidence_map(DOCS, max_diseases=2, max_agents=1)
    assert [name for name, _ in emap.diseases] == ["multiple myeloma", "acute myeloid leukemia"]
    assert emap.agents == (("TRAIL", 6),)
    assert (emap.hidden_diseases, emap.hidden_agents) == (2, 1)
    assert {c.agent for c in emap.cells} == {"TRAIL"}


def test_map_frame_rows_are_strongest_first_with_counts_on_the_axes() -> None:
    frame = map_frame(build_evidence_map(DOCS))
    assert tuple(frame.columns) == MAP_COLUMNS
    levels = list(frame["Highest evidence"])
    ranks = [list(EVIDENCE_LABELS.values()).index(label) for label in levels]
    assert ranks == sorted(ranks)  # the plot's legend follows the row order
    row = frame[frame["Disease"] == "multiple myeloma (3)"]
    assert set(row["Agent"]) == {"aponermin (1)", "TRAIL (6)"}
    assert row[row["Agent"] == "TRAIL (6)"]["Documents"].item() == 3
    assert str(frame["Documents"].dtype) == "int64"
    key = row[row["Agent"] == "TRAIL (6)"]["cell"].item()
    assert json.loads(key) == ["multiple myeloma", "TRAIL"]


def test_hostile_titles_and_tags_stay_plain_text_in_the_frames() -> None:
    docs = [*DOCS, _doc("evil-tags", "in-vitro", diseases=["<b>x</b>\n\x1b[31m" + "y" * 200],
                        agents=["<img src=x onerror=alert(1)>"], year=2001)]
    frame = map_frame(build_evidence_map(docs))
    hostile = frame[frame["Titles"].str.contains("Payload")]["Titles"].item()
    assert hostile.startswith("Payload <script>")  # Vega draws text as text; kept, not lost
    for column in ("Agent", "Disease", "Titles"):
        for value in frame[column]:
            assert "\n" not in value and "\x1b" not in value
            assert len(value) <= 3 * 90 + 40
    evil = frame[frame["Agent"].str.startswith("<img")]
    assert evil["Disease"].item().endswith("… (1)")  # long labels are cut
    assert plot_label("a\tb\u2028c") == "a b c"


def test_titles_in_a_cell_are_capped() -> None:
    docs = [_doc(f"d{i}", "in-vitro", diseases=["ALL"], agents=["TRAIL"]) for i in range(5)]
    (titles,) = map_frame(build_evidence_map(docs))["Titles"]
    assert titles.count("Title of") == 3 and titles.endswith("(+2 more)")


# -- the timeline ---------------------------------------------------------------------------


def test_timeline_has_clinical_studies_by_year_and_counts_the_undated() -> None:
    frame, undated = timeline_frame(DOCS)
    assert tuple(frame.columns) == TIMELINE_COLUMNS
    assert frame.to_dict("records") == [
        {"Year": 2023, "Design": "Phase 3 trial", "Studies": 1, "Titles": "Title of mm-trial"},
        {"Year": 2019, "Design": "Phase 1\u20132 trial", "Studies": 1, "Titles": HOSTILE},
    ]
    assert undated == 1  # the observational study has no year
    assert str(frame["Year"].dtype) == "int64"


def test_timeline_groups_studies_of_one_year_and_design() -> None:
    docs = [_doc(f"t{i}", "phase-1-2", year=2011) for i in range(2)]
    docs.append(_doc("t-bad-year", "phase-3", year="next year"))
    frame, undated = timeline_frame(docs)
    assert frame.to_dict("records") == [{"Year": 2011, "Design": "Phase 1\u20132 trial",
                                         "Studies": 2,
                                         "Titles": "Title of t0 | Title of t1"}]
    assert undated == 1
    empty, none = timeline_frame([])
    assert list(empty.columns) == list(TIMELINE_COLUMNS) and empty.empty and none == 0


def test_evidence_data_for_the_api() -> None:
    data = evidence_data(DOCS)
    cell = next(c for c in data["cells"] if (c["disease"], c["agent"]) ==
                ("multiple myeloma", "TRAIL"))
    assert cell["level"] == "phase-3" and cell["documents"] == 3
    assert data["timeline"][0] == {"year": 2023, "level": "phase-3", "label": "Phase 3 trial",
                                   "studies": 1, "doc_ids": ["mm-trial"]}
    assert data["undated_clinical"] == 1
    json.dumps(data)  # plain JSON


# -- views ----------------------------------------------------------------------------------


def test_a_cell_click_selects_the_documents_tagged_with_both() -> None:
    view = cell_view(json.dumps(["multiple myeloma", "TRAIL"]))
    assert view == {"disease": "multiple myeloma", "agent": "TRAIL"}
    assert view_filters(view) == {"disease": ["multiple myeloma"], "agent": ["TRAIL"]}
    assert _in_view(view) == {"mm-trial", "mm-cells", "mm-mice"}
    assert view_filters({}) == {} and _in_view({}) == {d.doc_id for d in DOCS}


@pytest.mark.parametrize("key", [
    pytest.param(None, id="none"), pytest.param("not json", id="text"),
    pytest.param('["only one"]', id="one"), pytest.param('["a", 2]', id="number"),
    pytest.param('{"disease": "a"}', id="object"), pytest.param('["", "b"]', id="empty"),
])
def test_bad_cell_keys_select_nothing(key: Any) -> None:
    assert cell_view(key) is None


def test_a_brush_on_the_timeline_selects_clinical_studies_in_those_years() -> None:
    assert years_view([2018.6, 2023.2]) == {"years": [2019, 2023]}
    assert years_view([2011.2, 2011.4]) == {"years": [2011, 2011]}  # between two years
    assert years_view(["x", 1]) is None and years_view([1]) is None
    assert years_view([float("nan"), 2]) is None
    view = years_view([2015, 2023])
    assert _in_view(view) == {"mm-trial", "hostile"}


def test_filter_choices_are_tags_as_written_and_designs_by_label() -> None:
    choices = filter_choices(DOCS)
    assert choices["disease"] == ["acute myeloid leukemia", "chronic lymphocytic leukemia",
                                  "mantle cell lymphoma", "multiple myeloma"]  # no bad tags
    assert choices["agent"] == ["aponermin", "TRAIL"]
    assert choices["evidence"] == ["Phase 3 trial", "Phase 1\u20132 trial",
                                   "Observational / biomarker", "In vivo (animal)",
                                   "In vitro / ex vivo", "Unknown"]
    assert (choices["year_min"], choices["year_max"]) == (2004, 2023)
    docs = {d.doc_id: d for d in DOCS}
    for label in choices["evidence"]:  # each choice selects the documents shown with it
        assert set(matching_docs(build_filter({"evidence": [label]}, docs), docs))


# -- badges, summary, colours ---------------------------------------------------------------


def test_badge_shows_the_label_with_the_reason_escaped() -> None:
    html = badge_html("phase-3", 'title says "phase III" <script>alert(1)</script>')
    assert html == ('<span class="rag-badge rag-badge-phase-3" title="title says &quot;phase '
                    'III&quot; &lt;script&gt;alert(1)&lt;/script&gt;">Phase 3 trial</span>')
    assert 'rag-badge-unknown"' in badge_html('x" onmouseover="alert(1)')
    assert "onmouseover" not in badge_html('x" onmouseover="alert(1)')
    assert badge_html("in-vitro").endswith('title="In vitro / ex vivo">In vitro / ex vivo</span>')


def test_contrast_ratio_matches_known_wcag_values() -> None:
    # values from the WCAG 2 definition, not from the code under test
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)  # order does not matter
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # just under AA
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # just over
    assert contrast_ratio("#123456", "#123456") == pytest.approx(1.0)


def test_badge_text_is_white_on_dark_levels_and_dark_on_light_ones() -> None:
    assert badge_text_color("phase-3") == "#ffffff"  # dark green
    assert badge_text_color("meta-analysis") == "#ffffff"
    assert badge_text_color("in-vitro") == "#111827"  # amber
    assert badge_text_color("unknown") == "#111827"  # mid grey
    assert badge_text_color("not-a-level") == badge_text_color("unknown")


def test_every_level_has_a_readable_colour() -> None:
    assert set(LEVEL_COLORS) == set(EVIDENCE_LEVELS)
    css = badge_css()
    for level, color in LEVEL_COLORS.items():
        assert contrast_ratio(color, "#ffffff") >= 3.0, level  # a mark on a white page
        assert contrast_ratio(color, badge_text_color(level)) >= 4.5, level  # badge text
        assert f".rag-badge-{level} {{ background: {color};" in css
    assert len(set(LEVEL_COLORS.values())) == len(LEVEL_COLORS)


def _answer(summary: str, title: str = HOSTILE) -> Answer:
    citation = Citation(1, "d", "d#1", title, "S", "Two.", 5, 9, 1.0, year=2019,
                        evidence="phase-1-2", evidence_reason="front matter says 'phase 1'")
    passage = Passage(rank=1, doc_id="d", chunk_id="d#1", title=title, text="One. Two.",
                      score=1.0, start=0, end=9)
    return Answer("q", "Two [1].", True, (citation,), (passage,), {}, evidence_summary=summary)


def test_summary_line_in_the_panel_the_chat_and_the_cli() -> None:
    summary = "Evidence: 1 phase 1\u20132 trial in <b>MCL</b> (2019); no human data for AML."
    answer = _answer(summary)
    panel = sources_html(answer)
    assert panel.index('class="rag-evidence-summary"') < panel.index("<h3>Sources</h3>")
    assert ("Evidence: 1 phase 1\u20132 trial in &lt;b&gt;MCL&lt;/b&gt; (2019); no human data "
            "for AML.") in panel
    assert 'rag-badge rag-badge-phase-1-2" title="front matter says &#x27;phase 1&#x27;"' in panel
    assert "<script>" not in panel and "<img" not in panel
    chat = chat_message(answer)
    assert chat.startswith("Two \\[1\\]\\.\n\n*Evidence: 1 phase 1\u20132 trial in &lt;b&gt;")
    assert "<b>" not in chat
    text = answer_as_text(answer)
    assert text.splitlines()[:3] == ["Two [1].", "", summary]


def test_no_summary_line_without_one() -> None:
    answer = _answer("")
    assert "rag-evidence-summary" not in sources_html(answer)
    assert "Evidence:" not in chat_message(answer) and "Evidence:" not in answer_as_text(answer)


# -- downloads ------------------------------------------------------------------------------


def test_downloads_go_to_one_folder_per_session(tmp_path: Path) -> None:
    base = tmp_path / "downloads"
    mine, other = session_folder(base, "abc"), session_folder(base, "../../etc")
    assert mine.parent == base and other.parent == base and mine != other
    first = write_download(mine, "../trail-rag-answer.bib", "@article{a,}\n")
    assert first.name == "trail-rag-answer.bib" and first.is_relative_to(mine)
    assert first.read_text(encoding="utf-8") == "@article{a,}\n"
    assert write_download(mine, "trail-rag-answer.bib", "@article{a,}\n") == first
    second = write_download(mine, "trail-rag-answer.bib", "@article{b,}\n")
    assert second != first and first.read_text(encoding="utf-8") == "@article{a,}\n"
    remove_session_folder(base, "abc")
    assert not mine.exists() and base.exists()


# -- the Library tab's callbacks: per-generation caches follow the index ------------------------


def _note(doc_id: str, disease: str, evidence: str) -> str:
    return (f"---\nid: {doc_id}\ntitle: Note {doc_id}\ndiseases: [{disease}]\nagents: [TRAIL]\n"
            f"evidence: {evidence}\nyear: 2010\n---\nTRAIL and {disease} in note {doc_id}.\n")


@dataclass
class _Session:
    session_hash: str = "session-a"


def test_library_callbacks_reuse_work_until_the_index_changes(
        tmp_path: Path, write_files: Any, open_fake_rag: Any, settings: Any) -> None:
    from rag.interfaces.ui.library import LibraryCallbacks

    notes = write_files({"hl.md": _note("hl", "Hodgkin lymphoma", "preclinical in vitro"),
                         "nhl.md": _note("nhl", "non-Hodgkin lymphoma", "clinical phase 3")})
    rag = open_fake_rag(tmp_path / "index")
    rag.add([notes])
    ui = LibraryCallbacks(rag, settings, tmp_path / "downloads")

    first = ui.refresh_library("", {})
    assert first[0].startswith("**2** documents")
    assert ui.refresh_library("", {})[-5] is first[-5]  # the map's frame, computed once
    # the table of a map cell lists what the Ask filters it sets pass: not non-Hodgkin
    view, note, table, disease, agent = ui.pick_cell('["Hodgkin lymphoma", "TRAIL"]', "")
    assert [row[0] for row in table["value"]["data"]] == ["hl"]
    assert note.startswith("Showing 1 document tagged **Hodgkin lymphoma**")
    assert disease["value"] == ["Hodgkin lymphoma"] and agent["value"] == ["TRAIL"]

    button, exported = ui.export_library("BibTeX", "Whole library", "", {}, None, _Session())
    assert button["label"] == "Export 2 references (BibTeX)" and exported is not None
    again = ui.export_library("BibTeX", "Whole library", "nhl", view, exported, _Session())
    assert all(isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1
               for v in again)  # gr.skip(): the session has that file already
    shown, _ = ui.export_library("RIS", "Documents shown in the table", "", view, exported,
                                 _Session())
    assert shown["label"] == "Export 1 reference (RIS)"

    (notes / "mm.md").write_text(_note("mm", "multiple myeloma", "clinical phase 1"),
                                 encoding="utf-8")
    rag.add([notes])
    after = ui.refresh_library("", {})
    assert after[0].startswith("**3** documents") and after[-5] is not first[-5]
    button, newer = ui.export_library("BibTeX", "Whole library", "", {}, exported, _Session())
    assert button["label"] == "Export 3 references (BibTeX)" and newer.key != exported.key
