"""PubMed XML (E-utilities efetch; one file may hold many articles) and PMC/JATS XML.

Parsed with defusedxml: entity declarations, external entities and network access are refused,
so an entity bomb or a reference to a local file is an error, not a hang or a leak.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as safe_et  # noqa: N813
from defusedxml import DefusedXmlException

from rag.errors import DocumentLoadError
from rag.ingest.loaders.common import assemble, coerce_year, default_doc_id
from rag.settings import LoaderSettings
from rag.types import Document


def parse_xml(data: bytes, name: str) -> ET.Element:
    try:
        return safe_et.fromstring(data)
    except DefusedXmlException as exc:
        raise DocumentLoadError(
            name, f"unsafe XML refused ({type(exc).__name__}: entities or external references)"
        ) from exc
    except ET.ParseError as exc:
        raise DocumentLoadError(name, f"malformed XML: {exc}") from exc


def load_xml(data: bytes, name: str, settings: LoaderSettings) -> list[Document]:
    root = parse_xml(data, name)
    tag = local_name(root.tag)
    if tag in ("PubmedArticleSet", "PubmedArticle"):
        return load_pubmed(root, name, settings)
    if tag in ("article", "pmc-articleset"):
        return [load_jats(a, name, settings) for a in jats_articles(root)]
    raise DocumentLoadError(name, f"unrecognised XML (root <{tag}>): expected PubMed or JATS")


def load_pubmed(root: ET.Element, name: str, settings: LoaderSettings) -> list[Document]:
    """Each ``PubmedArticle`` becomes a document; bad records raise only if none is usable."""
    articles = [root] if local_name(root.tag) == "PubmedArticle" else root.findall("PubmedArticle")
    docs, problems = [], []
    for article in articles:
        try:
            docs.append(_pubmed_article(article, name, settings))
        except DocumentLoadError as exc:
            problems.append(exc.reason)
    if not docs:
        reason = "; ".join(problems[:3]) if problems else "no PubmedArticle records"
        raise DocumentLoadError(name, reason)
    return docs


def _pubmed_article(article: ET.Element, name: str, settings: LoaderSettings) -> Document:
    citation = article.find("MedlineCitation")
    pmid = _text(citation.find("PMID")) if citation is not None else ""
    if citation is None or not pmid.isdigit():
        raise DocumentLoadError(name, "a PubmedArticle has no valid PMID")
    art = citation.find("Article")
    if art is None:
        raise DocumentLoadError(name, f"PMID {pmid}: no Article element")
    meta: dict[str, Any] = {"pmid": pmid, "title": _text(art.find("ArticleTitle"))}
    journal = art.find("Journal")
    if journal is not None:
        meta["journal"] = _text(journal.find("Title")) or _text(journal.find("ISOAbbreviation"))
        issue = journal.find("JournalIssue")
        date = issue.find("PubDate") if issue is not None else None
        if date is not None:
            year = coerce_year(_text(date.find("Year")) or _text(date.find("MedlineDate")))
            if year:
                meta["year"] = year
    authors = []
    for author in art.iterfind("AuthorList/Author"):
        collective = _text(author.find("CollectiveName"))
        last, initials = _text(author.find("LastName")), _text(author.find("Initials"))
        if collective or last:
            authors.append(collective or f"{last} {initials}".strip())
    if authors:
        meta["authors"] = authors
    for article_id in article.iterfind("PubmedData/ArticleIdList/ArticleId"):
        kind = article_id.get("IdType", "")
        if kind in ("doi", "pmc") and _text(article_id):
            meta["doi" if kind == "doi" else "pmcid"] = _text(article_id)
    if "doi" not in meta:
        for eloc in art.iterfind("ELocationID"):
            if eloc.get("EIdType") == "doi" and _text(eloc):
                meta["doi"] = _text(eloc)
    types = [_text(t) for t in art.iterfind("PublicationTypeList/PublicationType")]
    if any(types):
        meta["publication_types"] = [t for t in types if t]
    mesh = [_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")]
    if mesh:
        meta["mesh"] = [m for m in mesh if m]
    keywords = [_text(k) for k in citation.iterfind("KeywordList/Keyword")]
    if keywords:
        meta["keywords"] = [k for k in keywords if k]
    parts = [
        (block.get("Label") or "Abstract", _text(block), None)
        for block in art.iterfind("Abstract/AbstractText")
    ]
    if not meta["title"] and not parts:
        raise DocumentLoadError(name, f"PMID {pmid}: no title and no abstract")
    if not any(p[1] for p in parts):
        raise DocumentLoadError(name, f"PMID {pmid}: no abstract text")
    return assemble(
        parts, name=f"{name}#PMID{pmid}", doc_id=f"pmid-{pmid}", meta=meta,
        doc_type="pubmed-xml", max_chars=settings.max_chars,
    )


def load_jats(article: ET.Element, name: str, settings: LoaderSettings) -> Document:
    meta_el = article.find("front/article-meta")
    meta: dict[str, Any] = {}
    if meta_el is not None:
        meta["title"] = _text(meta_el.find("title-group/article-title"))
        for aid in meta_el.iterfind("article-id"):
            kind = aid.get("pub-id-type", "")
            key = {"pmid": "pmid", "pmc": "pmcid", "pmcid": "pmcid", "doi": "doi"}.get(kind)
            if key and _text(aid):
                meta[key] = _text(aid)
        authors = []
        for contrib in meta_el.iterfind("contrib-group/contrib"):
            if contrib.get("contrib-type", "author") != "author":
                continue
            surname = _text(contrib.find("name/surname"))
            given = _text(contrib.find("name/given-names"))
            if surname:
                authors.append(f"{surname} {given}".strip())
        if authors:
            meta["authors"] = authors
        for date in meta_el.iterfind("pub-date"):
            year = coerce_year(_text(date.find("year")))
            if year:
                meta.setdefault("year", year)
    journal = article.find("front/journal-meta/journal-title-group/journal-title")
    if journal is not None:
        meta["journal"] = _text(journal)
    if meta.get("pmcid") and not str(meta["pmcid"]).upper().startswith("PMC"):
        meta["pmcid"] = f"PMC{meta['pmcid']}"
    parts: list[tuple[str, str, int | None]] = []
    abstract = meta_el.find("abstract") if meta_el is not None else None
    if abstract is not None:
        parts.extend(_jats_sections(abstract, "Abstract"))
    body = article.find("body")
    if body is not None:
        parts.extend(_jats_sections(body, ""))
    if meta.get("pmcid"):
        doc_id = f"pmc-{str(meta['pmcid']).lower().removeprefix('pmc')}"
    elif meta.get("pmid"):
        doc_id = f"pmid-{meta['pmid']}"
    else:
        doc_id = default_doc_id(name)
    meta.setdefault("title", doc_id)
    return assemble(
        parts, name=name, doc_id=doc_id, meta=meta, doc_type="jats", max_chars=settings.max_chars
    )


def _jats_sections(container: ET.Element, default: str) -> list[tuple[str, str, int | None]]:
    """Flatten nested ``<sec>`` into (title, text) parts, iteratively (no recursion limit)."""
    parts: list[tuple[str, str, int | None]] = []
    stack: list[tuple[ET.Element, str]] = [(container, default)]
    while stack:
        node, title = stack.pop()
        paragraphs = []
        children = []
        for child in node:
            tag = local_name(child.tag)
            if tag == "sec":
                sec_title = _text(child.find("title")) or title
                children.append((child, sec_title))
            elif tag in ("p", "list", "disp-quote", "statement"):
                paragraphs.append(_text(child))
        if paragraphs:
            parts.append((title, "\n\n".join(paragraphs), None))
        stack.extend(reversed(children))
    return parts


def local_name(tag: Any) -> str:
    """An element's tag without its namespace ("" for comments and processing instructions)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def jats_articles(root: ET.Element) -> list[ET.Element]:
    """The JATS articles of a document: the root ``<article>``, or those in a
    ``<pmc-articleset>`` (what PMC's efetch returns)."""
    if local_name(root.tag) == "article":
        return [root]
    return [a for a in root if local_name(a.tag) == "article"]


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())
