"""Training runs in the store: the ``training_runs`` rows and the pairs a run may use.

A run row is written by the process that carries the run out (and marked failed by
whoever finds that process gone); the service and the CLI only read it. JSON columns
(``config``, ``data``, ``metrics``, ``gate``) are stored as text and decoded on reading.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from prefloop.protocol import PairCounts, TrainingRun
from prefloop.store import pairs
from prefloop.store.connection import connect
from prefloop.store.timestamps import utcnow

JSON_COLUMNS = ("config", "data", "metrics", "gate", "users")
UNFINISHED = ("queued", "running")


@contextlib.contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(db)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def _decode(row: sqlite3.Row) -> TrainingRun:
    out: dict[str, Any] = dict(row)
    for column in JSON_COLUMNS:
        value = out.get(column)
        out[column] = json.loads(value) if value else None
    return cast(TrainingRun, out)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    encoded = dict(values)
    for column in JSON_COLUMNS:
        value = encoded.get(column)
        if value is not None and not isinstance(value, str):
            encoded[column] = json.dumps(value)
    return encoded


def insert_run(
    db: Path,
    run_id: str,
    *,
    user: str,
    config: dict[str, Any],
    data: dict[str, Any],
    reason: str,
    log_path: Path,
    pid: int | None = None,
    requested_by: str | None = None,
) -> None:
    """Record a new ``queued`` run."""
    with _connect(db) as conn, conn:
        conn.execute(
            "INSERT INTO training_runs (id, created_at, user, language, model_version, "
            "status, config, data, reason, log_path, pid, requested_by) "
            "VALUES (?, ?, ?, 'all', '', 'queued', ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                utcnow(),
                user,
                json.dumps(config),
                json.dumps(data),
                reason,
                str(log_path),
                pid,
                requested_by,
            ),
        )


def update_run(db: Path, run_id: str, **values: Any) -> None:
    """Set columns of a run; JSON columns may be given as plain values."""
    if not values:
        return
    encoded = _encode(values)
    sets = ", ".join(f"{column} = ?" for column in encoded)
    with _connect(db) as conn, conn:
        conn.execute(f"UPDATE training_runs SET {sets} WHERE id = ?", [*encoded.values(), run_id])


def fail_run(db: Path, run_id: str, error: str) -> bool:
    """Mark a run failed with ``error`` unless it already finished; whether it was marked."""
    with _connect(db) as conn, conn:
        cursor = conn.execute(
            "UPDATE training_runs SET status = 'failed', error = ?, finished_at = ? "
            "WHERE id = ? AND status IN (?, ?)",
            (error, utcnow(), run_id, *UNFINISHED),
        )
    return cursor.rowcount > 0


def get_run(db: Path, run_id: str) -> TrainingRun | None:
    with _connect(db) as conn:
        row = conn.execute("SELECT * FROM training_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _decode(row)


def list_runs(db: Path, *, limit: int = 50) -> list[TrainingRun]:
    """Runs, newest first."""
    with _connect(db) as conn:
        rows = conn.execute(
            "SELECT * FROM training_runs ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [_decode(r) for r in rows]


def unfinished_run_ids(db: Path) -> list[str]:
    """Ids of the runs still ``queued`` or ``running``."""
    with _connect(db) as conn:
        return [
            str(r["id"])
            for r in conn.execute("SELECT id FROM training_runs WHERE status IN (?, ?)", UNFINISHED)
        ]


def pair_counts(db: Path) -> PairCounts:
    """Train/held-out pairs in the table and pairs newer than the last finished run's data."""
    with _connect(db) as conn:
        counts = pairs.pair_counts(conn)
    return {"train": counts["train"], "heldout": counts["heldout"], "new": counts["new"]}


def pair_counts_by_user(db: Path) -> dict[str, dict[str, int]]:
    """Train/held-out pairs in the table, per user."""
    with _connect(db) as conn:
        return pairs.split_counts_by_user(conn)


def load_split(db: Path, split: str, limit: int, user: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` pairs of a split (of one ``user``'s when given), in the pairs
    table's one order (oldest first)."""
    with _connect(db) as conn:
        return pairs.load_split(conn, split, limit, user)


def load_split_quotas(db: Path, split: str, quotas: dict[str, int]) -> list[dict[str, Any]]:
    """The newest ``quotas[user]`` pairs of ``split`` of each user named, in the pairs
    table's one order (oldest first)."""
    with _connect(db) as conn:
        return pairs.load_split_quotas(conn, split, quotas)
