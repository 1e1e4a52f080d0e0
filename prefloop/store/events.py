"""Suggestions and their feedback events: the read queries.

The rows are written by :class:`~prefloop.store.writer.Writer`; this module reads them for
the CLI (``prefloop logs query``), the service and tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from prefloop.store.connection import connect

EVENT_COLUMNS: tuple[str, ...] = (
    "created_at",
    "kind",
    "id",
    "suggestion_id",
    "candidate_index",
    "user",
    "language",
    "model_version",
    "reason",
    "accepted_chars",
    "checkpoint",
    "similarity",
    "shown_ms",
    "text",
)


class Store:
    """Read access for the CLI, the service and tests. Writes go through the writer."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_events(
        self,
        *,
        since: str | None = None,
        kinds: Sequence[str] = (),
        language: str | None = None,
        user: str | None = None,
        suggestion_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Events matching every given filter, oldest first, as ``EVENT_COLUMNS`` dicts."""
        where: list[str] = []
        params: list[Any] = []
        if since:
            where.append("created_at >= ?")
            params.append(since)
        if kinds:
            where.append(f"kind IN ({','.join('?' for _ in kinds)})")
            params.extend(kinds)
        if language:
            where.append("language = ?")
            params.append(language)
        if user:
            where.append("user = ?")
            params.append(user)
        if suggestion_id:
            where.append("suggestion_id = ?")
            params.append(suggestion_id)
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return list(self.db.query(sql, params))

    def get_suggestion(self, suggestion_id: str) -> dict[str, Any] | None:
        """One suggestion row with its candidates and timings decoded, or ``None``."""
        rows = list(self.db.query("SELECT * FROM suggestions WHERE id = ?", [suggestion_id]))
        if not rows:
            return None
        row = rows[0]
        row["candidates"] = json.loads(row["candidates"] or "[]")
        row["timings"] = json.loads(row["timings"] or "{}")
        return row

    def count(self, table: str) -> int:
        """How many rows ``table`` holds."""
        return self.db[table].count
