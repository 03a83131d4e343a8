"""The web app in a real browser: Debian's chromium, driven by Playwright.

Asks a question, waits for a cited answer and the source panel with its study-design badges
and evidence summary, downloads the answer's references; in the Library tab, reads the evidence
map and the timeline, clicks a map cell and brushes the timeline to filter the table, exports
the library, and uploads and deletes a note to see the map follow. Checks that a note with a
``<script>`` payload renders as text everywhere (panel, badge, plot tooltip, exports) and saves
screenshots under ``test-output/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appserver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CLINICAL_FIRST_QUESTION,
    CLINICAL_NOTE_ID,
    NOTES,
    PAYLOAD_SCRIPT,
    PAYLOAD_TITLE,
    PROJECT_ROOT,
    UPLOAD_NOTE,
    App,
)
from bibtex_support import parse_bibtex

ANSWER_TIMEOUT_MS = 120_000
MAP_MARKS = "#rag-evidence-map .mark-symbol.role-mark path"
TIMELINE_MARKS = "#rag-timeline .mark-symbol.role-mark path"
TABLE_IDS = '#rag-table .virtual-row [data-col="0"]'
INJECTED = """() => ({
    scripts: [...document.scripts].filter(s => s.textContent.includes('alert(')).length,
    images: document.querySelectorAll('img[src="x"], img[onerror]').length,
    handlers: document.querySelectorAll('[onerror], [onclick], [onload], [onmouseover]').length,
})"""
NOTHING_INJECTED = {"scripts": 0, "images": 0, "handlers": 0}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                       reason="needs Debian chromium: apt-get install chromium (CI installs it)"),
]


@pytest.fixture(scope="module")
def screenshot_dir() -> Path:
    folder = PROJECT_ROOT / "test-output"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, app: App) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(app.url)
    page.locator("#rag-question textarea").wait_for(timeout=60_000)
    yield page
    page.close()


def _ask(page: Any, question: str, expect_title: str) -> None:
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator("#rag-sources .rag-title", has_text=expect_title).first.wait_for(
        timeout=ANSWER_TIMEOUT_MS)


def _download(page: Any, button: str) -> tuple[str, str]:
    """Click a download button; the file's URL and text."""
    with page.expect_download(timeout=30_000) as info:
        page.locator(button).click()
    download = info.value
    return download.url, Path(download.path()).read_text(encoding="utf-8")


def _check_served_from_the_session_folder(url: str) -> None:
    assert "/trail-rag-downloads/" in url, url
    assert str(PROJECT_ROOT) not in url


def _open_library(page: Any) -> None:
    page.get_by_role("tab", name="Library").click()
    page.locator(MAP_MARKS).first.wait_for(timeout=30_000)
    page.locator(TIMELINE_MARKS).first.wait_for(timeout=30_000)


def _table_ids(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(TABLE_IDS).all_inner_texts()]


def _wait_for_table(page: Any, ids: set[str]) -> None:
    page.wait_for_function(
        """([selector, wanted]) => {
            const got = [...document.querySelectorAll(selector)].map(e => e.innerText.trim());
            return got.length === wanted.length && wanted.every(id => got.includes(id));
        }""", arg=[TABLE_IDS, sorted(ids)], timeout=30_000)


def _map_mark(page: Any, disease: str, agent: str) -> Any:
    return page.locator(f"{MAP_MARKS}[aria-label*='Disease (documents): {disease} (']"
                        f"[aria-label*='Agent (documents): {agent} (']")


def test_answer_shows_markers_and_the_source_panel(page: Any, screenshot_dir: Path) -> None:
    _ask(page, "Why do primary CLL cells resist TRAIL?", "c-FLIP blocks")
    chat = page.locator("#rag-chat")
    assert "[1]" in chat.inner_text()
    sources = page.locator("#rag-sources")
    mark = sources.locator("mark").first
    assert mark.is_visible()
    assert "c-FLIP" in mark.inner_text()
    link = sources.locator("a[href^='https://pubmed.ncbi.nlm.nih.gov/'], "
                           "a[href^='https://doi.org/']").first
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.get_attribute("target") == "_blank"
    page.locator("#rag-copy").click()
    copy_box = page.locator("#rag-copy-box textarea")
    copy_box.wait_for()
    assert "https://pubmed.ncbi.nlm.nih.gov/12345678/" in copy_box.input_value()
    page.screenshot(path=str(screenshot_dir / "ui-answer.png"), full_page=True)

    _ask(page, "Does bortezomib restore TRAIL sensitivity in myeloma?", "Bortezomib raises")
    asked = chat.inner_text()
    assert "Why do primary CLL cells resist TRAIL?" in asked  # the history stays on screen
    assert "Does bortezomib restore TRAIL sensitivity in myeloma?" in asked


def test_answer_shows_study_design_badges_and_the_evidence_summary(
        page: Any, screenshot_dir: Path) -> None:
    _ask(page, "Why do primary CLL cells resist TRAIL?", "c-FLIP blocks")
    badge = page.locator("#rag-sources .rag-cite .rag-badge").first
    assert badge.is_visible() and badge.inner_text() == "In vitro / ex vivo"
    assert "rag-badge-in-vitro" in (badge.get_attribute("class") or "")
    assert "preclinical in vitro" in (badge.get_attribute("title") or "")
    colours = badge.evaluate("e => [getComputedStyle(e).backgroundColor, "
                             "getComputedStyle(e).color]")
    assert colours == ["rgb(217, 119, 6)", "rgb(17, 24, 39)"]
    summary = page.locator("#rag-sources .rag-evidence-summary")
    assert summary.is_visible()
    assert summary.inner_text().startswith("Evidence: 1 in vitro study (2004)")
    page.locator("#rag-chat", has_text="Evidence: 1 in vitro study (2004)").wait_for()
    page.get_by_text("Options").click()
    clinical = page.locator("#rag-clinical-first input[type=checkbox]")
    clinical.wait_for()
    assert not clinical.is_checked()  # off by default
    page.screenshot(path=str(screenshot_dir / "ui-evidence-answer.png"), full_page=True)

    # the checkbox changes which study leads the answer: preclinical without it, the trial with
    from playwright.sync_api import expect

    lead = page.locator("#rag-sources .rag-cite").first
    _ask(page, CLINICAL_FIRST_QUESTION, "Rituximab sensitizes")
    expect(lead.locator(".rag-title")).to_contain_text("Rituximab sensitizes")
    expect(lead.locator(".rag-badge")).to_have_text("In vitro / ex vivo")
    clinical.check()
    _ask(page, CLINICAL_FIRST_QUESTION, "Dulanermin")
    expect(lead.locator(".rag-title")).to_contain_text("Dulanermin with rituximab",
                                                       timeout=ANSWER_TIMEOUT_MS)
    expect(lead.locator(".rag-badge")).to_have_text("Phase 1\u20132 trial")


def test_answer_references_download_as_bibtex_and_ris(page: Any) -> None:
    import rispy

    _ask(page, "Why do primary CLL cells resist TRAIL?", "c-FLIP blocks")
    button = page.locator("#rag-answer-download")
    page.locator("#rag-answer-download", has_text="(BibTeX)").wait_for()
    url, text = _download(page, "#rag-answer-download")
    _check_served_from_the_session_folder(url)
    assert url.endswith(".bib")
    (entry,) = parse_bibtex(text).values()
    assert entry["pmid"] == "12345678"
    assert entry["doi"] == "10.1000/ltr.2004.17"
    assert "c-FLIP blocks TRAIL-induced apoptosis" in entry["title"]

    page.locator("#rag-answer-format").get_by_label("RIS").check()
    page.locator("#rag-answer-download", has_text="(RIS)").wait_for()
    url, text = _download(page, "#rag-answer-download")
    assert url.endswith(".ris") and text.startswith("TY  - JOUR") and "ER  - " in text
    (record,) = rispy.loads(text)
    assert record["type_of_reference"] == "JOUR" and record["doi"] == "10.1000/ltr.2004.17"
    assert any("Primary CLL cells resisted TRAIL" in n for n in record["notes"])
    assert button.is_enabled()
    assert not list(PROJECT_ROOT.glob("trail-rag-*"))  # nothing written into the project


def test_library_map_and_timeline_filter_the_table(page: Any, screenshot_dir: Path) -> None:
    from playwright.sync_api import expect

    _open_library(page)
    all_ids = {m.group(1) for m in (re.search(r"^id: (\S+)$", t, re.M) for t in NOTES.values())
               if m}
    assert len(all_ids) == len(NOTES)
    _wait_for_table(page, all_ids)
    labels = [m.get_attribute("aria-label") or ""
              for m in page.locator(MAP_MARKS).all()]
    assert len(labels) == 6  # one dot per disease x agent pair of the notes
    cell = next(label for label in labels if "follicular lymphoma" in label
                and "dulanermin" in label)
    assert "Highest evidence: Phase 1\u20132 trial" in cell and "Documents: 1" in cell
    timeline = [m.get_attribute("aria-label") for m in page.locator(TIMELINE_MARKS).all()]
    assert timeline == ["Year: 2011; Design: Phase 1\u20132 trial; Studies: 1; Titles: "
                        "Dulanermin with rituximab in relapsed follicular lymphoma: a phase "
                        "1b/2 trial"]
    expect(page.locator("#rag-timeline-note")).to_contain_text("1 clinical study")
    page.screenshot(path=str(screenshot_dir / "ui-evidence-map.png"), full_page=True)

    # a click on a map cell lists its documents and sets the Ask tab's filters
    _map_mark(page, "multiple myeloma", "bortezomib").click()
    _wait_for_table(page, {"bortezomib-myeloma"})
    expect(page.locator("#rag-view-note")).to_contain_text(
        "Showing 1 document tagged multiple myeloma and bortezomib")
    page.screenshot(path=str(screenshot_dir / "ui-evidence-map-cell.png"), full_page=True)

    # the export of the documents shown: one RIS record
    import rispy

    page.locator("#rag-export-format").get_by_label("RIS").check()
    page.locator("#rag-export-scope").get_by_label("Documents shown in the table").check()
    page.locator("#rag-library-export", has_text="Export 1 reference (RIS)").wait_for()
    url, text = _download(page, "#rag-library-export")
    _check_served_from_the_session_folder(url)
    (record,) = rispy.loads(text)
    assert (record["doi"], record["accession_number"]) == ("10.1000/mtj.2012.5", "23456789")

    _map_mark(page, "mantle cell lymphoma", "TRAIL").click()
    _wait_for_table(page, {"payload-note"})

    # a brush across the timeline lists the clinical studies of those years
    dot = page.locator(TIMELINE_MARKS).first
    dot.scroll_into_view_if_needed()
    box = dot.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 12, y)
    page.mouse.down()
    page.mouse.move(x, y, steps=5)
    page.mouse.move(x + 12, y, steps=5)
    page.mouse.up()
    _wait_for_table(page, {CLINICAL_NOTE_ID})
    note = page.locator("#rag-view-note")
    expect(note).to_contain_text("clinical studies from")
    found = re.search(r"clinical studies from (\d{4})(?:\u2013(\d{4}))?", note.inner_text())
    assert found is not None
    low, high = int(found.group(1)), int(found.group(2) or found.group(1))
    assert low <= 2011 <= high

    page.locator("#rag-clear-view").click()
    _wait_for_table(page, all_ids)

    # the map cell set the Ask tab's filters; the timeline its years
    page.locator(TIMELINE_MARKS).first.wait_for()
    page.get_by_role("tab", name="Ask").click()
    page.get_by_text("Options").click()
    years = page.locator("#rag-years textarea, #rag-years input").first.input_value()
    assert years == (f"{low}-{high}" if low != high else str(low))
    expect(page.locator("#rag-disease")).to_contain_text("mantle cell lymphoma")
    expect(page.locator("#rag-agent")).to_contain_text("TRAIL")
    assert page.dialogs == []


def test_map_follows_uploads_and_deletes(page: Any, app: App, tmp_path: Path,
                                         screenshot_dir: Path) -> None:
    _open_library(page)
    note = tmp_path / "quorvane.md"
    note.write_text(UPLOAD_NOTE, encoding="utf-8")
    page.locator("#rag-upload input[type=file]").set_input_files(str(note))
    page.get_by_role("button", name="Add to library").click()
    page.locator("#rag-report", has_text="quorvane-note").wait_for(timeout=ANSWER_TIMEOUT_MS)
    added = _map_mark(page, "acute myeloid leukemia", "quorvane")
    added.wait_for(timeout=30_000)
    assert "In vivo (animal)" in (added.get_attribute("aria-label") or "")
    page.screenshot(path=str(screenshot_dir / "ui-evidence-map-upload.png"), full_page=True)

    page.get_by_label("Documents to delete").click()
    page.get_by_role("option", name="Quorvane", exact=False).click()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.locator("#rag-report", has_text="Deleted").wait_for(timeout=60_000)
    added.wait_for(state="detached", timeout=30_000)
    assert page.locator(MAP_MARKS).count() == 6


def test_a_missing_part_of_the_question_is_shown_not_answered(page: Any,
                                                             screenshot_dir: Path) -> None:
    question = "Does bortezomib restore TRAIL sensitivity in acute myeloid leukemia?"
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    warning = page.locator("#rag-sources .rag-missing")
    warning.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "acute myeloid leukemia" in warning.inner_text()
    missing = page.locator("#rag-sources .rag-part-missing")
    assert missing.count() == 1 and "acute myeloid leukemia" in missing.inner_text()
    covered = page.locator("#rag-sources .rag-part-covered").all_inner_texts()
    assert any("bortezomib" in text for text in covered)
    # The closest evidence is shown, highlighted, but labelled as not answering.
    assert "Bortezomib raises" in page.locator("#rag-sources .rag-title").first.inner_text()
    chat = page.locator("#rag-chat").inner_text()
    assert "Not answered" in chat and "acute myeloid leukemia" in chat
    page.screenshot(path=str(screenshot_dir / "ui-missing.png"), full_page=True)


def test_script_payload_renders_as_text(page: Any, screenshot_dir: Path) -> None:
    from playwright.sync_api import expect

    _ask(page, "What does the zorblatin marker predict in mantle cell lymphoma?",
         "Payload note")
    title = page.locator("#rag-sources .rag-title").first
    assert PAYLOAD_SCRIPT in title.inner_text()
    assert page.get_by_text(PAYLOAD_SCRIPT).first.is_visible()
    assert "onerror=alert(2)" in page.locator("#rag-sources").inner_text()
    badge = page.locator("#rag-sources .rag-cite .rag-badge").first
    assert badge.inner_text() == "In vitro / ex vivo"
    assert page.evaluate(INJECTED) == NOTHING_INJECTED
    page.screenshot(path=str(screenshot_dir / "ui-payload.png"), full_page=True)

    # the answer's CSL-JSON: the title escaped for HTML contexts, intact once parsed
    page.locator("#rag-answer-format").get_by_label("CSL-JSON").check()
    page.locator("#rag-answer-download", has_text="(CSL-JSON)").wait_for()
    _, text = _download(page, "#rag-answer-download")
    assert "<script>" not in text and "\\u003cscript\\u003e" in text
    assert json.loads(text)[0]["title"] == PAYLOAD_TITLE

    _open_library(page)
    expect(page.locator("#rag-table")).to_contain_text(PAYLOAD_SCRIPT)
    # the map's tooltip shows the hostile title as text
    _map_mark(page, "mantle cell lymphoma", "TRAIL").hover()
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_contain_text(PAYLOAD_SCRIPT)
    assert "&lt;script&gt;" in tooltip.inner_html()
    assert tooltip.locator("script, img").count() == 0
    page.screenshot(path=str(screenshot_dir / "ui-payload-tooltip.png"))
    assert page.evaluate(INJECTED) == NOTHING_INJECTED

    # the library export: BibTeX that parses back to the title, as text
    page.locator("#rag-export-format").get_by_label("BibTeX").check()
    page.locator("#rag-export-scope").get_by_label("Whole library").check()
    page.locator("#rag-library-export", has_text=f"Export {len(NOTES)} references (BibTeX)"
                 ).wait_for()
    url, text = _download(page, "#rag-library-export")
    _check_served_from_the_session_folder(url)
    entries = parse_bibtex(text)
    assert len(entries) == len(NOTES)
    assert PAYLOAD_TITLE in [e["title"] for e in entries.values()]

    page.get_by_label("Documents to delete").click()
    expect(page.get_by_role("option", name="Payload note", exact=False)).to_contain_text(
        PAYLOAD_SCRIPT)
    assert page.evaluate(INJECTED) == NOTHING_INJECTED
    page.screenshot(path=str(screenshot_dir / "ui-library.png"), full_page=True)
    assert page.dialogs == []
