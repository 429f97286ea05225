"""Structured logging: one line per event, `key=value` pairs after the message (logfmt).

Secrets never reach a log line: the value of every secret environment variable
(``biocurate.config.SECRET_ENV``) is replaced by ***.
"""

from __future__ import annotations

import logging
import os

from biocurate.config import mask_secrets


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


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"biocurate.{name}")
    root = logging.getLogger("biocurate")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(LogfmtFormatter())
        root.addHandler(handler)
        root.setLevel(os.environ.get("BIOCURATE_LOG_LEVEL", "INFO").upper())
        root.propagate = False
    return logger


def event(logger: logging.Logger, message: str, **fields) -> None:
    logger.info(message, extra={"fields": fields})
