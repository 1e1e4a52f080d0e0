"""Verifiable checks on real snippets in several languages."""

from __future__ import annotations

import pytest

from prefloop.checks.base import CheckResult, Insertion, language_of
from prefloop.checks.syntax import check_syntax
from prefloop.server.judge.verification import check_candidate


def by_check(prefix: str, completion: str, suffix: str, language: str) -> dict[str, CheckResult]:
    return {r.check: r for r in check_candidate(Insertion(prefix, completion, suffix), language)}


PY_PREFIX = "import os\nimport subprocess\n\n\ndef list_dir(path):\n"
PY_SUFFIX = "\n\n\ndef main():\n    print(list_dir('.'))\n"


def test_python_good_completion_passes_every_check() -> None:
    results = by_check(PY_PREFIX, "    return sorted(os.listdir(path))", PY_SUFFIX, "python")
    assert results["syntax"].score == 5 and results["syntax"].tool.startswith("python-ast")
    assert results["names"].score == 5 and results["names"].tool.startswith("pyflakes")
    assert results["security"].score == 5 and "bandit" in results["security"].tool
    assert all(r.status == "ok" and not r.findings for r in results.values())


def test_python_syntax_error_introduced_by_the_completion() -> None:
    results = by_check(PY_PREFIX, "    return sorted(os.listdir(path)", PY_SUFFIX, "python")
    syntax = results["syntax"]
    assert syntax.score == 1
    assert syntax.findings[0].rule == "syntax-error" and syntax.findings[0].line == 1
    assert "never closed" in syntax.findings[0].message
    assert results["names"].status == "skipped"


def test_python_unfinished_file_that_the_completion_does_not_worsen() -> None:
    prefix = "class Config:\n    def load(self):\n"
    results = by_check(prefix, "        data = {}", "\n    def save(self\n", "python")
    assert results["syntax"].score == 3
    assert "did not parse before" in results["syntax"].summary


def test_python_undefined_name_and_unused_import() -> None:
    completion = "    import json\n    return sorted(os.listdir(pth))"
    names = by_check(PY_PREFIX, completion, PY_SUFFIX, "python")["names"]
    assert names.score == 1
    found = {(f.rule, f.line) for f in names.findings}
    assert ("UndefinedName", 2) in found and ("UnusedImport", 1) in found
    assert "undefined name 'pth'" in names.summary


def test_python_names_defined_before_the_cursor_are_not_blamed_on_it() -> None:
    prefix = "def handler(event):\n    unused_here = compute(event)\n"
    names = by_check(prefix, "    return event['body']", "\n", "python")["names"]
    assert names.score == 5, names.findings


def test_python_only_warnings_score_four() -> None:
    names = by_check(PY_PREFIX, "    import json\n    return os.listdir(path)", "", "python")
    assert names["names"].score == 4
    assert names["names"].findings[0].severity == "warning"


def test_python_security_findings_from_bandit() -> None:
    completion = "    return subprocess.check_output('ls ' + path, shell=True)"
    security = by_check(PY_PREFIX, completion, PY_SUFFIX, "python")["security"]
    assert security.score == 1
    assert security.findings[0].rule.startswith("B602") and security.findings[0].line == 1
    assert security.findings[0].severity == "high"


def test_python_security_ignores_what_was_there_before() -> None:
    prefix = "import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n\n\ndef size(x):\n"
    security = by_check(prefix, "    return len(x)", "\n", "python")["security"]
    assert security.score == 5


def test_secret_placeholder_in_a_completion_is_a_high_finding() -> None:
    completion = '    client = Client(api_key="<SECRET:openai_key>")'
    security = by_check("def connect():\n", completion, "\n", "python")["security"]
    assert security.score == 1
    assert any(f.rule == "S001" for f in security.findings)


JS_PREFIX = "function render(el, user) {\n"
JS_SUFFIX = "\n}\n\nmodule.exports = { render };\n"


def test_javascript_checks() -> None:
    good = by_check(JS_PREFIX, "  el.textContent = user.name;", JS_SUFFIX, "javascript")
    assert good["syntax"].score == 5 and "tree-sitter-javascript" in good["syntax"].tool
    assert good["security"].score == 5 and "names" not in good
    sink = by_check(JS_PREFIX, "  el.innerHTML = '<b>' + user.name;", JS_SUFFIX, "javascript")
    assert sink["security"].score == 2 and sink["security"].findings[0].rule == "JS002"
    broken = by_check(
        JS_PREFIX, "  if (user) {\n    el.textContent = user.name;", JS_SUFFIX, "javascript"
    )
    assert broken["syntax"].score == 1
    shell = by_check(JS_PREFIX, "  exec(`ls ${user.dir}`);", JS_SUFFIX, "javascript")
    assert shell["security"].score == 1


def test_typescript_and_tsx() -> None:
    ts = check_syntax(
        Insertion(
            "interface User { name: string }\nconst greet = (u: User): string => ",
            "`hi ${u.name}`;",
            "\n",
        ),
        "typescript",
    )
    assert ts.score == 5 and "tree-sitter-typescript" in ts.tool
    tsx = check_syntax(
        Insertion(
            "export const Hello = ({ name }: { name: string }) => (\n  ",
            "<div>Hello {name}</div>",
            "\n);\n",
        ),
        "typescriptreact",
    )
    assert tsx.score == 5
    broken = check_syntax(
        Insertion("const x: number = 1;\n", "const y = (1 + ;", "\nexport { x };\n"), "typescript"
    )
    assert broken.score == 1 and broken.findings


GO_PREFIX = 'package main\n\nimport "crypto/tls"\n\nfunc config() *tls.Config {\n'


def test_go_checks() -> None:
    good = by_check(GO_PREFIX, "\treturn &tls.Config{MinVersion: tls.VersionTLS12}", "\n}\n", "go")
    assert good["syntax"].score == 5 and "tree-sitter-go" in good["syntax"].tool
    assert good["security"].score == 5
    insecure = by_check(GO_PREFIX, "\treturn &tls.Config{InsecureSkipVerify: true}", "\n}\n", "go")
    assert insecure["security"].score == 1
    assert insecure["security"].findings[0].rule == "GO001"
    broken = by_check(GO_PREFIX, "\treturn &tls.Config{", "\n}\n", "go")
    assert broken["syntax"].score == 1


def test_rust_java_and_c() -> None:
    rust = by_check("fn add(a: i32, b: i32) -> i32 {\n", "    a + b", "\n}\n", "rust")
    assert rust["syntax"].score == 5 and "tree-sitter-rust" in rust["syntax"].tool
    rust_bad = by_check("fn add(a: i32, b: i32) -> i32 {\n", "    let s = a +;", "\n}\n", "rust")
    assert rust_bad["syntax"].score == 1
    java = by_check(
        "public class Run {\n  void go(String cmd) throws Exception {\n",
        "    Runtime.getRuntime().exec(cmd);",
        "\n  }\n}\n",
        "java",
    )
    assert java["syntax"].score == 5 and java["security"].score == 2
    c = by_check(
        "#include <string.h>\nvoid copy(char *dst, const char *src) {\n",
        "  strcpy(dst, src);",
        "\n}\n",
        "c",
    )
    assert c["syntax"].score == 5 and c["security"].findings[0].rule == "C002"


def test_errors_after_the_completion_are_located_in_the_suffix() -> None:
    ins = Insertion("function f(a) {\n", "  const t = (a +", "\n  return t;\n}\n")
    result = check_syntax(ins, "javascript")
    assert result.score == 1
    assert any(f.line is None and "after the completion" in f.message for f in result.findings)


def test_languages_without_a_grammar_are_skipped_not_failed() -> None:
    results = by_check("SELECT * FROM users WHERE id = ", "42;", "", "sql")
    assert results["syntax"].status == "skipped" and "no grammar" in (results["syntax"].error or "")
    assert results["security"].status == "ok"


@pytest.mark.parametrize(
    ("language", "path", "expected"),
    [
        ("python", "a.txt", "python"),
        ("plaintext", "src/app.tsx", "typescriptreact"),
        ("", "main.go", "go"),
        ("PY", "", "python"),
        ("plaintext", "notes.txt", "plaintext"),
    ],
)
def test_language_detection(language: str, path: str, expected: str) -> None:
    assert language_of(language, path) == expected


def test_a_crashing_check_is_recorded_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefloop.server.judge.verification as checks

    def explode(ins: Insertion) -> CheckResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(checks, "check_names", explode)
    results = {r.check: r for r in check_candidate(Insertion("x = 1\n", "y = 2", ""), "python")}
    assert results["names"].status == "failed" and "RuntimeError: boom" in (
        results["names"].error or ""
    )
    assert results["syntax"].score == 5 and results["security"].score == 5
