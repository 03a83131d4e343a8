"""The web app in a real browser: Debian's chromium, driven by Playwright.

Asks a question, waits for a cited answer and the source panel, checks that a note with a
``<script>`` payload renders as text, and saves screenshots under ``test-output/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appserver import CHROMIUM, CHROMIUM_ARGS, PAYLOAD_SCRIPT, PROJECT_ROOT, App

ANSWER_TIMEOUT_MS = 120_000

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
    injected = page.evaluate(
        """() => ({
            scripts: [...document.scripts].filter(s => s.textContent.includes('alert(')).length,
            images: document.querySelectorAll('img[src="x"], img[onerror]').length,
        })"""
    )
    assert injected == {"scripts": 0, "images": 0}
    page.screenshot(path=str(screenshot_dir / "ui-payload.png"), full_page=True)

    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#rag-table")).to_contain_text(PAYLOAD_SCRIPT)
    page.get_by_label("Documents to delete").click()
    expect(page.get_by_role("option", name="Payload note", exact=False)).to_contain_text(
        PAYLOAD_SCRIPT)
    assert page.locator('img[src="x"], img[onerror]').count() == 0
    page.screenshot(path=str(screenshot_dir / "ui-library.png"), full_page=True)
    assert page.dialogs == []
