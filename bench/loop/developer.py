"""A simulated developer working in a real editor session: a pytest-lsp client driving a
real ``prefloop lsp`` subprocess (``tests/lsp/editor.py``) that talks to a real service.

For each context the developer opens the file, places the cursor, asks for the inline
suggestion, reads it until the language server counts it as shown, and reacts as their
taste dictates: Tab (the item's ``prefloop.accept`` command) when it already has the taste;
Tab and then an edit of the part that differs for a near miss; otherwise typing what they
wanted over it, one character at a time. Then they save and close the file, which gives
the language server its save and close retention snapshots and ends any rewrite.

The language server runs with the test-speed options of ``tests/lsp/editor.py`` (no
debounce, 0.15 s to count as shown, 30 s before an idle rewrite ends); retention is
measured at save and close, the timed checkpoints (30 s to 10 min) are not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from bench.loop.tastes import Context, ReactionKind, Taste, react
from tests.lsp.editor import ROOT_URI, TEST_OPTIONS, Editor, capabilities_of
from tests.waiting import wait_until_async

LSP_COMMAND = [sys.executable, "-m", "prefloop.cli", "lsp", "--log-level", "warning"]


@contextlib.asynccontextmanager
async def editor_session(
    server_url: str, home: Path, options: dict[str, Any]
) -> AsyncIterator[Editor]:
    """A real ``prefloop lsp`` (logging warnings only) initialized as VS Code does, with
    the test-speed options of ``tests/lsp/editor.py`` under ``options``; shut down after."""
    config = ClientServerConfig(
        server_command=LSP_COMMAND,
        server_env={**os.environ, "PREFLOOP_HOME": str(home), "PREFLOOP_SERVER_URL": server_url},
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities_of("visual_studio_code"),
                root_uri=ROOT_URI,
                initialization_options={**TEST_OPTIONS, **options},
            )
        )
        yield Editor(client, str(result.capabilities.position_encoding or "utf-16"))
        await asyncio.wait_for(client.shutdown_session(), 60)
    finally:
        process = client._server  # the subprocess pygls started
        if process is not None and process.returncode is None:
            process.terminate()
        await client.stop()


@dataclass(frozen=True)
class Timing:
    """How fast the developer is: seconds between typed characters, and seconds spent
    reading a suggestion on top of the language server's shown delay."""

    typing: float = 0.03
    reading: float = 0.2


@dataclass(frozen=True)
class Worked:
    """One context worked through: what was suggested, what the developer did and kept."""

    context: str
    suggestion: str | None
    reaction: str
    kept: str
    suggestion_id: str | None = None


async def _status(editor: Editor) -> dict[str, Any]:
    result = await editor.command("prefloop.status")
    if not isinstance(result, dict):  # pygls may hand back an attribute object
        result = {k: getattr(result, k) for k in dir(result) if not k.startswith("_")}
    return result


def _today(status: dict[str, Any]) -> dict[str, Any]:
    today = status.get("today") or {}
    if not isinstance(today, dict):
        today = {k: getattr(today, k) for k in dir(today) if not k.startswith("_")}
    return today


async def _type(editor: Editor, uri: str, offset: int, text: str, delay: float) -> None:
    for i, char in enumerate(text):
        editor.insert(uri, offset + i, char)
        if delay:
            await asyncio.sleep(delay)


def _changed_span(old: str, new: str) -> tuple[int, int, str]:
    """The smallest replacement turning ``old`` into ``new``: start, end (in ``old``) and
    the replacing text."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old, new[start:end_new]


async def work_context(
    editor: Editor, taste: Taste, context: Context, *, timing: Timing, shown_timeout: float
) -> Worked:
    """Write the rest of ``context``'s line with the help of the served suggestion."""
    uri = editor.open(context.path, context.prefix + context.suffix)
    offset = len(context.prefix)
    shown_before = int(_today(await _status(editor)).get("shown") or 0)
    items = await editor.complete(uri, offset)
    suggestion = items[0].insert_text if items else None
    if not items or not isinstance(suggestion, str) or not suggestion.strip():
        await _type(editor, uri, offset, context.wanted, timing.typing)
        editor.save(uri)
        editor.close(uri)
        return Worked(context.name, None, "no_suggestion", context.wanted)
    item = items[0]
    # Reading the suggestion: it stays on screen until the language server counts it shown.
    await wait_until_async(
        lambda: _status(editor),
        lambda status: int(_today(status).get("shown") or 0) > shown_before,
        what=f"the suggestion at {context.name} to count as shown",
        timeout=shown_timeout,
    )
    if timing.reading:
        await asyncio.sleep(timing.reading)
    reaction = react(taste, context, suggestion)
    if reaction.kind is ReactionKind.ACCEPT:
        await editor.accept(uri, offset, item)
    elif reaction.kind is ReactionKind.EDIT:
        await editor.accept(uri, offset, item)
        start, end, text = _changed_span(suggestion, reaction.kept)
        editor.save(uri)
        if timing.typing:
            await asyncio.sleep(timing.typing * max(len(text), 1))
        editor.replace(uri, offset + start, offset + end, text)
    else:
        await _type(editor, uri, offset, reaction.kept, timing.typing)
    editor.save(uri)
    editor.close(uri)
    arguments = item.command.arguments if item.command is not None else None
    sid = str(arguments[0]) if arguments else None
    return Worked(context.name, suggestion, reaction.kind.value, reaction.kept, sid)


async def work_session(
    server_url: str,
    lsp_home: Path,
    taste: Taste,
    contexts: list[Context],
    *,
    user: str,
    max_tokens: int,
    timing: Timing,
    mode: str = "single_line",
    shown_timeout: float = 120.0,
    delivery_timeout: float = 120.0,
) -> list[Worked]:
    """One editor session of ``user`` over ``contexts``; returns once every event the
    language server derived has been delivered to the service."""
    options = {"user": user, "mode": mode, "maxTokens": max_tokens, "requestTimeout": 300}
    worked: list[Worked] = []
    async with editor_session(server_url, lsp_home, options) as editor:
        for context in contexts:
            worked.append(
                await work_context(
                    editor, taste, context, timing=timing, shown_timeout=shown_timeout
                )
            )
        await wait_until_async(
            lambda: _status(editor),
            lambda status: status.get("spooledEvents") == 0,
            what="the language server to deliver every event",
            timeout=delivery_timeout,
        )
    return worked


def work(
    server_url: str,
    lsp_home: Path,
    taste: Taste,
    contexts: list[Context],
    *,
    user: str,
    max_tokens: int,
    timing: Timing,
    mode: str = "single_line",
) -> list[Worked]:
    """:func:`work_session` from synchronous code."""
    return asyncio.run(
        work_session(
            server_url,
            lsp_home,
            taste,
            contexts,
            user=user,
            max_tokens=max_tokens,
            timing=timing,
            mode=mode,
        )
    )
