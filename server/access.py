"""Who may call the service: the Host check, the caller of every request, and roles.

:class:`Access` is an ASGI layer in front of every route. It refuses a request whose
``Host`` header names no allowed host (400: a web page cannot reach the service through
DNS rebinding), then resolves the request's :class:`Caller`, the same way in both modes:

* **local** (``auth = local``, or ``auto`` on a loopback bind): no credential is needed; the
  caller is the local user (``settings.user``), an admin when the request carries the
  admin token (``PREFLOOP_ADMIN_TOKEN`` or ``$PREFLOOP_HOME/admin-token``);
* **team** (``auth = tokens``, or ``auto`` on any other bind): every route but ``/healthz``
  needs ``Authorization: Bearer <token>``, a user's token (:mod:`prefloop.users`) or the
  admin token (the service's own user, an admin); a missing, malformed, wrong or revoked
  one is answered 401 before the route runs, so nothing is stored.

Routes read the caller with :data:`CallerDep`; :func:`require_admin` guards ``/admin``
(403 for a developer's token in team mode, 401 without the admin token in local mode);
:func:`request_user` takes the user of a request body from the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from prefloop.admin import admin_token, token_matches
from prefloop.protocol import ErrorBody
from prefloop.server.metrics import Metrics
from prefloop.settings import AuthMode, Settings
from prefloop.store import tokens as token_records
from prefloop.store.timestamps import utcnow
from prefloop.store.writer import Writer
from prefloop.users import Refusal, Role, TokenChecker

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CALLER_KEY = "prefloop.caller"
"""Where :class:`Access` leaves the caller in the request's ASGI scope."""

OPEN_PATHS = frozenset({"/healthz"})
"""Paths an anonymous caller may reach in team mode (with a reduced answer)."""

TOUCH_SECONDS = 60.0
"""A token's last use is written at its first use and then at most once per this long."""

REFUSAL_MESSAGES: dict[Refusal, str] = {
    "missing": "this service needs a token: send `Authorization: Bearer <token>` "
    "(an admin issues one with `prefloop users add NAME`)",
    "malformed": "the Authorization header must be `Bearer <token>`",
    "wrong": "the token is not valid for this service",
    "revoked": "the token was revoked; ask an admin for a new one",
}


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the user every record of it carries, and their role."""

    user: str
    role: Role
    token_id: str | None = None
    """The user token presented (team mode); None for the local user or the admin token."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message).model_dump(), status_code=status, headers=headers)


def host_name(header: str) -> str:
    """The host of a Host header, lower case, without the port (IPv6 without brackets)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether ``host`` matches a name of ``allowed`` (``*``: any; ``*.d``: below d)."""
    for pattern in allowed:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class Authenticator:
    """Resolves callers: the mode, the admin token, the token checker, and the record of
    each token's last use (written through the service's writer, off the request path)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.mode: AuthMode = settings.auth_mode
        self.allowed_hosts = settings.allowed_host_names
        self.checker = TokenChecker(settings)
        self.writer: Writer | None = None
        self._admin_token: str | None = None
        self._written: dict[str, float] = {}

    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = admin_token(self.settings)
        return self._admin_token

    def local_user(self, role: Role = "developer") -> Caller:
        return Caller(self.settings.user, role)

    def refuse(self, reason: str) -> None:
        """Count a refused request (the label's values are bounded)."""
        self.metrics.auth_refused.labels(reason).inc()

    def resolve(self, authorization: str | None, path: str) -> Caller | Refusal | None:
        """The caller of a request, the reason it is refused, or ``None``: anonymous on an
        open path (team mode)."""
        token: str | None = None
        malformed = False
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
            else:
                malformed = True
        if self.mode == "local":
            admin = token is not None and token_matches(token, self.admin_token())
            return self.local_user("admin" if admin else "developer")
        if malformed:
            return "malformed"
        if token is None:
            return None if path in OPEN_PATHS else "missing"
        if token_matches(token, self.admin_token()):
            return self.local_user("admin")
        checked = self.checker.check(token)
        if checked.record is None:
            assert checked.refusal is not None
            return checked.refusal
        record = checked.record
        self._used(record.id)
        role: Role = "admin" if record.role == "admin" else "developer"
        return Caller(record.user, role, record.id)

    def _used(self, token_id: str) -> None:
        now = time.monotonic()
        last = self._written.get(token_id)
        if self.writer is None or (last is not None and now - last < TOUCH_SECONDS):
            return
        self._written[token_id] = now
        when = {token_id: utcnow()}
        self.writer.submit(lambda db: token_records.touch(db.conn, when), wait=False)

    def close(self) -> None:
        self.checker.close()


class Access:
    """The ASGI layer that checks the Host header and resolves every request's caller."""

    def __init__(self, app: Any, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if not host_allowed(host, self.auth.allowed_hosts):
            self.auth.refuse("foreign_host")
            response = _error(
                400,
                "this service does not answer for that Host header "
                "(PREFLOOP_ALLOWED_HOSTS lists the names it answers for)",
            )
            await response(scope, receive, send)
            return
        raw = headers.get(b"authorization")
        authorization = raw.decode("latin-1") if raw is not None else None
        caller = self.auth.resolve(authorization, scope.get("path", ""))
        if isinstance(caller, str):
            self.auth.refuse(caller)
            response = _error(401, REFUSAL_MESSAGES[caller], {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope[CALLER_KEY] = caller
        await self.app(scope, receive, send)


def _authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


def get_caller(request: Request) -> Caller | None:
    """The request's caller; ``None`` only for an anonymous caller of an open path."""
    caller: Caller | None = request.scope.get(CALLER_KEY)
    return caller


def require_caller(request: Request) -> Caller:
    """The request's caller (every route but the open ones has one)."""
    caller = get_caller(request)
    if caller is None:  # an open path's route asked for a caller: not for anonymous users
        raise HTTPException(401, REFUSAL_MESSAGES["missing"], {"WWW-Authenticate": "Bearer"})
    return caller


CallerDep = Annotated[Caller, Depends(require_caller)]
OptionalCallerDep = Annotated[Caller | None, Depends(get_caller)]


async def require_admin(request: Request) -> Caller:
    """The caller when they are an admin. Otherwise team mode answers 403 (a developer's
    token) and local mode 401 (the admin token is missing or wrong)."""
    caller = require_caller(request)
    if caller.is_admin:
        return caller
    auth = _authenticator(request)
    if auth.mode == "tokens":
        auth.refuse("not_admin")
        raise HTTPException(
            status_code=403,
            detail=f"this route needs an admin token; {caller.user}'s token is a developer's",
        )
    auth.refuse("wrong" if request.headers.get("authorization") else "missing")
    raise HTTPException(
        status_code=401,
        detail="admin token missing or wrong (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


AdminDep = Annotated[Caller, Depends(require_admin)]


def is_team(request: Request) -> bool:
    """Whether the service runs in team mode (every caller has a token)."""
    return _authenticator(request).mode == "tokens"


def request_user(request: Request, caller: Caller, claimed: str | None) -> str:
    """The user a request's records carry. Team mode: the token's user (a body naming
    someone else is refused with 403); local mode: the one the body names, else the local
    user."""
    if not is_team(request):
        return claimed or caller.user
    if claimed is not None and claimed != caller.user:
        _authenticator(request).refuse("user_mismatch")
        raise HTTPException(
            status_code=403,
            detail=f"the request names user {claimed!r} but its token is {caller.user!r}'s: "
            "the user comes from the token (leave the field out)",
        )
    return caller.user
