"""Security smells found by patterns, for every language (bandit covers Python better).

Each rule is (id, pattern, severity, message); ``LANGUAGE_RULES`` adds rules per language.
Patterns run on the completion's lines only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prefloop.checks.base import Finding, Severity

SMELLS_TOOL = "prefloop-smells v1"


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: re.Pattern[str]
    severity: Severity
    message: str


def _rule(id: str, pattern: str, severity: Severity, message: str, flags: int = 0) -> Rule:
    return Rule(id, re.compile(pattern, flags), severity, message)


COMMON = (
    _rule("S001", r"<SECRET:\w+>", "high", "hard-coded secret (redacted before storage)"),
    _rule("S002", r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "high", "private key in code"),
    _rule(
        "S003",
        r"\b(SELECT|INSERT|UPDATE|DELETE)\b[^;\n]*[\"'`]\s*(\+|%\s*[(\w]|\.format\()",
        "medium",
        "SQL built by string concatenation or formatting (injection risk)",
        re.IGNORECASE,
    ),
    _rule(
        "S004",
        r"\b(SELECT|INSERT|UPDATE|DELETE)\b[^;\n]*(\$\{|\{\w+\})",
        "medium",
        "SQL built by string interpolation (injection risk)",
        re.IGNORECASE,
    ),
    _rule("S005", r"\bhttp://(?!localhost|127\.0\.0\.1|\[::1\])", "low", "plain-HTTP URL"),
)

LANGUAGE_RULES: dict[str, tuple[Rule, ...]] = {
    "python": (
        _rule("PY001", r"\b(eval|exec)\s*\(", "medium", "eval/exec of dynamic code"),
        _rule("PY002", r"\bshell\s*=\s*True\b", "high", "subprocess with shell=True"),
        _rule("PY003", r"\bpickle\.loads?\s*\(", "medium", "unpickling data"),
        _rule(
            "PY004",
            r"\byaml\.load\s*\((?![^)]*SafeLoader)",
            "medium",
            "yaml.load without SafeLoader",
        ),
        _rule("PY005", r"\bverify\s*=\s*False\b", "high", "TLS certificate check disabled"),
        _rule("PY006", r"\bos\.system\s*\(", "medium", "os.system runs a shell"),
    ),
    "javascript": (
        _rule(
            "JS001", r"(?<![\w.])eval\s*\(|\bnew\s+Function\s*\(", "medium", "eval of dynamic code"
        ),
        _rule(
            "JS002",
            r"\.(innerHTML|outerHTML)\s*=|document\.write\s*\(",
            "medium",
            "HTML injection sink",
        ),
        _rule(
            "JS003",
            r"\b(exec|execSync)\s*\(\s*(`[^`]*\$\{|[\"'][^\"']*[\"']\s*\+)",
            "high",
            "shell command built from strings (command injection)",
        ),
        _rule("JS004", r"rejectUnauthorized\s*:\s*false", "high", "TLS certificate check disabled"),
        _rule(
            "JS005", r"NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*[\"']?0", "high", "TLS checks disabled"
        ),
        _rule("JS006", r"dangerouslySetInnerHTML", "medium", "raw HTML injection in React"),
    ),
    "go": (
        _rule("GO001", r"InsecureSkipVerify\s*:\s*true", "high", "TLS certificate check disabled"),
        _rule("GO002", r"exec\.Command\(\s*\"(sh|bash)\"\s*,\s*\"-c\"", "medium", "runs a shell"),
        _rule("GO003", r"\b(md5|sha1)\.(New|Sum)", "low", "weak hash function"),
        _rule("GO004", r"\bunsafe\.Pointer\b", "low", "unsafe pointer conversion"),
    ),
    "rust": (
        _rule("RS001", r"\bunsafe\s*\{", "low", "unsafe block"),
        _rule("RS002", r"danger_accept_invalid_certs\s*\(\s*true", "high", "TLS checks disabled"),
        _rule("RS003", r"\.unwrap\(\)\s*;\s*//\s*TODO", "low", "unwrap left with a TODO"),
    ),
    "java": (
        _rule("JV001", r"Runtime\.getRuntime\(\)\.exec\s*\(", "medium", "runs an OS command"),
        _rule("JV002", r"new\s+ObjectInputStream\s*\(", "medium", "Java deserialization"),
        _rule("JV003", r"MessageDigest\.getInstance\(\s*\"(MD5|SHA-?1)\"", "low", "weak hash"),
        _rule("JV004", r"\bX509TrustManager\b|TrustAllCerts", "medium", "custom trust manager"),
    ),
    "c": (
        _rule("C001", r"\bgets\s*\(", "high", "gets() cannot bound its input"),
        _rule("C002", r"\b(strcpy|strcat|sprintf)\s*\(", "medium", "unbounded string copy"),
        _rule("C003", r"\bsystem\s*\(", "medium", "system() runs a shell"),
    ),
    "shellscript": (
        _rule(
            "SH001",
            r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z)?sh\b",
            "high",
            "pipes a download into a shell",
        ),
        _rule("SH002", r"\bchmod\s+(-R\s+)?0?777\b", "medium", "world-writable permissions"),
        _rule(
            "SH003",
            r"\brm\s+-(rf|fr)\s+(/|\$\w+/?)(\s|$)",
            "high",
            "recursive delete of a root or unchecked variable",
        ),
    ),
}
LANGUAGE_RULES["javascriptreact"] = LANGUAGE_RULES["javascript"]
LANGUAGE_RULES["typescript"] = LANGUAGE_RULES["javascript"]
LANGUAGE_RULES["typescriptreact"] = LANGUAGE_RULES["javascript"]
LANGUAGE_RULES["cpp"] = LANGUAGE_RULES["c"]


def find_smells(
    completion: str, language: str, *, skip: frozenset[str] = frozenset()
) -> list[Finding]:
    """Pattern findings in the completion's lines (rules in ``skip`` left out)."""
    rules = [r for r in (*COMMON, *LANGUAGE_RULES.get(language, ())) if r.id not in skip]
    findings: list[Finding] = []
    for number, line in enumerate(completion.splitlines(), start=1):
        for rule in rules:
            if rule.pattern.search(line):
                findings.append(Finding(rule.id, rule.message, rule.severity, number))
    return findings
