"""Which format a body is in, and what an HTTP answer was (its outcome).

The format of a body is the one the catalog declares for the call's arguments (``formats`` rules),
unless the answer's media type names another definite format (``text/x-gff3``, ``text/xml``,
UniProt's ``text/plain;format=tsv``...): then the body is read as what it says it is. ``text/html``
and bare ``text/plain`` say nothing definite and never override the declaration.

``classify`` turns an answer into an outcome: errors hidden in a 200, empty results and BLAST
job pages that carry only a status are never ``ok``.
"""

from __future__ import annotations

import json
import re

from biocurate.observations.blast import BlastRejected, job_status, parse_submission, status_outcome
from biocurate.outcomes import API_ERROR, HTTP_ERROR, INVALID_BODY, OK, OK_EMPTY

FORMATS = ("json", "xml", "text", "fasta", "html", "tsv", "gff3")
MEDIA_TYPES = {
    "application/json": "json",
    "text/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/x-fasta": "fasta",
    "text/x-gff3": "gff3",
    "text/tab-separated-values": "tsv",
    "text/x-seqxml+xml": "xml",
    "text/x-phyloxml+xml": "xml",
    "text/x-orthoxml+xml": "xml",
}


def media_format(content_type: str) -> str | None:
    """The format a Content-Type names definitely, else None."""
    media, _, parameters = (content_type or "").partition(";")
    named = re.search(r"\bformat=([\w-]+)", parameters)
    if named and named.group(1).lower() in FORMATS:
        return named.group(1).lower()
    return MEDIA_TYPES.get(media.strip().lower())


def resolve_format(declared: str, content_type: str = "") -> str:
    """The format to read a body in: the declared one unless the media type names another."""
    return media_format(content_type) or declared


def _json_outcome(body: bytes) -> tuple[str, str | None]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        return INVALID_BODY, f"not valid JSON: {exc}"
    if isinstance(data, dict):
        if data.get("error") or data.get("ERROR"):
            return API_ERROR, str(data.get("error") or data.get("ERROR"))[:300]
        search = data.get("esearchresult")
        if isinstance(search, dict):
            if search.get("ERROR"):
                return API_ERROR, str(search["ERROR"])[:300]
            if str(search.get("count", "")) == "0":
                return OK_EMPTY, "no hits"
        result = data.get("result")
        if isinstance(result, dict) and result.get("uids") == []:
            return OK_EMPTY, "no records (esummary uids empty)"
        if data.get("results") == [] or data == {}:
            return OK_EMPTY, "no results"
    if data == []:
        return OK_EMPTY, "no results"
    return OK, None


def _xml_outcome(text: str) -> tuple[str, str | None]:
    if re.search(r"<ERROR>|<Error>", text) and "<DocSum>" not in text:
        return API_ERROR, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text.split("?>", 1)[-1]))[:300].strip()
    if re.search(r"<eSearchResult>\s*<Count>0</Count>", text):
        found = re.search(r"<PhraseNotFound>(.*?)</PhraseNotFound>", text)
        return OK_EMPTY, "no hits" + (f" (phrase not found: {found.group(1)})" if found else "")
    if re.search(r"<PubmedArticleSet>\s*</PubmedArticleSet>|<PubmedArticleSet\s*/>", text):
        return OK_EMPTY, "no PubMed article"
    return OK, None


def _blast_page_outcome(text: str) -> tuple[str, str | None]:
    """A BLAST page: a submission reply names its job, a status page only where the job is."""
    if "Sequences producing significant alignments" in text:
        return OK, None
    if "No significant similarity found" in text:
        rid = re.search(r"RID:\s*(\S+)", text)
        return OK_EMPTY, f"BLAST job {rid.group(1) if rid else ''}: no significant similarity found"
    if "QBlastInfoBegin" in text:
        status = job_status(text)
        if status:
            rid = re.search(r"RID[:=]\s*([A-Z0-9]{6,40})", text)
            return status_outcome(rid.group(1) if rid else None, status)
        try:
            parse_submission(text)
        except BlastRejected as exc:
            return API_ERROR, str(exc)[:300]
        return OK, None
    return OK, None


def classify(status: int, content_type: str, body: bytes, response_format: str) -> tuple[str, str | None]:
    """(outcome, error text) of one HTTP answer to a call whose declared format is ``response_format``."""
    if status >= 400:
        text = body.decode("utf-8", "replace")[:300]
        try:
            text = json.loads(body).get("error", text)
        except (ValueError, AttributeError):
            pass
        return HTTP_ERROR, f"HTTP {status}: {text}".strip()
    if not body.strip():
        return OK_EMPTY, "empty body"
    fmt = resolve_format(response_format, content_type)
    if fmt == "json":
        return _json_outcome(body)
    text = body.decode("utf-8", "replace")
    if fmt == "xml":
        return _xml_outcome(text)
    if "QBlastInfoBegin" in text or (fmt in ("text", "html") and text.lstrip().startswith(("BLAST", "TBLAST"))):
        return _blast_page_outcome(text)
    if fmt == "html" and re.search(r"[Ee]rror", text):
        message = re.search(r"Message ID#\d+ Error:[^<]*", text)
        return API_ERROR, (message.group(0) if message else "error page")[:300]
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if fmt == "tsv" and len(lines) < 2:
        return OK_EMPTY, "TSV header without rows"
    if fmt == "gff3" and not lines:
        return OK_EMPTY, "GFF3 without features"
    return OK, None
