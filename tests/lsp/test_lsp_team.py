"""The real `prefloop lsp` against a real `prefloop serve` in team mode: the developer's
token on every request, the user taken from it, events kept while the token is refused and
delivered once a language server has the right one, and retraining for admins only.

One service (``PREFLOOP_AUTH=tokens``, plain HTTP on loopback) with the developers ann and
cy and the admin root, made by ``prefloop users add`` before it starts. Each language server has
a home of its own, so it finds no admin token of the service's home.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prefloop.lsp.delivery import EventDelivery
from prefloop.lsp.events import EventFactory
from prefloop.lsp.service import ServiceClient
from prefloop.lsp.spool import Spool
from tests.conftest import ServerProcess, start_server
from tests.lsp.editor import (
    count,
    lsp_session,
    spool_count,
    suggestion_id_of,
    wait_for_events,
)
from tests.server.test_team_mode import add_user
from tests.waiting import wait_until_async

pytestmark = pytest.mark.e2e

LINE = "total = count"
DOCUMENT = LINE + "\n\nprint(total)\n"
WRONG = "pfl_" + "x" * 43


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path_factory.mktemp("team") / "home"
    tokens = {name: add_user(home, name) for name in ("ann", "cy")}
    tokens["root"] = add_user(home, "root", "--admin")
    server = start_server(home, tiny_model_dir, extra_env={"PREFLOOP_AUTH": "tokens"})
    yield server, tokens
    server.stop()


def rows_of(db: Path, table: str, column: str, value: str) -> list[str]:
    """The ``user`` of each row of ``table`` whose ``column`` is ``value``."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sql = f'SELECT "user" FROM {table} WHERE {column} = ? ORDER BY rowid'
        return [row[0] for row in conn.execute(sql, (value,))]


async def test_the_token_brings_the_user(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = team
    # The login name differs from the token's user: the body must not name it.
    env = {"PREFLOOP_TOKEN": tokens["ann"], "PREFLOOP_USER": "somebody-else"}
    async with lsp_session(server.url, tmp_path, env=env) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        [item] = await ed.complete(uri, len(LINE))
        sid = suggestion_id_of(item)
        await wait_for_events(server.db_path, sid, "shown")
        await ed.accept(uri, len(LINE), item)
        await wait_for_events(server.db_path, sid, "accepted")
        status = await ed.command("prefloop.status")
    assert status["connected"] is True and status["authError"] is None
    assert rows_of(server.db_path, "suggestions", "id", sid) == ["ann"]
    assert set(rows_of(server.db_path, "events", "suggestion_id", sid)) == {"ann"}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "no token set"),
        ({"PREFLOOP_TOKEN": WRONG}, "the token was refused"),
        # An admin token goes to /admin routes only, never with suggestions.
        ({"PREFLOOP_ADMIN_TOKEN": "root"}, "no token set"),
    ],
    ids=["none", "wrong", "admin-only"],
)
async def test_a_missing_or_wrong_token_is_reported(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path, env: dict[str, str], says: str
) -> None:
    server, tokens = team
    env = {k: tokens.get(v, v) for k, v in env.items()}
    before = count(server.db_path, "SELECT count(*) FROM suggestions")
    async with lsp_session(server.url, tmp_path, env=env) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        assert await ed.complete(uri, len(LINE)) == []
        status = await ed.command("prefloop.status")
        shown = [m.message for m in ed.client.messages]
    assert status["connected"] is True
    assert status["authError"] is not None and status["authError"].startswith(says)
    assert "Set Token" in status["authError"]
    # The editor is told once, in the status's words.
    assert shown == [f"prefloop: {status['authError']}"]
    assert count(server.db_path, "SELECT count(*) FROM suggestions") == before


async def test_events_wait_while_the_token_is_refused(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = team
    db = server.db_path
    async with lsp_session(server.url, tmp_path, env={"PREFLOOP_TOKEN": tokens["cy"]}) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        [item] = await ed.complete(uri, len(LINE))
        sid = suggestion_id_of(item)
        await wait_for_events(db, sid, "shown")

        # An admin rotates cy's token: the one this language server has stops working.
        with server.client(token=tokens["root"]) as admin:
            rotated = admin.post("/admin/users/cy/rotate")
        assert rotated.status_code == 200, rotated.text
        tokens["cy"] = rotated.json()["token"]

        await ed.accept(uri, len(LINE), item)
        ed.close(uri)
        status = await wait_until_async(
            lambda: ed.command("prefloop.status"),
            lambda s: s["authError"] is not None and s["spooledEvents"] >= 2,
            what="the refused events to be reported and kept",
        )
        assert status["authError"].startswith("the token was refused")
        assert "revoked" in status["authError"]
        assert status["connected"] is True
    # Shut down with the old token: nothing was stored, nothing dropped.
    kept = spool_count(tmp_path)
    assert kept >= 2
    assert rows_of(db, "events", "suggestion_id", sid) == ["cy"]  # "shown" only

    async with lsp_session(server.url, tmp_path, env={"PREFLOOP_TOKEN": tokens["cy"]}) as ed:
        await wait_for_events(db, sid, "accepted")
        await wait_for_events(db, sid, ("retained", "close"))
        await wait_until_async(
            lambda: spool_count(tmp_path), lambda n: n == 0, what="the spool to drain"
        )
        status = await ed.command("prefloop.status")
        assert status["authError"] is None
    assert len(rows_of(db, "events", "suggestion_id", sid)) == 1 + kept
    assert set(rows_of(db, "events", "suggestion_id", sid)) == {"cy"}


async def test_retrain_needs_an_admin_token(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = team
    developer = {"PREFLOOP_TOKEN": tokens["ann"]}
    async with lsp_session(server.url, tmp_path, env=developer) as ed:
        refused = await ed.command("prefloop.retrain")
    assert refused["ok"] is False and refused["available"] is True
    assert refused["message"].startswith("not allowed: retraining needs an admin token")

    admin = {**developer, "PREFLOOP_ADMIN_TOKEN": tokens["root"]}
    async with lsp_session(server.url, tmp_path, env=admin) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        [item] = await ed.complete(uri, len(LINE))  # suggestions still carry ann's token
        taken = await ed.command("prefloop.retrain")
    assert rows_of(server.db_path, "suggestions", "id", suggestion_id_of(item)) == ["ann"]
    # Past the admin check, the service answers for itself: nothing to train on yet.
    assert taken["ok"] is False and taken["available"] is True
    assert taken["message"].startswith("the service answered 422: "), taken["message"]
    assert "no training pairs" in taken["message"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        metrics = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {tokens['root']}"}
        )
    assert 'prefloop_auth_refused_total{reason="not_admin"} 1.0' in metrics.text


def refused_wrong(server: ServerProcess, admin: str) -> int:
    """How many requests the service refused for a wrong token so far."""
    metrics = httpx.get(
        server.url + "/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10
    )
    for line in metrics.text.splitlines():
        if line.startswith('prefloop_auth_refused_total{reason="wrong"}'):
            return int(float(line.split()[-1]))
    return 0


async def test_a_refused_token_backs_off_and_keeps_the_events(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = team
    service = ServiceClient(server.url, connect_timeout=0.3, request_timeout=10, token=WRONG)
    spool = Spool(tmp_path / "spool")
    # Unreachable-service back-off alone would retry every 0.1 s; a refused token doubles
    # the wait from there: 0.1, 0.2, 0.4, 0.8 s between the first five attempts.
    delivery = EventDelivery(spool, service, retry_base=0.05, retry_max=0.1, auth_retry_max=60)
    factory = EventFactory()
    events = [
        factory.shown("unknown-suggestion", 0),
        factory.dismissed("unknown-suggestion", 0, "closed", 100.0),
    ]
    before = await asyncio.to_thread(refused_wrong, server, tokens["root"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    delivery.start()
    delivery.submit(events)
    await wait_until_async(
        lambda: asyncio.to_thread(refused_wrong, server, tokens["root"]),
        lambda n: n >= before + 5,
        what="five refused attempts",
        timeout=60,
    )
    elapsed = loop.time() - started
    await delivery.close(timeout=1.0)
    await service.aclose()
    assert elapsed >= 0.1 + 0.2 + 0.4 + 0.8
    assert service.auth_error is not None and service.auth_error.startswith("the token was refused")
    assert (delivery.delivered, delivery.dropped) == (0, 0)
    assert spool.count() == len(events)
    spool.close()
