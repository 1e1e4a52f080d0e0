"""Timestamps as the store writes them: sortable UTC text in every ``*_at`` column."""

from __future__ import annotations

import datetime as dt
import re

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> str:
    """A sortable UTC timestamp, the format of every ``*_at`` column."""
    return dt.datetime.now(dt.UTC).strftime(TIMESTAMP_FORMAT)


def parse_since(value: str, *, now: dt.datetime | None = None) -> str:
    """Turn ``30m``, ``2h``, ``7d``, ``2026-11-23`` or a full ISO time into a timestamp."""
    value = value.strip()
    match = _DURATION.match(value)
    if match:
        now = now or dt.datetime.now(dt.UTC)
        delta = dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        return (now - delta).strftime(TIMESTAMP_FORMAT)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read --since {value!r}: use a duration like 30m, 2h, 7d or an ISO date"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)
