"""Commands and cancellation through the real `prefloop lsp` and `prefloop serve`."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

from prefloop import __version__
from prefloop.protocol import StatusAnswer
from tests.conftest import ServerProcess, free_port
from tests.lsp.editor import (
    LSP_COMMAND,
    count,
    lsp_session,
    position,
    suggestion_id_of,
    wait_for_events,
)
from tests.waiting import wait_until_async

pytestmark = pytest.mark.e2e

LINE = "total = count"
# Long generations, so there is something to cancel.
SLOW = {"maxTokens": 2000, "candidates": 4}


async def engine(server: ServerProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        body: dict[str, Any] = (await client.get("/healthz")).json()["engine"]
    return body


async def wait_engine(server: ServerProcess, check: Any, what: str) -> dict[str, Any]:
    return await wait_until_async(lambda: engine(server), check, what=f"the engine {what}")


async def test_status_toggle_and_retrain(tiny_server: ServerProcess, tmp_path: Path) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path) as ed:
        uri = ed.open("calc.py", LINE)
        [item] = await ed.complete(uri, len(LINE))
        sid = suggestion_id_of(item)
        await wait_for_events(db, sid, "shown")
        await ed.accept(uri, len(LINE), item)
        status = await ed.command("prefloop.status")
        assert status["connected"] is True
        assert status["modelVersion"] == "base"
        assert status["serverUrl"] == tiny_server.url
        assert status["enabled"] is True
        today = status["today"]
        assert (today["shown"], today["accepted"], today["acceptanceRate"]) == (1, 1, 1.0)
        answer = StatusAnswer.model_validate(status)
        assert list(status) == [field.alias for field in StatusAnswer.model_fields.values()]
        assert (answer.state, answer.last_error, answer.version) == ("connected", None, __version__)

        assert await ed.command("prefloop.toggle") == {"enabled": False}
        before = count(db, "SELECT count(*) FROM suggestions")
        assert await ed.complete(uri, ed.end(uri)) == []
        assert count(db, "SELECT count(*) FROM suggestions") == before
        assert (await ed.command("prefloop.status"))["enabled"] is False
        assert await ed.command("prefloop.toggle", True) == {"enabled": True}
        assert await ed.complete(uri, ed.end(uri))

        # This editor's home holds no admin token: the service refuses, and says why.
        retrain = await ed.command("prefloop.retrain")
        assert retrain["ok"] is False and retrain["available"] is True
        assert "admin token" in retrain["message"]

        with pytest.raises(JsonRpcException):
            await ed.command("prefloop.accept", 1, 2)
        with pytest.raises(JsonRpcException):
            await ed.command("prefloop.noSuchCommand")


async def test_retrain_with_the_local_admin_token(tiny_server: ServerProcess) -> None:
    # A language server on the service's machine and home finds the admin token there;
    # the service then answers with its own reason (no feedback to train on yet).
    async with lsp_session(tiny_server.url, tiny_server.home) as ed:
        retrain = await ed.command("prefloop.retrain")
    assert retrain["ok"] is False and retrain["available"] is True
    assert retrain["message"].startswith("the service answered 422: ")
    assert "no training pairs" in retrain["message"]


async def test_newer_request_cancels_the_older_end_to_end(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    options = {**SLOW, "requestTimeout": 3}
    async with lsp_session(tiny_server.url, tmp_path, options=options) as ed:
        uri = ed.open("calc.py", LINE + "\n")
        cancelled = (await engine(tiny_server))["cancelled"]
        older = asyncio.ensure_future(ed.complete(uri, len(LINE)))
        await wait_engine(tiny_server, lambda e: e["busy"], "busy")
        newer = asyncio.ensure_future(ed.complete(uri, ed.end(uri)))
        assert await asyncio.wait_for(older, 5) == []
        await wait_engine(tiny_server, lambda e: e["cancelled"] > cancelled, "cancelled")
        await asyncio.wait_for(newer, 10)


async def test_cancel_request_stops_the_generation(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    async with lsp_session(tiny_server.url, tmp_path, options=SLOW) as ed:
        uri = ed.open("calc.py", LINE)
        cancelled = (await engine(tiny_server))["cancelled"]
        params = types.InlineCompletionParams(
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position(LINE, len(LINE), ed.encoding),
        )
        pending = asyncio.wrap_future(
            ed.client.protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="slow-1"
            )
        )
        await wait_engine(tiny_server, lambda e: e["busy"], "busy")
        ed.client.cancel_request(types.CancelParams(id="slow-1"))
        with pytest.raises(JsonRpcException) as error:
            await asyncio.wait_for(pending, 5)
        assert error.value.code == -32800
        await wait_engine(tiny_server, lambda e: e["cancelled"] > cancelled, "cancelled")
        await wait_engine(tiny_server, lambda e: not e["busy"], "idle again")


async def test_slow_service_answers_nothing_quickly(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    options = {**SLOW, "requestTimeout": 0.5}
    async with lsp_session(tiny_server.url, tmp_path, options=options) as ed:
        uri = ed.open("calc.py", LINE)
        cancelled = (await engine(tiny_server))["cancelled"]
        started = time.monotonic()
        assert await ed.complete(uri, len(LINE)) == []
        assert time.monotonic() - started < 3
        await wait_engine(tiny_server, lambda e: e["cancelled"] > cancelled, "cancelled")


async def test_tcp_mode_for_debugging(tiny_server: ServerProcess, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PREFLOOP_HOME": str(tmp_path), "PREFLOOP_SERVER_URL": tiny_server.url}
    process = await asyncio.create_subprocess_exec(
        *LSP_COMMAND, "--tcp", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    client = LanguageClient("tcp-test", "0")
    try:
        await wait_until_async(
            lambda: client.start_tcp("127.0.0.1", port),
            lambda _: True,
            what=f"the language server to accept a connection on port {port}",
            interval=0.1,
            retry_on=(OSError,),
        )
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={"debounce": 0, "maxTokens": 4},
            )
        )
        client.initialized(types.InitializedParams())
        uri = "file:///tcp/calc.py"
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id="python", version=1, text=LINE)
            )
        )
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=0, character=len(LINE)),
            )
        )
        assert isinstance(result, types.InlineCompletionList) and result.items
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await client.stop()
