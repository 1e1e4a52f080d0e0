"""Undefined names and other obvious errors in Python completions, found by pyflakes.

Only messages on the completion's lines count: what the code around it had before (names
defined above the visible context, an import the completion has yet to use) is not the
completion's doing. Scores: 5 nothing found; 4 warnings only (unused or redefined
names); 1 errors (undefined names, ``return`` outside a function, ...).
"""

from __future__ import annotations

import ast
import warnings
from typing import Any

from prefloop.checks.base import CheckResult, Finding, Insertion, Severity, dist_version

CHECK = "names"

WARNINGS = frozenset(
    {
        "UnusedImport",
        "UnusedVariable",
        "UnusedAnnotation",
        "UnusedIndirectAssignment",
        "RedefinedWhileUnused",
        "ImportShadowedByLoopVar",
        "ImportStarUsed",
        "ImportStarUsage",
        "FStringMissingPlaceholders",
        "TStringMissingPlaceholders",
        "RaiseNotImplemented",
        "IsLiteral",
        "MultiValueRepeatedKeyLiteral",
        "MultiValueRepeatedKeyVariable",
    }
)


def _messages(text: str) -> list[Any] | None:
    """pyflakes messages, or None when the text does not parse."""
    from pyflakes.checker import Checker

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return list(Checker(tree, filename="<completion>").messages)


def check_names(ins: Insertion) -> CheckResult:
    tool = f"pyflakes {dist_version('pyflakes')}"
    try:
        messages = _messages(ins.after)
    except ImportError:
        return CheckResult(CHECK, "pyflakes", "skipped", error="pyflakes is not installed")
    if messages is None:
        return CheckResult(CHECK, tool, "skipped", error="does not parse after insertion")
    findings = []
    for message in sorted(messages, key=lambda m: (m.lineno, m.col)):
        line = ins.line_in_completion(message.lineno)
        if line is None:
            continue
        rule = type(message).__name__
        severity: Severity = "warning" if rule in WARNINGS else "error"
        findings.append(Finding(rule, message.message % message.message_args, severity, line))
    if not findings:
        return CheckResult(CHECK, tool, "ok", 5, "no pyflakes message on the completion")
    errors = [f for f in findings if f.severity == "error"]
    score = 1 if errors else 4
    summary = "; ".join(f.message for f in (errors or findings)[:3])
    return CheckResult(CHECK, tool, "ok", score, summary, tuple(findings))
