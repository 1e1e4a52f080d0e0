"""Moved to :mod:`prefloop.checks.syntax`; re-exported here."""

from prefloop.checks.syntax import (
    CHECK,
    PYTHON_TOOL,
    check_syntax,
)

__all__ = [
    "CHECK",
    "PYTHON_TOOL",
    "check_syntax",
]
