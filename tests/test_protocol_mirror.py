"""The VS Code extension's protocol mirror (extension/src/protocol.ts) matches
prefloop/protocol.py, and its package.json declares the commands and settings that go
with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from prefloop import protocol

EXTENSION = Path(__file__).resolve().parent.parent / "extension"
PROTOCOL_TS = EXTENSION / "src" / "protocol.ts"
CONTRIBUTIONS_TS = EXTENSION / "src" / "contributions.ts"
PACKAGE_JSON = EXTENSION / "package.json"

# Checkpoints that are taken on an editor action rather than after a delay.
ACTION_CHECKPOINTS = ("save", "close")


def ts_const(source: str, name: str) -> str:
    """The initializer of ``export const NAME = ... as const``."""
    match = re.search(rf"export const {name}\s*=\s*(.*?)\s+as const\b", source, re.DOTALL)
    if match is None:
        raise AssertionError(f"`export const {name} = ... as const` not found")
    return match.group(1)


def ts_strings(source: str, name: str) -> list[str]:
    """The string literals of a ``const`` array, in order."""
    body = ts_const(source, name)
    if not body.startswith("["):
        raise AssertionError(f"{name} is not an array literal")
    return re.findall(r"'([^']*)'", body)


def ts_object(source: str, name: str) -> dict[str, str]:
    """The entries of a ``const`` object literal whose values are strings."""
    body = ts_const(source, name)
    if not body.startswith("{"):
        raise AssertionError(f"{name} is not an object literal")
    return dict(re.findall(r"['\"]?([\w.]+)['\"]?\s*:\s*'([^']*)'", body))


def ts_interface_fields(source: str, name: str) -> list[str]:
    match = re.search(rf"export interface {name}\s*{{(.*?)\n}}", source, re.DOTALL)
    if match is None:
        raise AssertionError(f"`export interface {name}` not found")
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.DOTALL)
    return re.findall(r"^\s*(\w+)\??\s*:", body, re.MULTILINE)


def ts_field_strings(source: str, interface: str, field: str) -> list[str]:
    """The string literals of one field's type in an interface, e.g. ``'a' | 'b'``."""
    match = re.search(rf"export interface {interface}\s*{{(.*?)\n}}", source, re.DOTALL)
    if match is None:
        raise AssertionError(f"`export interface {interface}` not found")
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.DOTALL)
    declared = re.search(rf"^\s*{field}\??\s*:(.*?);", body, re.MULTILINE | re.DOTALL)
    if declared is None:
        raise AssertionError(f"{interface}.{field} not found")
    return re.findall(r"'([^']*)'", declared.group(1))


def wire_fields(model: type[BaseModel]) -> list[str]:
    """A wire model's JSON keys, in order."""
    return [field.alias or name for name, field in model.model_fields.items()]


def python_lsp_commands() -> tuple[str, ...]:
    """The language server's command ids."""
    from prefloop.lsp.commands import COMMANDS

    return tuple(COMMANDS)


def mirror_differences(
    protocol_ts: str, contributions_ts: str, manifest: dict[str, Any]
) -> list[str]:
    """Every way in which the extension disagrees with the Python side; empty when in step."""
    problems: list[str] = []

    def compare(what: str, extension: object, python: object) -> None:
        if extension != python:
            problems.append(f"{what}: extension has {extension!r}, Python has {python!r}")

    compare("event kinds", ts_strings(protocol_ts, "EVENT_KINDS"), list(protocol.EVENT_KINDS))
    compare(
        "event kinds (EventKind)",
        ts_strings(protocol_ts, "EVENT_KINDS"),
        list(get_args(protocol.EventKind)),
    )
    compare(
        "dismiss reasons",
        ts_strings(protocol_ts, "DISMISS_REASONS"),
        list(get_args(protocol.DismissReason)),
    )
    checkpoints = list(get_args(protocol.Checkpoint))
    compare("checkpoints", ts_strings(protocol_ts, "CHECKPOINTS"), checkpoints)
    timed = [name for name in checkpoints if name not in ACTION_CHECKPOINTS]
    compare("timed checkpoints", ts_strings(protocol_ts, "TIMED_CHECKPOINTS"), timed)
    compare("modes", ts_strings(protocol_ts, "MODES"), list(get_args(protocol.Mode)))

    compare(
        "status answer",
        ts_interface_fields(protocol_ts, "StatusAnswer"),
        wire_fields(protocol.StatusAnswer),
    )
    compare(
        "today's counts",
        ts_interface_fields(protocol_ts, "TodayCounts"),
        wire_fields(protocol.TodayCounts),
    )
    compare(
        "service states",
        ts_field_strings(protocol_ts, "StatusAnswer", "state"),
        list(get_args(protocol.ServiceState)),
    )

    lsp_commands = ts_object(protocol_ts, "LSP_COMMANDS")
    compare(
        "language server commands", sorted(lsp_commands.values()), sorted(python_lsp_commands())
    )
    missing = {"accept", "dismiss", "toggle", "retrain", "status"} - lsp_commands.keys()
    if missing:
        problems.append(f"LSP_COMMANDS lacks {sorted(missing)}")

    contributes = manifest["contributes"]
    declared = {command["command"] for command in contributes["commands"]}
    extension_commands = ts_object(contributions_ts, "EXTENSION_COMMANDS")
    compare("contributed commands", sorted(declared), sorted(extension_commands.values()))
    clashing = declared & set(lsp_commands.values())
    if clashing:
        problems.append(f"package.json contributes language server commands {sorted(clashing)}")
    escape = [binding for binding in contributes["keybindings"] if binding["key"] == "escape"]
    dismiss_command = extension_commands.get("dismissVisible")
    if not any(
        binding["command"] == dismiss_command and "inlineSuggestionVisible" in binding["when"]
        for binding in escape
    ):
        problems.append("no Escape keybinding runs the dismissal while a suggestion is visible")

    properties: dict[str, Any] = {}
    for section in contributes["configuration"]:
        properties.update(section["properties"])
    compare(
        "mode setting",
        properties.get("prefloop.mode", {}).get("enum"),
        list(get_args(protocol.Mode)),
    )
    checkpoint_setting = properties.get("prefloop.advanced.checkpoints", {})
    compare("checkpoint setting", list(checkpoint_setting.get("properties", {})), timed)
    compare("checkpoint defaults", list(checkpoint_setting.get("default", {})), timed)
    return problems


def read_sources() -> tuple[str, str, dict[str, Any]]:
    manifest = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    return (
        PROTOCOL_TS.read_text(encoding="utf-8"),
        CONTRIBUTIONS_TS.read_text(encoding="utf-8"),
        manifest,
    )


def test_extension_mirrors_the_python_protocol() -> None:
    assert mirror_differences(*read_sources()) == []


def test_status_result_fields() -> None:
    fields = ts_interface_fields(PROTOCOL_TS.read_text(encoding="utf-8"), "StatusResult")
    assert fields == [
        "connected",
        "serverUrl",
        "modelVersion",
        "acceptanceRate",
        "enabled",
        "authError",
    ]
    # What the extension shows is read from the answer: the day's rate from `today`.
    answer = wire_fields(protocol.StatusAnswer)
    assert [f for f in fields if f not in answer] == ["acceptanceRate"]
    assert "acceptanceRate" in wire_fields(protocol.TodayCounts)


def test_service_states_are_the_language_servers() -> None:
    from prefloop.lsp import service

    states = {service.UNKNOWN, service.CONNECTED, service.UNREACHABLE}
    assert states == set(get_args(protocol.ServiceState))


def test_language_server_commands_match_python() -> None:
    python_commands = python_lsp_commands()
    extension = ts_object(PROTOCOL_TS.read_text(encoding="utf-8"), "LSP_COMMANDS")
    assert sorted(extension.values()) == sorted(python_commands)


def test_initialization_options_are_all_read_by_the_language_server() -> None:
    from prefloop.lsp.config import OPTION_FIELDS, TOKEN_OPTIONS

    fields = ts_interface_fields(PROTOCOL_TS.read_text(encoding="utf-8"), "InitializationOptions")
    assert fields
    assert set(fields) <= set(OPTION_FIELDS) | {*TOKEN_OPTIONS, "enabled"}, fields


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("protocol", "'partially_accepted',", ""),
        ("protocol", "'escaped'", "'escape'"),
        ("protocol", "'close'] as const", "'close', 'commit'] as const"),
        ("protocol", "['30s', '2m', '5m', '10m'] as const", "['30s', '2m', '5m'] as const"),
        ("protocol", "'single_line', 'multi_line'", "'line', 'block'"),
        ("protocol", "status: 'prefloop.status'", "stats: 'prefloop.stats'"),
        ("protocol", "    spooledEvents: number | null;", "    spooled: number | null;"),
        ("protocol", "    partiallyAccepted: number;\n", ""),
        ("protocol", "'connected' | 'unreachable';", "'connected';"),
        ("contributions", "'prefloop.showLog'", "'prefloop.showLogs'"),
        ("manifest", '"command": "prefloop.showStatus"', '"command": "prefloop.status"'),
        ("manifest", '"key": "escape"', '"key": "ctrl+escape"'),
        ("manifest", '"single_line",\n', '"single_line",\n"whole_file",\n'),
    ],
)
def test_drift_is_detected(file: str, old: str, new: str) -> None:
    paths = {"protocol": PROTOCOL_TS, "contributions": CONTRIBUTIONS_TS, "manifest": PACKAGE_JSON}
    texts = {name: path.read_text(encoding="utf-8") for name, path in paths.items()}
    assert old in texts[file], f"{old!r} is not in {paths[file].name}: update this test"
    texts[file] = texts[file].replace(old, new, 1)
    drifted = mirror_differences(
        texts["protocol"], texts["contributions"], json.loads(texts["manifest"])
    )
    assert drifted, f"changing {old!r} to {new!r} in {paths[file].name} went unnoticed"
