"""Citation export (``rag/interfaces/export.py``): BibTeX, RIS, CSL-JSON and Markdown, read
back with real parsers (bibtexparser, rispy, json), from an answer and from the library, and
through ``python -m rag ask --format ...`` and ``python -m rag export``.

The library tests index real seed notes, a PubMed XML file and a note with a hostile title
with the fake embedder (export reads metadata only); the ``ask`` test uses the real model on
the small answer-notes corpus.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from answer_support import build_index
from bibtex_support import parse_bibtex

from rag import RAG, Answer, Citation
from rag.answer.citations import with_marker
from rag.interfaces.citation_strings import ET_AL, parse_source
from rag.interfaces.cli import main
from rag.interfaces.export import (
    EXPORT_FORMATS,
    EXPORT_SUFFIX,
    Reference,
    export_text,
    references_from_answer,
    references_from_library,
    to_bibtex,
    to_csljson,
    to_markdown,
    to_ris,
)

bibtexparser = pytest.importorskip("bibtexparser", reason="needs the test extra: .[test]")
rispy = pytest.importorskip("rispy", reason="needs the test extra: .[test]")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("aponermin-cpt-mm301-phase3", "aml-blasts-decoy-receptors-trail-resistance",
         "bcll-surface-trail-survival", "aponermin-china-nmpa-approval")
HOSTILE = ("</title><script>alert(1)</script> {\\input{/etc/passwd}} 100% & #1 a_b $x$ ~\n"
           "ER  - \nTY  - JOUR\n@article{evil, title={x}}")
FLAT_HOSTILE = " ".join(HOSTILE.split())
XIA_TITLE = ("Aponermin or placebo in combination with thalidomide and dexamethasone in the "
             "treatment of relapsed or refractory multiple myeloma (CPT-MM301): a randomised, "
             "double-blinded, placebo-controlled, phase 3 trial")
XIA = f"Xia Z, Leng Y, Fang B, et al. {XIA_TITLE}. BMC Cancer. 2023;23(1):980."


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, open_fake_rag: Callable[..., RAG]) -> RAG:
    root = tmp_path_factory.mktemp("export")
    notes = root / "notes"
    notes.mkdir()
    for name in SEEDS:
        shutil.copy(PROJECT_ROOT / "seeds" / f"{name}.md", notes)
    shutil.copy(Path(__file__).parent / "data" / "pubmed_two_articles.xml", notes)
    front = {"id": "hostile", "title": HOSTILE, "year": 2020, "pmid": "39999999",
             "doi": "10.5555/evil_{1}", "diseases": ["acute myeloid leukemia"]}
    (notes / "hostile.md").write_text(
        f"---\n{yaml.safe_dump(front)}---\n## Findings\n\nTRAIL killed the blasts in vitro.\n",
        encoding="utf-8")
    rag = open_fake_rag(root / "index")
    report = rag.add([notes])
    assert len(report.added) == len(SEEDS) + 3, report.to_dict()
    return rag


# -- reading citation strings ----------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param(XIA, {"authors": ("Xia Z", "Leng Y", "Fang B", ET_AL), "journal": "BMC Cancer",
                       "year": 2023, "volume": "23", "issue": "1", "pages": "980",
                       "title": XIA_TITLE}, id="nlm"),
    pytest.param("Secchiero P, Zauli G. Aberrant expression of TRAIL in B-CLL cells. "
                 "J Cell Physiol. 2005 Nov; issue 2, pp. 246-252.",
                 {"authors": ("Secchiero P", "Zauli G"), "journal": "J Cell Physiol",
                  "year": 2005, "issue": "2", "pages": "246-252",
                  "title": "Aberrant expression of TRAIL in B-CLL cells"}, id="issue-pp"),
    pytest.param("Role of the TRAIL/APO2-L death receptors in chronic lymphocytic leukemia. "
                 "Oncogene. 2003;22(51):8356-8369.",
                 {"journal": "Oncogene", "year": 2003, "volume": "22", "issue": "51",
                  "pages": "8356-8369", "title": "Role of the TRAIL/APO2-L death receptors in "
                  "chronic lymphocytic leukemia"}, id="no-authors"),
    pytest.param("Altucci L, et al. Nat Med. 2001;7:680-686. (Primary article title not shown "
                 "on the page seen.)", {"authors": ("Altucci L", ET_AL), "journal": "Nat Med",
                                         "year": 2001, "volume": "7", "pages": "680-686"},
                 id="no-title"),
    pytest.param("Aponermin Approved by China NMPA. China Daily news subsite. November 2023. "
                 "Drug profile: Dhillon S. Aponermin: First Approval. Drugs. 2024;84(4):459-466.",
                 {}, id="two-citations-run-together"),
    pytest.param("Sichuan Clover Biopharmaceuticals (sponsor). A Phase I Study of SCB-313. "
                 "ClinicalTrials.gov registry record NCT04051112. 2019.", {}, id="registry"),
    pytest.param("FDA Grants Accelerated Approval. CancerNetwork (news article). 2025.", {},
                 id="news"),
])
def test_parse_source_reads_clear_citations_and_nothing_else(source: str,
                                                             expected: dict[str, Any]) -> None:
    assert parse_source(source) == expected


# -- the library -----------------------------------------------------------------------------


def test_library_bibtex_round_trip_keeps_every_field(library: RAG) -> None:
    refs = references_from_library(library)
    assert len(refs) == len(library.documents())
    assert len({r.key for r in refs}) == len(refs)
    entries = parse_bibtex(to_bibtex(refs))
    assert list(entries) == [r.key for r in refs]
    raw = parse_bibtex(to_bibtex(refs), decode=False)
    for ref in refs:
        assert raw[ref.key].get("pmid", "") == ref.pmid
        assert raw[ref.key].get("doi", "") == ref.doi
    xia = entries["xia2023aponermin"]
    assert xia["author"] == "Xia, Z and Leng, Y and Fang, B and others"
    assert xia["title"] == XIA_TITLE  # the paper's title, not the note's headline
    assert (xia["journal"], xia["year"], xia["volume"], xia["number"], xia["pages"]) == (
        "BMC Cancer", "2023", "23", "1", "980")
    assert xia["doi"] == "10.1186/s12885-023-11489-8"
    assert xia["keywords"] == "Phase 3 trial" and "Study design: Phase 3 trial" in xia["note"]
    pubmed = raw["macfarlane2005histone"]
    assert pubmed["pmid"] == "11111111" and pubmed["doi"] == "10.9999/blood-2004-1111"
    assert pubmed["author"] == "MacFarlane, M and Inoue, S and {CLL Research Consortium}"
    assert pubmed["url"] == "https://pubmed.ncbi.nlm.nih.gov/11111111/"
    # an unclear citation string: the note's own title, nothing guessed from the string
    nmpa = next(r for r in refs if r.title.startswith("China NMPA approves aponermin"))
    assert (nmpa.authors, nmpa.journal, nmpa.volume, nmpa.pages) == ((), "", "", "")


def test_library_ris_round_trip(library: RAG) -> None:
    refs = references_from_library(library)
    records = rispy.loads(to_ris(refs))
    assert [r["id"] for r in records] == [r.key for r in refs]
    for record, ref in zip(records, refs, strict=True):
        assert record["type_of_reference"] == "JOUR"
        assert record.get("accession_number", "") == ref.pmid
        assert record.get("doi", "") == ref.doi
    aml = next(r for r in records if r["id"] == "application2005")
    assert aml["journal_name"] == aml["secondary_title"] == "Int J Mol Med"
    assert (aml["year"], aml["volume"], aml["number"]) == ("2005", "16", "6")
    assert (aml["start_page"], aml["end_page"]) == ("1041", "1048")
    assert "authors" not in aml  # the source names none
    xia = next(r for r in records if r["id"] == "xia2023aponermin")
    assert xia["authors"] == ["Xia, Z", "Leng, Y", "Fang, B"]
    assert xia["keywords"] == ["Phase 3 trial"]


def test_library_csljson(library: RAG) -> None:
    refs = references_from_library(library)
    items = json.loads(to_csljson(refs))
    assert [i["id"] for i in items] == [r.key for r in refs]
    assert all(i["type"] == "article-journal" and i["title"] for i in items)
    xia = next(i for i in items if i["id"] == "xia2023aponermin")
    assert xia["author"][0] == {"family": "Xia", "given": "Z"}
    assert xia["issued"] == {"date-parts": [[2023]]}
    assert (xia["container-title"], xia["volume"], xia["issue"], xia["page"]) == (
        "BMC Cancer", "23", "1", "980")
    pubmed = next(i for i in items if i.get("PMID") == "11111111")
    assert pubmed["DOI"] == "10.9999/blood-2004-1111"
    assert pubmed["author"][2] == {"literal": "CLL Research Consortium"}


def test_library_filter_and_unknown_filter(library: RAG) -> None:
    refs = references_from_library(library, {"disease": "AML"})
    assert {r.title for r in refs} == {
        FLAT_HOSTILE, "Application of flow cytometry to molecular medicine: detection of tumor "
        "necrosis factor-related apoptosis-inducing ligand receptors in acute myeloid leukaemia "
        "blasts"}
    assert references_from_library(library, {"year": "1990"}) == []
    from rag.errors import QueryError

    with pytest.raises(QueryError, match="unknown filter"):
        references_from_library(library, {"colour": "red"})


# -- hostile text ----------------------------------------------------------------------------


def test_a_hostile_title_stays_literal_text_in_every_format(library: RAG) -> None:
    refs = references_from_library(library, {"doc_id": "hostile"})
    (ref,) = refs
    assert ref.title == FLAT_HOSTILE

    bib = to_bibtex(refs)
    assert "\\input" not in bib and "\\textbackslash{}input" in bib
    assert bib.count("@article{") == 1 and "\n@article{evil" not in bib
    (entry,) = parse_bibtex(bib).values()
    assert entry["title"] == FLAT_HOSTILE
    assert entry["pmid"] == "39999999"
    (raw,) = parse_bibtex(bib, decode=False).values()
    assert raw["doi"] == "10.5555/evil_{1}"  # a verbatim field, kept as it is

    ris = to_ris(refs)
    assert [line for line in ris.splitlines() if line.startswith(("TY ", "ER "))] == [
        "TY  - JOUR", "ER  - "]
    (record,) = rispy.loads(ris)
    assert record["title"] == FLAT_HOSTILE and record["accession_number"] == "39999999"

    csl = to_csljson(refs)
    assert "<script>" not in csl
    (item,) = json.loads(csl)
    assert item["title"] == FLAT_HOSTILE and item["PMID"] == "39999999"

    markdown = export_text("markdown", refs)
    assert "<script>" not in markdown and "\\<script\\>" in markdown


@pytest.mark.parametrize("title", [
    pytest.param("a } b { c", id="unpaired-braces"),
    pytest.param("end \\", id="trailing-backslash"),
    pytest.param("x}}}, note = {pwned", id="closing-the-field"),
    pytest.param("line one\nline two\r\nAU  - Mallory, M", id="newlines"),
])
def test_odd_text_cannot_break_an_entry(title: str) -> None:
    refs = [Reference(key="odd", title=title, authors=(title,), journal=title, pmid="1",
                      doi="10.1/a", notes=(title,)),
            Reference(key="next", title="Intact", pmid="2", doi="10.1/b")]
    flat = " ".join(title.split())
    entries = parse_bibtex(to_bibtex(refs))
    assert list(entries) == ["odd", "next"]
    assert entries["odd"]["title"] == entries["odd"]["journal"] == flat
    assert "pwned" not in entries["next"].get("note", "")
    assert entries["next"] == {"title": "Intact", "pmid": "2", "doi": "10.1/b"}
    records = rispy.loads(to_ris(refs))
    assert [r["title"] for r in records] == [flat, "Intact"]
    assert records[0]["authors"] == [flat]
    assert json.loads(to_csljson(refs))[0]["title"] == title


def test_a_hostile_key_cannot_add_fields() -> None:
    entries = parse_bibtex(to_bibtex([Reference(key="k}, title = {evil", title="T")]))
    assert entries == {"ktitleevil": {"title": "T"}}


# -- answers ---------------------------------------------------------------------------------


def _citation(rag: RAG, n: int, doc_id: str, sentence: int = 0) -> Citation:
    text = rag.document(doc_id).text
    spans = [m.span() for m in re.finditer(r"[A-Z][^.]*\.", text)]
    start, end = spans[sentence]
    return Citation(n=n, doc_id=doc_id, chunk_id=f"{doc_id}#0", title="", source="",
                    snippet=text[start:end], start=start, end=end, score=1.0)


def test_references_from_an_answer_quote_its_sentences(library: RAG) -> None:
    xia = "aponermin-cpt-mm301-phase3"
    cites = (_citation(library, 1, xia), _citation(library, 2, "pmid-11111111"),
             _citation(library, 3, xia, 1))
    text = " ".join(with_marker(c.snippet, c.n) for c in cites)
    answer = Answer("Does aponermin work in myeloma?", text, True, cites, (), {})
    refs = references_from_answer(answer, library)
    assert [r.key for r in refs] == ["xia2023aponermin", "macfarlane2005histone"]
    assert refs[0].notes == (f"“{cites[0].snippet}” [1]", f"“{cites[2].snippet}” [3]")
    assert refs[1].notes == (f"“{cites[1].snippet}” [2]",)
    (entry, _) = parse_bibtex(to_bibtex(refs)).values()
    assert f"“{cites[2].snippet}” [3]" in entry["note"]
    assert rispy.loads(to_ris(refs))[0]["notes"][-1] == f"“{cites[2].snippet}” [3]"


def test_notes_of_a_written_answer_are_its_own_sentences(library: RAG) -> None:
    cite = _citation(library, 1, "pmid-22222222")
    text = ("The library has no evidence on dulanermin in AML; missing: AML. Closest evidence: "
            "a preclinical study (1999) [1].")
    answer = Answer("q", text, False, (cite,), (), {})
    (ref,) = references_from_answer(answer, library)
    assert ref.notes == ("“Closest evidence: a preclinical study (1999).” [1]",)
    assert ref.pmid == "22222222" and ref.year == 1999


def test_markdown_of_an_answer_links_and_escapes(library: RAG) -> None:
    cite = _citation(library, 1, "pmid-11111111")
    cite = Citation(**{**cite.to_dict(), "source": "<b>Blood</b> 2005", "pmid": "11111111",
                       "doi": "10.9999/blood-2004-1111", "evidence": "in-vitro"})
    answer = Answer("<script>q</script>", with_marker(cite.snippet, 1), True, (cite,), (), {})
    text = to_markdown(answer)
    assert "<script>" not in text and "<b>" not in text
    assert "[PMID 11111111](https://pubmed.ncbi.nlm.nih.gov/11111111/)" in text
    assert "(https://doi.org/10.9999/blood-2004-1111)" in text
    assert " [1]." in text and f"“{cite.snippet}”" in text


HOSTILE_DOI = '10.1000/"><script>alert(1)</script>){x}'
DOI_FORMS = {  # front matter as written -> the DOI name stored and linked
    "url": ("https://doi.org/10.1000/ab(1)", "10.1000/ab(1)"),
    "escaped-url": ("http://dx.doi.org/10.1000/ab%281%29", "10.1000/ab(1)"),
    "prefixed": ("doi: 10.1000/x.y_z", "10.1000/x.y_z"),
    "hostile": (HOSTILE_DOI, HOSTILE_DOI),
}


def test_a_doi_in_any_form_is_stored_bare_and_linked_alike_everywhere(
        tmp_path: Path, open_fake_rag: Callable[..., RAG]) -> None:
    from rag.interfaces.render import reference_line
    from rag.interfaces.ui.render import sources_html

    notes = tmp_path / "notes"
    notes.mkdir()
    for name, (doi, _) in DOI_FORMS.items():
        front = {"id": name, "title": f"Note {name}", "pmid": "123", "doi": doi}
        (notes / f"{name}.md").write_text(f"---\n{yaml.safe_dump(front)}---\nTRAIL text.\n",
                                          encoding="utf-8")
    (notes / "not-a-doi.md").write_text("---\ndoi: n/a\n---\nTRAIL text.\n", encoding="utf-8")
    rag = open_fake_rag(tmp_path / "index")
    report = rag.add([notes])
    (skipped,) = report.skipped
    assert skipped.path.endswith("not-a-doi.md") and "'doi' is not a DOI" in skipped.reason
    for name, (_, bare) in DOI_FORMS.items():
        assert rag.document(name).meta["doi"] == bare
        (ref,) = references_from_library(rag, {"doc_id": name})
        assert ref.doi == bare
        assert parse_bibtex(to_bibtex([ref]), decode=False)[ref.key]["doi"] == ref.doi
        assert rispy.loads(to_ris([ref]))[0]["doi"] == bare

    # an index built before DOIs were stored bare holds them as written: the same links
    hostile = HOSTILE_DOI
    url = "https://doi.org/10.1000/%22%3E%3Cscript%3Ealert%281%29%3C/script%3E%29%7Bx%7D"
    for stored in (hostile, f"doi:{hostile}", url):
        cite = Citation(1, "d", "d#1", "T", "S", "Two.", 0, 4, 1.0, pmid="123", doi=stored)
        answer = Answer("q", "Two. [1]", True, (cite,), (), {})
        assert f'href="{url}"' in sources_html(answer)
        assert f"]({url})" in to_markdown(answer)
        assert reference_line(cite) == f"S (PMID 123; doi:{hostile})"
    assert "<script>" not in sources_html(answer)
    assert "(https://doi.org/10.1000/ab%281%29)" in to_markdown(
        Answer("q", "Two. [1]", True, (Citation(1, "d", "d#1", "T", "S", "Two.", 0, 4, 1.0,
                                                doi="https://doi.org/10.1000/ab(1)"),), (), {}))


def test_export_text_covers_every_format() -> None:
    assert set(EXPORT_SUFFIX) == set(EXPORT_FORMATS)
    ref = Reference(key="k", title="T", pmid="1")
    for fmt in EXPORT_FORMATS:
        assert export_text(fmt, [ref]).endswith("\n")
    with pytest.raises(ValueError, match="unknown export format"):
        export_text("docx", [ref])


# -- the command line ------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_cli_export_with_a_filter(library: RAG, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    index = str(library.index_dir)
    assert main(["export", "--index", index, "--filter", "disease=multiple myeloma"]) == 0
    out, err = capsys.readouterr()
    entries = parse_bibtex(out)
    assert list(entries) == ["china2023", "xia2023aponermin"]
    assert entries["xia2023aponermin"]["doi"] == "10.1186/s12885-023-11489-8"
    assert err.strip() == "2 references exported"

    target = tmp_path / "refs.ris"
    assert main(["export", "--index", index, "--format", "ris", "--filter", "year=2005",
                 "--filter", "disease=CLL", "--out", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"1 reference exported to {target}"
    (record,) = rispy.loads(target.read_text(encoding="utf-8"))
    assert record["id"] == "secchiero2005aberrant"
    assert (record["number"], record["start_page"], record["end_page"]) == ("2", "246", "252")

    assert main(["export", "--index", index, "--filter", "colour=red"]) == 1
    assert "unknown filter" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_cli_ask_json_and_format_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ask", "TRAIL?", "--json", "--format", "ris"])
    assert exc.value.code == 2
    assert "--json and --format ris" in capsys.readouterr().err


@pytest.fixture(scope="module")
def answer_index(tmp_path_factory: pytest.TempPathFactory, open_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_rag, "export-answers")


@pytest.mark.usefixtures("clean_env")
def test_cli_ask_format_bibtex_ris_csljson_markdown(answer_index: RAG,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    question = "Why are primary CLL cells resistant to TRAIL?"
    index = str(answer_index.index_dir)
    assert main(["ask", question, "--index", index, "--format", "bibtex"]) == 0
    entries = parse_bibtex(capsys.readouterr().out)
    cll = next(e for e in entries.values() if e.get("pmid") == "31000001")
    assert cll["doi"] == "10.5555/cll.2019.01" and "” [" in cll["note"]

    assert main(["ask", question, "--index", index, "--format", "ris"]) == 0
    records = rispy.loads(capsys.readouterr().out)
    assert "31000001" in [r.get("accession_number") for r in records]

    assert main(["ask", question, "--index", index, "--format", "csljson"]) == 0
    assert "31000001" in [i.get("PMID") for i in json.loads(capsys.readouterr().out)]

    assert main(["ask", question, "--index", index, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"**Q:** {question}")
    assert "https://pubmed.ncbi.nlm.nih.gov/31000001/" in out

    assert main(["ask", question, "--index", index, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["question"] == question


def test_repeated_citation_keys_get_letters_then_numbers(
        tmp_path: Path, open_fake_rag: Callable[..., RAG]) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(30):  # one author, year and title word: one key base for all of them
        (notes / f"n{i:02d}.md").write_text(
            f"---\nid: n{i:02d}\ntitle: Aponermin study number {i}\nyear: 2023\n"
            "authors: [Xia J]\n---\nAponermin was given to patients with myeloma.\n",
            encoding="utf-8")
    rag = open_fake_rag(tmp_path / "index")
    rag.add([notes])
    keys = [r.key for r in references_from_library(rag)]
    assert keys[:3] == ["xia2023aponermin", "xia2023aponerminb", "xia2023aponerminc"]
    assert keys[25:27] == ["xia2023aponerminz", "xia2023aponermin27"]
    assert len(set(keys)) == 30
