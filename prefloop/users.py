"""Users and their bearer tokens: making, issuing and checking them.

In team mode (``auth = tokens``) every caller presents ``Authorization: Bearer <token>``;
the token names its user and role, and the user of every suggestion and event is that
user. A token is ``pfl_`` followed by 32 random bytes (URL-safe base64); it is shown once
when issued and stored only as its SHA-256 hash (:mod:`prefloop.store.tokens`). The
hash of a presented token is looked up, and the stored hash compared in constant time.

Roles: ``developer`` (suggestions, events) and ``admin`` (also everything under
``/admin``, the metrics, the users).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Literal, get_args

from prefloop.settings import Settings
from prefloop.store import tokens as records
from prefloop.store.tokens import TokenRecord, UnknownUser, UserEntry, UserError, UserExists

__all__ = [
    "ROLES",
    "TOKEN_PREFIX",
    "InvalidName",
    "Refusal",
    "Role",
    "TokenChecker",
    "TokenRecord",
    "UnknownUser",
    "UserEntry",
    "UserError",
    "UserExists",
    "add_user",
    "check_name",
    "list_users",
    "new_token",
    "revoke_user",
    "rotate_user",
    "token_hash",
]

Role = Literal["developer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

Refusal = Literal["missing", "malformed", "wrong", "revoked"]
"""Why a presented credential was refused (the values of the refusal metric's label)."""

TOKEN_PREFIX = "pfl_"
"""The start of every prefloop token, so that one is recognised wherever it leaks."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class InvalidName(UserError):
    """A user name prefloop does not accept."""


def check_name(name: str) -> str:
    """``name`` when it is a valid user name: 1-64 letters, digits, ``.``, ``_``, ``@``
    or ``-``, starting with a letter or digit."""
    if not _NAME.match(name):
        raise InvalidName(
            f"invalid user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_token() -> str:
    """A fresh random token (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(
    settings: Settings, name: str, *, role: Role = "developer", created_by: str | None = None
) -> tuple[TokenRecord, str]:
    """Add a user with their first token; the record and the token (shown once)."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    token = new_token()
    record = records.add(
        settings.db_path,
        token_id=secrets.token_hex(8),
        user=check_name(name),
        role=role,
        token_hash=token_hash(token),
        created_by=created_by,
    )
    return record, token


def rotate_user(
    settings: Settings, name: str, *, created_by: str | None = None
) -> tuple[TokenRecord, str]:
    """Replace a user's token: the old one stops working at once; the record and the new
    token (shown once)."""
    token = new_token()
    record = records.rotate(
        settings.db_path,
        token_id=secrets.token_hex(8),
        user=check_name(name),
        token_hash=token_hash(token),
        created_by=created_by,
    )
    return record, token


def revoke_user(settings: Settings, name: str) -> int:
    """End a user's tokens (at once); how many were live."""
    return records.revoke(settings.db_path, check_name(name))


def list_users(settings: Settings) -> list[UserEntry]:
    """Every user ever issued a token, by name (never their tokens)."""
    return records.list_users(settings.db_path)


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a presented token: its record, or why it was refused."""

    record: TokenRecord | None
    refusal: Refusal | None


class TokenChecker:
    """Checks presented tokens against the store, over one connection of its own.

    Revocations and new users take effect on the next request, whoever wrote them (the
    service or the CLI). Not thread-safe: one checker per thread (the service's event
    loop has one).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            from prefloop.store import connect, migrate

            migrate(self.settings.db_path)
            self._conn = connect(self.settings.db_path)
        return self._conn

    def check(self, token: str) -> Checked:
        """The record of a live token, else ``wrong`` or ``revoked``."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return Checked(None, "wrong")
        wanted = token_hash(token)
        found = records.find(self._connection(), wanted)
        if found is None:
            return Checked(None, "wrong")
        record, stored = found
        if not hmac.compare_digest(stored.encode("ascii"), wanted.encode("ascii")):
            return Checked(None, "wrong")
        if record.revoked_at is not None:
            return Checked(None, "revoked")
        return Checked(record, None)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
