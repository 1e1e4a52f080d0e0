"""Building feedback events: the wire types of :mod:`prefloop.protocol`, each with a fresh
client-generated id (uuid4 hex) and the client's wall-clock time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from prefloop.protocol import (
    MAX_TEXT_CHARS,
    AcceptedEvent,
    Checkpoint,
    DismissedEvent,
    DismissReason,
    Event,
    PartiallyAcceptedEvent,
    RetainedEvent,
    RewrittenEvent,
    ShownEvent,
)


def new_event_id() -> str:
    return uuid.uuid4().hex


def _text(value: str) -> str:
    return value[:MAX_TEXT_CHARS]


class EventFactory:
    """Makes events; ids and time are injectable so tests can pin them."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_event_id,
        user: str | None = None,
    ) -> None:
        self._clock = clock
        self._new_id = new_id
        self.user = user

    def _common(self, suggestion_id: str, candidate_index: int) -> dict[str, object]:
        return {
            "id": self._new_id(),
            "suggestion_id": suggestion_id,
            "candidate_index": max(0, min(candidate_index, 15)),
            "ts": self._clock(),
            "user": self.user,
        }

    def shown(self, suggestion_id: str, candidate_index: int) -> Event:
        return ShownEvent.model_validate(
            {"kind": "shown", **self._common(suggestion_id, candidate_index)}
        )

    def accepted(self, suggestion_id: str, candidate_index: int, text: str) -> Event:
        return AcceptedEvent.model_validate(
            {
                "kind": "accepted",
                "text": _text(text),
                **self._common(suggestion_id, candidate_index),
            }
        )

    def partially_accepted(
        self, suggestion_id: str, candidate_index: int, accepted_chars: int, text: str
    ) -> Event:
        return PartiallyAcceptedEvent.model_validate(
            {
                "kind": "partially_accepted",
                "accepted_chars": accepted_chars,
                "text": _text(text),
                **self._common(suggestion_id, candidate_index),
            }
        )

    def dismissed(
        self, suggestion_id: str, candidate_index: int, reason: DismissReason, shown_ms: float
    ) -> Event:
        return DismissedEvent.model_validate(
            {
                "kind": "dismissed",
                "reason": reason,
                "shown_ms": max(0.0, round(shown_ms, 1)),
                **self._common(suggestion_id, candidate_index),
            }
        )

    def retained(
        self,
        suggestion_id: str,
        candidate_index: int,
        checkpoint: Checkpoint,
        similarity: float,
        text: str,
    ) -> Event:
        return RetainedEvent.model_validate(
            {
                "kind": "retained",
                "checkpoint": checkpoint,
                "similarity": max(0.0, min(1.0, round(similarity, 4))),
                "text": _text(text),
                **self._common(suggestion_id, candidate_index),
            }
        )

    def rewritten(self, suggestion_id: str, candidate_index: int, text: str) -> Event:
        return RewrittenEvent.model_validate(
            {
                "kind": "rewritten",
                "text": _text(text),
                **self._common(suggestion_id, candidate_index),
            }
        )
