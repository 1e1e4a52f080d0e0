"""The single database writer.

One thread owns the only write connection. Callers hand it operations through a queue;
it groups whatever is waiting into one transaction (group commit), so a busy service
makes few, large commits. Suggestions are fire-and-forget: the request that made them
never waits on disk. Event batches return a future that resolves after their commit,
so a client that got an answer knows its events are durable.

Every text the user's code can reach passes :func:`prefloop.redaction.redact` here,
the one door into the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from prefloop.protocol import Event
from prefloop.redaction import redact
from prefloop.store import connect, migrate, utcnow

log = logging.getLogger(__name__)

Operation = Callable[[sqlite_utils.Database], Any]

_STOP = object()


@dataclass
class IngestResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def suggestion_row(
    *,
    suggestion_id: str,
    user: str,
    session_id: str | None,
    client_request_id: str | None,
    language: str,
    path: str,
    model_version: str,
    engine: str,
    mode: str,
    n: int,
    max_tokens: int,
    cursor: tuple[int, int] | None,
    prefix: str,
    suffix: str,
    prompt: str,
    template: str,
    prefix_truncated: bool,
    suffix_truncated: bool,
    candidates: Sequence[str],
    timings: dict[str, float],
    prompt_lead: str = "",
) -> dict[str, Any]:
    """A ``suggestions`` row (not yet redacted: the writer redacts). ``prompt_lead`` is the
    blank end of the prefix the prompt left for the model to write."""
    return {
        "id": suggestion_id,
        "created_at": utcnow(),
        "user": user,
        "session_id": session_id,
        "client_request_id": client_request_id,
        "language": language,
        "path": path,
        "model_version": model_version,
        "engine": engine,
        "mode": mode,
        "n": n,
        "max_tokens": max_tokens,
        "cursor_line": cursor[0] if cursor else None,
        "cursor_character": cursor[1] if cursor else None,
        "prefix": prefix,
        "suffix": suffix,
        "prompt": prompt,
        "prompt_lead": prompt_lead,
        "template": template,
        "prefix_truncated": int(prefix_truncated),
        "suffix_truncated": int(suffix_truncated),
        "candidates": [{"index": i, "text": t} for i, t in enumerate(candidates)],
        "timings": timings,
    }


_SUGGESTION_TEXT = ("prefix", "suffix", "prompt", "path")


def _redact_suggestion(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in _SUGGESTION_TEXT:
        if out.get(key):
            out[key] = redact(out[key])
    out["candidates"] = json.dumps(
        [{**c, "text": redact(c["text"])} for c in row["candidates"]], ensure_ascii=False
    )
    out["timings"] = json.dumps(row["timings"])
    return out


_EVENT_SQL = (
    "INSERT OR IGNORE INTO events (id, suggestion_id, kind, candidate_index, created_at, "
    "client_ts, user, language, model_version, reason, accepted_chars, checkpoint, "
    "similarity, shown_ms, text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SUGGESTION_COLUMNS = (
    "id",
    "created_at",
    "user",
    "session_id",
    "client_request_id",
    "language",
    "path",
    "model_version",
    "engine",
    "mode",
    "n",
    "max_tokens",
    "cursor_line",
    "cursor_character",
    "prefix",
    "suffix",
    "prompt",
    "prompt_lead",
    "template",
    "prefix_truncated",
    "suffix_truncated",
    "candidates",
    "timings",
)
_SUGGESTION_SQL = (
    f"INSERT OR IGNORE INTO suggestions ({', '.join(_SUGGESTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SUGGESTION_COLUMNS)})"
)


def _chunks(seq: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def redact_event_texts(events: Sequence[Event]) -> list[str | None]:
    """The redacted ``text`` of each event (None for kinds without text)."""
    out: list[str | None] = []
    for e in events:
        text = e.__dict__.get("text")
        out.append(redact(text) if text else text)
    return out


def insert_events(
    db: sqlite_utils.Database,
    events: Sequence[Event],
    texts: Sequence[str | None],
    default_user: str,
    owner: str | None = None,
) -> IngestResult:
    """Store events whose suggestion exists and whose id is new; runs inside a transaction.

    With ``owner``, only events about suggestions served to that user are stored; the
    others count as ``unknown``, exactly like a suggestion id that does not exist.

    ``texts`` are the events' texts after redaction (:func:`redact_event_texts`). The model
    version and language are copied from the suggestion the event is about, so every event
    row carries them.
    """
    result = IngestResult()
    conn = db.conn
    suggestion_ids = list({e.suggestion_id for e in events})
    known: dict[str, tuple[str, str, str]] = {}
    for chunk in _chunks(suggestion_ids):
        marks = ",".join("?" * len(chunk))
        for sid, version, language, user in conn.execute(
            f"SELECT id, model_version, language, user FROM suggestions WHERE id IN ({marks})",
            list(chunk),
        ):
            known[sid] = (version, language, user)
    event_ids = list({e.id for e in events})
    existing: set[str] = set()
    for chunk in _chunks(event_ids):
        marks = ",".join("?" * len(chunk))
        existing.update(
            r[0] for r in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", list(chunk))
        )
    now = utcnow()
    rows = []
    seen: set[str] = set()
    for e, text in zip(events, texts, strict=True):
        if e.suggestion_id not in known or (
            owner is not None and known[e.suggestion_id][2] != owner
        ):
            result.unknown.append(e.id)
            continue
        if e.id in existing or e.id in seen:
            result.duplicates.append(e.id)
            continue
        seen.add(e.id)
        version, language, suggestion_user = known[e.suggestion_id]
        # The fields of this event's kind; a dict lookup is far cheaper than getattr
        # on a pydantic model for the fields other kinds have.
        fields = e.__dict__
        rows.append(
            (
                e.id,
                e.suggestion_id,
                e.kind,
                e.candidate_index,
                now,
                e.ts,
                e.user or suggestion_user or default_user,
                language,
                version,
                fields.get("reason"),
                fields.get("accepted_chars"),
                fields.get("checkpoint"),
                fields.get("similarity"),
                fields.get("shown_ms"),
                text,
            )
        )
        result.stored.append(e.id)
    conn.executemany(_EVENT_SQL, rows)
    return result


class Writer:
    """Owns the write connection; see the module docstring."""

    def __init__(self, db_path: Path | str, *, batch_size: int = 2000, user: str = "") -> None:
        self.db_path = Path(db_path)
        self.batch_size = batch_size
        self.user = user
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.failed_commits = 0
        self.last_commit_ms = 0.0

    def start(self) -> None:
        migrate(self.db_path)
        self._thread = threading.Thread(target=self._run, name="prefloop-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything queued so far, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, op: Operation, *, wait: bool = True) -> Future[Any] | None:
        """Queue an operation that runs in the writer's transaction."""
        fut: Future[Any] | None = Future() if wait else None
        self._queue.put((op, fut))
        return fut

    def add_suggestion(self, row: dict[str, Any]) -> None:
        """Queue a suggestion row; returns at once (redaction happens in the writer)."""

        def op(db: sqlite_utils.Database) -> None:
            r = _redact_suggestion(row)
            db.conn.execute(_SUGGESTION_SQL, [r[c] for c in _SUGGESTION_COLUMNS])

        self.submit(op, wait=False)

    async def ingest_events(
        self, events: Sequence[Event], *, owner: str | None = None
    ) -> IngestResult:
        """Store events; resolves once they are committed (or refused). With ``owner``,
        events about suggestions served to another user are refused as unknown.

        Redaction runs on a worker thread first, so it overlaps with the writer's disk
        work instead of lengthening the single writer's critical path.
        """
        texts = await asyncio.to_thread(redact_event_texts, events)
        fut = self.submit(lambda db: insert_events(db, events, texts, self.user, owner))
        assert fut is not None
        result: IngestResult = await asyncio.wrap_future(fut)
        return result

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued before this call is committed."""
        fut = self.submit(lambda db: None)
        assert fut is not None
        fut.result(timeout)

    def _run(self) -> None:
        conn = connect(self.db_path)
        conn.isolation_level = None  # transactions are opened and closed by _commit
        db = sqlite_utils.Database(conn)
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                batch = []
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._commit(db, batch)
        finally:
            conn.close()

    def _commit(
        self, db: sqlite_utils.Database, batch: list[tuple[Operation, Future[Any] | None]]
    ) -> None:
        started = time.perf_counter()
        conn = db.conn
        results: list[tuple[Future[Any] | None, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, fut in batch:
                # A savepoint per operation: one failing operation is rolled back alone
                # and reported to its caller; the rest of the batch still commits.
                conn.execute("SAVEPOINT op")
                try:
                    value = op(db)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    log.error("database write failed: %s", type(exc).__name__)
                    results.append((fut, None, exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((fut, value, None))
            conn.execute("COMMIT")
        except Exception as exc:
            self.failed_commits += 1
            log.error("database commit failed: %s", type(exc).__name__)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, fut in batch:
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            return
        self.commits += 1
        self.last_commit_ms = (time.perf_counter() - started) * 1000
        for fut, value, error in results:
            if fut is None:
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)
