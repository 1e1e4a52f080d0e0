"""Moved to :mod:`prefloop.checks.smells`; re-exported here."""

from prefloop.checks.smells import (
    COMMON,
    LANGUAGE_RULES,
    SMELLS_TOOL,
    Rule,
    find_smells,
)

__all__ = [
    "COMMON",
    "LANGUAGE_RULES",
    "SMELLS_TOOL",
    "Rule",
    "find_smells",
]
