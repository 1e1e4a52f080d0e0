"""Retention: what becomes of accepted text.

A :class:`RetentionWatch` follows the range an accepted suggestion was inserted into
through every later edit (above it, inside it, across its ends) and says when its timed
checkpoints are due. A snapshot compares the range's current text with the accepted
text (:func:`prefloop.lsp.similarity.similarity`). After the last timed checkpoint the
watch ends; saves and the document's close take extra snapshots while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefloop.protocol import Checkpoint

from .documents import Edit
from .ranges import TrackedRange
from .similarity import similarity

TIMED_CHECKPOINTS: tuple[Checkpoint, ...] = ("30s", "2m", "5m", "10m")
"""Labels of the timed checkpoints, in order; their delays are settings."""


@dataclass(frozen=True)
class Snapshot:
    checkpoint: Checkpoint
    similarity: float
    text: str


@dataclass
class RetentionWatch:
    """One accepted suggestion being followed in one document."""

    suggestion_id: str
    candidate_index: int
    uri: str
    accepted_text: str
    range: TrackedRange
    due: list[tuple[float, Checkpoint]] = field(default_factory=list)
    last_save_text: str | None = None

    @classmethod
    def start(
        cls,
        *,
        suggestion_id: str,
        candidate_index: int,
        uri: str,
        accepted_text: str,
        start: int,
        end: int,
        now: float,
        delays: tuple[float, ...],
    ) -> RetentionWatch:
        due = [(now + d, label) for d, label in zip(delays, TIMED_CHECKPOINTS, strict=False)]
        return cls(
            suggestion_id=suggestion_id,
            candidate_index=candidate_index,
            uri=uri,
            accepted_text=accepted_text,
            range=TrackedRange(start, end),
            due=sorted(due, key=lambda item: item[0]),
        )

    def follow(self, edit: Edit) -> None:
        self.range.apply(edit)

    @property
    def finished(self) -> bool:
        """Whether every timed checkpoint has been taken."""
        return not self.due

    def next_due(self) -> float | None:
        return self.due[0][0] if self.due else None

    def pop_due(self, now: float) -> list[Checkpoint]:
        """The timed checkpoints due at ``now``, removed from the schedule."""
        labels = []
        while self.due and self.due[0][0] <= now:
            labels.append(self.due.pop(0)[1])
        return labels

    def current_text(self, document_text: str) -> str:
        return document_text[self.range.start : self.range.end]

    def snapshot(self, checkpoint: Checkpoint, document_text: str) -> Snapshot:
        text = self.current_text(document_text)
        return Snapshot(checkpoint, similarity(self.accepted_text, text), text)
