"""Observation builders: compact, deterministic, size-bounded summaries of responses.

One small function per response shape, chosen by the catalog's ``observation`` field. A
builder that meets a shape it does not understand raises ``UnexpectedShape``; the executor
records that response as ``invalid_body`` with the reason instead of storing an observation.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Callable

from biocurate.hashing import canonical_json


class UnexpectedShape(ValueError):
    pass


BUILDERS: dict[str, Callable[[bytes], Any]] = {}


def builder(name: str):
    def register(fn):
        BUILDERS[name] = fn
        return fn
    return register


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnexpectedShape(f"body is not valid JSON: {exc}") from exc


def _trim(value: Any, max_items: int = 5, max_str: int = 300, depth: int = 0) -> Any:
    """Keep the shape, drop the bulk: first items of lists, long strings cut, deep nesting summarised."""
    if isinstance(value, dict):
        if depth > 4:
            return f"{{{len(value)} keys}}"
        return {k: _trim(v, max_items, max_str, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        head = [_trim(v, max_items, max_str, depth + 1) for v in value[:max_items]]
        if len(value) > max_items:
            head.append(f"... {len(value) - max_items} more")
        return head
    if isinstance(value, str) and len(value) > max_str:
        return value[:max_str] + f"... ({len(value)} chars)"
    return value


@builder("json")
def generic_json(body: bytes) -> Any:
    return _trim(_json(body))


@builder("text")
def text(body: bytes) -> Any:
    lines = [line.rstrip() for line in body.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        raise UnexpectedShape("empty text body")
    return {"lines": len(lines), "head": lines[:20]}


@builder("fasta")
def fasta(body: bytes) -> Any:
    records, current = [], None
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith(">"):
            current = {"header": line[1:].strip(), "length": 0, "start": ""}
            records.append(current)
        elif current is not None:
            seq = line.strip()
            current["length"] += len(seq)
            if len(current["start"]) < 60:
                current["start"] = (current["start"] + seq)[:60]
    if not records:
        raise UnexpectedShape("no FASTA record ('>' header) in body")
    return {"records": len(records), "sequences": records[:5]}


def _xml_summary(element: ET.Element, depth: int = 0) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()[:300]
    if depth > 3:
        return f"{{{len(children)} elements}}"
    out: dict[str, Any] = {}
    for child in children[:40]:
        value = _xml_summary(child, depth + 1)
        tag = re.sub(r"^\{.*\}", "", child.tag)
        if tag in out:
            if not isinstance(out[tag], list):
                out[tag] = [out[tag]]
            if len(out[tag]) < 5:
                out[tag].append(value)
        else:
            out[tag] = value
    return out


@builder("xml")
def xml(body: bytes) -> Any:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise UnexpectedShape(f"body is not valid XML: {exc}") from exc
    return {re.sub(r"^\{.*\}", "", root.tag): _xml_summary(root)}


@builder("html")
def html(body: bytes) -> Any:
    page = body.decode("utf-8", "replace")
    info = re.search(r"QBlastInfoBegin(.*?)QBlastInfoEnd", page, re.S)
    if info:
        fields = dict(re.findall(r"(\w+)\s*=\s*(\S+)", info.group(1)))
        return {"blast_job": fields}
    title = re.search(r"<title>(.*?)</title>", page, re.S | re.I)
    return {"title": title.group(1).strip() if title else None, "text": re.sub(r"<[^>]+>|\s+", " ", page)[:500].strip()}


@builder("tsv")
def tsv(body: bytes) -> Any:
    rows = [line.split("\t") for line in body.decode("utf-8", "replace").splitlines() if line]
    if not rows:
        raise UnexpectedShape("empty TSV body")
    return {"columns": rows[0], "rows": len(rows) - 1, "head": rows[1:6]}


ENSEMBL_KEEP = ("id", "display_name", "species", "object_type", "biotype", "assembly_name",
                "seq_region_name", "start", "end", "strand", "description", "canonical_transcript",
                "version", "Parent", "length", "db_type", "logic_name", "source")


@builder("ensembl_lookup")
def ensembl_lookup(body: bytes) -> Any:
    data = _json(body)
    if not isinstance(data, dict):
        raise UnexpectedShape(f"expected an object, got {type(data).__name__}")
    if "id" not in data and all(isinstance(v, dict) for v in data.values()) and data:
        # POST lookup answers an object keyed by the identifiers asked for.
        return {k: ensembl_lookup(json.dumps(v).encode()) for k, v in list(data.items())[:5]}
    out = {k: data[k] for k in ENSEMBL_KEEP if k in data}
    if not out:
        raise UnexpectedShape("no Ensembl lookup fields (id, display_name, ...) in the object")
    transcripts = data.get("Transcript") or []
    if transcripts:
        out["transcripts"] = len(transcripts)
        out["transcript_ids"] = [t.get("id") for t in transcripts[:5]]
    return out


@builder("uniprot_entry")
def uniprot_entry(body: bytes) -> Any:
    data = _json(body)
    if not isinstance(data, dict) or not ("primaryAccession" in data or "accession" in data):
        raise UnexpectedShape("no primaryAccession in the UniProt entry")
    desc = data.get("proteinDescription", {}).get("recommendedName", {}).get("fullName", {}).get("value")
    genes = [g.get("geneName", {}).get("value") for g in data.get("genes", []) if g.get("geneName")]
    functions = [t.get("value") for c in data.get("comments", []) if c.get("commentType") == "FUNCTION"
                 for t in c.get("texts", [])]
    out = {
        "accession": data.get("primaryAccession", data.get("accession")),
        "entry_type": data.get("entryType"),
        "protein": desc,
        "genes": genes,
        "organism": data.get("organism", {}).get("scientificName"),
        "length": data.get("sequence", {}).get("length"),
        "function": functions[:1],
    }
    return {k: v for k, v in out.items() if v not in (None, [], "")} or _trim(data)


@builder("uniprot_search")
def uniprot_search(body: bytes) -> Any:
    data = _json(body)
    if not isinstance(data, dict) or "results" not in data:
        raise UnexpectedShape("expected {'results': [...]} from a UniProt search")
    results = data["results"]
    return {"results": len(results), "first": [_trim(r, 3, 160, 2) for r in results[:3]]}


@builder("ncbi_esearch")
def ncbi_esearch(body: bytes) -> Any:
    data = _json(body)
    result = data.get("esearchresult") if isinstance(data, dict) else None
    if result is None:
        raise UnexpectedShape("no esearchresult in the E-utilities answer")
    return {k: result.get(k) for k in ("count", "retmax", "idlist", "querytranslation") if k in result}


@builder("ncbi_esummary")
def ncbi_esummary(body: bytes) -> Any:
    data = _json(body)
    result = data.get("result") if isinstance(data, dict) else None
    if result is None:
        raise UnexpectedShape("no result in the esummary answer")
    uids = result.get("uids", [])
    return {"uids": uids, "records": {u: _trim(result.get(u, {}), 3, 200, 2) for u in uids[:3]}}


@builder("blast_report")
def blast_report(body: bytes) -> Any:
    """A BLAST text report: RID, database, query length and the hit table; or a job's status page."""
    text = body.decode("utf-8", "replace")
    info = dict(re.findall(r"(\w+)\s*=\s*(\S+)", "".join(re.findall(r"QBlastInfoBegin(.*?)QBlastInfoEnd", text, re.S))))
    if info and "Sequences producing" not in text:
        return {"blast_job": info}
    rid = re.search(r"RID:\s*(\S+)", text)
    database = re.search(r"Database:\s*(.+)", text)
    length = re.search(r"Length=(\d+)", text)
    table = text.split("Sequences producing significant alignments:", 1)
    if len(table) < 2:
        if "No significant similarity found" in text:
            return {"rid": rid.group(1) if rid else None, "hits": []}
        raise UnexpectedShape("neither a BLAST report (hit table) nor a QBlastInfo status block")
    hits = []
    for line in table[1].splitlines():
        if line.startswith("ALIGNMENTS") or line.startswith(">"):
            break
        cells = re.match(r"(\S+)\s+(.*?)\s+(\d+(?:\.\d+)?)\s+(\S+)\s*$", line.strip())
        if cells:
            hits.append({"id": cells.group(1), "title": cells.group(2)[:80], "bits": cells.group(3), "evalue": cells.group(4)})
    return {"rid": rid.group(1) if rid else None, "database": database.group(1).strip() if database else None,
            "query_length": int(length.group(1)) if length else None, "hits": hits[:10]}


def build_observation(name: str, response_format: str, body: bytes, max_chars: int) -> tuple[str, str]:
    """(builder used, observation text); raises UnexpectedShape.

    ``auto`` uses the builder named after the response format (every format has one).
    """
    chosen = response_format if name == "auto" else name
    summary = BUILDERS[chosen](body)
    text = canonical_json(summary)
    if len(text) > max_chars:
        # Shrink harder rather than cut JSON mid-token: a bounded, still-parseable summary.
        text = canonical_json(_trim(summary, max_items=2, max_str=80))
    if len(text) > max_chars:
        text = text[: max_chars - 20] + f"...(+{len(text) - max_chars + 20} chars)"
    return chosen, text
