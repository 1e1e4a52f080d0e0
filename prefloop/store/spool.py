"""The language server's event spool: its own SQLite file, its rows and statements.

The spool (``$PREFLOOP_HOME/spool/events.db``) is not the service's database: every
language server on the machine writes it directly. :func:`open_spool` gives a connection
in WAL mode with ``synchronous=FULL``, so a commit is on disk when it returns, and
without implicit transactions; every write below is one committed transaction.

Imports only the standard library: the language server loads this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class Spooled:
    """One spooled event: its id, its JSON body, and how often it was refused before."""

    id: str
    body: str
    attempts: int


def open_spool(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the spool file at ``path``, usable from any one thread
    at a time."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(SCHEMA)
    return conn


def add(conn: sqlite3.Connection, items: Sequence[tuple[str, str, float]]) -> int:
    """Append (id, body, created) rows; ids already spooled are ignored. Returns how many
    were added."""
    before = conn.total_changes
    _write(conn, "INSERT OR IGNORE INTO spool (id, body, created) VALUES (?, ?, ?)", items)
    return conn.total_changes - before


def claim(
    conn: sqlite3.Connection, owner: str, limit: int, *, now: float, lease_until: float
) -> list[Spooled]:
    """Lease up to ``limit`` of the oldest events whose lease ran out by ``now`` to
    ``owner`` until ``lease_until``; oldest first."""
    rows = conn.execute(
        "UPDATE spool SET lease_owner = ?, lease_until = ? WHERE seq IN "
        "(SELECT seq FROM spool WHERE lease_until <= ? ORDER BY seq LIMIT ?) "
        "RETURNING seq, id, body, attempts",
        (owner, lease_until, now, limit),
    ).fetchall()
    rows.sort()
    return [Spooled(event_id, body, attempts) for _, event_id, body, attempts in rows]


def delete(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Remove these events."""
    _write(conn, "DELETE FROM spool WHERE id = ?", [(i,) for i in ids])


def release(conn: sqlite3.Connection, ids: Sequence[str], *, refused: bool) -> None:
    """End the lease of these events, counting one more refusal if ``refused``."""
    _write(
        conn,
        "UPDATE spool SET lease_owner = NULL, lease_until = 0, "
        "attempts = attempts + ? WHERE id = ?",
        [(1 if refused else 0, i) for i in ids],
    )


def count(conn: sqlite3.Connection) -> int:
    """How many events the spool holds."""
    row = conn.execute("SELECT count(*) FROM spool").fetchone()
    return int(row[0])


def _write(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Run ``sql`` for every row in one committed transaction."""
    if not rows:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
