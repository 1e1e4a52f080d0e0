"""Moved to :mod:`prefloop.checks.security`; re-exported here."""

from prefloop.checks.security import (
    BANDIT_COVERED,
    CHECK,
    SCORES,
    bandit_issues,
    check_security,
)

__all__ = [
    "BANDIT_COVERED",
    "CHECK",
    "SCORES",
    "bandit_issues",
    "check_security",
]
