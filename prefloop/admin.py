"""The admin token shared by the service's ``/admin`` API and the CLI.

``PREFLOOP_ADMIN_TOKEN`` wins when it is set. Otherwise a random token is generated
once into ``$PREFLOOP_HOME/admin-token``, readable by its owner only (mode 0600), and
every later process of the same home reads it from there. In team mode it stays valid
beside the users' own tokens (:mod:`prefloop.users`): an admin acting as the service's
local user, so that the CLI on the service's machine can reach the ``/admin`` API.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import os
import secrets
from pathlib import Path

from prefloop.settings import Settings

TOKEN_FILE = "admin-token"
HEADER = "Authorization"


def token_path(settings: Settings) -> Path:
    return settings.home / TOKEN_FILE


def admin_token(settings: Settings) -> str:
    """The admin token, creating the token file on first use."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return settings.admin_token.get_secret_value()
    path = token_path(settings)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
        # link() fails when another process created the file first: read theirs.
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            return _read(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return token


def existing_admin_token(settings: Settings) -> str | None:
    """The admin token if one is configured or was generated in this home; never creates one
    (a language server on the service's machine uses it to ask for a retrain)."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return settings.admin_token.get_secret_value()
    try:
        return _read(token_path(settings))
    except (OSError, ValueError):
        return None


def _read(path: Path) -> str:
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path} is empty; delete it to generate a new admin token")
    return token


def bearer(settings: Settings) -> dict[str, str]:
    """The request header that authenticates to the ``/admin`` API."""
    return {HEADER: f"Bearer {admin_token(settings)}"}


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
