"""The service going away and coming back: suggestions fail fast, events wait in the
language server's spool and arrive exactly once, across restarts of either process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, start_server
from tests.lsp.editor import (
    event_rows,
    lsp_session,
    spool_count,
    suggestion_id_of,
    wait_for_events,
)
from tests.waiting import wait_until_async

pytestmark = pytest.mark.e2e

LINE = "total = count"
DOCUMENT = LINE + "\n\nprint(total)\n"


async def test_service_down_mid_session_then_back(tmp_path: Path, tiny_model_dir: Path) -> None:
    port = free_port()
    service_home, lsp_home = tmp_path / "service", tmp_path / "lsp"
    server = await asyncio.to_thread(start_server, service_home, tiny_model_dir, port=port)
    db = server.db_path
    try:
        async with lsp_session(server.url, lsp_home, options={"connectTimeout": 0.3}) as ed:
            uri = ed.open("calc.py", DOCUMENT)
            offset = len(LINE)
            [item] = await ed.complete(uri, offset)
            sid, text = suggestion_id_of(item), item.insert_text
            await wait_for_events(db, sid, "shown")

            await asyncio.to_thread(server.stop)
            await ed.accept(uri, offset, item)
            started = time.monotonic()
            assert await ed.complete(uri, ed.end(uri)) == []
            assert time.monotonic() - started < 2.0
            status = await ed.command("prefloop.status")
            assert status["connected"] is False and status["state"] == "unreachable"
            ed.close(uri)
            await wait_until_async(
                lambda: spool_count(lsp_home), lambda n: n >= 2, what="2 events spooled"
            )

            server = await asyncio.to_thread(start_server, service_home, tiny_model_dir, port=port)
            await wait_for_events(db, sid, "retained")
            await wait_until_async(
                lambda: spool_count(lsp_home), lambda n: n == 0, what="the spool to drain"
            )
            status = await ed.command("prefloop.status")
            assert status["connected"] is True and status["modelVersion"] == "base"
            uri = ed.open("again.py", DOCUMENT)
            assert await ed.complete(uri, offset)  # suggestions are back by themselves
    finally:
        await asyncio.to_thread(server.stop)
    assert event_rows(db, sid) == [
        ("shown",),
        ("accepted", text),
        ("retained", "close", 1.0, text),
    ]


async def test_events_left_by_one_language_server_are_sent_by_the_next(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    port = free_port()
    service_home, lsp_home = tmp_path / "service", tmp_path / "lsp"
    server = await asyncio.to_thread(start_server, service_home, tiny_model_dir, port=port)
    db = server.db_path
    try:
        async with lsp_session(server.url, lsp_home, options={"connectTimeout": 0.3}) as ed:
            uri = ed.open("calc.py", DOCUMENT)
            [item] = await ed.complete(uri, len(LINE))
            sid, text = suggestion_id_of(item), item.insert_text
            await wait_for_events(db, sid, "shown")
            await asyncio.to_thread(server.stop)
            await ed.accept(uri, len(LINE), item)
        # The first language server has exited; its events wait in the spool.
        assert spool_count(lsp_home) == 2
        server = await asyncio.to_thread(start_server, service_home, tiny_model_dir, port=port)
        async with lsp_session(server.url, lsp_home):
            await wait_for_events(db, sid, "retained")
            await wait_until_async(
                lambda: spool_count(lsp_home), lambda n: n == 0, what="the spool to drain"
            )
    finally:
        await asyncio.to_thread(server.stop)
    assert event_rows(db, sid) == [
        ("shown",),
        ("accepted", text),
        ("retained", "close", 1.0, text),
    ]
