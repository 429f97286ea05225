"""NCBI BLAST pages: the submission reply, job status pages and the text report.

The submission reply (``CMD=Put``) is HTML with a ``QBlastInfoBegin`` comment holding ``RID = ...``
and ``RTOE = ...`` on lines of their own. An error page (``Message ID#29 Error: ...``) has the
same block with both values empty: only a line-anchored RID of RID characters counts, so an
empty ``RID =`` never reads the next line's ``RTOE`` as a job ID.
"""

from __future__ import annotations

import re
from typing import Any

from biocurate.observations.registry import NotAnAnswer, UnexpectedShape, builder, decode
from biocurate.outcomes import API_ERROR, OK_EMPTY

INFO_BLOCK = re.compile(r"QBlastInfoBegin(.*?)QBlastInfoEnd", re.S)
RID_LINE = re.compile(r"^[ \t]*RID[ \t]*=[ \t]*([A-Z0-9]{6,40})[ \t]*$", re.M)
RTOE_LINE = re.compile(r"^[ \t]*RTOE[ \t]*=[ \t]*(\d+)[ \t]*$", re.M)
STATUS_LINE = re.compile(r"^[ \t]*Status[ \t]*=[ \t]*([A-Z]+)[ \t]*$", re.M)
RID = re.compile(r"[A-Z0-9]{6,40}")


class BlastRejected(ValueError):
    """The submission reply names no job; the message is the server's."""


def info(page: str) -> str:
    return "\n".join(INFO_BLOCK.findall(page))


def error_message(page: str) -> str:
    """The server's own words on an error page, tags removed."""
    found = re.search(r"Message ID#\d+ Error:[^<]*", page)
    if found:
        return re.sub(r"\s+", " ", found.group(0)).strip()
    for pattern in (r'<p class="error">(.*?)</p>', r'class="error[^"]*"[^>]*>(.*?)</', r"<title>(.*?)</title>"):
        found = re.search(pattern, page, re.S | re.I)
        if found and re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip():
            return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()
    return "no QBlastInfo block with a request ID in the reply"


def parse_submission(page: str) -> tuple[str, int]:
    """(RID, RTOE seconds) of a submission reply; ``BlastRejected`` with the server's message if none."""
    block = info(page)
    rid, rtoe = RID_LINE.search(block), RTOE_LINE.search(block)
    if not rid or not rtoe:
        raise BlastRejected(error_message(page))
    return rid.group(1), int(rtoe.group(1))


def job_status(page: str) -> str | None:
    found = STATUS_LINE.search(info(page))
    return found.group(1) if found else None


def status_outcome(rid: str | None, status: str) -> tuple[str, str]:
    """How a status page without a report is stored: never ``ok``.

    A job still running has no report yet: ``ok_empty`` (no data), asked again when the cached
    answer expires (``[execute] cache_max_age_hours``), so an unchanged rebuild asks nothing. An
    unknown or failed job is an ``api_error``. (The executor's own submissions poll until READY
    or ``blast_max_wait_seconds``, then end as ``timeout``.)
    """
    job = f"BLAST job {rid}" if rid else "BLAST job"
    if status in ("WAITING", "RUNNING"):
        return OK_EMPTY, f"{job} is still {status}: no report yet (asked again when the cached answer expires)"
    if status == "READY":
        return OK_EMPTY, f"{job} is READY but the page holds no report"
    return API_ERROR, f"{job} has status {status} (unknown or expired request ID, or a failed search)"


def _hits(table: str) -> list[dict[str, Any]]:
    hits = []
    for line in table.splitlines():
        if line.startswith(("ALIGNMENTS", ">")):
            break
        cells = re.match(r"(\S+)\s+(.*?)\s+(\d+(?:\.\d+)?)\s+(\S+)\s*$", line.strip())
        if cells and not line.startswith(" "):
            hits.append(
                {"id": cells.group(1), "title": cells.group(2), "bits": float(cells.group(3)), "evalue": cells.group(4)}
            )
    return hits


def _alignments(text: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in re.split(r"^>", text, flags=re.M)[1:]:
        ident = block.split(None, 1)[0] if block.strip() else ""
        found = re.search(r"Identities = (\d+)/(\d+) \((\d+)%\)", block)
        length = re.search(r"Length=(\d+)", block)
        organism = re.search(r"\[([^\[\]]+)\]", block.split("Length=", 1)[0])
        if ident and ident not in out:
            out[ident] = {
                k: v
                for k, v in {
                    "identity": f"{found.group(1)}/{found.group(2)} ({found.group(3)}%)" if found else None,
                    "length": int(length.group(1)) if length else None,
                    "organism": organism.group(1) if organism else None,
                }.items()
                if v is not None
            }
    return out


@builder("blast_report", "text")
def blast_report(body: bytes) -> Any:
    """A BLAST text report: RID, program, database, query, and each hit with its score, E-value and
    identity. A status page without a report is not an answer (pending, unknown or failed job)."""
    text = decode(body)
    rid = re.search(r"RID:\s*(\S+)", text)
    table = text.split("Sequences producing significant alignments:", 1)
    if len(table) < 2:
        if "No significant similarity found" in text:
            raise NotAnAnswer(f"BLAST job {rid.group(1) if rid else ''}: no significant similarity found".strip())
        status = job_status(text)
        if status:
            outcome, reason = status_outcome(rid.group(1) if rid else None, status)
            raise NotAnAnswer(reason, outcome)
        raise UnexpectedShape("neither a BLAST report (hit table) nor a QBlastInfo status block")
    hits = _hits(table[1])
    details = _alignments(table[1])
    for hit in hits:
        hit.update(details.get(hit["id"], {}))
    program = re.match(r"\s*(T?BLAST[NPX]?\S*\s+\S+)", text)
    database = re.search(r"Database:\s*(.+)", text)
    query = re.search(r"Query=\s*(.+)", text)
    length = re.search(r"Length=(\d+)", text.split("Sequences producing", 1)[0])
    out = {
        "rid": rid.group(1) if rid else None,
        "program": program.group(1) if program else None,
        "database": database.group(1).strip() if database else None,
        "query": query.group(1).strip() if query else None,
        "query_length": int(length.group(1)) if length else None,
        "hit_count": len(hits),
        "hits": hits,
    }
    return {k: v for k, v in out.items() if v not in (None, "")}
