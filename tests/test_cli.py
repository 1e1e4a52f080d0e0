"""The `prefloop` command line, run as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ServerProcess


def prefloop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefloop.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def server_with_events(tiny_server: ServerProcess) -> tuple[ServerProcess, str]:
    with tiny_server.client() as client:
        response = client.post(
            "/v1/suggestions",
            json={"prefix": "def f():\n    ", "language": "python", "max_tokens": 4},
        )
        sid = response.json()["suggestion_id"]
        events = [
            {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": "shown"},
            {
                "id": uuid.uuid4().hex,
                "suggestion_id": sid,
                "kind": "dismissed",
                "reason": "escaped",
            },
        ]
        assert client.post("/v1/events", json={"events": events}).status_code == 200
    return tiny_server, sid


def test_logs_query_formats(server_with_events: tuple[ServerProcess, str]) -> None:
    server, sid = server_with_events
    table = prefloop("logs", "query", "--suggestion", sid, home=server.home)
    assert table.returncode == 0, table.stderr
    assert "dismissed" in table.stdout and "escaped" in table.stdout
    assert table.stdout.rstrip().endswith("2 event(s)")

    as_json = prefloop("logs", "query", "--suggestion", sid, "--format", "json", home=server.home)
    rows = json.loads(as_json.stdout)
    assert [r["kind"] for r in rows] == ["shown", "dismissed"]
    assert rows[0]["language"] == "python" and rows[0]["model_version"] == "base"

    as_csv = prefloop(
        "logs",
        "query",
        "--suggestion",
        sid,
        "--kind",
        "dismissed",
        "--format",
        "csv",
        home=server.home,
    )
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["kind"], r["reason"]) for r in parsed] == [("dismissed", "escaped")]


def test_logs_query_filters_and_errors(server_with_events: tuple[ServerProcess, str]) -> None:
    server, sid = server_with_events
    none = prefloop(
        "logs",
        "query",
        "--suggestion",
        sid,
        "--language",
        "rust",
        "--format",
        "json",
        home=server.home,
    )
    assert json.loads(none.stdout) == []
    future = prefloop(
        "logs", "query", "--since", "2999-01-01", "--format", "json", home=server.home
    )
    assert json.loads(future.stdout) == []
    bad_kind = prefloop("logs", "query", "--kind", "exploded", home=server.home)
    assert bad_kind.returncode == 2 and "unknown event kind" in bad_kind.stderr
    bad_since = prefloop("logs", "query", "--since", "soonish", home=server.home)
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr


def test_logs_query_without_database(tmp_path: Path) -> None:
    result = prefloop("logs", "query", home=tmp_path)
    assert result.returncode == 1 and "no database" in result.stderr


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for command in (
        "prefloop serve",
        "prefloop model prepare",
        "prefloop logs query",
        "prefloop retrain",
        "prefloop runs",
    ):
        assert command in readme, command
    from prefloop.settings import Settings

    for name in Settings.model_fields:
        assert f"PREFLOOP_{name.upper()}" in readme, name
