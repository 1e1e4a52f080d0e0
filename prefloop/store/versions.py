"""The model registry's records: versions (``model_versions``) and promotions.

Typed rows and the queries that read and write them. The rules (what may be promoted,
where a rollback goes) and the adapter files belong to :mod:`prefloop.registry`, which
composes these statements inside :func:`write` transactions.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefloop.store.connection import connect, immediate
from prefloop.store.schema import migrate

BASE = "base"
"""The name of the bare base model wherever a model version is named."""

SHARED = "shared"
"""Where a user's rollback goes when none of their own versions is left: the version
shared by everyone (itself a registered version or the base model)."""

_ID = re.compile(r"^v(\d+)$")


def version_number(version_id: str) -> int:
    """The ``N`` of a version named ``vN``; -1 for any other name."""
    match = _ID.match(version_id)
    return int(match.group(1)) if match else -1


@dataclass(frozen=True)
class Version:
    """One registered adapter version (a row of ``model_versions``)."""

    id: str
    created_at: str
    base_model: str
    parent: str
    adapter_path: str
    status: str
    run_id: str | None
    metrics: dict[str, Any]
    promoted_at: str | None
    pruned_at: str | None = None
    user: str | None = field(default=None, compare=False)
    for_user: str | None = None
    """The one user this version was trained for and is served to; None: shared."""

    @property
    def number(self) -> int:
        return version_number(self.id)

    @property
    def files_present(self) -> bool:
        return self.pruned_at is None and Path(self.adapter_path, "adapter_config.json").is_file()


@dataclass(frozen=True)
class Promotion:
    """One row of the promotion history."""

    id: int
    created_at: str
    user: str | None
    action: str  # "promote" | "rollback"
    from_version: str
    to_version: str
    reason: str | None
    for_user: str | None = None
    """The user whose served version changed; None: the shared one."""
    requested_by: str | None = None
    """Who asked for it (the admin's user, or the local user of the CLI); None: recorded
    before this was, or by a training run nobody asked for (a schedule)."""


@contextlib.contextmanager
def opened(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A connection to the migrated database at ``path`` for the statements below.

    It does not open transactions by itself: wrap writes in :func:`write`."""
    migrate(path)
    conn = connect(path)
    conn.isolation_level = None
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; the database's write lock is held until it ends."""
    with immediate(conn):
        yield conn


def _version(row: sqlite3.Row) -> Version:
    try:
        metrics = json.loads(row["metrics"] or "{}")
    except json.JSONDecodeError:
        metrics = {}
    return Version(
        id=row["id"],
        created_at=row["created_at"],
        base_model=row["base_model"] or "",
        parent=row["parent"] or BASE,
        adapter_path=row["adapter_path"] or "",
        status=row["status"],
        run_id=row["run_id"],
        metrics=metrics if isinstance(metrics, dict) else {"value": metrics},
        promoted_at=row["promoted_at"],
        pruned_at=row["pruned_at"],
        user=row["user"],
        for_user=row["for_user"],
    )


def _metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, sort_keys=True, default=str)


def all_versions(conn: sqlite3.Connection) -> list[Version]:
    """Every registered version, newest first."""
    versions = [_version(r) for r in conn.execute("SELECT * FROM model_versions")]
    return sorted(versions, key=lambda v: v.number, reverse=True)


def find(conn: sqlite3.Connection, version_id: str) -> Version | None:
    """The version named ``version_id``, or ``None``."""
    row = conn.execute("SELECT * FROM model_versions WHERE id = ?", [version_id]).fetchone()
    return None if row is None else _version(row)


def promoted(conn: sqlite3.Connection, for_user: str | None = None) -> list[Version]:
    """The versions marked promoted in one scope: the shared one (``for_user`` None) or
    one user's (one, or none while that scope has no version of its own)."""
    return [
        _version(r)
        for r in conn.execute(
            "SELECT * FROM model_versions WHERE status = 'promoted' AND for_user IS ?", [for_user]
        )
    ]


def promoted_for_users(conn: sqlite3.Connection) -> list[Version]:
    """The promoted versions of every user scope (none of the shared one)."""
    return [
        _version(r)
        for r in conn.execute(
            "SELECT * FROM model_versions WHERE status = 'promoted' AND for_user IS NOT NULL"
        )
    ]


def highest_number(conn: sqlite3.Connection) -> int:
    """The largest ``N`` among versions named ``vN`` (0 when there are none)."""
    numbers = [version_number(r[0]) for r in conn.execute("SELECT id FROM model_versions")]
    return max([0, *numbers])


def insert_version(
    conn: sqlite3.Connection,
    *,
    version_id: str,
    created_at: str,
    user: str,
    base_model: str,
    parent: str,
    adapter_path: str,
    status: str,
    run_id: str | None,
    metrics: dict[str, Any],
    for_user: str | None = None,
) -> None:
    """Add a version row (not yet promoted); ``for_user`` scopes it to one user."""
    conn.execute(
        "INSERT INTO model_versions (id, created_at, user, language, model_version, "
        "base_model, parent, adapter_path, status, run_id, metrics, promoted_at, for_user) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        [
            version_id,
            created_at,
            user,
            "*",
            version_id,
            base_model,
            parent,
            adapter_path,
            status,
            run_id,
            _metrics_json(metrics),
            for_user,
        ],
    )


def set_rejected(conn: sqlite3.Connection, version_id: str, metrics: dict[str, Any]) -> None:
    """Mark a version rejected, storing ``metrics`` (which carry the reason)."""
    conn.execute(
        "UPDATE model_versions SET status = 'rejected', metrics = ? WHERE id = ?",
        [_metrics_json(metrics), version_id],
    )


def retire_promoted(conn: sqlite3.Connection, for_user: str | None = None) -> None:
    """Mark every promoted version of one scope (shared, or ``for_user``'s) retired."""
    conn.execute(
        "UPDATE model_versions SET status = 'retired' WHERE status = 'promoted' AND for_user IS ?",
        [for_user],
    )


def set_promoted(conn: sqlite3.Connection, version_id: str, promoted_at: str) -> None:
    """Mark a version promoted as of ``promoted_at``."""
    conn.execute(
        "UPDATE model_versions SET status = 'promoted', promoted_at = ? WHERE id = ?",
        [promoted_at, version_id],
    )


def set_pruned(conn: sqlite3.Connection, version_ids: Iterable[str], pruned_at: str) -> None:
    """Record that the adapter files of these versions were (about to be) deleted."""
    conn.executemany(
        "UPDATE model_versions SET pruned_at = ? WHERE id = ?",
        [(pruned_at, version_id) for version_id in version_ids],
    )


def add_promotion(
    conn: sqlite3.Connection,
    *,
    created_at: str,
    user: str | None,
    action: str,
    from_version: str,
    to_version: str,
    reason: str | None,
    for_user: str | None = None,
    requested_by: str | None = None,
) -> None:
    """Append one promotion or rollback (of the shared scope, or of ``for_user``'s)."""
    conn.execute(
        "INSERT INTO promotions (created_at, user, action, from_version, to_version, reason, "
        "for_user, requested_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [created_at, user, action, from_version, to_version, reason, for_user, requested_by],
    )


def promotions(conn: sqlite3.Connection) -> list[Promotion]:
    """Every promotion and rollback, oldest first."""
    return [
        Promotion(
            id=r["id"],
            created_at=r["created_at"],
            user=r["user"],
            action=r["action"],
            from_version=r["from_version"],
            to_version=r["to_version"],
            reason=r["reason"],
            for_user=r["for_user"],
            requested_by=r["requested_by"],
        )
        for r in conn.execute("SELECT * FROM promotions ORDER BY id")
    ]
