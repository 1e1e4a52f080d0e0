"""Does the file still parse after the completion is inserted?

Python is parsed with :mod:`ast`; other languages with tree-sitter. Code before the cursor
is often unfinished, so a file that did not parse before the insertion either is judged by
whether the insertion added errors.

Scores: 5 parses after insertion; 3 did not parse before either and no errors were
added; 1 the insertion breaks parsing.
"""

from __future__ import annotations

import ast
import platform
import warnings
from functools import lru_cache

from prefloop.checks.base import CheckResult, Finding, Insertion
from prefloop.checks.treesitter import (
    GrammarMissing,
    SyntaxProblem,
    parser_for,
    syntax_problems,
)

CHECK = "syntax"
PYTHON_TOOL = f"python-ast {platform.python_version()}"


def _python_error(text: str) -> SyntaxProblem | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as exc:
        return SyntaxProblem(exc.lineno or 1, (exc.offset or 1) - 1, exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:
        return SyntaxProblem(1, 0, type(exc).__name__)
    return None


@lru_cache(maxsize=64)
def _python_baseline(text: str) -> SyntaxProblem | None:
    return _python_error(text)


@lru_cache(maxsize=64)
def _tree_baseline(language: str, text: str) -> tuple[SyntaxProblem, ...]:
    return tuple(syntax_problems(language, text))


def _finding(ins: Insertion, problem: SyntaxProblem) -> Finding:
    where = ins.line_in_completion(problem.line)
    message = problem.message
    if where is None:
        message += f" (line {problem.line - ins.last_line} after the completion)"
    return Finding("syntax-error", message, "error", where)


def _broken(ins: Insertion, tool: str, problems: list[SyntaxProblem], summary: str) -> CheckResult:
    findings = tuple(_finding(ins, p) for p in problems)
    return CheckResult(CHECK, tool, "ok", 1, summary, findings)


def _unfinished(tool: str) -> CheckResult:
    summary = "did not parse before the insertion either; the insertion adds no errors"
    return CheckResult(CHECK, tool, "ok", 3, summary)


def _check_python(ins: Insertion) -> CheckResult:
    after = _python_error(ins.after)
    if after is None:
        return CheckResult(CHECK, PYTHON_TOOL, "ok", 5, "parses after insertion")
    before = _python_baseline(ins.before)
    if before is None:
        return _broken(ins, PYTHON_TOOL, [after], "the insertion breaks parsing")
    try:
        _, tree_tool = parser_for("python")
    except GrammarMissing:
        same = (ins.after_line_of_before(before.line), before.message) == (
            after.line,
            after.message,
        )
        if same:
            return _unfinished(PYTHON_TOOL)
        return _broken(ins, PYTHON_TOOL, [after], "the insertion adds a syntax error")
    tool = f"{PYTHON_TOOL} + {tree_tool}"
    added = len(syntax_problems("python", ins.after)) - len(_tree_baseline("python", ins.before))
    if added <= 0:
        return _unfinished(tool)
    return _broken(ins, tool, [after], f"the insertion adds {added} syntax error(s)")


def check_syntax(ins: Insertion, language: str) -> CheckResult:
    if language == "python":
        return _check_python(ins)
    try:
        _, tool = parser_for(language)
    except GrammarMissing as exc:
        return CheckResult(CHECK, "tree-sitter", "skipped", error=str(exc))
    after = syntax_problems(language, ins.after)
    if not after:
        return CheckResult(CHECK, tool, "ok", 5, "parses after insertion")
    before = _tree_baseline(language, ins.before)
    if not before:
        return _broken(ins, tool, after, f"the insertion breaks parsing: {len(after)} error(s)")
    if len(after) <= len(before):
        return _unfinished(tool)
    known = {(ins.after_line_of_before(p.line), p.message) for p in before}
    new = [p for p in after if (p.line, p.message) not in known] or after
    return _broken(ins, tool, new, f"the insertion adds {len(after) - len(before)} error(s)")
