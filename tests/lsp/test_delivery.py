"""Event delivery against a real `prefloop serve`: once and only once, refusals dropped,
and the spool carries events from a language server that could not send them to one
that can."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from prefloop.lsp.delivery import EventDelivery
from prefloop.lsp.events import EventFactory
from prefloop.lsp.service import ServiceClient
from prefloop.lsp.spool import Spool
from tests.conftest import ServerProcess, free_port
from tests.lsp.editor import count, spool_count
from tests.waiting import wait_until_async

pytestmark = pytest.mark.e2e

FACTORY = EventFactory()


def new_suggestion(server: ServerProcess) -> str:
    response = httpx.post(
        server.url + "/v1/suggestions",
        json={"prefix": "total = count", "language": "python", "max_tokens": 2},
        timeout=60,
    )
    assert response.status_code == 200
    sid: str = response.json()["suggestion_id"]
    return sid


def client_for(url: str) -> ServiceClient:
    return ServiceClient(url, connect_timeout=0.3, request_timeout=10)


def stored(server: ServerProcess, event_id: str) -> int:
    return count(server.db_path, "SELECT count(*) FROM events WHERE id = ?", (event_id,))


async def test_events_are_stored_once_and_leave_the_spool(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    sid = new_suggestion(tiny_server)
    events = [FACTORY.shown(sid, 0), FACTORY.accepted(sid, 0, "x = 1")]
    service = client_for(tiny_server.url)
    delivery = EventDelivery(Spool(tmp_path / "spool"), service)
    delivery.start()
    delivery.submit(events)
    delivery.submit(events)  # submitted twice: the same ids
    await wait_until_async(
        lambda: [stored(tiny_server, e.id) for e in events],
        all,
        what="both events stored",
    )
    await wait_until_async(
        lambda: spool_count(tmp_path), lambda n: n == 0, what="the spool to drain"
    )
    await delivery.close()
    await service.aclose()
    assert [stored(tiny_server, e.id) for e in events] == [1, 1]


async def test_refused_events_are_dropped_the_rest_kept(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    sid = new_suggestion(tiny_server)
    spool = Spool(tmp_path / "spool")
    good = FACTORY.shown(sid, 0)
    malformed = {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": "dismissed"}
    orphan = FACTORY.shown("no-such-suggestion", 0)
    spool.add(
        [
            (malformed["id"], json.dumps(malformed)),
            (orphan.id, orphan.model_dump_json()),
            (good.id, good.model_dump_json()),
        ]
    )
    service = client_for(tiny_server.url)
    delivery = EventDelivery(spool, service, retry_base=0.05, retry_max=0.1, max_refusals=3)
    delivery.start()
    await wait_until_async(
        lambda: spool_count(tmp_path), lambda n: n == 0, what="the spool to drain"
    )
    await delivery.close()
    await service.aclose()
    assert stored(tiny_server, good.id) == 1
    assert stored(tiny_server, malformed["id"]) == stored(tiny_server, orphan.id) == 0
    assert delivery.dropped == 2


async def test_spooled_while_unreachable_then_sent_by_another_delivery(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    sid = new_suggestion(tiny_server)
    events = [FACTORY.shown(sid, 0), FACTORY.dismissed(sid, 0, "escaped", 1200.0)]
    nowhere = client_for(f"http://127.0.0.1:{free_port()}")
    first = EventDelivery(Spool(tmp_path / "spool"), nowhere, retry_base=0.05)
    first.start()
    first.submit(events)
    await wait_until_async(lambda: spool_count(tmp_path), lambda n: n == 2, what="2 spooled")
    await wait_until_async(
        lambda: nowhere.state, lambda state: state == "unreachable", what="a failed attempt"
    )
    await first.close(timeout=0.5)
    await nowhere.aclose()
    assert nowhere.state == "unreachable"
    assert spool_count(tmp_path) == 2

    service = client_for(tiny_server.url)
    second = EventDelivery(Spool(tmp_path / "spool"), service)
    second.start()
    await wait_until_async(
        lambda: spool_count(tmp_path), lambda n: n == 0, what="the spool to drain"
    )
    await second.close()
    await service.aclose()
    assert [stored(tiny_server, e.id) for e in events] == [1, 1]
