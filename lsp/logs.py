"""Logging for ``prefloop lsp``: to stderr (editors show it in their LSP log), with no
user code in it.

pygls formats whole messages into some of its log lines (requests that failed, data it
sends, the ``initialize`` parameters), and those carry document text and suggestions.
:class:`CodeFreeFilter` keeps, for pygls records, only arguments that look like method
names, ids or numbers, and replaces tracebacks by the exception's type. Every record
also passes secret redaction (:class:`prefloop.logconfig.RedactingFilter`). prefloop's own
modules log ids, counts and status codes, never text.
"""

from __future__ import annotations

import logging
import re
import sys

from prefloop.logconfig import RedactingFilter

_SAFE_ARGUMENT = re.compile(r"[\w$/.:@-]{0,80}")


def _safe(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _SAFE_ARGUMENT.fullmatch(value):
        return value
    return f"<{type(value).__name__}>"


class CodeFreeFilter(logging.Filter):
    """Strips possible user code from records of the pygls library."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("pygls"):
            return True
        if isinstance(record.args, tuple):
            record.args = tuple(_safe(a) for a in record.args)
        elif record.args:
            record.args = None
            record.msg = "<message elided>"
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__}]"
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True


def setup_lsp_logging(level: str = "info") -> None:
    """Log to stderr (stdout carries the protocol)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(CodeFreeFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    pygls = logging.getLogger("pygls")
    pygls.setLevel(max(logging.WARNING, root.level))
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
