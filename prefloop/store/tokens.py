"""Team mode's users and their bearer tokens (the ``tokens`` table).

A token is never stored: each row holds the SHA-256 hash of one token, with its user, role,
when it was created and by whom, when it was last used and when it was revoked. A user is
active while one of their tokens is not revoked; adding a user issues their first token,
rotating revokes the live one and issues the next (same role), revoking ends them all.
The rules that make and check tokens live in :mod:`prefloop.users`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prefloop.store.connection import connect, immediate
from prefloop.store.schema import migrate
from prefloop.store.timestamps import utcnow


class UserError(Exception):
    """A users command that cannot be carried out."""


class UnknownUser(UserError):
    """No active user of that name."""


class UserExists(UserError):
    """The user already has a live token."""


@dataclass(frozen=True)
class TokenRecord:
    """One issued token (never the token itself): whose it is, and its life."""

    id: str
    user: str
    role: str
    created_at: str
    created_by: str | None
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class UserEntry:
    """A user as listed: their role and the life of their newest token."""

    name: str
    role: str
    active: bool
    created_at: str
    """When their first token was issued."""
    token_created_at: str
    """When their newest token was issued (a rotation moves it)."""
    last_used_at: str | None
    revoked_at: str | None
    tokens: int
    """Tokens issued to them so far (rotations included)."""


_COLUMNS = "id, user, role, created_at, created_by, last_used_at, revoked_at"


def _record(row: tuple[str, ...]) -> TokenRecord:
    return TokenRecord(*row)


@contextlib.contextmanager
def _writing(db: Path) -> Iterator[sqlite3.Connection]:
    """A connection inside one write transaction (committed on success)."""
    migrate(db)
    conn = connect(db)
    conn.isolation_level = None
    try:
        with immediate(conn):
            yield conn
    finally:
        conn.close()


def _live(conn: sqlite3.Connection, user: str) -> list[TokenRecord]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM tokens WHERE user = ? AND revoked_at IS NULL "
        "ORDER BY created_at, id",
        (user,),
    ).fetchall()
    return [_record(r) for r in rows]


def _insert(
    conn: sqlite3.Connection,
    *,
    token_id: str,
    user: str,
    role: str,
    token_hash: str,
    created_by: str | None,
) -> TokenRecord:
    now = utcnow()
    conn.execute(
        "INSERT INTO tokens (id, user, role, token_hash, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_id, user, role, token_hash, now, created_by),
    )
    return TokenRecord(token_id, user, role, now, created_by, None, None)


def add(
    db: Path, *, token_id: str, user: str, role: str, token_hash: str, created_by: str | None
) -> TokenRecord:
    """Issue a new user's first token; :class:`UserExists` when they have a live one."""
    with _writing(db) as conn:
        if _live(conn, user):
            raise UserExists(
                f"user {user!r} already has a token (`rotate` issues a new one, `revoke` ends it)"
            )
        return _insert(
            conn,
            token_id=token_id,
            user=user,
            role=role,
            token_hash=token_hash,
            created_by=created_by,
        )


def rotate(
    db: Path, *, token_id: str, user: str, token_hash: str, created_by: str | None
) -> TokenRecord:
    """Revoke a user's live token and issue the next one with the same role, at once;
    :class:`UnknownUser` when they have none."""
    with _writing(db) as conn:
        live = _live(conn, user)
        if not live:
            raise UnknownUser(f"no active user {user!r} (`prefloop users list` shows them)")
        conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL",
            (utcnow(), user),
        )
        return _insert(
            conn,
            token_id=token_id,
            user=user,
            role=live[-1].role,
            token_hash=token_hash,
            created_by=created_by,
        )


def revoke(db: Path, user: str) -> int:
    """Revoke every live token of a user; how many. :class:`UnknownUser` when none."""
    with _writing(db) as conn:
        cursor = conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL",
            (utcnow(), user),
        )
        if cursor.rowcount == 0:
            raise UnknownUser(f"no active user {user!r} (`prefloop users list` shows them)")
        return cursor.rowcount


def list_users(db: Path) -> list[UserEntry]:
    """Every user who was ever issued a token, by name."""
    migrate(db)
    with contextlib.closing(connect(db)) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM tokens ORDER BY user, created_at, id"
        ).fetchall()
    by_user: dict[str, list[TokenRecord]] = {}
    for row in rows:
        record = _record(row)
        by_user.setdefault(record.user, []).append(record)
    out = []
    for name, records in by_user.items():
        newest = records[-1]
        used = [r.last_used_at for r in records if r.last_used_at]
        out.append(
            UserEntry(
                name=name,
                role=newest.role,
                active=newest.revoked_at is None,
                created_at=records[0].created_at,
                token_created_at=newest.created_at,
                last_used_at=max(used) if used else None,
                revoked_at=newest.revoked_at,
                tokens=len(records),
            )
        )
    return out


def find(conn: sqlite3.Connection, token_hash: str) -> tuple[TokenRecord, str] | None:
    """The token with this hash and its stored hash (for the caller's constant-time
    comparison), revoked or not; ``None`` when no token has it."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, token_hash FROM tokens WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    if row is None:
        return None
    return _record(row[:-1]), str(row[-1])


def touch(conn: sqlite3.Connection, last_used: dict[str, str]) -> None:
    """Record when tokens were last used (token id -> time); never moves a time back."""
    conn.executemany(
        "UPDATE tokens SET last_used_at = ? "
        "WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        [(when, token_id, when) for token_id, when in last_used.items()],
    )
