"""What is on screen: an offered suggestion and what a completion request should serve.

An :class:`Offer` is a suggestion the editor shows at ``region.start``; its region grows
with what the user types there, which is how typing through it, accepting it word by
word, and typing over it are told apart (see :mod:`prefloop.lsp.signals`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ranges import TrackedRange
from .rewrites import Lines


@dataclass(frozen=True)
class CachedItem:
    """One item to serve: a candidate's text (or what is left of it past the typed part)."""

    candidate_index: int
    text: str


@dataclass(frozen=True)
class RequestOutcome:
    """What a completion request should do: serve ``items`` of ``suggestion_id`` from the
    cache, or (no items) ask the service and report back with ``ticket``."""

    ticket: int
    suggestion_id: str | None = None
    items: tuple[CachedItem, ...] = ()


@dataclass
class Offer:
    """A suggestion on screen at ``region.start``; ``region`` is what the user has typed
    there since."""

    suggestion_id: str
    uri: str
    candidates: tuple[str, ...]
    region: TrackedRange
    delivered_at: float
    shown: bool = False
    candidate: int = 0
    accept_reported: bool = False
    kept_chars: int = 0

    @property
    def text(self) -> str:
        return self.candidates[self.candidate]

    def typed(self, doc: Lines) -> str:
        return doc.text[self.region.start : self.region.end]

    def remainders(self, typed: str) -> tuple[CachedItem, ...]:
        return tuple(
            CachedItem(i, c[len(typed) :])
            for i, c in enumerate(self.candidates)
            if c.startswith(typed) and len(c) > len(typed)
        )


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
