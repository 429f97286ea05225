"""Structured logging: one line per event, `key=value` pairs after the message (logfmt).

Secrets never reach a log line: the value of every secret environment variable
(``biocurate.config.SECRET_ENV``) is replaced by ***.

``output_console`` is the rich console every table and summary is printed on: at a terminal as
wide as the terminal; otherwise (a log file, cron mail, a pipe) ``PIPE_WIDTH`` columns, so that
tables keep their width and paths are not cut at 80 columns (``$COLUMNS`` still wins).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from biocurate.config import mask_secrets

if TYPE_CHECKING:
    from rich.console import Console

# Columns of printed output that is not a terminal: wide enough for any summary row or path.
PIPE_WIDTH = 1000


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        pairs = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        line = f"{stamp} {record.levelname.lower()} {record.name} {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        return mask_secrets(line)


def _quote(value) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or "=" in text) else text


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now, not to the one it was made with (a test runner or
    a caller that swaps stderr would otherwise leave the handler writing to a closed stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"biocurate.{name}")
    root = logging.getLogger("biocurate")
    if not root.handlers:
        handler = StderrHandler()
        handler.setFormatter(LogfmtFormatter())
        root.addHandler(handler)
        root.setLevel(os.environ.get("BIOCURATE_LOG_LEVEL", "INFO").upper())
        root.propagate = False
    return logger


def event(logger: logging.Logger, message: str, **fields) -> None:
    logger.info(message, extra={"fields": fields})


def output_console(stderr: bool = False) -> Console:
    """A rich console: the terminal's width at a terminal, else ``PIPE_WIDTH`` (or ``$COLUMNS``)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = None if tty or os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH
    return Console(stderr=stderr, width=width)
