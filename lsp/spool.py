"""The durable event spool: every event is written here before it is sent.

One SQLite file (``$PREFLOOP_HOME/spool/events.db``, WAL mode, ``synchronous=FULL`` so a
commit is on disk when it returns) shared by every language server on the machine. An
event leaves the spool only when the service has acknowledged it (stored, a duplicate of
a stored one, or refused for good), so nothing is lost when the service is down or
either process dies; the service ingests idempotently by event id, so an event resent
after a crash is not stored twice.

Senders *claim* a batch for a while (a lease) before posting it, so two language
servers do not post the same events at once; a crashed sender's lease simply runs out.

The statements live in :mod:`prefloop.store.spool`; this module adds the directory, the
file's private mode and one lock per process. All methods block on disk and belong in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prefloop.store import spool as statements
from prefloop.store.spool import Spooled as Spooled

SPOOL_FILE = "events.db"


class Spool:
    """A durable queue of event bodies keyed by event id.

    ``clock`` gives the wall-clock time in seconds (leases are compared across
    processes, so it must be shared by every language server)."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self.path = directory / SPOOL_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = statements.open_spool(self.path)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, items: Iterable[tuple[str, str]]) -> int:
        """Append (id, body) pairs; ids already spooled are ignored. Durable on return."""
        now = self._clock()
        rows = [(event_id, body, now) for event_id, body in items]
        with self._lock:
            return statements.add(self._conn, rows)

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Spooled]:
        """Lease up to ``limit`` of the oldest unleased events to ``owner``."""
        now = self._clock()
        with self._lock:
            return statements.claim(
                self._conn, owner, limit, now=now, lease_until=now + lease_seconds
            )

    def delete(self, ids: Sequence[str]) -> None:
        """Forget events the service has acknowledged (or refused for good)."""
        with self._lock:
            statements.delete(self._conn, ids)

    def release(self, ids: Sequence[str], *, refused: bool = False) -> None:
        """Give leased events back for a later attempt (counting a refusal if ``refused``)."""
        with self._lock:
            statements.release(self._conn, ids, refused=refused)

    def count(self) -> int:
        """How many events wait in the spool."""
        with self._lock:
            return statements.count(self._conn)
