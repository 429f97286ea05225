"""The builder registry and the two ways a builder refuses a body.

A builder turns one response body into a summary (plain JSON values). It raises
``UnexpectedShape`` when the body is not the shape it understands (the executor stores the
response as ``invalid_body``), and ``NotAnAnswer`` when the body is well formed but carries no
answer: only a job status, an empty result, an error message (stored with the outcome it names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from biocurate.outcomes import OK_EMPTY

Summary = Any
BUILDERS: dict[str, Callable[[bytes], Summary]] = {}
# The response format each builder reads (json, xml, text, fasta, tsv, gff3, html).
BUILDER_FORMAT: dict[str, str] = {}


class UnexpectedShape(ValueError):
    pass


class NotAnAnswer(UnexpectedShape):
    """A well-formed body without an answer; ``outcome`` is how the executor stores it."""

    def __init__(self, reason: str, outcome: str = OK_EMPTY):
        super().__init__(reason)
        self.outcome = outcome


def builder(name: str, fmt: str) -> Callable[[Callable[[bytes], Summary]], Callable[[bytes], Summary]]:
    """Register ``fn`` as the builder ``name`` (the catalog's ``observation``) for bodies of ``fmt``."""

    def register(fn: Callable[[bytes], Summary]) -> Callable[[bytes], Summary]:
        if name in BUILDERS:
            raise ValueError(f"observation builder {name!r} is registered twice")
        BUILDERS[name] = fn
        BUILDER_FORMAT[name] = fmt
        return fn

    return register


def decode(body: bytes) -> str:
    return body.decode("utf-8", "replace")
