"""Scripted editing sessions through the real `prefloop lsp` and a real `prefloop serve`
(tiny random model), with VS Code's and Neovim's recorded client capabilities; each test
checks the exact events the service stored about the suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.lsp.editor import (
    count,
    event_rows,
    lsp_session,
    spool_count,
    suggestion_id_of,
    wait_for_events,
)

pytestmark = pytest.mark.e2e

EDITORS = ["visual_studio_code", "neovim"]
# Astral and accented characters before the cursor: UTF-16 (VS Code) and UTF-8 (Neovim)
# positions differ from code points on this line.
LINE = "s = '😀'; größe = count"
DOCUMENT = LINE + "\n\nprint(größe)\n"


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def expected_similarity(a: str, b: str) -> float:
    return round(1 - levenshtein(a, b) / max(len(a), len(b)), 3)


@pytest.mark.parametrize("editor", EDITORS)
async def test_accept(tiny_server: ServerProcess, tmp_path: Path, editor: str) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path, editor=editor) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        offset = len(LINE)
        [item] = await ed.complete(uri, offset)
        sid, text = suggestion_id_of(item), item.insert_text
        assert isinstance(text, str) and text.strip()
        await wait_for_events(db, sid, "shown")
        await ed.accept(uri, offset, item)
        await wait_for_events(db, sid, "accepted")
        ed.close(uri)
        await wait_for_events(db, sid, "retained")
    assert event_rows(db, sid) == [
        ("shown",),
        ("accepted", text),
        ("retained", "close", 1.0, text),
    ]
    assert spool_count(tmp_path) == 0


@pytest.mark.parametrize("editor", EDITORS)
async def test_partial_accept_by_typing_through(
    tiny_server: ServerProcess, tmp_path: Path, editor: str
) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path, editor=editor) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        offset = len(LINE)
        [item] = await ed.complete(uri, offset)
        sid, text = suggestion_id_of(item), item.insert_text
        assert isinstance(text, str)
        await wait_for_events(db, sid, "shown")
        suggestions_before = count(db, "SELECT count(*) FROM suggestions")
        typed = len(text) - len(text.lstrip()) + 2
        for i in range(typed):
            ed.insert(uri, offset + i, text[i])
            [rest] = await ed.complete(uri, offset + i + 1)
            assert rest.insert_text == text[i + 1 :]
            assert suggestion_id_of(rest) == sid
        assert count(db, "SELECT count(*) FROM suggestions") == suggestions_before
        other = "#" if text[typed] != "#" else "!"
        ed.insert(uri, offset + typed, other)
        await wait_for_events(db, sid, "dismissed")
        ed.close(uri)
        await wait_for_events(db, sid, "rewritten")
    assert event_rows(db, sid) == [
        ("shown",),
        ("partially_accepted", typed, text[:typed]),
        ("dismissed", "typed_over"),
        ("rewritten", text[:typed] + other),
    ]
    assert spool_count(tmp_path) == 0


@pytest.mark.parametrize("editor", EDITORS)
async def test_type_over_then_leave_the_block(
    tiny_server: ServerProcess, tmp_path: Path, editor: str
) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path, editor=editor) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        offset = len(LINE)
        [item] = await ed.complete(uri, offset)
        sid, text = suggestion_id_of(item), item.insert_text
        assert isinstance(text, str)
        await wait_for_events(db, sid, "shown")
        written = " * größe"
        for i, char in enumerate(written):
            ed.insert(uri, offset + i, char)
        await wait_for_events(db, sid, "dismissed")
        await ed.complete(uri, ed.end(uri))  # the cursor is on another line now
        await wait_for_events(db, sid, "rewritten")
    kept = common_prefix(text, written)
    partial = [("partially_accepted", len(kept), kept)] if kept.strip() else []
    assert event_rows(db, sid) == [
        ("shown",),
        *partial,
        ("dismissed", "typed_over"),
        ("rewritten", written),
    ]


@pytest.mark.parametrize("editor", EDITORS)
async def test_dismiss_with_escape(tiny_server: ServerProcess, tmp_path: Path, editor: str) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path, editor=editor) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        [item] = await ed.complete(uri, len(LINE))
        sid = suggestion_id_of(item)
        await wait_for_events(db, sid, "shown")
        assert await ed.command("prefloop.dismiss") == {"dismissed": True}
        assert await ed.command("prefloop.dismiss") == {"dismissed": False}
        await wait_for_events(db, sid, "dismissed")
        ed.close(uri)
    assert event_rows(db, sid) == [("shown",), ("dismissed", "escaped")]
    assert spool_count(tmp_path) == 0


@pytest.mark.parametrize("editor", EDITORS)
async def test_accept_then_edit_lowers_retention(
    tiny_server: ServerProcess, tmp_path: Path, editor: str
) -> None:
    db = tiny_server.db_path
    options = {"retentionCheckpoints": [1.0, 1.5, 2.0, 2.5]}
    async with lsp_session(tiny_server.url, tmp_path, editor=editor, options=options) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        offset = len(LINE)
        [item] = await ed.complete(uri, offset)
        sid, accepted = suggestion_id_of(item), item.insert_text
        assert isinstance(accepted, str) and len(accepted) > 6
        await wait_for_events(db, sid, "shown")
        await ed.accept(uri, offset, item)
        ed.save(uri)
        # Edit inside the accepted text and above it: the tracked range follows both.
        ed.replace(uri, offset + 1, offset + 4, "größer")
        ed.insert(uri, 0, "import math\n")
        ed.save(uri)
        start = len("import math\n") + offset
        edited = ed.texts[uri][start : start + len(accepted) - 3 + len("größer")]
        await wait_for_events(db, sid, ("retained", "10m"))
    similarity = expected_similarity(accepted, edited)
    assert similarity < 1.0
    assert event_rows(db, sid) == [
        ("shown",),
        ("accepted", accepted),
        ("retained", "save", 1.0, accepted),
        ("retained", "save", similarity, edited),
        ("retained", "30s", similarity, edited),
        ("retained", "2m", similarity, edited),
        ("retained", "5m", similarity, edited),
        ("retained", "10m", similarity, edited),
    ]


@pytest.mark.parametrize("editor", EDITORS)
async def test_dismiss_then_write_something_else(
    tiny_server: ServerProcess, tmp_path: Path, editor: str
) -> None:
    db = tiny_server.db_path
    async with lsp_session(tiny_server.url, tmp_path, editor=editor) as ed:
        uri = ed.open("calc.py", DOCUMENT)
        offset = len(LINE)
        [item] = await ed.complete(uri, offset)
        sid = suggestion_id_of(item)
        await wait_for_events(db, sid, "shown")
        await ed.command("prefloop.dismiss", uri)
        written = " + sum(range(10))"
        for i, char in enumerate(written):
            ed.insert(uri, offset + i, char)
        ed.insert(uri, 0, "import math\n")  # an edit on another line: the user left
        await wait_for_events(db, sid, "rewritten")
    assert event_rows(db, sid) == [
        ("shown",),
        ("dismissed", "escaped"),
        ("rewritten", written),
    ]
