"""The README's promise: `prefloop serve` on the embedded model answers a real suggestion,
and events posted for it show up in `prefloop logs query`."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, start_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def embedded_server(
    tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("embedded-home")
    # The prepared model is shared: point this home's models at the shared copy.
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_model_dir.name).symlink_to(embedded_model_dir)
    server = start_server(home, "embedded")
    yield server
    server.stop()


def test_fibonacci_suggestion_and_logged_events(embedded_server: ServerProcess) -> None:
    with embedded_server.client(timeout=120) as client:
        response = client.post(
            "/v1/suggestions",
            json={"prefix": "def fibonacci(n):", "language": "python", "path": "fib.py"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        text = body["candidates"][0]["text"]
        assert text.strip()
        # A real Python continuation: the function with its body parses.
        ast.parse("def fibonacci(n):" + text)
        assert "return" in text or "fibonacci" in text
        sid = body["suggestion_id"]
        events = [
            {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": "shown"},
            {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": "accepted", "text": text},
        ]
        assert client.post("/v1/events", json={"events": events}).status_code == 200
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefloop",
            "logs",
            "query",
            "--format",
            "json",
            "--home",
            str(embedded_server.home),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = json.loads(result.stdout)
    assert [(r["suggestion_id"], r["kind"]) for r in rows] == [(sid, "shown"), (sid, "accepted")]
    assert rows[1]["text"] == text


@pytest.mark.parametrize(
    ("prefix", "mode"),
    [
        ("def add(a, b):\n    ", "single_line"),  # Enter after the opener: an indented line
        ("def add(a, b):\n    ", "multi_line"),
        ('def add(a, b):\n    """Add two numbers."""\n', "multi_line"),  # column 0 in a body
    ],
)
def test_after_enter_the_suggestion_starts_at_the_cursor(
    embedded_server: ServerProcess, prefix: str, mode: str
) -> None:
    """The model writes the line break and indentation the prompt leaves out; the
    suggestion is what goes at the cursor: the body, indented to where it belongs."""
    with embedded_server.client(timeout=120) as client:
        response = client.post(
            "/v1/suggestions",
            json={"prefix": prefix, "language": "python", "path": "calc.py", "mode": mode, "n": 1},
        )
    assert response.status_code == 200, response.text
    (candidate,) = response.json()["candidates"]
    text = candidate["text"]
    cursor_column = len(prefix) - len(prefix.rstrip(" ")) if prefix.endswith(" ") else 0
    # On the indented line, nothing more is indented; at column 0, the body's indentation.
    assert not text[0].isspace() if cursor_column else text.startswith("    ")
    tree = ast.parse(prefix + text)
    assert isinstance(tree.body[0], ast.FunctionDef)
    assert any(isinstance(node, ast.Return) for node in ast.walk(tree.body[0]))
