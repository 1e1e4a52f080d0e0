"""Prompt construction for inline suggestions: fill-in-the-middle templates and budgeting.

A model either knows a fill-in-the-middle (FIM) format, recognisable by the special tokens of
its tokenizer, or it does not; then the prompt is "prefix-only": a short header comment naming
the file, the code after the cursor shown as a comment, and the code before the cursor for the
model to continue.

The prefix and suffix are fitted into a token budget by cutting at their far ends (the start of
the prefix, the end of the suffix), at line boundaries where possible. Inputs of any size are
accepted: at most ``budget * MAX_CHARS_PER_TOKEN`` characters of each side are tokenized.

This module imports nothing heavy; the tokenizer is any object with the two methods of
:class:`Tokenizer` (a Hugging Face tokenizer qualifies).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AUTO",
    "GENERAL_STOP_SEQUENCES",
    "MAX_CHARS_PER_TOKEN",
    "PREFIX_ONLY",
    "PREFIX_ONLY_STOP_TOKENS",
    "SUFFIX_CONTEXT_MAX_LINES",
    "TEMPLATES",
    "FimTemplate",
    "Prompt",
    "Tokenizer",
    "after_lead",
    "build_prompt",
    "comment_markers",
    "cursor_lead",
    "detect_template",
    "resolve_template",
    "special_tokens",
]

AUTO = "auto"
"""Setting value: detect the template from the tokenizer's special tokens."""

PREFIX_ONLY = "prefix"
"""Template name reported for prefix-only prompts (and a setting value that forces them)."""

MAX_CHARS_PER_TOKEN = 8
"""Upper bound on characters per token used to cut huge inputs before tokenizing them."""

SUFFIX_CONTEXT_MAX_LINES = 12
"""Prefix-only prompts show at most this many lines of the code after the cursor."""

GENERAL_STOP_SEQUENCES: tuple[str, ...] = ("<|endoftext|>", "\n\n\n")
"""Stop sequences added to every prompt: end of text, and two blank lines in a row."""

PREFIX_ONLY_STOP_TOKENS: tuple[str, ...] = (
    "<|im_end|>",
    "<|im_start|>",
    "<file_sep>",
    "<repo_name>",
    "<reponame>",
)
"""Stop tokens of prefix-only prompts: chat and file markers of base models such as SmolLM2."""

_DEFAULT_LAYOUT = "{prefix_token}{prefix}{suffix_token}{suffix}{middle_token}"
_NON_SPACE = re.compile(r"\S")
_LAYOUT_FIELDS = ("{prefix_token}", "{prefix}", "{suffix_token}", "{suffix}", "{middle_token}")


class Tokenizer(Protocol):
    """What prompt budgeting needs from a tokenizer (a Hugging Face tokenizer fits)."""

    def encode(self, text: str, /, *, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int], /) -> str: ...


@dataclass(frozen=True)
class FimTemplate:
    """A fill-in-the-middle prompt format.

    ``layout`` places the three marker tokens and the two texts; each of its five fields
    (``{prefix_token}``, ``{prefix}``, ``{suffix_token}``, ``{suffix}``, ``{middle_token}``)
    occurs exactly once. Braces inside the prefix or suffix are copied verbatim.
    ``stop_tokens`` end the generated middle (end-of-text, end-of-infill, file separators,
    and the template's own markers, which a model must not emit inside a middle).
    """

    name: str
    prefix_token: str
    suffix_token: str
    middle_token: str
    layout: str = _DEFAULT_LAYOUT
    stop_tokens: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in _LAYOUT_FIELDS:
            if self.layout.count(field) != 1:
                raise ValueError(f"layout of template {self.name!r} must contain {field} once")

    @property
    def markers(self) -> tuple[str, str, str]:
        """The prefix, suffix and middle tokens."""
        return (self.prefix_token, self.suffix_token, self.middle_token)

    def render(self, prefix: str, suffix: str) -> str:
        """The prompt text for the given code before and after the cursor."""
        return self.layout.format(
            prefix_token=self.prefix_token,
            prefix=prefix,
            suffix_token=self.suffix_token,
            suffix=suffix,
            middle_token=self.middle_token,
        )


TEMPLATES: dict[str, FimTemplate] = {
    template.name: template
    for template in (
        # Qwen2.5-Coder (CodeGemma uses the same markers and ends files with
        # <|file_separator|>).
        FimTemplate(
            name="qwen",
            prefix_token="<|fim_prefix|>",
            suffix_token="<|fim_suffix|>",
            middle_token="<|fim_middle|>",
            stop_tokens=(
                "<|endoftext|>",
                "<|fim_pad|>",
                "<|file_sep|>",
                "<|repo_name|>",
                "<|im_end|>",
                "<|file_separator|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
            ),
        ),
        # StarCoder and StarCoder2 (same FIM tokens; StarCoder2 adds <file_sep>/<repo_name>).
        FimTemplate(
            name="starcoder",
            prefix_token="<fim_prefix>",
            suffix_token="<fim_suffix>",
            middle_token="<fim_middle>",
            stop_tokens=(
                "<|endoftext|>",
                "<fim_pad>",
                "<file_sep>",
                "<repo_name>",
                "<fim_prefix>",
                "<fim_suffix>",
                "<fim_middle>",
            ),
        ),
        # CodeLlama, prefix-suffix-middle order as in Meta's reference implementation
        # (llama/generation.py, infilling_prompt_tokens: "<PRE> {pre} <SUF>{suf} <MID>"):
        # - one space after <PRE>: the reference encodes the prefix with SentencePiece's dummy
        #   prefix, which prepends a space to it;
        # - no space after <SUF>: the suffix is encoded without that dummy prefix;
        # - one space before <SUF> and <MID>: these tokens are "▁<SUF>" and "▁<MID>" in the
        #   Hugging Face vocabulary, so their text carries a leading space.
        # The model ends the middle with <EOT> (also "▁<EOT>", i.e. " <EOT>" as text).
        FimTemplate(
            name="codellama",
            prefix_token="<PRE>",
            suffix_token="<SUF>",
            middle_token="<MID>",
            layout="{prefix_token} {prefix} {suffix_token}{suffix} {middle_token}",
            stop_tokens=("<EOT>", "<PRE>", "<SUF>", "<MID>"),
        ),
        # DeepSeek-Coder (full-width bars and "▁" are part of the token text).
        FimTemplate(
            name="deepseek",
            prefix_token="<｜fim▁begin｜>",
            suffix_token="<｜fim▁hole｜>",
            middle_token="<｜fim▁end｜>",
            stop_tokens=(
                "<｜end▁of▁sentence｜>",
                "<|EOT|>",
                "<｜fim▁begin｜>",
                "<｜fim▁hole｜>",
                "<｜fim▁end｜>",
            ),
        ),
    )
}
"""The known FIM templates by name, in detection order."""

_ALIASES = {
    "qwen2.5-coder": "qwen",
    "starcoder2": "starcoder",
    "code-llama": "codellama",
    "deepseek-coder": "deepseek",
}
_PREFIX_ONLY_SETTINGS = frozenset({PREFIX_ONLY, "none"})


def _normalize_token(token: str) -> str:
    # SentencePiece vocabularies spell some added tokens with a leading "▁" (CodeLlama: "▁<PRE>").
    return token.strip().lstrip("▁")


def special_tokens(tokenizer: Any) -> list[str]:
    """The strings of a tokenizer's special and added tokens, sorted, each once.

    This is what :func:`detect_template` looks for the FIM markers in; serving and the
    trainer's evaluation gate both take it from here, so they prompt a model alike. Any
    object qualifies: the tokens are read from ``all_special_tokens`` and
    ``get_added_vocab()`` where the tokenizer has them (a Hugging Face tokenizer has both).
    """
    tokens = set(getattr(tokenizer, "all_special_tokens", None) or [])
    get_added = getattr(tokenizer, "get_added_vocab", None)
    if callable(get_added):
        tokens.update(get_added().keys())
    return sorted(tokens)


def detect_template(special_tokens: Iterable[str]) -> FimTemplate | None:
    """The FIM template whose three marker tokens are all among ``special_tokens``.

    ``special_tokens`` are the strings of a tokenizer's special and added tokens, as
    :func:`special_tokens` lists them. Returns None when no template's markers are all
    present (the model has no FIM format).
    """
    present = {_normalize_token(token) for token in special_tokens}
    for template in TEMPLATES.values():
        if all(marker in present for marker in template.markers):
            return template
    return None


def resolve_template(setting: str, special_tokens: Iterable[str]) -> FimTemplate | None:
    """The template a ``fim_template`` setting selects; None means prefix-only prompting.

    ``setting`` is ``auto`` (detect from ``special_tokens``), a template name (forced, whatever
    the tokenizer holds) or ``prefix``/``none`` (prefix-only). Raises ValueError for anything
    else, listing the valid values.
    """
    key = setting.strip().lower()
    if key == AUTO:
        return detect_template(special_tokens)
    if key in _PREFIX_ONLY_SETTINGS:
        return None
    name = _ALIASES.get(key, key)
    if name in TEMPLATES:
        return TEMPLATES[name]
    valid = ", ".join([AUTO, *TEMPLATES, *sorted(_PREFIX_ONLY_SETTINGS)])
    raise ValueError(f"unknown FIM template {setting!r}; valid values: {valid}")


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and what went into it.

    ``prefix`` and ``suffix`` are the parts of the code before and after the cursor that the
    prompt holds; ``lead`` is the blank text between ``prefix`` and the cursor that the prompt
    leaves for the model to write (:func:`cursor_lead`). ``template`` is the FIM template's name or
    ``"prefix"``; ``stop`` holds the stop sequences for the engine; ``token_count`` is the
    length of ``text`` in tokens.
    ``prefix_truncated``/``suffix_truncated`` say whether anything but whitespace was cut.
    """

    text: str
    prefix: str
    suffix: str
    template: str
    prefix_truncated: bool
    suffix_truncated: bool
    stop: tuple[str, ...]
    token_count: int
    lead: str = ""


# Comment (start, end) markers by LSP language id and common short names; end is empty for
# line comments.
_COMMENT_MARKERS: dict[str, tuple[str, str]] = {
    name: markers
    for names, markers in (
        (
            "python shellscript shell sh bash zsh fish yaml yml ruby perl r toml dockerfile "
            "makefile cmake powershell elixir nim julia coffeescript properties ini graphql",
            ("#", ""),
        ),
        (
            "c cpp c++ objective-c objective-cpp csharp cuda-cpp java javascript javascriptreact "
            "typescript typescriptreact js jsx ts tsx go rust kotlin swift scala dart php groovy "
            "json jsonc proto protobuf zig solidity fsharp verilog glsl hlsl",
            ("//", ""),
        ),
        ("sql lua haskell elm ada vhdl plsql", ("--", "")),
        ("html xml markdown vue svelte xsl svg", ("<!--", "-->")),
        ("css scss less", ("/*", "*/")),
        ("latex tex erlang matlab prolog", ("%", "")),
        ("clojure lisp scheme racket elisp", (";", "")),
        ("vb vba", ("'", "")),
        ("bat", ("REM", "")),
    )
    for name in names.split()
}


def cursor_lead(prefix: str) -> str:
    """The whitespace a prompt leaves out before the cursor: when the text before the cursor
    on its line is blank (the cursor after Enter, on an indented or empty line), the line
    breaks and indentation after the last non-blank character; otherwise nothing.

    A prompt that ends in indentation makes a model start in the middle of a whitespace
    token: it writes one space too many (`` return``), nothing, or a new top-level
    statement. Ending the prompt at the last line with code lets it write the line break and
    the indentation itself, as it saw them in training; the suggestion is then what follows
    the cursor (:func:`after_lead`).
    """
    if prefix[prefix.rfind("\n") + 1 :].strip():
        return ""
    return prefix[len(prefix.rstrip()) :]


def after_lead(text: str, lead: str) -> str | None:
    """The part of ``text`` after the cursor when the model wrote ``lead`` (the blank end of
    the cursor's line the prompt left out) itself; None when its first line starts left of
    the cursor. ``text`` is returned as it is when there is no lead."""
    if not lead:
        return text
    body = text.lstrip(" \t\r\n")
    written = text[: len(text) - len(body)]
    if "\n" not in written:
        return body
    indent = written[written.rfind("\n") + 1 :]
    cursor_indent = lead[lead.rfind("\n") + 1 :]
    if indent.startswith(cursor_indent):
        return indent[len(cursor_indent) :] + body
    extra = _indent_width(indent) - _indent_width(cursor_indent)
    return None if extra < 0 else " " * extra + body


def _indent_width(whitespace: str) -> int:
    return len(whitespace.expandtabs(4))


def comment_markers(language: str) -> tuple[str, str]:
    """Line comment (start, end) markers for an LSP language id; ``("#", "")`` if unknown."""
    return _COMMENT_MARKERS.get(language.strip().lower(), ("#", ""))


def _comment_line(text: str, markers: tuple[str, str]) -> str:
    start, end = markers
    if end:
        # Keep the shown code from closing the comment early.
        text = text.replace(end, end[0] + " " + end[1:])
        return f"{start} {text} {end}" if text else f"{start} {end}"
    return f"{start} {text}" if text else start


def _context_lines(suffix: str) -> list[str]:
    """The comment lines that show ``suffix`` in a prefix-only prompt (none for blank text)."""
    lines = [line.rstrip() for line in suffix.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return ["Code after the cursor:", *lines] if lines else []


def _header_lines(language: str, path: str) -> list[str]:
    lines = []
    if path:
        lines.append(f"File: {path}")
    if language and language.lower() != "plaintext":
        lines.append(f"Language: {language}")
    return lines


def _comment_block(lines: list[str], markers: tuple[str, str]) -> str:
    return "".join(_comment_line(line, markers) + "\n" for line in lines)


def _limit_lines(text: str, max_lines: int) -> str:
    """The first ``max_lines`` lines of ``text`` (each with its newline)."""
    end = -1
    for _ in range(max_lines):
        end = text.find("\n", end + 1)
        if end == -1:
            return text
    return text[: end + 1]


def _render_prefix_only(
    prefix: str, suffix: str, *, header: list[str], markers: tuple[str, str]
) -> str:
    lines = header + _context_lines(suffix)
    if not lines:
        return prefix
    return _comment_block(lines, markers) + "\n" + prefix


def _has_content(text: str, start: int, end: int) -> bool:
    return _NON_SPACE.search(text, start, end) is not None


def _count(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False)) if text else 0


_Measure = Callable[[str], int]


def _fit_tail(text: str, budget: int, tokenizer: Tokenizer) -> tuple[str, int]:
    """The longest end part of ``text`` within ``budget`` tokens, starting at a line start.

    A cut inside a line happens only when the last line alone is over the budget.
    """
    if not text or budget <= 0:
        return "", 0
    base = max(0, len(text) - budget * MAX_CHARS_PER_TOKEN)
    ids = tokenizer.encode(text[base:], add_special_tokens=False)
    if base == 0 and len(ids) <= budget:
        return text, len(ids)
    start = base
    if len(ids) > budget:
        start = max(base, len(text) - len(tokenizer.decode(ids[-budget:])))
    if start > 0 and text[start - 1] != "\n":
        newline = text.find("\n", start)
        if newline != -1 and newline + 1 < len(text):
            start = newline + 1
    kept = text[start:]
    while (count := _count(tokenizer, kept)) > budget:
        newline = kept.find("\n")
        if newline != -1 and newline + 1 < len(kept):
            kept = kept[newline + 1 :]
        else:
            ids = tokenizer.encode(kept, add_special_tokens=False)
            tail = tokenizer.decode(ids[count - budget :])
            kept = kept[max(1, len(kept) - len(tail)) :]
    return kept, count


def _fit_head(
    text: str, budget: int, tokenizer: Tokenizer, measure: _Measure | None = None
) -> tuple[str, int]:
    """The longest start part of ``text`` within ``budget``, ending after a newline.

    ``measure`` gives the cost of a kept part in tokens (by default its token count; a part
    shown with decorations costs more). A cut inside a line happens only when the first line
    alone is over the budget.
    """
    if not text or budget <= 0:
        return "", 0
    cost = measure or functools.partial(_count, tokenizer)
    window = text[: budget * MAX_CHARS_PER_TOKEN]
    ids = tokenizer.encode(window, add_special_tokens=False)
    if measure is None and len(window) == len(text) and len(ids) <= budget:
        return text, len(ids)
    end = len(window)
    if len(ids) > budget:
        end = min(end, len(tokenizer.decode(ids[:budget])))
    if end < len(text) and text[end - 1] != "\n":
        newline = text.rfind("\n", 0, end)
        if newline != -1:
            end = newline + 1
    kept = text[:end]
    while (count := cost(kept)) > budget:
        newline = kept.rfind("\n", 0, len(kept) - 1)
        if newline != -1:
            kept = kept[: newline + 1]
        else:
            ids = tokenizer.encode(kept, add_special_tokens=False)
            head = tokenizer.decode(ids[: max(0, len(ids) - (count - budget))])
            kept = kept[: min(len(head), len(kept) - 1)]
    return kept, count


def _allocate(
    prefix: str,
    suffix: str,
    available: int,
    suffix_share: float,
    tokenizer: Tokenizer,
    suffix_measure: _Measure | None,
) -> tuple[str, str]:
    """Fit prefix and suffix into ``available`` tokens; each side's unused share goes to the
    other side."""
    suffix_budget = int(available * suffix_share)
    kept_prefix, prefix_used = _fit_tail(prefix, available - suffix_budget, tokenizer)
    kept_suffix, suffix_used = _fit_head(suffix, available - prefix_used, tokenizer, suffix_measure)
    if len(kept_prefix) < len(prefix) and suffix_used < suffix_budget:
        kept_prefix, _ = _fit_tail(prefix, available - suffix_used, tokenizer)
    return kept_prefix, kept_suffix


def build_prompt(
    prefix: str,
    suffix: str,
    *,
    template: FimTemplate | None,
    tokenizer: Tokenizer,
    max_prompt_tokens: int,
    language: str,
    path: str,
    suffix_share: float = 0.25,
) -> Prompt:
    """Render a prompt for the code around the cursor within ``max_prompt_tokens`` tokens.

    A prompt ends at the last line with code when the cursor's line is blank before the
    cursor (:func:`cursor_lead`). ``template`` None gives a prefix-only prompt (header
    comment with ``path`` and ``language``, then up to :data:`SUFFIX_CONTEXT_MAX_LINES` lines
    of the suffix as a comment block, then the prefix). The whole rendered text, template
    tokens and header included, stays within ``max_prompt_tokens``. The suffix gets
    ``suffix_share`` of the tokens left for code, the prefix the rest; what one side does not
    use goes to the other. Over-long sides are cut at their far ends at line boundaries;
    inputs are never rejected. Header lines of a prefix-only prompt that do not fit are left
    out. Raises ValueError when the budget cannot hold a template's marker tokens, when it is
    not positive, or when ``suffix_share`` is outside [0, 1].
    """
    if max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be positive, got {max_prompt_tokens}")
    if not 0.0 <= suffix_share <= 1.0:
        raise ValueError(f"suffix_share must be within [0, 1], got {suffix_share}")
    lead = cursor_lead(prefix)
    prefix = prefix[: len(prefix) - len(lead)]
    suffix_source = suffix
    suffix_measure: _Measure | None = None
    render: Callable[[str, str], str]
    if template is None:
        has_suffix = _has_content(suffix, 0, len(suffix))
        suffix_source = _limit_lines(suffix, SUFFIX_CONTEXT_MAX_LINES) if has_suffix else ""
        markers = comment_markers(language)

        def suffix_measure(part: str) -> int:
            return _count(tokenizer, _comment_block(_context_lines(part), markers))

        # Header lines that do not fit the budget are left out, the path first.
        header = _header_lines(language, path)
        for dropped in range(len(header) + 1):
            render = functools.partial(
                _render_prefix_only, header=header[dropped:], markers=markers
            )
            overhead = _count(tokenizer, render("", ""))
            if overhead <= max_prompt_tokens:
                break
        name = PREFIX_ONLY
        stop_tokens = PREFIX_ONLY_STOP_TOKENS
    else:
        render = template.render
        name = template.name
        stop_tokens = template.stop_tokens
        overhead = _count(tokenizer, render("", ""))
        if overhead > max_prompt_tokens:
            raise ValueError(
                f"max_prompt_tokens={max_prompt_tokens} cannot hold the {name!r} template "
                f"markers ({overhead} tokens)"
            )
    # Token counts of the parts do not add up exactly to the count of the whole (tokens can
    # merge across part boundaries): shrink the space for code until the whole fits.
    reserve = 0
    while True:
        available = max(0, max_prompt_tokens - overhead - reserve)
        kept_prefix, kept_suffix = _allocate(
            prefix, suffix_source, available, suffix_share, tokenizer, suffix_measure
        )
        if template is None and not kept_suffix.strip():
            kept_suffix = ""
        text = render(kept_prefix, kept_suffix)
        count = _count(tokenizer, text)
        if count <= max_prompt_tokens or available == 0:
            break
        reserve += count - max_prompt_tokens

    stop = tuple(dict.fromkeys((*stop_tokens, *GENERAL_STOP_SEQUENCES)))
    return Prompt(
        text=text,
        prefix=kept_prefix,
        suffix=kept_suffix,
        template=name,
        prefix_truncated=_has_content(prefix, 0, len(prefix) - len(kept_prefix)),
        suffix_truncated=_has_content(suffix, len(kept_suffix), len(suffix)),
        stop=stop,
        token_count=count,
        lead=lead,
    )
