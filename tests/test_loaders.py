"""Loaders: each format in, documents with cleaned text, sections and metadata out; every
unreadable input is a DocumentLoadError that names the file and says why."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from rag.errors import DocumentLoadError
from rag.ingest.loaders import iter_files, load_file
from rag.settings import Settings
from rag.types import Document


def load_one(path: Path, settings: Settings) -> Document:
    docs = load_file(path, settings.loader)
    assert len(docs) == 1
    return docs[0]


def section_texts(doc: Document) -> dict[str, str]:
    return {s.title: doc.text[s.start : s.end] for s in doc.sections}


def assert_sections_tile_text(doc: Document) -> None:
    """Sections are ordered, inside the text, and separated only by blank lines."""
    assert doc.sections
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)
    for before, after in pairwise(doc.sections):
        assert doc.text[before.end : after.start] == "\n\n"


# -- the seed: a PubMed page saved as text ------------------------------------------------------


def test_seed_page_metadata(seed_page: Path, settings: Settings) -> None:
    doc = load_one(seed_page, settings)
    assert doc.doc_id == "pmid-40084090"
    assert doc.doc_type == "pubmed-page"
    assert doc.meta["pmid"] == "40084090"
    assert doc.meta["pmcid"] == "PMC11902984"
    assert doc.meta["doi"] == "10.1097/BS9.0000000000000221"
    assert doc.title == "Basic and applied research progress of TRAIL in hematologic malignancies"
    assert "Hematologic malignancies" in doc.meta["keywords"]
    assert doc.file_hash and Path(doc.source_path) == seed_page.resolve()


@pytest.mark.parametrize(
    "furniture",
    ["Figures", "References", "LinkOut", "Full Text Sources", "Publication types", "Copyright",
     "Conflict of interest", "Published by", "PubMed", "- PMID:"],
)
def test_seed_page_furniture_removed(seed_page: Path, settings: Settings, furniture: str) -> None:
    doc = load_one(seed_page, settings)
    assert furniture not in doc.text


def test_seed_page_keeps_the_abstract(seed_page: Path, settings: Settings) -> None:
    doc = load_one(seed_page, settings)
    assert doc.text.startswith("Hematological malignancies encompass")
    assert "highlighting potential strategies to enhance TRAIL-based therapies" in doc.text
    assert [s.title for s in doc.sections] == ["Abstract"]
    # the title line is metadata, not repeated in the body
    assert doc.title not in doc.text
    assert_sections_tile_text(doc)


# -- each format ---------------------------------------------------------------------------------


def test_plain_text(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "Plain Notes.txt"
    path.write_text("TRAIL notes\n\nApo-\nptosis  is   induced\nby TRAIL.\n\n\nSecond para.\n")
    doc = load_one(path, settings)
    assert doc.doc_id == "plain-notes"
    assert doc.doc_type == "text"
    assert doc.title == "TRAIL notes"
    assert doc.text == "TRAIL notes\n\nApoptosis is induced by TRAIL.\n\nSecond para."
    assert_sections_tile_text(doc)


def test_markdown_front_matter(data_dir: Path, settings: Settings) -> None:
    doc = load_one(data_dir / "note.md", settings)
    assert doc.doc_type == "markdown"
    assert doc.doc_id == "note"
    assert doc.meta == {
        "title": "Venetoclax restores TRAIL sensitivity in CLL",
        "authors": ["Smith J", "Doe A"],
        "year": 2021,
        "journal": "Leukemia",
        "pmid": "55555555",
        "pmcid": "PMC7777777",
        "doi": "10.9999/leu.2021.7",
        "url": "https://example.org/venetoclax-trail",
        "tags": ["venetoclax", "cll"],
    }


def test_markdown_body(data_dir: Path, settings: Settings) -> None:
    doc = load_one(data_dir / "note.md", settings)
    sections = section_texts(doc)
    assert sections["Background"] == "CLL cells resist TRAIL because of high MCL-1 levels."
    assert sections["Findings"] == (
        "Venetoclax lowered the apoptotic threshold.\n\nThe combination killed primary CLL cells."
    )
    for markup in ("---", "**", "](", "#", "title:"):
        assert markup not in doc.text
    assert_sections_tile_text(doc)


def test_markdown_id_and_heading_title(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "file-name.md"
    path.write_text("---\nid: My Note 1\n---\n# Heading Title\n\nBody text about DR5.\n")
    doc = load_one(path, settings)
    assert doc.doc_id == "my-note-1"
    assert doc.title == "Heading Title"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["windows", "old-mac"])
def test_markdown_front_matter_with_other_line_ends(tmp_path: Path, settings: Settings,
                                                    newline: bytes) -> None:
    path = tmp_path / "note.md"
    lines = [b"---", b"id: crlf-note", b"title: DR5 on myeloma cells", b"diseases: [myeloma]",
             b"---", b"## Findings", b"Bortezomib raised DR5 on myeloma cells."]
    path.write_bytes(newline.join(lines) + newline)
    doc = load_one(path, settings)
    assert (doc.doc_id, doc.title) == ("crlf-note", "DR5 on myeloma cells")
    assert doc.meta["diseases"] == ["myeloma"]
    assert "---" not in doc.text and "\r" not in doc.text
    assert doc.sections[0].title == "Findings"


def test_pdf_pages(tmp_path: Path, settings: Settings, make_pdf: Callable[..., bytes]) -> None:
    path = tmp_path / "paper.pdf"
    path.write_bytes(make_pdf(
        [["TRAIL resistance in leukemia, first page.", "doi: 10.9999/pdf.2020.3"],
         ["Second page: myeloma cells and bortezomib."],
         ["Third page: CLL and venetoclax."]],
        title="A three page paper", author="Smith J; Doe A",
    ))
    doc = load_one(path, settings)
    assert doc.doc_type == "pdf"
    assert [(s.title, s.page) for s in doc.sections] == [
        ("page 1", 1), ("page 2", 2), ("page 3", 3)
    ]
    pages = [doc.text[s.start : s.end] for s in doc.sections]
    assert "first page" in pages[0] and "Second page" in pages[1] and "Third page" in pages[2]
    assert doc.meta["title"] == "A three page paper"
    assert doc.meta["authors"] == ["Smith J", "Doe A"]
    assert doc.meta["doi"] == "10.9999/pdf.2020.3"
    assert_sections_tile_text(doc)


def test_pdf_without_title_uses_first_line(
    tmp_path: Path, settings: Settings, make_pdf: Callable[..., bytes]
) -> None:
    path = tmp_path / "untitled.pdf"
    path.write_bytes(make_pdf([["Caspase-8 activation by DR5 agonists", "More text."]]))
    doc = load_one(path, settings)
    # reportlab writes "untitled" / "anonymous" when none is given: not a real title or author
    assert doc.meta["title"] == "Caspase-8 activation by DR5 agonists"
    assert "authors" not in doc.meta


def test_pdf_with_owner_password_only_loads(
    tmp_path: Path, settings: Settings, make_pdf: Callable[..., bytes]
) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(make_pdf([["Readable despite an owner password."]], user_password=""))
    assert load_one(path, settings).text == "Readable despite an owner password."


def test_html(data_dir: Path, settings: Settings) -> None:
    doc = load_one(data_dir / "article.html", settings)
    assert doc.doc_type == "html"
    assert doc.meta == {
        "title": "Decoy receptors protect AML blasts from TRAIL",
        "authors": ["Smith, John", "Doe, Ann"],
        "journal": "Leukemia Research",
        "year": 2019,
        "doi": "10.9999/leukres.2019.5",
        "pmid": "44444444",
    }
    assert section_texts(doc) == {
        "Decoy receptors protect AML blasts":
            "Acute myeloid leukemia blasts express the decoy receptors DcR1 and DcR2.",
        "Methods": "Blasts were treated with TRAIL & apoptosis was measured by annexin V.",
        "Results": "High DcR2 expression correlated with resistance to TRAIL.",
    }
    for hidden in ("trackingScript", "analytics", "inline script", "font-family", "hiddenstyle",
                   "Sign in", "Enable JavaScript", "Copyright footer", "<", ">"):
        assert hidden not in doc.text
    assert_sections_tile_text(doc)


def test_html_title_tag_when_no_citation_meta(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "page.html"
    path.write_text("<html><head><title> Plain   page </title></head>"
                    "<body><p>Body about TRAIL.</p></body></html>")
    doc = load_one(path, settings)
    assert doc.title == "Plain page"
    assert doc.text == "Body about TRAIL."


def test_html_without_closing_head(tmp_path: Path, settings: Settings) -> None:
    # HTML lets </head> be left out; the body must not be mistaken for the head
    path = tmp_path / "short.html"
    path.write_text("<html><head><title>Short</title><body><p>Body about DR5.</p></body></html>")
    assert load_one(path, settings).text == "Body about DR5."


def test_pubmed_xml_two_articles(data_dir: Path, settings: Settings) -> None:
    docs = load_file(data_dir / "pubmed_two_articles.xml", settings.loader)
    assert [d.doc_id for d in docs] == ["pmid-11111111", "pmid-22222222"]
    first, second = docs
    assert first.doc_type == "pubmed-xml"
    assert first.meta["title"] == (
        "Histone deacetylase inhibitors restore TRAIL sensitivity in chronic lymphocytic leukemia."
    )
    assert first.meta["pmid"] == "11111111"
    assert first.meta["doi"] == "10.9999/blood-2004-1111"  # ArticleIdList before ELocationID
    assert first.meta["pmcid"] == "PMC1111111"
    assert first.meta["journal"] == "Blood"
    assert first.meta["year"] == 2005
    assert first.meta["authors"] == ["MacFarlane M", "Inoue S", "CLL Research Consortium"]
    assert first.meta["mesh"] == [
        "Leukemia, Lymphocytic, Chronic, B-Cell", "TNF-Related Apoptosis-Inducing Ligand"
    ]
    assert first.meta["keywords"] == ["HDAC inhibitor", "DISC"]
    assert [s.title for s in first.sections] == ["BACKGROUND", "METHODS", "RESULTS"]
    assert section_texts(first)["METHODS"] == (
        "Cells from 24 patients were treated with TRAIL alone or after depsipeptide."
    )
    assert_sections_tile_text(first)

    assert second.meta["year"] == 1999  # from <MedlineDate>1999 Nov-Dec</MedlineDate>
    assert second.meta["journal"] == "Nature medicine"
    assert second.meta["authors"] == ["Ashkenazi A"]
    assert "doi" not in second.meta
    assert [s.title for s in second.sections] == ["Abstract"]
    assert second.text.startswith("Recombinant soluble Apo2L showed no toxicity")
    # both records come from one file: same source, same file hash
    assert first.source_path == second.source_path and first.file_hash == second.file_hash


def test_pubmed_xml_skips_a_bad_record_but_keeps_the_good(
    tmp_path: Path, data_dir: Path, settings: Settings
) -> None:
    xml = (data_dir / "pubmed_two_articles.xml").read_text()
    path = tmp_path / "one_bad.xml"
    path.write_text(xml.replace("<PMID Version=\"1\">22222222</PMID>", "<PMID>n/a</PMID>"))
    assert [d.doc_id for d in load_file(path, settings.loader)] == ["pmid-11111111"]


def test_jats_xml_sections(data_dir: Path, settings: Settings) -> None:
    doc = load_one(data_dir / "pmc_article.xml", settings)
    assert doc.doc_type == "jats"
    assert doc.doc_id == "pmc-6000001"
    assert doc.meta == {
        "title": "DR5 clustering decides TRAIL sensitivity of myeloma cells",
        "pmid": "33333333",
        "pmcid": "PMC6000001",
        "doi": "10.9999/cddis.2018.1",
        "authors": ["Lee Kim", "Park J"],
        "year": 2018,
        "journal": "Cell Death & Disease",
    }
    assert section_texts(doc) == {
        "Abstract": "Myeloma cells need DR5 clustering for TRAIL to kill them.",
        "Introduction": "TRAIL binds the death receptors DR4 and DR5.",
        "Receptor clustering": "Clustering of DR5 recruits FADD and caspase-8.",
        "Results": "Antibody cross-linking enhanced killing of myeloma cell lines.",
    }
    assert "Reference text" not in doc.text
    assert_sections_tile_text(doc)


# -- encodings -------------------------------------------------------------------------------

_UNICODE_TEXT = "TRAIL — Apo2L and β-catenin in café-au-lait cells, naïve T cells."


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(codecs.BOM_UTF16_LE + _UNICODE_TEXT.encode("utf-16-le"), id="utf16-le-bom"),
        pytest.param(codecs.BOM_UTF16_BE + _UNICODE_TEXT.encode("utf-16-be"), id="utf16-be-bom"),
        pytest.param(codecs.BOM_UTF8 + _UNICODE_TEXT.encode(), id="utf8-bom"),
        pytest.param(_UNICODE_TEXT.encode(), id="utf8"),
    ],
)
def test_unicode_encodings(tmp_path: Path, settings: Settings, raw: bytes) -> None:
    path = tmp_path / "encoded.txt"
    path.write_bytes(raw)
    assert load_one(path, settings).text == _UNICODE_TEXT


def test_latin1_text(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Latin-1 café, naïve résumé about TRAIL in Zürich.".encode("latin-1"))
    assert load_one(path, settings).text == "Latin-1 café, naïve résumé about TRAIL in Zürich."


def test_latin1_markdown(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes("---\ntitle: Étude\n---\nRésumé des données.\n".encode("latin-1"))
    doc = load_one(path, settings)
    assert doc.title == "Étude" and doc.text == "Résumé des données."


# -- unreadable inputs -----------------------------------------------------------------------


def _encrypted_pdf(make_pdf: Callable[..., bytes]) -> bytes:
    return make_pdf([["Secret text."]], user_password="user-secret")


def _truncated_pdf(make_pdf: Callable[..., bytes]) -> bytes:
    return make_pdf([["Text that is cut off."]])[:700]


_BAD_INPUTS = [
    pytest.param("corrupt.pdf", lambda _: b"%PDF-1.4\n%garbage\x00\x01 not a real pdf",
                 "PDF", id="corrupt-pdf"),
    pytest.param("renamed.pdf", lambda _: b"just text with a .pdf name", "no %PDF header",
                 id="not-a-pdf"),
    pytest.param("truncated.pdf", _truncated_pdf, "PDF", id="truncated-pdf"),
    pytest.param("encrypted.pdf", _encrypted_pdf, "encrypted PDF: a password is needed",
                 id="encrypted-pdf"),
    pytest.param("scan.pdf", lambda make_pdf: make_pdf([[]]), "no text layer",
                 id="pdf-without-text"),
    pytest.param("empty.txt", lambda _: b"", "empty file", id="empty-file"),
    pytest.param("blank.txt", lambda _: b" \n\n\t \n", "no text found", id="whitespace-only"),
    pytest.param("program.txt", lambda _: b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)),
                 "binary data", id="binary-as-txt"),
    pytest.param("undecodable.txt", lambda _: b"\x81\x8d\x8f\x90\x9d" * 20 + b"\xff\xfe\x81",
                 "not valid UTF-8", id="undecodable-bytes"),
    pytest.param("bad-utf16.txt", lambda _: codecs.BOM_UTF16_LE + b"\x00\xd8A",
                 "invalid utf-16", id="broken-utf16"),
    pytest.param("broken_front_matter.md", None, "front matter is not valid YAML",
                 id="broken-front-matter"),
    pytest.param("list.md", lambda _: b"---\n- a\n- b\n---\nBody.\n",
                 "front matter must be a mapping", id="front-matter-not-mapping"),
    pytest.param("year.md", lambda _: b"---\nyear: soon\n---\nBody.\n",
                 "'year' is not a year", id="front-matter-bad-year"),
    pytest.param("pmid.md", lambda _: b"---\npmid: 12ab\n---\nBody.\n",
                 "'pmid' must be digits", id="front-matter-bad-pmid"),
    pytest.param("entity_bomb.xml", None, "unsafe XML refused", id="xml-entity-bomb"),
    pytest.param("external_entity.xml", None, "unsafe XML refused", id="xml-external-entity"),
    pytest.param("broken.xml", lambda _: b"<PubmedArticleSet><PubmedArticle>",
                 "malformed XML", id="malformed-xml"),
    pytest.param("other.xml", lambda _: b"<rss><channel/></rss>", "unrecognised XML",
                 id="unrecognised-xml"),
    pytest.param("nopmid.xml", lambda _: b"<PubmedArticleSet><PubmedArticle><MedlineCitation>"
                 b"<PMID>x</PMID></MedlineCitation></PubmedArticle></PubmedArticleSet>",
                 "no valid PMID", id="pubmed-without-pmid"),
    pytest.param("script.html", lambda _: b"<html><script>only()</script></html>",
                 "no text found", id="html-without-text"),
    pytest.param("slides.pptx", lambda _: b"PK\x03\x04", "unsupported file type",
                 id="unsupported-type"),
]


@pytest.mark.parametrize(("name", "make", "reason"), _BAD_INPUTS)
def test_unreadable_input_is_a_clear_error(
    tmp_path: Path, data_dir: Path, settings: Settings, make_pdf: Callable[..., bytes],
    name: str, make: Callable[[Callable[..., bytes]], bytes] | None, reason: str,
) -> None:
    path = tmp_path / name
    path.write_bytes((data_dir / name).read_bytes() if make is None else make(make_pdf))
    with pytest.raises(DocumentLoadError) as caught:
        load_file(path, settings.loader)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in caught.value.reason


def test_external_entity_is_not_read(tmp_path: Path, data_dir: Path, settings: Settings) -> None:
    path = tmp_path / "xxe.xml"
    path.write_bytes((data_dir / "external_entity.xml").read_bytes())
    with pytest.raises(DocumentLoadError) as caught:
        load_file(path, settings.loader)
    assert "root:" not in str(caught.value)


def test_file_above_size_limit(tmp_path: Path, settings: Settings) -> None:
    small = settings.with_updates(**{"loader.max_file_mb": 0.001})
    path = tmp_path / "big.txt"
    path.write_text("TRAIL " * 400)  # 2,400 bytes, limit 1,048
    with pytest.raises(DocumentLoadError) as caught:
        load_file(path, small.loader)
    assert caught.value.path == str(path)
    assert "above the 0.001 MB limit" in caught.value.reason
    assert "loader.max_file_mb" in caught.value.reason
    assert load_file(path, settings.loader)  # the default limit lets it through


def test_pdf_above_page_limit(
    tmp_path: Path, settings: Settings, make_pdf: Callable[..., bytes]
) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([["one"], ["two"], ["three"]]))
    with pytest.raises(DocumentLoadError, match="3 pages, above the limit of 2"):
        load_file(path, settings.with_updates(**{"loader.max_pdf_pages": 2}).loader)


def test_text_above_character_limit(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "chars.txt"
    path.write_text("word " * 100)
    with pytest.raises(DocumentLoadError, match="above the limit of 50"):
        load_file(path, settings.with_updates(**{"loader.max_chars": 50}).loader)


# -- walking folders -----------------------------------------------------------------------------


def test_iter_files_picks_supported_files(tmp_path: Path, settings: Settings) -> None:
    for name in ("b.txt", "a.md", "sub/c.PDF", "sub/d.html", "e.xml", "README.md", ".hidden.txt",
                 ".git/f.txt", "g.docx", "h.json"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p, _ in iter_files([tmp_path], settings.loader)]
    assert found == ["a.md", "b.txt", "e.xml", "sub/c.PDF", "sub/d.html"]


def test_missing_path_is_an_error(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(DocumentLoadError, match="no such file or folder"):
        list(iter_files([tmp_path / "nowhere"], settings.loader))


def test_symlink_outside_the_folder_is_refused(tmp_path: Path, settings: Settings) -> None:
    outside = tmp_path / "private.txt"
    outside.write_text("Outside the indexed folder.")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "link.txt").symlink_to(outside)
    (path, root), = iter_files([corpus], settings.loader)
    with pytest.raises(DocumentLoadError, match="symlink points outside"):
        load_file(path, settings.loader, root=root)
