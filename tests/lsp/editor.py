"""A scripted editor for end-to-end tests: a pytest-lsp client driving the real
`prefloop lsp` subprocess the way VS Code or Neovim would, plus readers of the service's
database to check what it stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.waiting import wait_until_async

ROOT_URI = "file:///work/project"
LSP_COMMAND = [sys.executable, "-m", "prefloop", "lsp", "--log-level", "debug"]

# Fast timings for tests: the tracker's behaviour is the same, only sooner.
TEST_OPTIONS: dict[str, Any] = {
    "debounce": 0,
    "shownDelay": 0.15,
    "maxTokens": 6,
    "mode": "multi_line",
    "rewriteIdle": 30,
}


def position(text: str, offset: int, encoding: str) -> types.Position:
    """LSP position of a code-point offset (lines end with \\n in tests)."""
    line = text.count("\n", 0, offset)
    segment = text[text.rfind("\n", 0, offset) + 1 : offset]
    if encoding == "utf-8":
        character = len(segment.encode("utf-8"))
    elif encoding == "utf-32":
        character = len(segment)
    else:
        character = len(segment.encode("utf-16-le")) // 2
    return types.Position(line=line, character=character)


@dataclass
class Editor:
    """Open documents, typing, completion requests and commands, as an editor sends them."""

    client: LanguageClient
    encoding: str
    texts: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def open(self, name: str, text: str, language: str = "python") -> str:
        uri = f"{ROOT_URI}/{name}"
        self.texts[uri] = text
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
            )
        )
        return uri

    def end(self, uri: str) -> int:
        return len(self.texts[uri])

    def replace(self, uri: str, start: int, end: int, text: str) -> None:
        old = self.texts[uri]
        change = types.TextDocumentContentChangePartial(
            range=types.Range(
                start=position(old, start, self.encoding), end=position(old, end, self.encoding)
            ),
            text=text,
        )
        self.texts[uri] = old[:start] + text + old[end:]
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[change],
            )
        )

    def insert(self, uri: str, offset: int, text: str) -> None:
        self.replace(uri, offset, offset, text)

    async def complete(
        self, uri: str, offset: int, *, explicit: bool = False
    ) -> list[types.InlineCompletionItem]:
        kind = (
            types.InlineCompletionTriggerKind.Invoked
            if explicit
            else types.InlineCompletionTriggerKind.Automatic
        )
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                context=types.InlineCompletionContext(trigger_kind=kind),
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=position(self.texts[uri], offset, self.encoding),
            )
        )
        if result is None:
            return []
        if isinstance(result, types.InlineCompletionList):
            return list(result.items)
        return list(result)

    async def command(self, name: str, *arguments: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(arguments))
        )

    async def accept(self, uri: str, offset: int, item: types.InlineCompletionItem) -> None:
        """What VS Code and Neovim do on Tab: insert the item's text, then run its command."""
        assert isinstance(item.insert_text, str)
        self.insert(uri, offset, item.insert_text)
        assert item.command is not None
        await self.command(item.command.command, *(item.command.arguments or []))

    def save(self, uri: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )


def capabilities_of(editor: str) -> types.ClientCapabilities:
    """An editor's recorded client capabilities, with the inline completion support that
    current VS Code and Neovim (0.12) releases advertise on top of the recorded ones."""
    capabilities = client_capabilities(editor)
    if capabilities.text_document is not None:
        capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities(
            dynamic_registration=False
        )
    return capabilities


@contextlib.asynccontextmanager
async def lsp_session(
    server_url: str,
    home: Path,
    *,
    editor: str = "visual_studio_code",
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Editor]:
    """A real `prefloop lsp` process, initialized like ``editor`` does; shut down after."""
    config = ClientServerConfig(
        server_command=LSP_COMMAND,
        server_env={
            **os.environ,
            "PREFLOOP_HOME": str(home),
            "PREFLOOP_SERVER_URL": server_url,
            **(env or {}),
        },
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities_of(editor),
                root_uri=ROOT_URI,
                initialization_options={**TEST_OPTIONS, **(options or {})},
            )
        )
        encoding = str(result.capabilities.position_encoding or "utf-16")
        yield Editor(client, encoding)
        if _running(client):
            await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        if _running(client):
            client._server.terminate()  # type: ignore[union-attr]
        await client.stop()


def _running(client: LanguageClient) -> bool:
    process = client._server  # the subprocess pygls started
    return process is not None and process.returncode is None and not client.stopped


# ---- the service's database ---------------------------------------------------------


def event_rows(db_path: Path, suggestion_id: str) -> list[tuple[Any, ...]]:
    """The events stored about a suggestion, oldest first, as short tuples."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute(
            "SELECT kind, reason, accepted_chars, checkpoint, similarity, text FROM events "
            "WHERE suggestion_id = ? ORDER BY rowid",
            (suggestion_id,),
        ).fetchall()
    out: list[tuple[Any, ...]] = []
    for kind, reason, chars, checkpoint, similarity, text in rows:
        if kind == "shown":
            out.append((kind,))
        elif kind in ("accepted", "rewritten"):
            out.append((kind, text))
        elif kind == "partially_accepted":
            out.append((kind, chars, text))
        elif kind == "dismissed":
            out.append((kind, reason))
        else:
            out.append((kind, checkpoint, round(similarity, 3), text))
    return out


def count(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


async def wait_for_events(
    db_path: Path, suggestion_id: str, last: tuple[Any, ...] | str, timeout: float = 30.0
) -> list[tuple[Any, ...]]:
    """Wait until the suggestion's events include one starting with ``last`` (a kind, or
    the first fields of a row)."""

    wanted = (last,) if isinstance(last, str) else last
    return await wait_until_async(
        lambda: event_rows(db_path, suggestion_id),
        lambda rows: any(r[: len(wanted)] == wanted for r in rows),
        what=f"{last!r} for suggestion {suggestion_id}",
        timeout=timeout,
    )


def suggestion_id_of(item: types.InlineCompletionItem) -> str:
    assert item.command is not None and item.command.arguments
    sid = item.command.arguments[0]
    assert isinstance(sid, str)
    return sid


def spool_count(home: Path) -> int:
    """Events still waiting in a language server's spool under ``home``."""
    path = home / "spool" / "events.db"
    if not path.exists():
        return 0
    return count(path, "SELECT count(*) FROM spool")
