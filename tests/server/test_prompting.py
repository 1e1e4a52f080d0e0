"""Golden tests for prompt construction: FIM templates, detection, prefix-only prompts, budgets."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from typing import Any

import pytest

from prefloop.prompting import (
    GENERAL_STOP_SEQUENCES,
    MAX_CHARS_PER_TOKEN,
    PREFIX_ONLY_STOP_TOKENS,
    SUFFIX_CONTEXT_MAX_LINES,
    TEMPLATES,
    FimTemplate,
    Prompt,
    after_lead,
    build_prompt,
    comment_markers,
    cursor_lead,
    detect_template,
    resolve_template,
)

# Special and added tokens as the tokenizers of each model family list them.
QWEN25_CODER_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|box_start|>",
    "<|quad_start|>",
    "<|vision_start|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
STARCODER_TOKENS = [
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<empty_output>",
    "<commit_before>",
    "<commit_msg>",
    "<commit_after>",
    "<reponame>",
]
STARCODER2_TOKENS = [*STARCODER_TOKENS, "<file_sep>", "<repo_name>", "<pr>", "<pr_status>"]
CODELLAMA_TOKENS = ["<s>", "</s>", "<unk>", "▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"]
DEEPSEEK_CODER_TOKENS = [
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜fim▁hole｜>",
    "<｜fim▁begin｜>",
    "<｜fim▁end｜>",
    "<pad>",
    "<|User|>",
    "<|Assistant|>",
    "<|EOT|>",
]
SMOLLM2_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
]

CODE_CORPUS = '''import os
import sys
from pathlib import Path


def read_config(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines into a dict."""
    result: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        result[key.strip()] = value.strip()
    return result


class Stack:
    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, item: int) -> None:
        self.items.append(item)

    def pop(self) -> int:
        return self.items.pop()


function add(a, b) {
  return a + b;
}

const total = [1, 2, 3].map((x) => x * 2).reduce(add, 0);
console.log(`total: ${total}`);

SELECT id, name FROM users WHERE active = 1 ORDER BY name;
'''


class CharTokenizer:
    """One token per character: budgets in tokens equal budgets in characters."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(char) for char in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


class RecordingTokenizer:
    """Wraps a tokenizer and records the length of every text it encodes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.encoded_lengths: list[int] = []

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        self.encoded_lengths.append(len(text))
        return list(self.inner.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: list[int]) -> str:
        return str(self.inner.decode(ids))


@pytest.fixture(scope="module")
def bpe() -> Any:
    """A real byte-level BPE tokenizer trained here on a little code, with StarCoder FIM tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([CODE_CORPUS] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def count(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


# --- the cursor on a blank line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "lead"),
    [
        ("def add(a, b):\n    ", "\n    "),  # Enter after a block opener
        ("def add(a, b):\n", "\n"),  # at column 0 after it
        ('    """Add."""\n\n    ', "\n\n    "),  # after a blank line
        ("x = 1   \n\t", "   \n\t"),  # trailing blanks on the line before are left out too
        ("   ", "   "),  # nothing but blanks
        ("", ""),
        ("def add(a, b):", ""),  # text before the cursor on its line
        ("    return ", ""),
        ("x = 1\n  y", ""),
    ],
)
def test_cursor_lead_is_the_blank_end_of_a_blank_line(prefix: str, lead: str) -> None:
    assert cursor_lead(prefix) == lead


@pytest.mark.parametrize(
    ("generated", "lead", "expected"),
    [
        ("\n    return a + b", "\n    ", "return a + b"),  # as deep as the cursor
        ("\n        return a", "\n    ", "    return a"),  # deeper: the extra indentation
        ("\n\n    return a", "\n    ", "return a"),  # blank lines before it are dropped
        ("\n    return a\n    x", "\n", "    return a\n    x"),  # later lines unchanged
        ("\n\treturn a", "\n\t", "return a"),  # tabs
        ("\n        return a", "\n\t", "    return a"),  # spaces under a tab
        ("\ndef g():", "\n    ", None),  # left of the cursor: outside its block
        (" b, c)", "\n    ", "b, c)"),  # continues the last code line: placed at the cursor
        ("\n    ", "\n    ", ""),  # nothing but blanks
        ("\n    return a", "", "\n    return a"),  # no lead: unchanged
    ],
)
def test_after_lead_starts_the_text_at_the_cursor(
    generated: str, lead: str, expected: str | None
) -> None:
    assert after_lead(generated, lead) == expected


def test_prompt_leaves_the_blank_end_of_the_cursor_line_to_the_model() -> None:
    prompt = prefix_only("def add(a, b):\n    ", "", language="python", path="a.py")
    assert prompt.text.endswith("def add(a, b):")
    assert prompt.prefix == "def add(a, b):"
    assert prompt.lead == "\n    "
    assert not prompt.prefix_truncated
    same_line = prefix_only("def add(a, b):", "", language="python", path="a.py")
    assert same_line.lead == ""
    assert same_line.text == prompt.text


def covered(prompt: Prompt) -> str:
    """The code before the cursor a prompt covers: what it holds and the blank end it leaves
    for the model."""
    return prompt.prefix + prompt.lead


def numbered_lines(tag: str, n: int) -> str:
    """n lines of 8 characters each: ``p00xxxx\\n``, ``p01xxxx\\n``, ..."""
    return "".join(f"{tag}{i:02d}xxxx\n" for i in range(n))


# --- templates ---------------------------------------------------------------------------


PREFIX = "def area(r):\n    "
SUFFIX = "\n    return result\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "qwen",
            "<|fim_prefix|>def area(r):\n    <|fim_suffix|>\n    return result\n<|fim_middle|>",
        ),
        (
            "starcoder",
            "<fim_prefix>def area(r):\n    <fim_suffix>\n    return result\n<fim_middle>",
        ),
        (
            "codellama",
            "<PRE> def area(r):\n     <SUF>\n    return result\n <MID>",
        ),
        (
            "deepseek",
            "<｜fim▁begin｜>def area(r):\n    <｜fim▁hole｜>\n    return result\n<｜fim▁end｜>",
        ),
    ],
)
def test_template_renders_golden(name: str, expected: str) -> None:
    assert TEMPLATES[name].render(PREFIX, SUFFIX) == expected


def test_templates_are_the_four_families_in_detection_order() -> None:
    assert list(TEMPLATES) == ["qwen", "starcoder", "codellama", "deepseek"]
    assert all(template.name == name for name, template in TEMPLATES.items())


def test_render_copies_braces_and_placeholders_verbatim() -> None:
    rendered = TEMPLATES["qwen"].render("x = {prefix}{", "{suffix}}")
    assert rendered == "<|fim_prefix|>x = {prefix}{<|fim_suffix|>{suffix}}<|fim_middle|>"


def test_codellama_spacing_follows_reference_format() -> None:
    # "<PRE> {pre} <SUF>{suf} <MID>": space after <PRE>, none after <SUF>, spaces before
    # <SUF> and <MID>.
    assert TEMPLATES["codellama"].render("a", "b") == "<PRE> a <SUF>b <MID>"
    assert TEMPLATES["codellama"].render("", "") == "<PRE>  <SUF> <MID>"


def test_template_is_frozen_and_validates_layout() -> None:
    template: Any = TEMPLATES["starcoder"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.name = "other"
    with pytest.raises(ValueError, match=r"\{suffix\}"):
        FimTemplate("broken", "<a>", "<b>", "<c>", layout="{prefix_token}{prefix}{suffix_token}")


@pytest.mark.parametrize(
    ("name", "expected_stops"),
    [
        ("qwen", {"<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>", "<|repo_name|>"}),
        ("starcoder", {"<|endoftext|>", "<fim_pad>", "<file_sep>", "<repo_name>"}),
        ("codellama", {"<EOT>"}),
        ("deepseek", {"<｜end▁of▁sentence｜>", "<|EOT|>"}),
    ],
)
def test_template_stop_tokens_end_the_middle(name: str, expected_stops: set[str]) -> None:
    template = TEMPLATES[name]
    assert expected_stops <= set(template.stop_tokens)
    # A model must not emit the template's own markers inside a middle either.
    assert set(template.markers) <= set(template.stop_tokens)


# --- detection and settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (QWEN25_CODER_TOKENS, "qwen"),
        (STARCODER_TOKENS, "starcoder"),
        (STARCODER2_TOKENS, "starcoder"),
        (CODELLAMA_TOKENS, "codellama"),
        (["<PRE>", "<SUF>", "<MID>", "<EOT>"], "codellama"),
        (DEEPSEEK_CODER_TOKENS, "deepseek"),
    ],
    ids=["qwen2.5-coder", "starcoder", "starcoder2", "codellama", "codellama-plain", "deepseek"],
)
def test_detect_template_per_family(tokens: list[str], expected: str) -> None:
    template = detect_template(tokens)
    assert template is not None
    assert template.name == expected
    assert detect_template(iter(tokens)) is template


@pytest.mark.parametrize(
    "tokens",
    [SMOLLM2_TOKENS, [], ["<fim_prefix>", "<fim_suffix>"], ["<|fim_prefix|>", "<|fim_middle|>"]],
    ids=["smollm2", "empty", "starcoder-partial", "qwen-partial"],
)
def test_detect_template_none_without_all_fim_tokens(tokens: list[str]) -> None:
    assert detect_template(tokens) is None


def test_detect_template_from_real_tokenizer(bpe: Any) -> None:
    tokens = [*bpe.all_special_tokens, *bpe.get_added_vocab()]
    template = detect_template(tokens)
    assert template is TEMPLATES["starcoder"]


def test_resolve_auto_detects() -> None:
    assert resolve_template("auto", QWEN25_CODER_TOKENS) is TEMPLATES["qwen"]
    assert resolve_template("auto", SMOLLM2_TOKENS) is None


def test_resolve_name_forces_template_whatever_the_tokens() -> None:
    assert resolve_template("qwen", SMOLLM2_TOKENS) is TEMPLATES["qwen"]
    assert resolve_template(" StarCoder ", QWEN25_CODER_TOKENS) is TEMPLATES["starcoder"]
    assert resolve_template("deepseek-coder", []) is TEMPLATES["deepseek"]
    assert resolve_template("qwen2.5-coder", []) is TEMPLATES["qwen"]
    assert resolve_template("starcoder2", []) is TEMPLATES["starcoder"]


@pytest.mark.parametrize("setting", ["none", "prefix", "PREFIX"])
def test_resolve_prefix_only_overrides_detection(setting: str) -> None:
    assert resolve_template(setting, QWEN25_CODER_TOKENS) is None


def test_resolve_unknown_name_lists_valid_values() -> None:
    with pytest.raises(ValueError) as info:
        resolve_template("gpt-5", QWEN25_CODER_TOKENS)
    message = str(info.value)
    assert "'gpt-5'" in message
    for valid in ["auto", "qwen", "starcoder", "codellama", "deepseek", "none", "prefix"]:
        assert valid in message


# --- prefix-only prompts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("python", ("#", "")),
        ("shellscript", ("#", "")),
        ("yaml", ("#", "")),
        ("ruby", ("#", "")),
        ("c", ("//", "")),
        ("cpp", ("//", "")),
        ("javascript", ("//", "")),
        ("typescript", ("//", "")),
        ("go", ("//", "")),
        ("rust", ("//", "")),
        ("java", ("//", "")),
        ("sql", ("--", "")),
        ("lua", ("--", "")),
        ("html", ("<!--", "-->")),
        ("css", ("/*", "*/")),
        ("TypeScript", ("//", "")),
        ("brainfuck", ("#", "")),
        ("", ("#", "")),
    ],
)
def test_comment_markers_per_language(language: str, expected: tuple[str, str]) -> None:
    assert comment_markers(language) == expected


def prefix_only(
    prefix: str, suffix: str, *, language: str, path: str, budget: int = 10_000
) -> Prompt:
    return build_prompt(
        prefix,
        suffix,
        template=None,
        tokenizer=CharTokenizer(),
        max_prompt_tokens=budget,
        language=language,
        path=path,
    )


def test_prefix_only_prompt_python_golden() -> None:
    prompt = prefix_only(
        "import os\n\ndef main():\n    ",
        "\n    return 0\n\nmain()\n",
        language="python",
        path="src/app.py",
    )
    assert prompt.text == (
        "# File: src/app.py\n"
        "# Language: python\n"
        "# Code after the cursor:\n"
        "#     return 0\n"
        "#\n"
        "# main()\n"
        "\n"
        "import os\n\ndef main():"
    )
    assert prompt.template == "prefix"
    assert prompt.prefix == "import os\n\ndef main():"
    assert prompt.lead == "\n    "
    assert prompt.suffix == "\n    return 0\n\nmain()\n"
    assert not prompt.prefix_truncated
    assert not prompt.suffix_truncated
    assert prompt.token_count == len(prompt.text)


def test_prefix_only_prompt_shows_rest_of_current_line() -> None:
    prompt = prefix_only("total = add(", ", 2)\nprint(total)", language="python", path="t.py")
    assert prompt.text == (
        "# File: t.py\n"
        "# Language: python\n"
        "# Code after the cursor:\n"
        "# , 2)\n"
        "# print(total)\n"
        "\n"
        "total = add("
    )


def test_prefix_only_prompt_typescript_golden() -> None:
    prompt = prefix_only(
        "function add(a: number, b: number) {\n  ",
        "\n}\n",
        language="typescript",
        path="lib/math.ts",
    )
    assert prompt.text == (
        "// File: lib/math.ts\n"
        "// Language: typescript\n"
        "// Code after the cursor:\n"
        "// }\n"
        "\n"
        "function add(a: number, b: number) {"
    )
    assert prompt.lead == "\n  "


def test_prefix_only_prompt_sql_golden() -> None:
    prompt = prefix_only("SELECT id\n", "FROM users;\n", language="sql", path="q.sql")
    assert prompt.text == (
        "-- File: q.sql\n-- Language: sql\n-- Code after the cursor:\n-- FROM users;\n\nSELECT id"
    )


def test_prefix_only_prompt_html_wraps_lines_and_escapes_comment_end() -> None:
    prompt = prefix_only(
        "<body>\n  ", "\n  <!-- nav -->\n</body>\n", language="html", path="i.html"
    )
    assert prompt.text == (
        "<!-- File: i.html -->\n"
        "<!-- Language: html -->\n"
        "<!-- Code after the cursor: -->\n"
        "<!--   <!-- nav - -> -->\n"
        "<!-- </body> -->\n"
        "\n"
        "<body>"
    )


@pytest.mark.parametrize("suffix", ["", "   ", "\n\n  \n"])
def test_prefix_only_prompt_without_suffix_has_no_context_block(suffix: str) -> None:
    prompt = prefix_only("x = 1\n", suffix, language="python", path="a.py")
    assert prompt.text == "# File: a.py\n# Language: python\n\nx = 1"
    assert prompt.suffix == ""
    assert not prompt.suffix_truncated


def test_prefix_only_prompt_without_path_or_language_is_the_prefix() -> None:
    prompt = prefix_only("echo hi\n", "", language="plaintext", path="")
    assert prompt.text == "echo hi"
    assert prompt.token_count == len("echo hi")


def test_prefix_only_context_is_limited_in_lines() -> None:
    suffix = "".join(f"line{i}\n" for i in range(30))
    prompt = prefix_only("start\n", suffix, language="python", path="a.py")
    shown = "".join(f"line{i}\n" for i in range(SUFFIX_CONTEXT_MAX_LINES))
    assert prompt.suffix == shown
    assert prompt.suffix_truncated
    assert "# line11\n" in prompt.text
    assert "line12" not in prompt.text


def test_prefix_only_drops_header_lines_that_do_not_fit() -> None:
    long_path = "deep/" * 40 + "module.py"
    prompt = prefix_only("x = 1\n", "", language="python", path=long_path, budget=60)
    assert prompt.text == "# Language: python\n\nx = 1"
    tiny = prefix_only("x = 1\n", "", language="python", path=long_path, budget=10)
    assert tiny.text == "x = 1"


def test_prefix_only_stop_sequences() -> None:
    prompt = prefix_only("x", "", language="python", path="a.py")
    assert prompt.stop == (*PREFIX_ONLY_STOP_TOKENS, *GENERAL_STOP_SEQUENCES)
    assert prompt.stop == (
        "<|im_end|>",
        "<|im_start|>",
        "<file_sep>",
        "<repo_name>",
        "<reponame>",
        "<|endoftext|>",
        "\n\n\n",
    )


# --- FIM prompts and budgets ---------------------------------------------------------------


def fim(
    prefix: str,
    suffix: str,
    budget: int,
    *,
    name: str = "starcoder",
    suffix_share: float = 0.25,
    tokenizer: Any = None,
) -> Prompt:
    return build_prompt(
        prefix,
        suffix,
        template=TEMPLATES[name],
        tokenizer=tokenizer or CharTokenizer(),
        max_prompt_tokens=budget,
        language="python",
        path="a.py",
        suffix_share=suffix_share,
    )


FRAME = len(TEMPLATES["starcoder"].render("", ""))


def test_fim_prompt_golden_when_everything_fits() -> None:
    prompt = fim("def f(x):\n    ", "\n    return y\n", 1000)
    assert prompt == Prompt(
        text="<fim_prefix>def f(x):<fim_suffix>\n    return y\n<fim_middle>",
        prefix="def f(x):",
        suffix="\n    return y\n",
        template="starcoder",
        prefix_truncated=False,
        suffix_truncated=False,
        stop=(
            "<|endoftext|>",
            "<fim_pad>",
            "<file_sep>",
            "<repo_name>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            "\n\n\n",
        ),
        token_count=len("<fim_prefix>def f(x):<fim_suffix>\n    return y\n<fim_middle>"),
        lead="\n    ",
    )


def test_both_sides_cut_at_far_ends_on_line_boundaries() -> None:
    prefix = numbered_lines("p", 10)
    suffix = numbered_lines("s", 10)
    # 40 tokens for code: the suffix's share is 10, the prefix's 30. The last 30 characters of
    # the prefix start inside line 6, so the prefix keeps lines 7-9 (24 tokens); the 6 it leaves
    # go to the suffix, which keeps its first 2 lines (16 tokens).
    prompt = fim(prefix, suffix, FRAME + 40)
    assert covered(prompt) == "p07xxxx\np08xxxx\np09xxxx\n"
    assert prompt.suffix == "s00xxxx\ns01xxxx\n"
    assert prompt.prefix_truncated
    assert prompt.suffix_truncated
    assert prompt.text == f"<fim_prefix>{prompt.prefix}<fim_suffix>{prompt.suffix}<fim_middle>"
    assert prompt.token_count == len(prompt.text) <= FRAME + 40


def test_unused_suffix_budget_goes_to_prefix() -> None:
    prompt = fim(numbered_lines("p", 10), "s\n", FRAME + 40)
    # 38 tokens for the prefix instead of its 30: lines 6-9.
    assert covered(prompt) == "p06xxxx\np07xxxx\np08xxxx\np09xxxx\n"
    assert prompt.suffix == "s\n"
    assert prompt.prefix_truncated
    assert not prompt.suffix_truncated


def test_unused_prefix_budget_goes_to_suffix() -> None:
    prompt = fim("x = (\n", numbered_lines("s", 10), FRAME + 40)
    # The prefix uses 6 tokens, the suffix gets 34 instead of 10: 4 whole lines.
    assert covered(prompt) == "x = (\n"
    assert prompt.suffix == numbered_lines("s", 4)
    assert not prompt.prefix_truncated
    assert prompt.suffix_truncated


@pytest.mark.parametrize(
    ("share", "expected_prefix_lines", "expected_suffix"),
    # With no share the suffix still gets the one token the prefix's five lines leave.
    [(0.0, 5, "s"), (0.5, 2, numbered_lines("s", 3)), (1.0, 0, numbered_lines("s", 5))],
)
def test_suffix_share_splits_the_budget(
    share: float, expected_prefix_lines: int, expected_suffix: str
) -> None:
    prompt = fim(numbered_lines("p", 10), numbered_lines("s", 10), FRAME + 40, suffix_share=share)
    prefix_lines = numbered_lines("p", 10).splitlines(keepends=True)
    kept = "".join(prefix_lines[10 - expected_prefix_lines :])
    # The prefix's final line break is the lead: the model writes it.
    assert prompt.prefix == kept.removesuffix("\n")
    assert prompt.lead == "\n"
    assert prompt.suffix == expected_suffix


def test_single_prefix_line_over_budget_is_cut_inside_the_line() -> None:
    prefix = "".join(str(i % 10) for i in range(100))
    prompt = fim(prefix, "", FRAME + 40)
    assert covered(prompt) == prefix[-40:]
    assert prompt.prefix_truncated


def test_last_prefix_line_over_budget_is_cut_inside_it() -> None:
    prefix = "short\n" + "".join(chr(ord("a") + i % 26) for i in range(100))
    prompt = fim(prefix, "", FRAME + 40)
    assert covered(prompt) == prefix[-40:]


def test_prefix_ending_in_newline_after_a_long_line_keeps_the_line_end() -> None:
    prefix = "a\n" + "b" * 100 + "\n"
    prompt = fim(prefix, "", FRAME + 40)
    assert prompt.prefix == "b" * 40
    assert prompt.lead == "\n"


def test_single_suffix_line_over_budget_is_cut_inside_the_line() -> None:
    suffix = "z" * 100 + "\nmore\n"
    prompt = fim("", suffix, FRAME + 40)
    assert prompt.suffix == "z" * 40
    assert prompt.suffix_truncated


def test_suffix_cut_keeps_the_empty_rest_of_the_current_line() -> None:
    suffix = "\n" + "y" * 100 + "\n"
    prompt = fim("p" * 100, suffix, FRAME + 40)
    # The suffix's share (10) cannot hold its second line: only the current line's end stays.
    assert prompt.suffix == "\n"
    assert covered(prompt) == "p" * 39


def test_whitespace_only_cuts_do_not_count_as_truncation() -> None:
    prompt = fim("\n" * 100 + "x = 1\n", "\n" * 100, FRAME + 20)
    assert covered(prompt).endswith("x = 1\n")
    assert len(prompt.prefix) + len(prompt.suffix) == 20
    assert not prompt.prefix_truncated
    assert not prompt.suffix_truncated


def test_budget_errors() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        fim("x", "y", FRAME - 1)
    with pytest.raises(ValueError, match="positive"):
        fim("x", "y", 0)
    with pytest.raises(ValueError, match="suffix_share"):
        fim("x", "y", 100, suffix_share=1.5)


def test_frame_only_budget_gives_empty_code() -> None:
    prompt = fim("abc\n", "def\n", FRAME)
    assert prompt.text == "<fim_prefix><fim_suffix><fim_middle>"
    assert prompt.prefix_truncated
    assert prompt.suffix_truncated


# --- a real tokenizer ------------------------------------------------------------------------


def test_real_tokenizer_prompt_is_within_budget_and_cut_at_lines(bpe: Any) -> None:
    prefix = CODE_CORPUS * 3
    suffix = CODE_CORPUS * 3
    frame = count(bpe, TEMPLATES["starcoder"].render("", ""))
    assert frame == 3  # the FIM markers are single added tokens
    for budget in (40, 97, 256, 600):
        prompt = fim(prefix, suffix, budget, tokenizer=bpe)
        assert prompt.token_count == count(bpe, prompt.text) <= budget
        assert prompt.text == f"<fim_prefix>{prompt.prefix}<fim_suffix>{prompt.suffix}<fim_middle>"
        assert prefix.endswith(covered(prompt))
        assert suffix.startswith(prompt.suffix)
        start = len(prefix) - len(covered(prompt))
        assert prefix[start - 1] == "\n"
        assert prompt.suffix.endswith("\n")
        assert prompt.prefix_truncated
        assert prompt.suffix_truncated


def test_real_tokenizer_prefix_keeps_as_many_whole_lines_as_fit(bpe: Any) -> None:
    prefix = CODE_CORPUS * 2
    budget = 150
    prompt = fim(prefix, "", budget, tokenizer=bpe)
    available = budget - 3
    assert count(bpe, prompt.prefix) <= available
    # One more line would not fit.
    start = len(prefix) - len(covered(prompt))
    previous_line_start = prefix.rfind("\n", 0, start - 1) + 1
    assert count(bpe, prefix[previous_line_start:]) > available


def test_real_tokenizer_with_multibyte_text(bpe: Any) -> None:
    line = "greeting = 'héllo wörld 日本語 🎉'\n"
    prompt = fim(line * 200, line * 200, 120, tokenizer=bpe)
    assert prompt.token_count == count(bpe, prompt.text) <= 120
    assert set(covered(prompt).splitlines(keepends=True)) == {line}
    assert set(prompt.suffix.splitlines(keepends=True)) == {line}


@pytest.mark.parametrize("budget", [30, 64, 100, 200])
def test_real_tokenizer_prefix_only_prompt_within_budget(bpe: Any, budget: int) -> None:
    prompt = build_prompt(
        CODE_CORPUS * 2,
        CODE_CORPUS,
        template=None,
        tokenizer=bpe,
        max_prompt_tokens=budget,
        language="python",
        path="pkg/config.py",
    )
    assert prompt.template == "prefix"
    assert prompt.token_count == count(bpe, prompt.text) <= budget
    assert prompt.text.endswith(prompt.prefix)
    assert prompt.prefix_truncated


def test_multi_megabyte_input_is_fast_and_tokenizes_only_a_window(bpe: Any) -> None:
    prefix = CODE_CORPUS * 4000  # about 4 MB
    suffix = CODE_CORPUS * 4000
    assert len(prefix) > 3_000_000
    recording = RecordingTokenizer(bpe)
    budget = 1536
    started = time.perf_counter()
    prompt = fim(prefix, suffix, budget, tokenizer=recording)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert prompt.token_count <= budget
    assert prompt.prefix_truncated
    assert prompt.suffix_truncated
    assert prefix[len(prefix) - len(covered(prompt)) - 1] == "\n"
    assert max(recording.encoded_lengths) <= budget * MAX_CHARS_PER_TOKEN + FRAME


def test_multi_megabyte_single_line_is_fast(bpe: Any) -> None:
    prefix = "x = [" + "1, " * 1_500_000
    started = time.perf_counter()
    prompt = build_prompt(
        prefix,
        "]\n",
        template=None,
        tokenizer=bpe,
        max_prompt_tokens=512,
        language="python",
        path="big.py",
    )
    assert time.perf_counter() - started < 2.0
    assert prompt.token_count <= 512
    assert prefix.endswith(prompt.prefix)
    assert prompt.prefix
    assert set(prompt.prefix) <= set("1, ")


def test_modules_do_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import prefloop.prompting, prefloop.server.postprocess\n"
        "heavy = [m for m in ('transformers', 'tokenizers', 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
