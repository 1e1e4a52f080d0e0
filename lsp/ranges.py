"""Following a stretch of text through later edits.

A :class:`TrackedRange` is a pair of code-point offsets that moves with the document:
edits before it shift it, edits inside it grow or shrink it, and an edit that overlaps
one of its ends takes the replaced part in. Two flavours differ only at the boundaries:

* a *fixed* range (accepted text, followed for retention) keeps insertions at its start
  and end outside: typing right after accepted code is not editing it. The exception is
  typing where the range's own text was just deleted at that end (backspace, then type):
  that replaces part of the range, so it stays in;
* a *growing* range (text the user is typing at a suggestion's place) takes insertions
  at its start and end in: that is how it grows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .documents import Edit


class Relation(enum.Enum):
    """Where an edit fell relative to a range."""

    BEFORE = "before"
    """Entirely before the range (the range moved)."""
    AFTER = "after"
    """Entirely after the range (nothing changed)."""
    INSIDE = "inside"
    """Within the range, or at a boundary a growing range takes in."""
    ACROSS_START = "across_start"
    """Started before the range and reached into it (or covered it)."""


@dataclass
class TrackedRange:
    """``[start, end)`` in code points of the current document text."""

    start: int
    end: int
    growing: bool = False
    _open_start: bool = field(default=False, repr=False, compare=False)
    _open_end: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a range cannot end before it starts")

    @property
    def length(self) -> int:
        return self.end - self.start

    def contains(self, offset: int) -> bool:
        """Whether ``offset`` lies within the range, its ends included."""
        return self.start <= offset <= self.end

    def apply(self, edit: Edit) -> Relation:
        """Move the range through ``edit`` (offsets relative to the text before it)."""
        s, e, n = edit.start, edit.end, len(edit.text)
        open_start, open_end = self._open_start, self._open_end
        self._open_start = self._open_end = False
        if edit.is_insertion:
            takes_start = self.growing or (open_start and s == self.start)
            if s < self.start or (s == self.start and not takes_start):
                self.start += n
                self.end += n
                return Relation.BEFORE
            if s < self.end or (s == self.end and (self.growing or open_end)):
                self._open_start = open_start and s == self.start
                self._open_end = open_end and s == self.end
                self.end += n
                return Relation.INSIDE
            return Relation.AFTER
        if e <= self.start:
            self.start += edit.delta
            self.end += edit.delta
            return Relation.BEFORE
        if s >= self.end:
            return Relation.AFTER
        relation = Relation.INSIDE
        if s < self.start:
            relation = Relation.ACROSS_START
            self.start = s
        else:
            self._open_start = s == self.start and not n
        self._open_end = e >= self.end and not n
        self.end = self.end + edit.delta if e <= self.end else s + n
        return relation
