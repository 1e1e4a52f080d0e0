"""Golden tests for turning generated text into the inline suggestion."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from prefloop.server.postprocess import (
    Mode,
    postprocess,
    postprocess_candidates,
    strip_special_tokens,
)


class Case(NamedTuple):
    generated: str
    prefix: str
    suffix: str
    expected: str | None


def run(case: Case, mode: Mode) -> str | None:
    return postprocess(case.generated, prefix=case.prefix, suffix=case.suffix, mode=mode)


# --- special tokens ----------------------------------------------------------------------

SPECIAL_TOKEN_CASES = {
    "endoftext": Case("total = a + b<|endoftext|>print(1)", "", "\n", "total = a + b"),
    "fim-middle": Case("return x<fim_middle>return y", "    ", "\n", "return x"),
    "file-sep": Case("x = 1<file_sep>other.py\nimport os", "", "", "x = 1"),
    "im-end": Case("print('hi')<|im_end|>\n<|im_start|>user", "", "", "print('hi')"),
    "qwen-fim-pad": Case("value<|fim_pad|><|fim_pad|>", "x = ", "\n", "value"),
    "codellama-eot": Case("len(items) <EOT>", "n = ", "\n", "len(items)"),
    "deepseek-eos": Case("a * b<｜end▁of▁sentence｜>", "return ", "\n", "a * b"),
    "deepseek-eot": Case("a * b<|EOT|>", "return ", "\n", "a * b"),
    "only-a-token": Case("<|endoftext|>", "x = ", "\n", None),
    "filename-is-code": Case(
        '"usage: cat <filename>")', "print(", ")\n", '"usage: cat <filename>"'
    ),
}


@pytest.mark.parametrize("mode", ["single_line", "multi_line"])
@pytest.mark.parametrize("case", SPECIAL_TOKEN_CASES.values(), ids=SPECIAL_TOKEN_CASES.keys())
def test_cuts_at_first_special_token(case: Case, mode: Mode) -> None:
    assert run(case, mode) == case.expected


def test_strip_special_tokens() -> None:
    assert strip_special_tokens("a<fim_suffix>b<fim_middle>c") == "a"
    assert strip_special_tokens("no tokens <here>") == "no tokens <here>"
    assert strip_special_tokens("x <| y |> z") == "x <| y |> z"


# --- single line -------------------------------------------------------------------------

SINGLE_LINE_CASES = {
    "cut-at-first-newline": Case("range(10):\n    print(i)", "for i in ", "\n", "range(10):"),
    "python-opener-next-line": Case(
        "\n    return x * 2\n    print(x)", "def double(x):", "\n", "\n    return x * 2"
    ),
    "brace-opener-next-line": Case(
        "\n  return 1;\n}", "function one() {", "\n}\n", "\n  return 1;"
    ),
    "empty-line-next-line": Case("\nimport sys\nimport re", "import os\n", "", "\nimport sys"),
    "whitespace-line-next-line": Case(
        "\n    y = 2\n    z = 3", "    x = 1\n    ", "\n", "\n    y = 2"
    ),
    "spaces-before-newline": Case("  \n    pass\n", "class A:", "\n", "\n    pass"),
    "rest-of-line-whitespace": Case("\n    pass\n", "class A:", "   \n", "\n    pass"),
    "not-an-opener": Case("\n    return x", "x = compute()", "\n", None),
    "text-after-cursor": Case("\n    return x", "def f(x):", "  # todo\n", None),
    "blank-next-line": Case("\n\n    return x", "def f(x):", "\n", None),
    "trailing-whitespace": Case("name   \nmore", "user.", "\n", "name"),
    "whitespace-only": Case("   \n  ", "x = ", "\n", None),
    "empty": Case("", "x = ", "\n", None),
}


@pytest.mark.parametrize("case", SINGLE_LINE_CASES.values(), ids=SINGLE_LINE_CASES.keys())
def test_single_line(case: Case) -> None:
    assert run(case, "single_line") == case.expected


# --- multi line --------------------------------------------------------------------------

MULTI_LINE_CASES = {
    "python-body-stops-at-dedent": Case(
        "\n    y = x + 1\n    return y\nprint(f(2))\n",
        "def f(x):",
        "",
        "\n    y = x + 1\n    return y",
    ),
    "python-body-stops-at-two-blank-lines": Case(
        "\n    y = x + 1\n    return y\n\n\n    z = 3\n",
        "def f(x):",
        "",
        "\n    y = x + 1\n    return y",
    ),
    "whitespace-blank-lines-count-as-blank": Case(
        "\n    a = 1\n    \n  \n    b = 2", "def f():", "", "\n    a = 1"
    ),
    "one-blank-line-stays-inside": Case(
        "\n    a = 1\n\n    return a\ndef g(): pass",
        "def f():",
        "",
        "\n    a = 1\n\n    return a",
    ),
    "cursor-in-indentation": Case(
        "total = 0\n    for item in items:\n        total += item\n    return total\n\nclass B:",
        "def f(items):\n    ",
        "",
        "total = 0\n    for item in items:\n        total += item\n    return total",
    ),
    "mid-line-continues-at-same-indent": Case(
        "a, b)\nresult = combine(x)\n  extra\nprint(result)",
        "x = pair(",
        "",
        "a, b)\nresult = combine(x)\n  extra\nprint(result)",
    ),
    "mid-line-stops-at-dedent": Case(
        "a)\n        y = 1\n    return y", "        x = f(", "", "a)\n        y = 1"
    ),
    "js-body-keeps-closing-brace": Case(
        "\n  return a + b;\n}\n\nfunction sub(a, b) {\n  return a - b;\n}",
        "function add(a, b) {",
        "",
        "\n  return a + b;\n}",
    ),
    "js-closing-brace-with-semicolon": Case(
        "\n  console.log(x);\n});\nother();",
        "items.forEach((x) => {",
        "",
        "\n  console.log(x);\n});",
    ),
    "js-nested-closer-at-opener-indent": Case(
        "\n    run();\n  }\n}\n", "class A {\n  start() {", "", "\n    run();\n  }"
    ),
    "closer-more-dedented-than-opener-dropped": Case(
        "\n    run();\n}\n", "function f() {\n  if (ok) {", "", "\n    run();"
    ),
    "else-line-not-kept": Case("\n  yes();\n} else {\n  no();\n}", "if (a) {", "", "\n  yes();"),
    "cursor-in-body-keeps-enclosing-closer": Case(
        "return a;\n}\n\nfunction g() {}", "function f(a) {\n  ", "", "return a;\n}"
    ),
    "python-call-keeps-closing-paren": Case(
        "first,\n    second,\n)\nprint(result)",
        "result = combine(\n    ",
        "",
        "first,\n    second,\n)",
    ),
    "empty-block-closer": Case("\n}\n\nfunction g() {}", "function f() {", "", "\n}"),
    "opener-followed-by-dedent": Case("\nreturn 1\n", "def f():", "", None),
    "opener-followed-by-blank-lines": Case("\n\n\n    x = 1", "def f():", "", None),
    "tab-indentation": Case(
        "\n\tx := 1\n\treturn x\n}\nfunc g() {}", "func f() int {", "", "\n\tx := 1\n\treturn x\n}"
    ),
}


@pytest.mark.parametrize("case", MULTI_LINE_CASES.values(), ids=MULTI_LINE_CASES.keys())
def test_multi_line(case: Case) -> None:
    assert run(case, "multi_line") == case.expected


# --- overlap with the suffix -------------------------------------------------------------

OVERLAP_CASES = {
    "closing-paren": Case("a, b)", "x = pair(", ")\n", "a, b"),
    "closing-paren-colon": Case(
        "self, item):", "    def push(", "):\n        pass\n", "self, item"
    ),
    "inner-call-keeps-its-paren": Case("inner(a)", "outer(", ")\n", "inner(a)"),
    "nested-open-calls-keep-paren": Case("a)", "f(g(", ")\n", "a)"),
    "closing-bracket-and-semicolon": Case("3];", "const xs = [1, 2, ", "];\n", "3"),
    "double-quote": Case('a"', 'x = "', '"\n', "a"),
    "string-and-paren": Case(', world")', 'print("hello', '")\n', ", world"),
    "balanced-string-keeps-quote": Case('"a"', "x = ", '"\n', '"a"'),
    "triple-quote": Case('Return the sum."""', 'def f():\n    """', '"""\n', "Return the sum."),
    "opening-brace-duplicate": Case("x > 0) {", "if (", ") {\n", "x > 0"),
    "whole-rest-of-line": Case("c, b)", "call(a, ", "b)\n", "c, "),
    "multi-line-overlap": Case("x, y):\n    pass", "def f(", "):\n    pass\n", "x, y"),
    "word-boundary-protects-identifier": Case("some_name", "x = ", "e\n", "some_name"),
    "no-overlap": Case("value", "x = ", " + 1\n", "value"),
    "last-line-equals-next-line": Case(
        "\n    y = x + 1\n    return y",
        "def f(x):",
        "\n    return y\n",
        "\n    y = x + 1",
    ),
    "last-lines-equal-suffix-after-blank-lines": Case(
        "\n    a = 1\n    b = 2\n    return a + b",
        "def f():",
        "\n\n    b = 2\n    return a + b\n",
        "\n    a = 1",
    ),
    "auto-closed-brace-dropped": Case(
        "\n  return a + b;\n}", "function add(a, b) {", "\n}\n", "\n  return a + b;"
    ),
    "different-indentation-kept": Case(
        "m() {\n    return 1;\n  }\n}", "class A {\n  ", "\n}\n", "m() {\n    return 1;\n  }"
    ),
    "balanced-closer-line-kept": Case(
        "'a': {\n    'b': 1,\n}", "data = {\n    ", "\n}\n", "'a': {\n    'b': 1,\n}"
    ),
    "suffix-on-cursor-line-keeps-break": Case(
        "y = 1\n    return y", "def f():\n    ", "return y\n", "y = 1\n    "
    ),
    "whole-completion-duplicates-suffix": Case(
        "return y", "def f():\n    ", "\n    return y\n", None
    ),
    "duplicate-of-rest-of-line": Case(")", "print(x", ")\n", None),
}


@pytest.mark.parametrize("case", OVERLAP_CASES.values(), ids=OVERLAP_CASES.keys())
def test_trims_overlap_with_suffix(case: Case) -> None:
    assert run(case, "multi_line") == case.expected


def test_overlap_trim_in_single_line_mode() -> None:
    assert postprocess("a, b)\nmore", prefix="f(", suffix=")", mode="single_line") == "a, b"
    assert (
        postprocess(
            "\n    return y", prefix="def f():", suffix="\n    return y", mode="single_line"
        )
        is None
    )


def test_text_after_a_lead_starts_at_the_cursor() -> None:
    """The prompt ended before the blank end of the cursor's line; the model wrote it."""
    prefix = "def add(a, b):"
    generated = "\n    total = a + b\n    return total\n\nprint(add(1, 2))"
    assert (
        postprocess(generated, prefix=prefix, suffix="", mode="multi_line", lead="\n    ")
        == "total = a + b\n    return total"
    )
    assert (
        postprocess(generated, prefix=prefix, suffix="", mode="single_line", lead="\n    ")
        == "total = a + b"
    )
    # At column 0 the suggestion carries the body's indentation.
    assert (
        postprocess(generated, prefix=prefix, suffix="", mode="multi_line", lead="\n")
        == "    total = a + b\n    return total"
    )
    # A first line left of the cursor is nothing to suggest; so are blanks.
    assert (
        postprocess("\nx = 1", prefix="    y = 2", suffix="", mode="multi_line", lead="\n    ")
        is None
    )
    assert postprocess("\n\n", prefix=prefix, suffix="", mode="single_line", lead="\n    ") is None
    # The suffix's copy of the line is trimmed as without a lead.
    assert (
        postprocess(
            "\n    return a + b",
            prefix=prefix,
            suffix="return a + b\n",
            mode="single_line",
            lead="\n    ",
        )
        is None
    )


def test_huge_prefix_and_suffix_are_handled() -> None:
    suffix = ")\n" + "x = 1\n" * 500_000
    assert postprocess("a, b)", prefix="f(", suffix=suffix, mode="multi_line") == "a, b"
    # No line before the cursor is indented less than the block: the closing brace has no
    # opener to match and is not kept; the backwards scan for one is bounded.
    line = "x = f(" + "a, " * 1_000_000
    assert postprocess("b)", prefix=line, suffix=")" + "c" * 1_000_000, mode="multi_line") == "b"
    prefix = "    y = 2\n" * 500_000 + "    "
    assert postprocess("z = 3\n}\nw", prefix=prefix, suffix="", mode="multi_line") == "z = 3"


# --- candidates --------------------------------------------------------------------------


def test_candidates_drop_none_and_duplicates_in_order() -> None:
    texts = [
        "a, b)",
        "<|endoftext|>",
        "c)",
        "a, b",
        "   ",
        "a, b)<|endoftext|>",
        "d)\nextra",
    ]
    assert postprocess_candidates(texts, prefix="pair(", suffix=")\n", mode="single_line") == [
        "a, b",
        "c",
        "d",
    ]


def test_candidates_empty() -> None:
    assert postprocess_candidates([], prefix="", suffix="", mode="multi_line") == []


def test_unknown_mode_is_rejected() -> None:
    mode: Any = "paragraph"
    with pytest.raises(ValueError, match="mode"):
        postprocess("x", prefix="", suffix="", mode=mode)
