"""The `prefloop` command line, run as a user runs it."""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from prefloop.settings import Settings
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Source folders and the packages they hold (pyproject.toml's package-dir).
PACKAGES = {
    "prefloop": "prefloop",
    "server": "prefloop.server",
    "lsp": "prefloop.lsp",
    "trainer": "prefloop.trainer",
}


def prefloop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefloop", *args, "--home", str(home)],
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


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands directly below a parser, by name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def add_command(parser: argparse.ArgumentParser, name: str) -> None:
    """Add a runnable command below a parser that has commands."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action.add_parser(name).set_defaults(func=print)


def command_paths(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """Every command of a parser, nested ones included, as the words that run it."""
    paths: list[tuple[str, ...]] = []
    for name, sub in subcommands(parser).items():
        nested = command_paths(sub)
        if sub.get_default("func") is not None or not nested:
            paths.append((name,))
        paths.extend((name, *rest) for rest in nested)
    return paths


def undocumented(paths: list[tuple[str, ...]], readme: str) -> list[str]:
    """The commands the README never shows as `` `prefloop <command>`` (with arguments or
    not)."""
    missing = []
    for path in paths:
        command = "prefloop " + " ".join(path)
        if not re.search(rf"`{re.escape(command)}[ `]", readme):
            missing.append(command)
    return missing


def test_every_command_is_documented_in_the_readme() -> None:
    from prefloop.cli import build_parser

    paths = command_paths(build_parser())
    # The walk reaches nested commands and commands that also take an action.
    assert {
        ("serve",),
        ("runs",),
        ("runs", "show"),
        ("pairs", "build"),
        ("model", "prepare"),
    } <= set(paths)
    assert ("pairs",) not in paths, "a command group is not a command of its own"
    assert undocumented(paths, README.read_text()) == []


def test_an_undocumented_command_is_noticed() -> None:
    from prefloop.cli import build_parser

    parser = build_parser()
    readme = README.read_text()
    add_command(subcommands(parser)["pairs"], "prune")
    add_command(parser, "vacuum")
    assert undocumented(command_paths(parser), readme) == [
        "prefloop pairs prune",
        "prefloop vacuum",
    ]
    assert undocumented([("pairs", "export")], readme.replace("`prefloop pairs export", "")) == [
        "prefloop pairs export"
    ]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    for name in Settings.model_fields:
        assert f"PREFLOOP_{name.upper()}" in readme, name


def imported_modules(path: Path) -> set[str]:
    """The absolute module names a source file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = PACKAGES[path.relative_to(ROOT).parts[0]]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                inner = path.relative_to(ROOT).parts[1:-1]
                base = ".".join([*parts, *inner][: len(parts) + len(inner) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_imports_the_command_line_module() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for top in PACKAGES
        for path in (ROOT / top).rglob("*.py")
        if path != ROOT / "prefloop" / "__main__.py" and "prefloop.cli" in imported_modules(path)
    ]
    assert importers == []


def test_the_shared_command_helpers_belong_to_the_core() -> None:
    imported = imported_modules(ROOT / "prefloop" / "commands.py")
    processes = ("prefloop.server", "prefloop.lsp", "prefloop.trainer", "prefloop.cli")
    assert [name for name in imported if name.startswith(processes)] == []


def test_python_dash_m_prefloop_runs_the_command_line(tmp_path: Path) -> None:
    for module in ("prefloop", "prefloop.cli"):
        result = subprocess.run(
            [sys.executable, "-m", module, "runs", "--home", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (result.returncode, result.stdout) == (1, ""), module
        db = Settings(home=tmp_path).db_path
        assert result.stderr == f"error: no database at {db} (has `prefloop serve` run?)\n", module
