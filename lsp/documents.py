"""The language server's own copy of each open document.

A :class:`Document` holds the text, an index of line starts, and converts LSP positions
(in the client's position encoding: UTF-16 by default, UTF-8 or UTF-32 when negotiated)
to code-point offsets and back. Each incremental change is reported as an :class:`Edit`
in code-point offsets, which is what signal inference and range tracking work with.

Positions out of range are clamped the way the LSP specification asks (a character past
the end of a line means the end of that line; a line past the end means the end of the
document), so bad positions never raise. Line breaks are ``\\n``, ``\\r\\n`` and ``\\r``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

_BREAK = re.compile(r"\r\n|\r|\n")
_ASTRAL = re.compile(r"[\U00010000-\U0010FFFF]")

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"


@dataclass(frozen=True)
class Edit:
    """One text change: ``text`` replaced the code points ``[start, end)`` of the document
    as it was just before this change."""

    start: int
    end: int
    text: str

    @property
    def delta(self) -> int:
        """How much the document grew."""
        return len(self.text) - (self.end - self.start)

    @property
    def is_insertion(self) -> bool:
        return self.start == self.end


def minimal_edit(old: str, new: str) -> Edit:
    """The smallest single edit turning ``old`` into ``new`` (common head and tail kept),
    so a client that sends whole documents still yields precise edits."""
    limit = min(len(old), len(new))
    head = _common_prefix_length(old, new, limit)
    tail_limit = limit - head
    tail = _common_suffix_length(old, new, tail_limit)
    return Edit(head, len(old) - tail, new[head : len(new) - tail])


def _common_prefix_length(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:  # largest n with a[:n] == b[:n], by bisection on slice comparisons
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix_length(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    la, lb = len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid : la - lo] == b[lb - mid : lb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _units(text: str, encoding: str) -> int:
    """Length of ``text`` in the encoding's code units."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8"))
    return len(text) + len(_ASTRAL.findall(text))


def _code_points(line: str, units: int, encoding: str) -> int:
    """How many code points of ``line`` the first ``units`` code units cover (a unit in
    the middle of a character counts as before it)."""
    if units <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    if encoding == UTF8:
        return len(line.encode("utf-8")[:units].decode("utf-8", errors="ignore"))
    if _ASTRAL.search(line) is None:
        return min(units, len(line))
    return len(line.encode("utf-16-le")[: units * 2].decode("utf-16-le", errors="ignore"))


class Document:
    """An open text document: text, version, language, and position conversion."""

    def __init__(
        self,
        uri: str,
        text: str,
        *,
        language_id: str = "plaintext",
        version: int = 0,
        encoding: str = UTF16,
    ) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.encoding = encoding if encoding in (UTF8, UTF16, UTF32) else UTF16
        self._text = text
        self._starts = [0, *(m.end() for m in _BREAK.finditer(text))]
        self._binary: tuple[int, bool] | None = None
        self._revision = 0

    @property
    def text(self) -> str:
        return self._text

    @property
    def revision(self) -> int:
        """Increases with every applied change, whatever the client's version numbers say."""
        return self._revision

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_at(self, offset: int) -> int:
        """The zero-based line holding the code point at ``offset``."""
        offset = max(0, min(offset, len(self._text)))
        return bisect_right(self._starts, offset) - 1

    def line_text(self, line: int) -> str:
        """Line ``line`` without its line break."""
        if not 0 <= line < len(self._starts):
            return ""
        start = self._starts[line]
        end = self._starts[line + 1] if line + 1 < len(self._starts) else len(self._text)
        return self._text[start:end].rstrip("\r\n")

    def offset_at(self, line: int, character: int) -> int:
        """The code-point offset of an LSP position, clamped into the document."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self._text)
        text = self.line_text(line)
        return self._starts[line] + _code_points(text, character, self.encoding)

    def position_at(self, offset: int) -> tuple[int, int]:
        """The LSP position (line, character in client units) of a code-point offset."""
        offset = max(0, min(offset, len(self._text)))
        line = self.line_at(offset)
        start = self._starts[line]
        return line, _units(self._text[start:offset], self.encoding)

    def apply(self, text: str, range_: tuple[int, int, int, int] | None = None) -> Edit:
        """Apply one change. ``range_`` is (start line, start character, end line, end
        character) in client units; ``None`` replaces the whole text. Returns the edit in
        code points relative to the text before the change."""
        if range_ is None:
            edit = minimal_edit(self._text, text)
        else:
            start = self.offset_at(range_[0], range_[1])
            end = self.offset_at(range_[2], range_[3])
            if end < start:
                start, end = end, start
            edit = Edit(start, end, text)
        if edit.start == edit.end and not edit.text:
            return edit
        self._text = self._text[: edit.start] + edit.text + self._text[edit.end :]
        self._reindex(edit.start, edit.end, len(edit.text))
        self._revision += 1
        return edit

    def _reindex(self, start: int, end: int, inserted: int) -> None:
        """Update the line starts after ``[start, end)`` became ``inserted`` code points.

        Line starts before the line preceding the change are unchanged, those after the
        replaced text are shifted, and the stretch in between is rescanned (one line of
        margin on each side keeps ``\\r\\n`` pairs split or joined by the edit correct).
        """
        starts = self._starts
        line = bisect_right(starts, start) - 1
        keep = max(line - 1, 0)
        scan_from = starts[keep]
        limit = start + inserted + 1
        delta = inserted - (end - start)
        middle = [
            m.end()
            for m in _BREAK.finditer(self._text, scan_from, min(len(self._text), limit + 1))
            if m.end() <= limit
        ]
        tail_index = bisect_right(starts, end + 1)
        self._starts = starts[: keep + 1] + middle + [s + delta for s in starts[tail_index:]]

    def is_binary(self) -> bool:
        """Whether the text looks like binary content (it holds NUL characters)."""
        if self._binary is None or self._binary[0] != self._revision:
            self._binary = (self._revision, "\x00" in self._text)
        return self._binary[1]

    def window(self, offset: int, max_prefix: int, max_suffix: int) -> tuple[str, str]:
        """The text before and after ``offset``, cut to at most ``max_prefix`` and
        ``max_suffix`` code points at their far ends."""
        offset = max(0, min(offset, len(self._text)))
        prefix = self._text[max(0, offset - max_prefix) : offset]
        suffix = self._text[offset : offset + max_suffix]
        return prefix, suffix
