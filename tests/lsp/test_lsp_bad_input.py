"""Bad input keeps the real `prefloop lsp` alive and correct, and its logs free of code."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import ServerProcess
from tests.lsp.editor import ROOT_URI, Editor, count, lsp_session, position, suggestion_id_of

pytestmark = pytest.mark.e2e

LINE = "total = count"
PLANTED = "planted_code_marker_51d9"


async def still_serving(ed: Editor) -> None:
    uri = ed.open(f"alive-{time.monotonic_ns()}.py", LINE)
    items = await ed.complete(uri, len(LINE))
    assert items and items[0].insert_text


def raw(ed: Editor, body: bytes) -> None:
    """Write bytes to the server's stdin as one framed message."""
    writer = ed.client.protocol.writer
    assert writer is not None
    writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def test_malformed_json_rpc(tiny_server: ServerProcess, tmp_path: Path) -> None:
    async with lsp_session(tiny_server.url, tmp_path) as ed:
        raw(ed, b'{"jsonrpc": "2.0", "id": 900, "method": ')  # broken JSON
        raw(ed, b"[1, 2, 3]")  # not an object
        raw(ed, b'{"id": 901, "method": "textDocument/inlineCompletion"}')  # no jsonrpc
        raw(ed, b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": 7}')
        raw(ed, b"\xff\xfe" + PLANTED.encode())
        negative = types.Position(line=0, character=0)
        object.__setattr__(negative, "line", -1)  # past the client's own validation
        with pytest.raises(JsonRpcException) as invalid:
            await ed.client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                    text_document=types.TextDocumentIdentifier(uri=f"{ROOT_URI}/x.py"),
                    position=negative,
                )
            )
        assert invalid.value.code == -32602
        with pytest.raises(JsonRpcException) as unknown:
            await ed.client.protocol.send_request_async("prefloop/noSuchMethod", {})
        assert unknown.value.code == -32601
        await still_serving(ed)


async def test_unknown_uris_and_positions_out_of_range(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    async with lsp_session(tiny_server.url, tmp_path) as ed:
        ghost = f"{ROOT_URI}/never-opened.py"
        ed.texts[ghost], ed.versions[ghost] = LINE, 1
        assert await ed.complete(ghost, len(LINE)) == []
        ed.insert(ghost, 0, "x")
        ed.save(ghost)
        ed.close(ghost)
        ed.close(ghost)

        uri = ed.open("short.py", LINE)
        for line, character in [(0, 10_000), (500, 3), (2**31 - 1, 2**31 - 1)]:
            result = await ed.client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=line, character=character),
                )
            )
            assert isinstance(result, types.InlineCompletionList)
            for item in result.items:  # clamped to the end of the document
                assert item.range == types.Range(
                    start=position(LINE, len(LINE), ed.encoding),
                    end=position(LINE, len(LINE), ed.encoding),
                )
        # an edit whose range lies beyond the end is clamped, not fatal
        ed.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=9),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=40, character=0),
                            end=types.Position(line=2, character=99),
                        ),
                        text="\n",
                    )
                ],
            )
        )
        await still_serving(ed)


async def test_huge_and_binary_documents(tiny_server: ServerProcess, tmp_path: Path) -> None:
    db = tiny_server.db_path
    options = {"maxPrefixChars": 3000, "maxSuffixChars": 500}
    async with lsp_session(tiny_server.url, tmp_path, options=options) as ed:
        body = "".join(f"value_{i} = compute({i})\n" for i in range(150_000))
        text = body + LINE + "\n" + body
        assert len(text) > 6_000_000
        uri = ed.open("huge.py", text)
        offset = len(body) + len(LINE)
        started = time.monotonic()
        [item] = await ed.complete(uri, offset)
        sid = suggestion_id_of(item)
        ed.insert(uri, len(body) // 2, "# a comment in the middle\n")
        ed.insert(uri, offset + len("# a comment in the middle\n"), " ")
        await ed.complete(uri, offset + len("# a comment in the middle\n") + 1)
        assert time.monotonic() - started < 20
        stored = count(
            db,
            "SELECT length(prefix) + 1000 * length(suffix) FROM suggestions WHERE id = ?",
            (sid,),
        )
        assert stored == 3000 + 1000 * 500

        before = count(db, "SELECT count(*) FROM suggestions")
        binary = ed.open("blob.bin", "\x00\x01\x02ELF" * 1000 + LINE, language="plaintext")
        assert await ed.complete(binary, ed.end(binary)) == []
        assert count(db, "SELECT count(*) FROM suggestions") == before
        await still_serving(ed)


async def test_requests_after_shutdown_are_refused(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    async with lsp_session(tiny_server.url, tmp_path) as ed:
        uri = ed.open("calc.py", LINE)
        await ed.client.shutdown_async(None)
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(ed.complete(uri, len(LINE)), 10)
        assert refused.value.code == -32600
        ed.client.exit(None)
        process = ed.client._server
        assert process is not None
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_logs_never_hold_the_users_code(
    tiny_server: ServerProcess, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with lsp_session(tiny_server.url, tmp_path) as ed:
        uri = ed.open("secret.py", f"{PLANTED} = 1\n{LINE}")
        ed.insert(uri, 0, f"# {PLANTED}\n")
        await ed.complete(uri, ed.end(uri))
        raw(
            ed,
            b'{"jsonrpc": "2.0", "id": 77, "method": "textDocument/inlineCompletion", '
            b'"params": {"textDocument": {"uri": "' + PLANTED.encode() + b'"}, "position": 3}}',
        )
        raw(
            ed,
            b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"x": "'
            + PLANTED.encode()
            + b'"}}',
        )
        await ed.command("prefloop.accept", "no-such-suggestion", 0, PLANTED)
        with pytest.raises(JsonRpcException):
            await ed.command("prefloop.accept", PLANTED)
        await still_serving(ed)
    err = capfd.readouterr().err
    assert "prefloop lsp" in err  # the server did log (at debug level)
    assert PLANTED not in err
