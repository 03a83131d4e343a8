"""PubMed XML (efetch's ``PubmedArticleSet``) written for tests: one record builder shared by
the evidence tests (publication types, MeSH terms) and the stub E-utilities server in the fetch
tests. The records are invented; the shape follows NCBI's PubMed DTD."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

PUBMED_HEAD = ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
               'PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/'
               'pubmed_250101.dtd">\n<PubmedArticleSet>\n')
PUBMED_TAIL = "</PubmedArticleSet>\n"


def pubmed_article(pmid: str, title: str, abstract: str, *, year: int | str = 2012,
                   types: Sequence[str] = (), mesh: Sequence[str] = (),
                   pmcid: str | None = None, broken: bool = False) -> str:
    """One ``<PubmedArticle>``; ``broken`` leaves an unclosed tag in the title."""
    title_xml = escape(title) + (" <i>unclosed" if broken else "")
    type_list = "".join(f"<PublicationType>{escape(t)}</PublicationType>" for t in types)
    mesh_list = "".join(f"<MeshHeading><DescriptorName>{escape(m)}</DescriptorName>"
                        "</MeshHeading>" for m in mesh)
    pmc = f'<ArticleId IdType="pmc">{pmcid}</ArticleId>' if pmcid else ""
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">'
        f'{pmid}</PMID><Article PubModel="Print"><Journal><JournalIssue CitedMedium="Internet">'
        f"<PubDate><Year>{year}</Year></PubDate></JournalIssue><Title>Journal of Test "
        f"Haematology</Title><ISOAbbreviation>J Test Haematol</ISOAbbreviation></Journal>"
        f"<ArticleTitle>{title_xml}</ArticleTitle><Abstract><AbstractText>{escape(abstract)}"
        f'</AbstractText></Abstract><AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>'
        f"Tester</LastName><ForeName>Ada</ForeName><Initials>A</Initials></Author></AuthorList>"
        + (f"<PublicationTypeList>{type_list}</PublicationTypeList>" if types else "")
        + "</Article>"
        + (f"<MeshHeadingList>{mesh_list}</MeshHeadingList>" if mesh else "")
        + f'</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pubmed">'
        f"{pmid}</ArticleId>{pmc}</ArticleIdList></PubmedData></PubmedArticle>\n"
    )


def pubmed_set(articles: Sequence[str]) -> str:
    """A whole efetch answer: the XML declaration and DOCTYPE, then the records."""
    return f"{PUBMED_HEAD}{''.join(articles)}{PUBMED_TAIL}"
