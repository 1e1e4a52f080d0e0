"""What team mode's access check costs a request: the ``Access`` layer in front of a route
that answers at once, in local mode and in team mode, and the token check alone.

In-process, no HTTP: each request is one ASGI call of the layer (Host check, caller
resolution; in team mode the token's SHA-256, one indexed look-up in a store of many
users, a constant-time comparison). The difference between the modes is what a token
costs a suggestion or an event batch.

    python -m bench.auth [--users 500] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note, summary
from prefloop.server.access import Access, Authenticator
from prefloop.server.metrics import Metrics
from prefloop.settings import Settings
from prefloop.users import TokenChecker, add_user

Message = MutableMapping[str, Any]


async def _route(scope: Any, receive: Any, send: Any) -> None:
    """A route that answers 204 at once."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(token: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8765")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {"type": "http", "method": "POST", "path": "/v1/suggestions", "headers": headers}


async def _timed(layer: Access, token: str | None, count: int) -> list[float]:
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = _scope(token)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        await layer(dict(scope), receive, send)
        out.append((time.perf_counter() - started) * 1e6)
    assert set(statuses) == {204}, f"refused: {set(statuses)}"
    return out


def run(users: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home, auth="tokens", admin_token="bench-admin")
        tokens = [add_user(settings, f"dev{i:04d}")[1] for i in range(users)]
        token = tokens[users // 2]
        local = Access(
            _route, Authenticator(settings.model_copy(update={"auth": "local"}), Metrics())
        )
        team = Access(_route, Authenticator(settings, Metrics()))
        checker = TokenChecker(settings)
        checker.check(token)
        check_us = []
        for _ in range(requests):
            started = time.perf_counter()
            checker.check(token)
            check_us.append((time.perf_counter() - started) * 1e6)
        checker.close()
        asyncio.run(_timed(local, None, 200))  # warm up both paths
        asyncio.run(_timed(team, token, 200))
        local_us = asyncio.run(_timed(local, None, requests))
        team_us = asyncio.run(_timed(team, token, requests))
        team.auth.close()
    return {
        "users": users,
        "requests": requests,
        "cpu": cpu_note(),
        "token_check_us": summary(check_us),
        "local_layer_us": summary(local_us),
        "team_layer_us": summary(team_us),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    result = run(args.users, args.requests)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "auth.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
