"""The language server's HTTP client of the prefloop service.

Short connect timeout, so a service that is down costs the editor almost nothing; a
request timeout, so a slow one costs a bounded wait; connections are kept alive and
re-opened by themselves once the service is back. Cancelling a call (a newer request,
``$/cancelRequest``) closes its connection, which tells the service to stop generating.

Two tokens, both for this one service: the developer's token goes with every request, an
admin's token only with ``/admin`` routes. A request the service refuses for its token
(401, 403) leaves :attr:`ServiceClient.auth_error` saying why, until one is taken again.

Nothing here logs a request or response body: they hold the user's code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from prefloop import __version__
from prefloop.protocol import EventsResult, SuggestionRequest, SuggestionResponse

log = logging.getLogger(__name__)

CONNECTED = "connected"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class PostOutcome:
    """The service's verdict on a posted event batch.

    ``status`` is None when the service could not be reached. ``done`` lists the ids it
    holds now (stored by this call or before); ``refused`` lists (id or None, index in the
    batch, reason) for events it refused; ``parsed`` says whether the answer was an
    events result at all.
    """

    status: int | None
    done: tuple[str, ...] = ()
    refused: tuple[tuple[str | None, int, str], ...] = ()
    parsed: bool = False


class ServiceClient:
    """Calls to ``POST /v1/suggestions``, ``POST /v1/events``, ``GET /healthz`` and the
    admin endpoints, with the connection state they reveal."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        request_timeout: float,
        token: str | None = None,
        admin_token: str | None = None,
        on_auth_error: Callable[[str], None] | None = None,
    ) -> None:
        headers = {"user-agent": f"prefloop-lsp/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._admin_headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.has_token = bool(token)
        self._on_auth_error = on_auth_error
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            headers=headers,
            trust_env=False,
        )
        self.state = UNKNOWN
        self.last_error: str | None = None
        self.model_version: str | None = None
        self.auth_error: str | None = None
        """Why the service refused this client's token on its last suggestion or event
        request (401, 403); None once it takes one."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def _reached(self) -> None:
        self.state = CONNECTED
        self.last_error = None

    def _answered(self, response: httpx.Response, *, clears: bool = True) -> None:
        """Note whether the service took this client's token (any answer but 401/403;
        ``clears``: such an answer proves the token good)."""
        self._reached()
        status = response.status_code
        if status not in (401, 403):
            if clears:
                self.auth_error = None
            return
        reason = _reason(response)
        where = "(prefloop: Set Token, or PREFLOOP_TOKEN)"
        if status == 403:
            what, hint = "not allowed", f"check the token {where}"
        elif self.has_token:
            what, hint = "the token was refused", f"set a valid one {where}"
        else:
            what, hint = "no token set", f"this service needs one {where}"
        message = f"{what}: {reason}; {hint}" if reason else f"{what}; {hint}"
        fresh = message != self.auth_error
        self.auth_error = message
        if fresh:
            log.warning("the service answered %d: %s", status, message)
            if self._on_auth_error is not None:
                self._on_auth_error(message)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            self.last_error = "the service is slow to answer"
            return
        if self.state != UNREACHABLE:
            log.warning("prefloop service at %s unreachable: %s", self.base_url, type(exc).__name__)
        self.state = UNREACHABLE
        self.last_error = f"cannot reach the service ({type(exc).__name__})"

    async def suggest(self, request: SuggestionRequest) -> SuggestionResponse | None:
        """Suggestions, or None when the service is down, slow, busy or superseded us."""
        body = request.model_dump_json(exclude_none=True)
        try:
            response = await self._client.post(
                "/v1/suggestions", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            self._failed(exc)
            return None
        self._answered(response)
        if response.status_code != 200:
            if response.status_code not in (401, 403, 409):
                log.info("suggestion request answered %d", response.status_code)
            return None
        try:
            parsed = SuggestionResponse.model_validate_json(response.content)
        except ValidationError:
            log.warning("the service answered a suggestion request with an unexpected body")
            return None
        self.model_version = parsed.model_version
        return parsed

    async def post_events(self, bodies: list[str]) -> PostOutcome:
        """Post already-serialized events as one batch."""
        content = '{"events": [' + ",".join(bodies) + "]}"
        try:
            response = await self._client.post(
                "/v1/events", content=content, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            self._failed(exc)
            return PostOutcome(status=None)
        self._answered(response)
        if response.status_code not in (200, 422):
            return PostOutcome(status=response.status_code)
        try:
            result = EventsResult.model_validate_json(response.content)
        except ValidationError:
            return PostOutcome(status=response.status_code)
        return PostOutcome(
            status=response.status_code,
            done=tuple(result.stored) + tuple(result.duplicates),
            refused=tuple((r.id, r.index, r.error) for r in result.refused),
            parsed=True,
        )

    async def health(self) -> dict[str, Any] | None:
        """The service's ``/healthz`` answer (also when degraded), or None."""
        try:
            response = await self._client.get("/healthz")
        except httpx.HTTPError as exc:
            self._failed(exc)
            return None
        # Without a token /healthz answers anyone, which says nothing about events.
        self._answered(response, clears=self.has_token)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        version = body.get("model_version")
        if isinstance(version, str):
            self.model_version = version
        return body

    async def retrain(self) -> dict[str, Any]:
        """Ask the service to start a retraining run (``POST /admin/retrain``)."""
        try:
            response = await self._client.post(
                "/admin/retrain", json={}, headers=self._admin_headers
            )
        except httpx.HTTPError as exc:
            self._failed(exc)
            return {"ok": False, "available": None, "message": self.last_error}
        self._reached()
        status = response.status_code
        try:
            body: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if status == 404:
            return {
                "ok": False,
                "available": False,
                "message": "retraining is not available on this service (no /admin/retrain)",
            }
        reason = _reason(response)
        if status == 403:
            message = "not allowed: retraining needs an admin token (prefloop: Set Admin Token)"
            return {
                "ok": False,
                "available": True,
                "message": f"{message}; the service says: {reason}" if reason else message,
            }
        if status == 401:
            message = (
                "the service refused: retraining needs an admin token "
                "(prefloop: Set Admin Token, or PREFLOOP_ADMIN_TOKEN)"
            )
            return {
                "ok": False,
                "available": True,
                "message": f"{message}; the service says: {reason}" if reason else message,
            }
        if status >= 400:
            message = f"the service answered {status}"
            if reason:
                message += f": {reason}"
            return {"ok": False, "available": True, "message": message}
        return {"ok": True, "available": True, "message": "retraining started", "result": body}


def _reason(response: httpx.Response) -> str | None:
    """The service's own words in an error answer (``{"error": ...}``), if any."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    reason = body.get("error") if isinstance(body, dict) else None
    return reason[:300] if isinstance(reason, str) and reason else None
