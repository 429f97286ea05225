"""Builders for text answers: FASTA, TSV, GFF3, GenBank/GenPept flat files, MEDLINE, citation
matches, and plain text.

``text`` is what E-utilities' text mode and other free-form answers get: a body that is one of
the formats above (or JSON, XML) goes to that format's builder, anything else is kept as lines.
"""

from __future__ import annotations

import re
from typing import Any

from biocurate.observations.blast import job_status
from biocurate.observations.json_builders import require_answer
from biocurate.observations.registry import BUILDERS, NotAnAnswer, UnexpectedShape, builder, decode


def _lines(body: bytes) -> list[str]:
    return [line.rstrip() for line in decode(body).splitlines()]


@builder("fasta", "fasta")
def fasta(body: bytes) -> Any:
    """Each record: id, description, organism (``[...]`` at the end, as NCBI writes it), length, sequence."""
    records: list[dict[str, Any]] = []
    chunks: list[list[str]] = []
    for line in _lines(body):
        if line.startswith(">"):
            header = line[1:].strip()
            ident, _, description = header.partition(" ")
            record: dict[str, Any] = {"id": ident, "description": description}
            organism = re.search(r"\[([^\[\]]+)\]\s*$", description)
            if organism:
                record["organism"] = organism.group(1)
            records.append(record)
            chunks.append([])
        elif chunks and line.strip():
            chunks[-1].append(line.strip())
    if not records:
        raise UnexpectedShape("no FASTA record ('>' header) in body")
    for record, chunk in zip(records, chunks, strict=True):
        sequence = "".join(chunk)
        record["length"] = len(sequence)
        record["sequence"] = sequence
    if len(records) == 1:
        return {k: v for k, v in records[0].items() if v not in ("", None)}
    return {"records": len(records), "sequences": records}


@builder("tsv", "tsv")
def tsv(body: bytes) -> Any:
    """Rows as objects keyed by the header's column names (UniProt's TSV streams)."""
    rows = [line.split("\t") for line in _lines(body) if line.strip()]
    if not rows:
        raise UnexpectedShape("empty TSV body")
    columns = rows[0]
    if len(rows) == 1:
        raise NotAnAnswer("TSV header without rows")
    records = [{c: v for c, v in zip(columns, row, strict=False) if v} for row in rows[1:]]
    return {"columns": columns, "rows": len(records), "records": records}


GFF_ATTRIBUTES = (
    "ID",
    "Name",
    "Parent",
    "biotype",
    "description",
    "gene_id",
    "transcript_id",
    "protein_id",
    "external_name",
    "consequence_type",
    "alleles",
    "logic_name",
)


@builder("gff3", "gff3")
def gff3(body: bytes) -> Any:
    """Features (seqid, source, type, start, end, strand and the telling attributes), counted by type."""
    features, directives = [], []
    for line in _lines(body):
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("##") or line.startswith("#!"):
                directives.append(line.lstrip("#!").strip())
            continue
        cells = line.split("\t")
        if len(cells) != 9:
            raise UnexpectedShape(f"GFF3 feature line without 9 tab-separated columns: {line[:80]!r}")
        attributes = dict(part.split("=", 1) for part in cells[8].split(";") if "=" in part)
        feature = {
            "seqid": cells[0],
            "source": cells[1],
            "type": cells[2],
            "start": int(cells[3]),
            "end": int(cells[4]),
            "strand": cells[6],
        }
        feature.update({k: attributes[k] for k in GFF_ATTRIBUTES if attributes.get(k)})
        features.append(feature)
    if not directives and not features:
        raise UnexpectedShape("neither GFF3 directives nor feature lines in body")
    if not features:
        raise NotAnAnswer("GFF3 without features")
    by_type: dict[str, int] = {}
    for feature in features:
        kind = str(feature["type"])
        by_type[kind] = by_type.get(kind, 0) + 1
    return {"directives": directives, "features": len(features), "by_type": by_type, "records": features}


def _fields(lines: list[str], width: int = 12) -> list[tuple[str, list[str]]]:
    """(KEY, its lines) of a flat file whose keys fill the first ``width`` columns."""
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        key, value = line[:width].strip(), line[width:].strip()
        if key:
            out.append((key, [value]))
        elif out:
            out[-1][1].append(value)
    return out


@builder("genbank", "text")
def genbank(body: bytes) -> Any:
    """A GenBank/GenPept flat file: locus, definition, accession, organism and lineage, length,
    references, gene and product names; the sequence's start."""
    text = decode(body)
    records = [r for r in re.split(r"^//\s*$", text, flags=re.M) if r.strip()]
    summaries = [_genbank_record(r) for r in records]
    return summaries[0] if len(summaries) == 1 else {"records": len(summaries), "entries": summaries}


def _genbank_record(text: str) -> dict[str, Any]:
    head, _, origin = text.partition("\nORIGIN")
    head, _, features = head.partition("\nFEATURES")
    fields = _fields(head.strip("\n").splitlines())
    if not fields or fields[0][0] != "LOCUS":
        raise UnexpectedShape("no LOCUS line: not a GenBank flat file")
    locus = fields[0][1][0]
    out: dict[str, Any] = {"locus": locus.split()[0] if locus.split() else None}
    shape = re.search(r"(\d+)\s+(bp|aa)\s+(\S+)?", locus)
    if shape:
        out["length"] = int(shape.group(1))
        out["unit"] = shape.group(2)
        out["molecule"] = shape.group(3)
    references: list[dict[str, str]] = []
    for key, lines in fields[1:]:
        value = " ".join(v for v in lines if v).strip()
        if key == "ORGANISM":
            # The name on the first line, the lineage on the lines after it.
            out["organism"] = lines[0]
            lineage = " ".join(lines[1:]).rstrip(".")
            if lineage:
                out["lineage"] = [w.strip() for w in lineage.split(";") if w.strip()]
        elif key in ("DEFINITION", "ACCESSION", "VERSION", "KEYWORDS", "SOURCE", "DBSOURCE"):
            out.setdefault(key.lower(), value.rstrip(".") if key != "KEYWORDS" else value.strip(". "))
        elif key == "REFERENCE":
            references.append({})
        elif key in ("AUTHORS", "TITLE", "JOURNAL", "PUBMED") and references:
            references[-1][key.lower()] = value
    out["references"] = references
    genes = re.findall(r'/gene="([^"]+)"', features)
    products = re.findall(r'/product="([^"]+)"', features)
    out["genes"] = sorted(set(genes))
    out["products"] = sorted(set(p.replace("\n", " ") for p in products))
    out["feature_types"] = sorted(set(re.findall(r"^ {5}(\S+)\s", features, flags=re.M)))
    sequence = "".join(re.findall(r"[a-zA-Z]+", re.sub(r"\d", "", origin)))
    if sequence:
        out["sequence"] = sequence
    return {k: v for k, v in out.items() if v not in (None, "", [])}


MEDLINE_FIELDS = {
    "PMID": "pmid",
    "TI": "title",
    "AB": "abstract",
    "AU": "authors",
    "TA": "journal_abbreviation",
    "JT": "journal",
    "DP": "date",
    "MH": "mesh_terms",
    "PT": "publication_types",
    "VI": "volume",
    "IP": "issue",
    "PG": "pages",
    "LID": "doi",
    "OT": "keywords",
}
MEDLINE_LISTS = {"AU", "MH", "PT", "OT"}


@builder("medline", "text")
def medline(body: bytes) -> Any:
    """MEDLINE records (``TAG - value`` lines): title, abstract, authors, journal, year, MeSH terms."""
    records: list[dict[str, Any]] = []
    tag = None
    for line in _lines(body):
        found = re.match(r"^([A-Z]{2,4})\s*- (.*)$", line)
        if found:
            tag, value = found.groups()
            if tag == "PMID":
                records.append({})
            if not records or tag not in MEDLINE_FIELDS:
                continue
            name = MEDLINE_FIELDS[tag]
            if tag in MEDLINE_LISTS:
                records[-1].setdefault(name, []).append(value.strip())
            else:
                records[-1].setdefault(name, value.strip())
        elif line.startswith("      ") and records and tag in MEDLINE_FIELDS and tag not in MEDLINE_LISTS:
            name = MEDLINE_FIELDS[tag]
            if name in records[-1]:
                records[-1][name] += " " + line.strip()
    if not records:
        raise UnexpectedShape("no MEDLINE record (PMID- line) in body")
    for record in records:
        year = re.match(r"\d{4}", record.get("date", ""))
        if year:
            record["year"] = year.group(0)
    return records[0] if len(records) == 1 else {"records": len(records), "articles": records}


@builder("ncbi_ecitmatch", "text")
def ncbi_ecitmatch(body: bytes) -> Any:
    """ECitMatch lines ``journal|year|volume|first page|author|key|PMID``: each citation with its PMID."""
    names = ("journal", "year", "volume", "first_page", "author", "key", "pmid")
    citations = []
    for line in _lines(body):
        if not line.strip():
            continue
        cells = line.split("|")
        if len(cells) < 7:
            raise UnexpectedShape(f"citation line without 7 '|' fields: {line[:80]!r}")
        citations.append({n: c.strip() for n, c in zip(names, cells, strict=False) if c.strip()})
    if not citations:
        raise UnexpectedShape("no citation line in body")
    if not any(re.fullmatch(r"\d+", c.get("pmid", "")) for c in citations):
        raise NotAnAnswer(
            "no citation matched a PubMed ID: " + ", ".join(c.get("pmid", "no PMID") for c in citations[:3])
        )
    return citations[0] if len(citations) == 1 else {"citations": citations}


def sniff(body: bytes) -> str | None:
    """The builder a body's first bytes call for, when they say it clearly (else None)."""
    text = decode(body[:4096]).lstrip("\ufeff \t\r\n")
    first = text.splitlines()[0] if text else ""
    if text.startswith(("{", "[")):
        return "json"
    if re.match(r"<(!DOCTYPE html|html)", text, re.I):
        return "blast_report" if _blast_page(decode(body)) else "html"
    if text.startswith("<"):
        return "xml"
    if text.startswith(">"):
        return "fasta"
    if text.startswith("##gff-version"):
        return "gff3"
    if text.startswith("LOCUS "):
        return "genbank"
    if re.match(r"PMID- ", text):
        return "medline"
    if text.startswith(("BLAST", "TBLAST")) or "QBlastInfoBegin" in text:
        return "blast_report"
    rows = [line for line in text.splitlines() if line.strip()][:6]
    if "\t" in first and len(rows) > 1 and len({r.count("\t") for r in rows}) == 1:
        return "tsv"
    return None


@builder("text", "text")
def text(body: bytes) -> Any:
    """Plain text as its lines; a body in a known format goes to that format's builder."""
    named = sniff(body)
    if named and named != "text":
        return BUILDERS[named](body)
    lines = [line for line in _lines(body) if line.strip()]
    if not lines:
        raise UnexpectedShape("empty text body")
    return require_answer({"lines": len(lines), "text": lines}, "text answer")


def _blast_page(page: str) -> bool:
    """A BLAST job's status page or report (a submission reply or error page is neither)."""
    return "Sequences producing significant alignments" in page or job_status(page) is not None


@builder("html", "html")
def html(body: bytes) -> Any:
    """An HTML page's title and text (tags, scripts and styles removed)."""
    page = decode(body)
    if _blast_page(page):
        return BUILDERS["blast_report"](body)
    title = re.search(r"<title[^>]*>(.*?)</title>", page, re.S | re.I)
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    content = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content)).strip()
    return require_answer({"title": title.group(1).strip() if title else None, "text": content}, "page")
