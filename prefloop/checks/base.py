"""Shared pieces of the verifiable checks: the file around an insertion, findings, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePosixPath
from typing import Literal

CHECKS_VERSION = "checks-v1"

Status = Literal["ok", "failed", "skipped"]
Severity = Literal["error", "warning", "high", "medium", "low"]

_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".sh": "shellscript",
    ".bash": "shellscript",
}
_ALIASES = {
    "py": "python",
    "js": "javascript",
    "jsx": "javascriptreact",
    "ts": "typescript",
    "tsx": "typescriptreact",
    "golang": "go",
    "rs": "rust",
    "c++": "cpp",
    "sh": "shellscript",
    "bash": "shellscript",
}


def language_of(language: str, path: str) -> str:
    """A language id from the LSP id, or from the file name when the id says nothing."""
    lang = _ALIASES.get(language.lower(), language.lower())
    if lang in ("", "plaintext", "unknown"):
        return _EXTENSIONS.get(PurePosixPath(path).suffix.lower(), lang or "plaintext")
    return lang


@lru_cache(maxsize=64)
def dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Insertion:
    """A completion inserted between a prefix and a suffix."""

    prefix: str
    completion: str
    suffix: str

    @property
    def before(self) -> str:
        return self.prefix + self.suffix

    @property
    def after(self) -> str:
        return self.prefix + self.completion + self.suffix

    @property
    def first_line(self) -> int:
        """1-based line of ``after`` where the completion starts."""
        return self.prefix.count("\n") + 1

    @property
    def last_line(self) -> int:
        """1-based line of ``after`` where the completion ends."""
        return self.first_line + self.completion.count("\n")

    def line_in_completion(self, line: int) -> int | None:
        """The 1-based line within the completion of line ``line`` of ``after``."""
        if self.first_line <= line <= self.last_line:
            return line - self.first_line + 1
        return None

    def after_line_of_before(self, line: int) -> int:
        """Where line ``line`` of ``before`` ended up in ``after``."""
        return line if line < self.first_line else line + self.completion.count("\n")


@dataclass(frozen=True)
class Finding:
    """Something a check found. ``line`` is the 1-based line within the completion, or
    None when the finding lies outside it (in the code after the cursor)."""

    rule: str
    message: str
    severity: Severity
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
            "line": self.line,
        }


@dataclass(frozen=True)
class CheckResult:
    check: str
    tool: str
    status: Status
    score: int | None = None
    summary: str = ""
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def judge(self) -> str:
        return f"check:{self.check}"
