"""The SQLite store: schema, migrations and read queries.

All database access goes through this module and :mod:`prefloop.store.writer`. The schema is
created and upgraded by ``sqlite_utils`` migrations; the database runs in WAL mode so
readers never block the single writer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("prefloop")


def utcnow() -> str:
    """A sortable UTC timestamp, the format of every ``*_at`` column."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("suggestions").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "session_id": str,
            "client_request_id": str,
            "language": str,
            "path": str,
            "model_version": str,
            "engine": str,
            "mode": str,
            "n": int,
            "max_tokens": int,
            "cursor_line": int,
            "cursor_character": int,
            "prefix": str,
            "suffix": str,
            "prompt": str,
            "template": str,
            "prefix_truncated": int,
            "suffix_truncated": int,
            "candidates": str,
            "timings": str,
        },
        pk="id",
        not_null={"created_at", "model_version", "language", "user"},
    )
    db.table("suggestions").create_index(["created_at"])
    db.table("events").create(
        {
            "id": str,
            "suggestion_id": str,
            "kind": str,
            "candidate_index": int,
            "created_at": str,
            "client_ts": float,
            "user": str,
            "language": str,
            "model_version": str,
            "reason": str,
            "accepted_chars": int,
            "checkpoint": str,
            "similarity": float,
            "shown_ms": float,
            "text": str,
        },
        pk="id",
        foreign_keys=[("suggestion_id", "suggestions", "id")],
        not_null={"suggestion_id", "kind", "created_at"},
    )
    db.table("events").create_index(["suggestion_id"])
    db.table("events").create_index(["created_at"])
    db.table("events").create_index(["kind", "created_at"])
    db.table("critiques").create(
        {
            "id": str,
            "suggestion_id": str,
            "candidate_index": int,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "judge": str,
            "judge_model": str,
            "rubric_version": str,
            "status": str,
            "scores": str,
            "rationale": str,
            "error": str,
            "attempts": int,
            "duration_ms": float,
        },
        pk="id",
        foreign_keys=[("suggestion_id", "suggestions", "id")],
    )
    db.table("critiques").create_index(["suggestion_id"])
    db.table("pairs").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "source": str,
            "prompt": str,
            "chosen": str,
            "rejected": str,
            "weight": float,
            "evidence": str,
            "split": str,
        },
        pk="id",
    )
    db.table("pairs").create_index(["created_at"])
    db.table("model_versions").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "base_model": str,
            "parent": str,
            "adapter_path": str,
            "status": str,
            "run_id": str,
            "metrics": str,
            "promoted_at": str,
        },
        pk="id",
    )
    db.table("training_runs").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "status": str,
            "started_at": str,
            "finished_at": str,
            "config": str,
            "data": str,
            "metrics": str,
            "gate": str,
            "error": str,
            "candidate_version": str,
        },
        pk="id",
    )


@migrations()
def m002_critique_details(db: sqlite_utils.Database) -> None:
    """What a check found, the judge's raw answer, the candidate's place in the prompt."""
    critiques = db.table("critiques")
    critiques.add_column("findings", str)
    critiques.add_column("answer", str)
    critiques.add_column("position", int)


@migrations()
def m003_pair_builds(db: sqlite_utils.Database) -> None:
    """Incremental preference-pair builds: what each build processed (its high-water
    marks), the permanent train/held-out assignment of prompt groups, cached check
    verdicts, and the pairs' links back to their suggestion."""
    db.table("pair_builds").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "full": int,
            "event_rowid": int,
            "critique_rowid": int,
            "events_seen": int,
            "suggestions": int,
            "pairs_added": int,
            "pairs_updated": int,
            "pairs_removed": int,
            "dropped": str,
            "train": int,
            "heldout": int,
            "seconds": float,
            "settings": str,
        },
        pk="id",
    )
    db.table("pair_splits").create(
        {"group_key": str, "split": str, "suggestion_at": str, "assigned_at": str},
        pk="group_key",
    )
    db.table("pair_checks").create(
        {"key": str, "passed": int, "worst": str, "checked_at": str},
        pk="key",
    )
    pairs = db.table("pairs")
    pairs.add_column("suggestion_id", str)
    pairs.add_column("suggestion_at", str)
    pairs.add_column("group_key", str)
    pairs.add_column("pair_key", str)
    pairs.add_column("build_id", int)
    pairs.create_index(["suggestion_id"])
    pairs.create_index(["pair_key"])
    pairs.create_index(["split", "created_at"])


@migrations()
def m004_registry(db: sqlite_utils.Database) -> None:
    """Promotion history of the model registry, and when a version's files were pruned."""
    db.table("promotions").create(
        {
            "id": int,
            "created_at": str,
            "user": str,
            "action": str,
            "from_version": str,
            "to_version": str,
            "reason": str,
        },
        pk="id",
        not_null={"created_at", "action", "from_version", "to_version"},
    )
    db.table("model_versions").add_column("pruned_at", str)


@migrations()
def m005_training_runs(db: sqlite_utils.Database) -> None:
    """Why a run started, what it was trained from and against, and its process."""
    runs = db.table("training_runs")
    runs.add_column("reason", str)
    runs.add_column("parent_version", str)
    runs.add_column("reference_model", str)
    runs.add_column("pid", int)
    runs.add_column("log_path", str)
    runs.create_index(["created_at"])


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with prefloop's pragmas (WAL, NORMAL sync, foreign keys)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{Path(path)}?mode=ro", uri=True, check_same_thread=False, timeout=30
        )
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a crash of the process
    # (kill -9); only a power loss can roll back the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(path: Path | str) -> list[str]:
    """Create or upgrade the schema; returns the names of the migrations applied."""
    with closing(connect(path)) as conn:
        db = sqlite_utils.Database(conn)
        pending = [m.name for m in migrations.pending(db)]
        migrations.apply(db)
        return pending


def applied_migrations(path: Path | str) -> list[str]:
    with closing(connect(path)) as conn:
        return [m.name for m in migrations.applied(sqlite_utils.Database(conn))]


_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, *, now: dt.datetime | None = None) -> str:
    """Turn ``30m``, ``2h``, ``7d``, ``2026-11-23`` or a full ISO time into a timestamp."""
    value = value.strip()
    match = _DURATION.match(value)
    if match:
        now = now or dt.datetime.now(dt.UTC)
        delta = dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        return (now - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read --since {value!r}: use a duration like 30m, 2h, 7d or an ISO date"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        rows = list(self.db.query("SELECT * FROM suggestions WHERE id = ?", [suggestion_id]))
        if not rows:
            return None
        row = rows[0]
        row["candidates"] = json.loads(row["candidates"] or "[]")
        row["timings"] = json.loads(row["timings"] or "{}")
        return row

    def count(self, table: str) -> int:
        return self.db[table].count
