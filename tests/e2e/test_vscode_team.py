"""prefloop in a real VS Code (code-server in headless chromium) against a service in team
mode: the token set with "prefloop: Set Token" reaches the service, "Trigger Retrain" is
not allowed with a developer's token and reaches the service with an admin's.

A service of its own (``PREFLOOP_AUTH=tokens``, the tiny model: what is checked is who
the service takes the requests from, not what it suggests), with the developer ann and
the admin root; a code-server and a browser page of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_port, start_server
from tests.e2e.conftest import ARTIFACTS, EDITOR_SETTINGS, LSP_ENV, _keep_logs, write_project
from tests.e2e.workbench import (
    TOAST,
    CodeServer,
    E2EError,
    Store,
    Workbench,
    find_vsix,
    start_line,
)
from tests.server.test_team_mode import add_user
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.vscode]

TEAM_ARTIFACTS = ARTIFACTS / "team"


def set_secret(bench: Workbench, title: str, prompt: str, value: str) -> None:
    """Runs a token command from the palette and types ``value`` into its password box."""
    bench.call("press", key="F1")
    bench.call("wait", selector=".quick-input-widget input")
    bench.call("type", text=title)
    # Click the exact command: "Set Token" also matches "Set Admin Token".
    bench.call("click", selector=f'.quick-input-list .monaco-list-row:has-text("{title}")')
    bench.call("waitText", selector=".quick-input-widget", pattern=re.escape(prompt))
    bench.call("wait", selector=".quick-input-widget input[type='password']")
    bench.call("type", text=value)
    bench.call("press", key="Enter")
    bench.call("wait", selector=".quick-input-widget", state="hidden")


def keep_typing_until_status(bench: Workbench, pattern: str, timeout: float = 120.0) -> str:
    """Types and deletes a character until the status bar matches ``pattern``: right
    after start-up the workbench may ask no provider for the first keystrokes."""

    def attempt() -> str | None:
        bench.call("type", text="x")
        bench.call("press", key="Backspace")
        try:
            return bench.wait_status(pattern, timeout=5)
        except E2EError:
            return None

    found = wait_until(attempt, bool, what=f"the status bar to show {pattern!r}", timeout=timeout)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path_factory.mktemp("team") / "home"
    tokens = {"ann": add_user(home, "ann"), "root": add_user(home, "root", "--admin")}
    server = start_server(home, tiny_model_dir, extra_env={"PREFLOOP_AUTH": "tokens"})
    yield server, tokens
    server.stop()


@pytest.fixture(scope="module")
def team_bench(
    e2e_root: Path, team: tuple[ServerProcess, dict[str, str]]
) -> Iterator[tuple[Workbench, Path]]:
    server, _ = team
    vsix = find_vsix()
    assert vsix is not None
    root = e2e_root / "team"
    editor = CodeServer.prepare(
        root / "code-server",
        free_port(),
        server_url=server.url,
        settings=EDITOR_SETTINGS,
        lsp_env={**LSP_ENV, "PREFLOOP_HOME": str(root / "lsp-home")},
        vsix=vsix,
    )
    editor.start()
    project = write_project(root / "project")
    bench = Workbench(TEAM_ARTIFACTS)
    try:
        bench.start()
        bench.open_folder(editor.url, project)
        bench.wait_status(r"prefloop", timeout=120)
        yield bench, project
        bench.screenshot("zz-last")
    finally:
        bench.stop()
        editor.stop()
        _keep_logs(root, editor)


def test_the_token_set_in_vs_code_reaches_the_service(
    team: tuple[ServerProcess, dict[str, str]], team_bench: tuple[Workbench, Path]
) -> None:
    server, tokens = team
    bench, _ = team_bench
    store = Store(server.db_path)

    # No token yet: the service refuses, and the status bar says so.
    start_line(bench, "accept.py")
    bench.call("type", text="    return ")
    keep_typing_until_status(bench, r"token refused")
    assert store.suggestions() == []

    set_secret(bench, "prefloop: Set Token", "prefloop users add", tokens["ann"])
    bench.call("waitText", selector=TOAST, pattern=r"token saved")
    # The language server restarts with the token and reaches the service as ann (a
    # developer's /healthz tells no model version: the first suggestion does).
    start_line(bench, "typed.py")

    def anns() -> list[str]:
        return [r["id"] for r in store.suggestions() if r["user"] == "ann"]

    bench.call("type", text="    return x")

    def typed_until_stored() -> list[str]:
        if not anns():
            bench.call("type", text=" ")
            bench.call("press", key="Backspace")
        return anns()

    wait_until(
        typed_until_stored, bool, what="a suggestion stored as ann's", timeout=120, interval=2
    )
    assert {r["user"] for r in store.suggestions()} == {"ann"}
    bench.wait_status(r"prefloop base", timeout=30)
    bench.call("press", key="Escape")
    bench.save_file()


def test_retrain_needs_an_admin_token(
    team: tuple[ServerProcess, dict[str, str]], team_bench: tuple[Workbench, Path]
) -> None:
    _, tokens = team
    bench, _ = team_bench
    bench.run_command("prefloop: Trigger Retrain")
    refused = bench.call("waitText", selector=TOAST, pattern=r"not allowed")
    assert "needs an admin token" in refused
    bench.run_command("Notifications: Clear All Notifications")
    bench.call("wait", selector=TOAST, state="detached")

    set_secret(bench, "prefloop: Set Admin Token", "Trigger Retrain", tokens["root"])
    bench.call("waitText", selector=TOAST, pattern=r"admin token saved")

    def retrain() -> str:
        """Trigger Retrain's answer; until the restarted language server runs, it says so."""
        bench.run_command("Notifications: Clear All Notifications")
        bench.call("wait", selector=TOAST, state="detached")
        bench.run_command("prefloop: Trigger Retrain")
        pattern = r"no training pairs|not allowed|not running|no status"
        return str(bench.call("waitText", selector=TOAST, pattern=pattern))

    # Past the admin check the service answers for itself: nothing to train on yet.
    answered = wait_until(
        retrain, lambda text: "no training pairs" in text, what="retrain as an admin", timeout=120
    )
    assert "422" in answered
    bench.screenshot("retrain-as-admin")
