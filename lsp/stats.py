"""Today's acceptance rate, counted from the events this language server sent today."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prefloop.protocol import Event


class DailyStats:
    """Counts of events by kind for the current local day; resets at midnight."""

    def __init__(self, today: Callable[[], dt.date] = dt.date.today) -> None:
        self._today = today
        self._day = today()
        self._counts: Counter[str] = Counter()

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self._counts.clear()

    def record(self, events: Iterable[Event]) -> None:
        self._roll()
        self._counts.update(e.kind for e in events)

    def summary(self) -> dict[str, Any]:
        """Shown, accepted and partially accepted suggestions today, and the acceptance
        rate (accepted / shown; None before anything was shown)."""
        self._roll()
        shown = self._counts["shown"]
        accepted = self._counts["accepted"]
        return {
            "date": self._day.isoformat(),
            "shown": shown,
            "accepted": accepted,
            "partiallyAccepted": self._counts["partially_accepted"],
            "dismissed": self._counts["dismissed"],
            "acceptanceRate": round(accepted / shown, 4) if shown else None,
        }
