"""Moved to :mod:`prefloop.checks.base`; re-exported here."""

from prefloop.checks.base import (
    CHECKS_VERSION,
    CheckResult,
    Finding,
    Insertion,
    Severity,
    Status,
    dist_version,
    language_of,
)

__all__ = [
    "CHECKS_VERSION",
    "CheckResult",
    "Finding",
    "Insertion",
    "Severity",
    "Status",
    "dist_version",
    "language_of",
]
