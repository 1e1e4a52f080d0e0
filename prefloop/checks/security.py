"""Security smells in the completion: bandit for Python files that parse, patterns for
every language (and for Python where bandit covers nothing of the kind).

Only findings on the completion's lines count. Scores: 5 none; 4 low severity only;
2 medium; 1 high.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefloop.checks.base import (
    CheckResult,
    Finding,
    Insertion,
    Severity,
    dist_version,
)
from prefloop.checks.smells import SMELLS_TOOL, find_smells

CHECK = "security"
SCORES = {"high": 1, "medium": 2, "low": 4}
# Pattern rules bandit already covers when it runs.
_SEVERITY: dict[str, Severity] = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
BANDIT_COVERED = frozenset({"PY001", "PY002", "PY003", "PY004", "PY005", "PY006", "S003"})


@lru_cache(maxsize=1)
def _bandit() -> tuple[Any, Any]:
    """bandit's manager module and a default configuration (imported once, quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # bandit's optional report formatters (sarif) are not installed and not used.
        logging.getLogger("stevedore").setLevel(logging.CRITICAL)
        from bandit.core import config, manager

        logging.getLogger("bandit").setLevel(logging.ERROR)
        return manager, config.BanditConfig()


def bandit_issues(source: str) -> list[Any] | None:
    """bandit's issues for a Python source, or None when bandit skipped it (no parse)."""
    manager, config = _bandit()
    with (
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory(prefix="prefloop-bandit-") as tmp,
    ):
        warnings.simplefilter("ignore")
        mgr = manager.BanditManager(config, "file", quiet=True)
        path = Path(tmp) / "completion.py"
        path.write_text(source, encoding="utf-8")
        mgr.discover_files([str(path)])
        mgr.run_tests()
    if mgr.skipped:
        return None
    return list(mgr.get_issue_list())


def _bandit_findings(ins: Insertion) -> list[Finding] | None:
    issues = bandit_issues(ins.after)
    if issues is None:
        return None
    findings = []
    for issue in issues:
        lines = [ins.line_in_completion(n) for n in (issue.linerange or [issue.lineno])]
        inside = [n for n in lines if n is not None]
        if not inside:
            continue
        severity = _SEVERITY.get(str(issue.severity).upper(), "low")
        rule = f"{issue.test_id} {issue.test}"
        findings.append(Finding(rule, str(issue.text), severity, inside[0]))
    return findings


def check_security(ins: Insertion, language: str, *, bandit: bool = True) -> CheckResult:
    """Security smells of the completion; ``bandit=False`` uses the patterns alone (much
    faster: bandit parses the whole file and runs its plugins)."""
    tools = [SMELLS_TOOL]
    skip: frozenset[str] = frozenset()
    findings: list[Finding] = []
    if language == "python" and bandit:
        try:
            found = _bandit_findings(ins)
        except ImportError:
            found = None
        if found is not None:
            tools.insert(0, f"bandit {dist_version('bandit')}")
            findings.extend(found)
            skip = BANDIT_COVERED
    findings.extend(find_smells(ins.completion, language, skip=skip))
    tool = " + ".join(tools)
    if not findings:
        return CheckResult(CHECK, tool, "ok", 5, "no security smell")
    findings.sort(key=lambda f: (SCORES.get(f.severity, 5), f.line or 0))
    score = min(SCORES.get(f.severity, 5) for f in findings)
    summary = "; ".join(f"{f.rule.split()[0]}: {f.message}" for f in findings[:3])
    return CheckResult(CHECK, tool, "ok", score, summary, tuple(findings))
