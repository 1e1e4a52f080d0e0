"""The durable event spool: every event is written here before it is sent.

One SQLite file (``$PREFLOOP_HOME/spool/events.db``, WAL mode, ``synchronous=FULL`` so a
commit is on disk when it returns) shared by every language server on the machine. An
event leaves the spool only when the service has acknowledged it (stored, a duplicate of
a stored one, or refused for good), so nothing is lost when the service is down or
either process dies; the service ingests idempotently by event id, so an event resent
after a crash is not stored twice.

Senders *claim* a batch for a while (a lease) before posting it, so two language
servers do not post the same events at once; a crashed sender's lease simply runs out.

All methods block on disk and belong in a worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SPOOL_FILE = "events.db"

_SCHEMA = """
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


class Spool:
    """A durable queue of event bodies keyed by event id."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self.path = directory / SPOOL_FILE
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, items: Iterable[tuple[str, str]]) -> int:
        """Append (id, body) pairs; ids already spooled are ignored. Durable on return."""
        rows = [(event_id, body, time.time()) for event_id, body in items]
        with self._lock:
            before = self._conn.total_changes
            self._write("INSERT OR IGNORE INTO spool (id, body, created) VALUES (?, ?, ?)", rows)
            return self._conn.total_changes - before

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Spooled]:
        """Lease up to ``limit`` of the oldest unleased events to ``owner``."""
        now = time.time()
        with self._lock:
            rows = self._conn.execute(
                "UPDATE spool SET lease_owner = ?, lease_until = ? WHERE seq IN "
                "(SELECT seq FROM spool WHERE lease_until <= ? ORDER BY seq LIMIT ?) "
                "RETURNING seq, id, body, attempts",
                (owner, now + lease_seconds, now, limit),
            ).fetchall()
        rows.sort()
        return [Spooled(event_id, body, attempts) for _, event_id, body, attempts in rows]

    def delete(self, ids: Sequence[str]) -> None:
        """Forget events the service has acknowledged (or refused for good)."""
        with self._lock:
            self._write("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    def release(self, ids: Sequence[str], *, refused: bool = False) -> None:
        """Give leased events back for a later attempt (counting a refusal if ``refused``)."""
        with self._lock:
            self._write(
                "UPDATE spool SET lease_owner = NULL, lease_until = 0, "
                "attempts = attempts + ? WHERE id = ?",
                [(1 if refused else 0, i) for i in ids],
            )

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Run ``sql`` for every row in one committed transaction (caller holds the lock)."""
        if not rows:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM spool").fetchone()
        return int(row[0])
