"""NCBI E-utilities builders, JSON and XML; and the generic XML builder.

The ``xml`` builder reads any XML answer: E-utilities roots it knows (PubMed articles, ESearch,
ESummary, EInfo, ELink) get their facts by name; any other XML becomes nested objects of its
elements, with attributes, like the generic JSON summary.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from biocurate.observations.json_builders import compact, load_json, require_answer
from biocurate.observations.registry import NotAnAnswer, UnexpectedShape, builder


@builder("ncbi_esearch", "json")
def ncbi_esearch(body: bytes) -> Any:
    data = load_json(body)
    result = data.get("esearchresult") if isinstance(data, dict) else None
    if result is None:
        raise UnexpectedShape("no esearchresult in the E-utilities answer")
    if result.get("ERROR"):
        raise NotAnAnswer(f"E-utilities error: {result['ERROR']}", "api_error")
    if str(result.get("count", "")) == "0":
        raise NotAnAnswer("no hits (count 0)")
    out = {k: result.get(k) for k in ("count", "retmax", "retstart", "idlist", "querytranslation") if k in result}
    if result.get("warninglist"):
        out["warnings"] = compact(result["warninglist"])
    return out


def _docsum(record: dict) -> Any:
    """One ESummary record: sort keys and empty values dropped, authors as names."""
    kept = {k: v for k, v in record.items() if not k.startswith("sort") and k not in ("uid", "error")}
    if isinstance(kept.get("authors"), list):
        kept["authors"] = [a.get("name") if isinstance(a, dict) else a for a in kept["authors"]]
    if isinstance(kept.get("articleids"), list):
        kept["articleids"] = {a.get("idtype"): a.get("value") for a in kept["articleids"] if isinstance(a, dict)}
    return compact(kept)


@builder("ncbi_esummary", "json")
def ncbi_esummary(body: bytes) -> Any:
    data = load_json(body)
    result = data.get("result") if isinstance(data, dict) else None
    if result is None:
        raise UnexpectedShape("no result in the esummary answer")
    uids = result.get("uids", [])
    if not uids:
        raise NotAnAnswer("no records (uids empty)")
    return {"uids": uids, "records": {u: _docsum(result.get(u) or {}) for u in uids}}


@builder("ncbi_elink", "json")
def ncbi_elink(body: bytes) -> Any:
    data = load_json(body)
    linksets = data.get("linksets") if isinstance(data, dict) else None
    if linksets is None:
        raise UnexpectedShape("no linksets in the elink answer")
    out = []
    for linkset in linksets:
        links = [
            {
                "dbto": db.get("dbto"),
                "linkname": db.get("linkname"),
                "count": len(db.get("links") or []),
                "links": [link.get("id") if isinstance(link, dict) else link for link in db.get("links") or []],
            }
            for db in linkset.get("linksetdbs") or []
        ]
        out.append(
            {
                "dbfrom": linkset.get("dbfrom"),
                "ids": linkset.get("ids"),
                **({"linksetdbs": links} if links else {}),
                **({"idurls": compact(linkset["idurllist"])} if linkset.get("idurllist") else {}),
                **({"checks": compact(linkset["idchecklist"])} if linkset.get("idchecklist") else {}),
            }
        )
    if not any(len(o) > 2 for o in out):
        raise NotAnAnswer("no links found")
    return {"linksets": out}


def parse_xml(body: bytes) -> ET.Element:
    if b"<!ENTITY" in body:
        raise UnexpectedShape("XML body declares entities: refused")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise UnexpectedShape(f"body is not valid XML: {exc}") from exc


def _tag(element: ET.Element) -> str:
    return re.sub(r"^\{.*\}", "", element.tag)


def _text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    text = re.sub(r"\s+", " ", "".join(element.itertext())).strip()
    return text or None


def element_summary(element: ET.Element) -> Any:
    """An element as nested objects: attributes, text, children (repeated tags as lists)."""
    children = list(element)
    text = _text(element) if not children else None
    attrs = {f"@{k}": v for k, v in element.attrib.items()}
    if not children:
        return {**attrs, "text": text} if attrs and text else (attrs or text)
    out: dict[str, Any] = dict(attrs)
    for child in children:
        value = element_summary(child)
        if value in (None, "", {}):
            continue
        tag = _tag(child)
        if tag in out:
            if not isinstance(out[tag], list):
                out[tag] = [out[tag]]
            out[tag].append(value)
        else:
            out[tag] = value
    return out


def _pubmed_article(article: ET.Element) -> dict[str, Any]:
    cite = article.find(".//MedlineCitation")
    art = article.find(".//Article")
    if cite is None or art is None:
        return compact(element_summary(article))
    out: dict[str, Any] = {"pmid": _text(cite.find("PMID")), "title": _text(art.find("ArticleTitle"))}
    abstract = [
        ((f"{a.get('Label')}: " if a.get("Label") else "") + (_text(a) or ""))
        for a in art.findall("Abstract/AbstractText")
    ]
    out["abstract"] = " ".join(abstract) or None
    authors = []
    for author in art.findall("AuthorList/Author"):
        name = " ".join(x for x in (_text(author.find("LastName")), _text(author.find("Initials"))) if x)
        authors.append(name or _text(author.find("CollectiveName")))
    out["authors"] = [a for a in authors if a]
    journal = art.find("Journal")
    if journal is not None:
        out["journal"] = _text(journal.find("Title"))
        out["journal_abbreviation"] = _text(journal.find("ISOAbbreviation"))
        issue = journal.find("JournalIssue")
        if issue is not None:
            out["volume"] = _text(issue.find("Volume"))
            out["issue"] = _text(issue.find("Issue"))
            date = issue.find("PubDate")
            out["year"] = _text(date.find("Year")) if date is not None else None
            if not out["year"] and date is not None:
                year = re.search(r"\b(1[89]|20)\d\d\b", _text(date.find("MedlineDate")) or "")
                out["year"] = year.group(0) if year else None
    out["pages"] = _text(art.find("Pagination/MedlinePgn"))
    out["doi"] = next((_text(e) for e in art.findall("ELocationID") if e.get("EIdType") == "doi"), None)
    out["publication_types"] = [_text(p) for p in art.findall("PublicationTypeList/PublicationType")]
    out["mesh_terms"] = [_text(m.find("DescriptorName")) for m in cite.findall("MeshHeadingList/MeshHeading")]
    out["keywords"] = [_text(k) for k in cite.findall("KeywordList/Keyword")]
    out["chemicals"] = [_text(c.find("NameOfSubstance")) for c in cite.findall("ChemicalList/Chemical")]
    return {k: v for k, v in out.items() if v not in (None, "", [])}


def _docsum_xml(doc: ET.Element) -> dict[str, Any]:
    def item(node: ET.Element) -> Any:
        subs = node.findall("Item")
        return [item(s) for s in subs] if subs else _text(node)

    out: dict[str, Any] = {"id": _text(doc.find("Id"))}
    for node in doc.findall("Item"):
        value = item(node)
        if value not in (None, "", []):
            out[node.get("Name", "item")] = value
    return out


def _einfo(root: ET.Element) -> dict[str, Any]:
    names = [_text(n) for n in root.findall("DbList/DbName")]
    if names:
        return {"databases": names, "count": len(names)}
    info = root.find("DbInfo")
    if info is None:
        return compact(element_summary(root))
    out: dict[str, Any] = {_tag(c): _text(c) for c in info if not list(c)}
    out["fields"] = [f"{_text(f.find('Name'))}: {_text(f.find('FullName'))}" for f in info.findall("FieldList/Field")]
    out["links"] = [f"{_text(link.find('Name'))}: {_text(link.find('Menu'))}" for link in info.findall("LinkList/Link")]
    return {k: v for k, v in out.items() if v}


def _esearch_xml(root: ET.Element) -> dict[str, Any]:
    errors = [_text(e) for e in root.findall("ERROR")]
    if errors:
        raise NotAnAnswer(f"E-utilities error: {'; '.join(e for e in errors if e)}", "api_error")
    count = _text(root.find("Count"))
    if count == "0":
        raise NotAnAnswer(
            "no hits (count 0)" + (f": {_text(root.find('ErrorList'))}" if root.find("ErrorList") is not None else "")
        )
    return {
        "count": count,
        "retmax": _text(root.find("RetMax")),
        "retstart": _text(root.find("RetStart")),
        "idlist": [_text(i) for i in root.findall("IdList/Id")],
        "querytranslation": _text(root.find("QueryTranslation")),
    }


XML_ROOTS = {
    "PubmedArticleSet": lambda root: _articles(root),
    "eSummaryResult": lambda root: (
        {"records": [_docsum_xml(d) for d in root.findall("DocSum")]}
        if root.findall("DocSum")
        else compact(element_summary(root))
    ),
    "eInfoResult": _einfo,
    "eSearchResult": _esearch_xml,
}


def _articles(root: ET.Element) -> dict[str, Any]:
    articles = [_pubmed_article(a) for a in root if _tag(a) in ("PubmedArticle", "PubmedBookArticle")]
    if not articles:
        raise NotAnAnswer("no PubMed article in the answer")
    return articles[0] if len(articles) == 1 else {"count": len(articles), "articles": articles}


@builder("xml", "xml")
def xml(body: bytes) -> Any:
    root = parse_xml(body)
    errors = [_text(e) for e in root.iter() if _tag(e) == "ERROR"]
    if errors and not list(root.iter("DocSum")):
        raise NotAnAnswer(f"E-utilities error: {'; '.join(e for e in errors if e)}", "api_error")
    handler = XML_ROOTS.get(_tag(root))
    summary = handler(root) if handler else {_tag(root): compact(element_summary(root))}
    return require_answer(summary, f"{_tag(root)} answer")
