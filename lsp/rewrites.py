"""Rewrites: what the user wrote where a suggestion was dismissed.

A :class:`RewriteWatch` starts at the place of a suggestion that was typed over or
escaped, grows with the user's typing there, and ends when the user leaves the block:
an edit on a line outside it, a completion request outside it, the document closing, or
no typing in it for a while. Its text at that point is the rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .documents import Edit
from .ranges import Relation, TrackedRange


class Lines(Protocol):
    """What block checks need from a document."""

    @property
    def text(self) -> str: ...

    def line_at(self, offset: int) -> int: ...


def on_lines_of(range_: TrackedRange, offset: int, doc: Lines) -> bool:
    """Whether ``offset`` lies on one of the lines ``range_`` spans."""
    line = doc.line_at(offset)
    return doc.line_at(range_.start) <= line <= doc.line_at(range_.end)


@dataclass
class RewriteWatch:
    """The text growing at a dismissed suggestion's place."""

    suggestion_id: str
    candidate_index: int
    uri: str
    suggestion_text: str
    range: TrackedRange
    last_activity: float

    @classmethod
    def start(
        cls,
        *,
        suggestion_id: str,
        candidate_index: int,
        uri: str,
        suggestion_text: str,
        start: int,
        end: int,
        now: float,
    ) -> RewriteWatch:
        return cls(
            suggestion_id=suggestion_id,
            candidate_index=candidate_index,
            uri=uri,
            suggestion_text=suggestion_text,
            range=TrackedRange(start, end, growing=True),
            last_activity=now,
        )

    def follow(self, edit: Edit, doc: Lines, now: float) -> bool:
        """Move through ``edit``; False when the edit shows the user left the block."""
        relation = self.range.apply(edit)
        if relation in (Relation.INSIDE, Relation.ACROSS_START):
            self.last_activity = now
            return True
        return on_lines_of(self.range, edit.start, doc)

    def result(self, document_text: str) -> str | None:
        """The rewrite, or None when the user wrote nothing new there."""
        text = document_text[self.range.start : self.range.end]
        if not text.strip() or text == self.suggestion_text:
            return None
        return text
