"""Observation builders: compact, deterministic, size-bounded summaries that keep the answer.

One builder per response shape (``registry.BUILDERS``), chosen by the catalog: a function's
``observation`` and ``response`` fields, or the ``formats`` rule its arguments match
(``Tool.response_for``). Every builder keeps the facts a question could be about; ``fit_json``
then bounds the text by trimming whole items, so an observation is always valid JSON.

- ``json_builders``: any JSON (``json``), Ensembl lookups and gene trees
- ``uniprot``: UniProtKB entries and searches, ARBA/UniRule rules
- ``ncbi``: E-utilities JSON (esearch, esummary, elink) and any XML (``xml``: PubMed articles,
  ESearch, ESummary, EInfo by name)
- ``text_builders``: FASTA, TSV, GFF3, GenBank, MEDLINE, ECitMatch, plain text, HTML
- ``blast``: BLAST submission replies, status pages and reports
- ``formats``: which format a body is in; ``classify`` (the outcome of an HTTP answer)

A builder raises ``UnexpectedShape`` for a body it does not understand (stored as
``invalid_body``) and ``NotAnAnswer`` for a well-formed body without an answer: an empty result
or a job status (stored with the outcome it names: ``ok_empty`` or ``api_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biocurate.observations import blast, json_builders, ncbi, text_builders, uniprot  # noqa: F401  (registers)
from biocurate.observations.fit import fit_json
from biocurate.observations.formats import resolve_format
from biocurate.observations.registry import BUILDER_FORMAT, BUILDERS, NotAnAnswer, UnexpectedShape

if TYPE_CHECKING:
    from biocurate.catalog import Tool

__all__ = ["BUILDERS", "BUILDER_FORMAT", "NotAnAnswer", "UnexpectedShape", "build_observation", "observe", "summarise"]


def _chosen(name: str, declared: str, fmt: str) -> str:
    if name == "auto":
        return fmt
    if fmt != declared and BUILDER_FORMAT.get(name) != fmt:
        return fmt  # the answer came in another format than the catalog declares
    return name


def summarise(name: str, response_format: str, body: bytes, content_type: str = "") -> tuple[str, Any]:
    """(builder used, summary) of a body; raises ``UnexpectedShape`` or ``NotAnAnswer``.

    ``name`` is the catalog's builder (``auto``: the one named after the format). A body the
    chosen builder cannot read but whose first bytes clearly say another format (a FASTA answer
    to a call declared JSON) is read as that format, so no valid answer is discarded.
    """
    chosen = _chosen(name, response_format, resolve_format(response_format, content_type))
    if chosen not in BUILDERS:
        raise UnexpectedShape(f"no observation builder {chosen!r}")
    try:
        return chosen, BUILDERS[chosen](body)
    except NotAnAnswer:
        raise
    except UnexpectedShape:
        sniffed = text_builders.sniff(body)
        if sniffed is None or BUILDER_FORMAT[sniffed] == BUILDER_FORMAT[chosen] or sniffed == chosen:
            raise
        try:
            return sniffed, BUILDERS[sniffed](body)
        except NotAnAnswer:
            raise
        except UnexpectedShape:
            pass
        raise


def build_observation(
    name: str, response_format: str, body: bytes, max_chars: int, content_type: str = ""
) -> tuple[str, str]:
    """(builder used, observation text: valid JSON of at most ``max_chars`` characters)."""
    used, summary = summarise(name, response_format, body, content_type)
    return used, fit_json(summary, max_chars)


def observe(tool: Tool, arguments: dict, body: bytes, max_chars: int, content_type: str = "") -> tuple[str, str]:
    """The observation of one call's answer, read in the format its arguments ask for."""
    response_format, name = tool.response_for(arguments)
    return build_observation(name, response_format, body, max_chars, content_type)
