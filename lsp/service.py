"""The language server's HTTP client of the prefloop service.

Short connect timeout, so a service that is down costs the editor almost nothing; a
request timeout, so a slow one costs a bounded wait; connections are kept alive and
re-opened by themselves once the service is back. Cancelling a call (a newer request,
``$/cancelRequest``) closes its connection, which tells the service to stop generating.

Nothing here logs a request or response body: they hold the user's code.
"""

from __future__ import annotations

import json
import logging
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
    ) -> None:
        headers = {"user-agent": f"prefloop-lsp/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
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

    async def aclose(self) -> None:
        await self._client.aclose()

    def _reached(self) -> None:
        self.state = CONNECTED
        self.last_error = None

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
        self._reached()
        if response.status_code != 200:
            if response.status_code != 409:
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
        self._reached()
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
        self._reached()
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
            response = await self._client.post("/admin/retrain", json={})
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
        if status in (401, 403):
            return {
                "ok": False,
                "available": True,
                "message": "the service refused: set an admin token (initializationOptions.token)",
            }
        if status >= 400:
            reason = body.get("error") if isinstance(body, dict) else None
            message = f"the service answered {status}"
            if isinstance(reason, str) and reason:
                message += f": {reason}"
            return {"ok": False, "available": True, "message": message}
        return {"ok": True, "available": True, "message": "retraining started", "result": body}
