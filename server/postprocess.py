"""Turn raw generated text into the inline suggestion shown at the cursor.

Steps, in order:

1. Cut at the first special token that leaked into the text (``<|endoftext|>``,
   ``<fim_middle>``, ``<file_sep>``, ``<|im_end|>``, ``<EOT>``, DeepSeek's ``<｜…｜>``...).
   ``<filename>`` is not treated as special: it is common in usage strings.
2. Start at the cursor. When the prompt left out the blank end of the cursor's line
   (:func:`prefloop.prompting.cursor_lead`), the model writes the line break and indentation
   itself; they are dropped, and the suggestion starts where the first generated line
   starts: at the cursor when that line is indented as deep as the cursor, after the extra
   indentation when deeper. A first line indented less than the cursor belongs outside the
   cursor's block: nothing is suggested. Text the model continues the last code line with
   (no line break) is placed at the cursor.
3. Shape by mode.

   * ``single_line``: the suggestion ends at the end of the current line. When the cursor is at
     the end of a line whose text before the cursor is empty or opens a block, and the model
     starts on the next line, the suggestion is that newline plus exactly one line.
   * ``multi_line``: the suggestion ends with the block it lives in. The block indentation is
     that of the current line or, when the text starts on a new line after a block opener, that
     of the first generated line (at least one column deeper than the opener). The suggestion
     stops before the first non-blank line indented less than the block, and before two blank
     lines in a row. A dedented line made only of closing brackets (``}``, ``});``, ``)``, ``]``)
     at the indentation of the line that opened the block is kept as the last line, so a body
     comes with its closing brace; a line such as ``} else {`` ends the suggestion without
     being kept.

4. Trim text the suffix already holds.

   * Whole lines: when the suggestion's last non-blank lines equal the suffix's first non-blank
     lines (same indentation), they are dropped. Lines that close brackets are dropped only
     when the suggestion closes brackets it did not open.
   * Characters: the longest end of the suggestion that the suffix starts with is removed when
     it is made of brackets, quotes and punctuation, or when it reaches the end of a suffix line
     and starts at a word boundary. A closing bracket or quote is only removed when the
     suggestion closes one it did not open and the line would otherwise close more than it
     opened (``foo(`` + ``bar(a)`` keeps its ``)`` before the suffix's ``)``).

5. Trailing whitespace is stripped before the trimming. Whitespace left in front of trimmed
   text separates the suggestion from the suffix (``a, `` before ``b)``) and is kept. Empty and
   whitespace-only results become None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from prefloop.prompting import after_lead

__all__ = ["Mode", "postprocess", "postprocess_candidates", "strip_special_tokens"]

Mode = Literal["single_line", "multi_line"]

_SPECIAL_TOKEN = re.compile(
    r"<\|[A-Za-z0-9_]+\|>"
    r"|<｜[^｜\n]{1,64}｜>"
    r"|<(?:fim_(?:prefix|suffix|middle|pad)|file_sep|repo_name|reponame|gh_stars|empty_output"
    r"|issue_(?:start|comment|closed)|jupyter_(?:start|text|code|output|script)"
    r"|commit_(?:before|msg|after))>"
    r"|<(?:EOT|PRE|SUF|MID)>"
)
_BLOCK_OPENER = re.compile(r"(?:[:{(\[]|=>|\b(?:do|then|else|begin))$")
_CLOSING_LINE = re.compile(r"[)\]}]+[)\]};,]*")
_PAIRS = {")": "(", "]": "[", "}": "{"}
_QUOTES = "\"'`"
_PUNCTUATION = frozenset("()[]{}\"'`;:,.<> \t")
_MAX_SCAN_LINES = 2000
_MAX_LINE_CHARS = 4096


def strip_special_tokens(text: str) -> str:
    """``text`` up to the first special token in it."""
    match = _SPECIAL_TOKEN.search(text)
    return text if match is None else text[: match.start()]


def _indent_width(line: str) -> int:
    whitespace = line[: len(line) - len(line.lstrip(" \t"))]
    return len(whitespace.expandtabs(4))


def _is_block_opener(line: str) -> bool:
    return _BLOCK_OPENER.search(line.rstrip()) is not None


def _at_line_end(suffix: str) -> bool:
    newline = suffix.find("\n")
    rest = suffix if newline == -1 else suffix[:newline]
    return not rest.strip()


def _enclosing_indent(prefix: str, block_indent: int) -> int | None:
    """Indentation of the nearest line before the cursor indented less than the block."""
    end = len(prefix)
    for _ in range(_MAX_SCAN_LINES):
        start = prefix.rfind("\n", 0, end) + 1
        line = prefix[start:end]
        if line.strip() and _indent_width(line) < block_indent:
            return _indent_width(line)
        if start == 0:
            return None
        end = start - 1
    return None


def _single_line(text: str, line_prefix: str, suffix: str) -> str:
    first, newline, rest = text.partition("\n")
    if (
        newline
        and not first.strip()
        and _at_line_end(suffix)
        and (not line_prefix.strip() or _is_block_opener(line_prefix))
    ):
        return "\n" + rest.partition("\n")[0]
    return first


def _multi_line(text: str, prefix: str, line_prefix: str) -> str:
    lines = text.split("\n")
    starts_new_line = len(lines) > 1 and not lines[0].strip()
    if starts_new_line:
        lines[0] = ""
    current_indent = _indent_width(line_prefix)
    opener_indent: int | None = None
    if starts_new_line and _is_block_opener(line_prefix):
        body = next((line for line in lines[1:] if line.strip()), None)
        if body is None:
            return ""
        block_indent = max(_indent_width(body), current_indent + 1)
        opener_indent = current_indent
    elif not line_prefix.strip() and not starts_new_line:
        block_indent = _indent_width(line_prefix + lines[0])
    else:
        block_indent = current_indent

    kept = [lines[0]]
    previous_blank = False
    for line in lines[1:]:
        if not line.strip():
            if previous_blank:
                kept.pop()
                break
            previous_blank = True
            kept.append(line)
            continue
        previous_blank = False
        indent = _indent_width(line)
        if indent < block_indent:
            if _CLOSING_LINE.fullmatch(line.strip()):
                if opener_indent is None:
                    opener_indent = _enclosing_indent(prefix, block_indent)
                if indent == opener_indent:
                    kept.append(line)
            break
        kept.append(line)
    return "\n".join(kept)


def _unmatched(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per bracket pair (keyed by its closer): closers without an opener, openers left open."""
    closers = dict.fromkeys(_PAIRS, 0)
    openers = dict.fromkeys(_PAIRS, 0)
    by_opener = {opener: closer for closer, opener in _PAIRS.items()}
    for char in text:
        if char in by_opener:
            openers[by_opener[char]] += 1
        elif char in _PAIRS:
            if openers[char]:
                openers[char] -= 1
            else:
                closers[char] += 1
    return closers, openers


def _brackets_allow_trim(overlap: str, completion: str, line_prefix: str) -> bool:
    """Whether removing ``overlap`` from the end of ``completion`` keeps brackets and quotes
    consistent: it may only remove closers (and quotes) the completion adds beyond what it
    opened and the current line needs, and openers the completion leaves open."""
    overlap_closers, overlap_openers = _unmatched(overlap)
    closers, openers = _unmatched(completion)
    line_prefix = line_prefix[-_MAX_LINE_CHARS:]
    _, line_openers = _unmatched(line_prefix)
    for closer in _PAIRS:
        needed = overlap_closers[closer]
        if needed and (
            closers[closer] < needed or closers[closer] + needed <= line_openers[closer]
        ):
            return False
        if openers[closer] < overlap_openers[closer]:
            return False
    for quote in _QUOTES:
        if overlap.count(quote) % 2 and (
            completion.count(quote) % 2 == 0 or (line_prefix + completion).count(quote) % 2
        ):
            return False
    return True


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _trim_overlapping_chars(completion: str, suffix: str, line_prefix: str) -> str:
    if not completion or not suffix:
        return completion
    head = suffix[: len(completion)]
    start = completion.find(head[0])
    while start != -1:
        size = len(completion) - start
        overlap = completion[start:]
        if (
            head.startswith(overlap)
            and overlap.strip()
            and _brackets_allow_trim(overlap, completion, line_prefix)
        ):
            punctuation = all(char in _PUNCTUATION for char in overlap)
            at_line_end = size == len(suffix) or suffix[size] in "\r\n"
            at_word_boundary = start == 0 or not (
                _is_word_char(completion[start - 1]) and _is_word_char(overlap[0])
            )
            if punctuation or (at_line_end and at_word_boundary):
                return completion[:start]
        start = completion.find(head[0], start + 1)
    return completion


def _leading_suffix_lines(suffix: str, line_prefix: str, count: int) -> tuple[list[str], bool]:
    """The first ``count`` non-blank lines of the suffix as whole document lines (the cursor's
    line with its text before the cursor), right-stripped; and whether the first of them is the
    cursor's line."""
    lines: list[str] = []
    first_on_cursor_line = False
    start = 0
    for index in range(_MAX_SCAN_LINES):
        if len(lines) == count or start > len(suffix):
            break
        end = suffix.find("\n", start)
        if end == -1:
            end = len(suffix)
        line = suffix[start:end]
        if line.strip():
            if index == 0:
                first_on_cursor_line = True
                line = line_prefix + line
            lines.append(line.rstrip())
        start = end + 1
    return lines, first_on_cursor_line


def _trim_duplicate_lines(completion: str, suffix: str, line_prefix: str) -> str:
    lines = completion.split("\n")
    content = [index for index, line in enumerate(lines) if line.strip()]
    if not content:
        return completion
    full = [
        (line_prefix + line if index == 0 else line).rstrip() for index, line in enumerate(lines)
    ]
    suffix_lines, first_on_cursor_line = _leading_suffix_lines(suffix, line_prefix, len(content))
    for size in range(min(len(content), len(suffix_lines)), 0, -1):
        if [full[index] for index in content[-size:]] != suffix_lines[:size]:
            continue
        first = content[-size]
        dropped = "\n".join(lines[first:])
        closers, _ = _unmatched(completion)
        dropped_closers, _ = _unmatched(dropped)
        if any(closers[closer] < dropped_closers[closer] for closer in _PAIRS):
            continue
        if first == 0:
            return ""
        kept = "\n".join(lines[:first])
        if first_on_cursor_line:
            # The suffix's text continues the cursor's line: keep the line break and that
            # line's text before the cursor in front of it.
            return kept + "\n" + line_prefix
        return kept.rstrip()
    return completion


def _trim_suffix_overlap(completion: str, suffix: str, line_prefix: str) -> str:
    trimmed = _trim_duplicate_lines(completion, suffix, line_prefix)
    if trimmed != completion:
        return trimmed
    return _trim_overlapping_chars(completion, suffix, line_prefix)


def postprocess(text: str, *, prefix: str, suffix: str, mode: Mode, lead: str = "") -> str | None:
    """The inline suggestion for generated ``text`` at the cursor after ``prefix`` + ``lead``
    and before ``suffix``, or None when nothing worth showing is left. ``lead`` is the blank
    text before the cursor that the prompt left for the model to write
    (:attr:`prefloop.prompting.Prompt.lead`)."""
    placed = after_lead(strip_special_tokens(text), lead)
    if placed is None:
        return None
    text, prefix = placed, prefix + lead
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    if mode == "single_line":
        text = _single_line(text, line_prefix, suffix)
    elif mode == "multi_line":
        text = _multi_line(text, prefix, line_prefix)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    text = _trim_suffix_overlap(text.rstrip(), suffix, line_prefix)
    return text if text.strip() else None


def postprocess_candidates(
    texts: Iterable[str], *, prefix: str, suffix: str, mode: Mode, lead: str = ""
) -> list[str]:
    """Post-process each generated text; drop None results and duplicates, keeping order."""
    results: dict[str, None] = {}
    for text in texts:
        suggestion = postprocess(text, prefix=prefix, suffix=suffix, mode=mode, lead=lead)
        if suggestion is not None:
            results.setdefault(suggestion)
    return list(results)
