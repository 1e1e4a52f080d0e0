"""The verifiable checks as the judge runs them: every check of every candidate of a
logged suggestion, each timed, a crashing check recorded as ``failed``.

The checks themselves (:mod:`prefloop.checks`) are pure functions of the text; this module
applies them to a :class:`~prefloop.server.judge.context.JudgeContext`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prefloop.checks.base import CheckResult, Insertion, language_of
from prefloop.checks.names import check_names
from prefloop.checks.security import check_security
from prefloop.checks.syntax import check_syntax
from prefloop.server.judge.context import JudgeContext

__all__ = ["CHECKS", "check_candidate", "check_suggestion"]

log = logging.getLogger(__name__)

CHECKS = ("syntax", "names", "security")
"""The checks the judge runs, in order (``names`` only for Python)."""


def _timed(check: str, run: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    try:
        result = run()
    except Exception as exc:
        log.warning("check %s failed: %s", check, type(exc).__name__)
        result = CheckResult(check, "?", "failed", error=f"{type(exc).__name__}: {exc}"[:300])
    elapsed = (time.perf_counter() - started) * 1000
    return CheckResult(
        result.check,
        result.tool,
        result.status,
        result.score,
        result.summary,
        result.findings,
        result.error,
        elapsed,
    )


def check_candidate(ins: Insertion, language: str) -> list[CheckResult]:
    """Every check of one inserted completion (``names`` only for Python)."""
    results = [_timed("syntax", lambda: check_syntax(ins, language))]
    if language == "python":
        results.append(_timed("names", lambda: check_names(ins)))
    results.append(_timed("security", lambda: check_security(ins, language)))
    return results


def check_suggestion(ctx: JudgeContext) -> list[tuple[int, CheckResult]]:
    """``(candidate index, result)`` for every check of every candidate of ``ctx``."""
    language = language_of(ctx.language, ctx.path)
    out: list[tuple[int, CheckResult]] = []
    for index, text in enumerate(ctx.candidates):
        ins = Insertion(ctx.prefix, text, ctx.suffix)
        out.extend((index, result) for result in check_candidate(ins, language))
    return out
