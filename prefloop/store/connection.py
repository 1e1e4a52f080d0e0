"""Opening the database: one place for prefloop's connection settings."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30.0


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with prefloop's pragmas (WAL, NORMAL sync, foreign keys)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{Path(path)}?mode=ro",
            uri=True,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_SECONDS,
        )
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a crash of the process
    # (kill -9); only a power loss can roll back the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return conn


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock at once; rolled back on any error.
    ``conn`` must not open transactions by itself (``isolation_level`` None)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
