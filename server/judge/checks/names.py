"""Moved to :mod:`prefloop.checks.names`; re-exported here."""

from prefloop.checks.names import (
    CHECK,
    WARNINGS,
    check_names,
)

__all__ = [
    "CHECK",
    "WARNINGS",
    "check_names",
]
