"""A real VS Code (code-server) with the prefloop extension, driven through headless
chromium, for the end-to-end tests and the end-to-end latency benchmark.

:class:`CodeServer` runs code-server with its own user data, extensions and settings;
:class:`Workbench` drives one browser page through ``driver/driver.mjs`` (playwright-core,
one JSON request per line); :class:`Store` reads the service's SQLite store read-only so
tests wait on what was recorded. Everything waits on observable states with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
EDITOR_CACHE = REPO / ".cache" / "editor"
CODE_SERVER = EDITOR_CACHE / "code-server" / "node_modules" / ".bin" / "code-server"
DRIVER_MODULES = EDITOR_CACHE / "driver" / "node_modules"
DRIVER_SCRIPT = Path(__file__).resolve().parent / "driver" / "driver.mjs"
CHROMIUM = Path("/usr/bin/chromium")
VSIX_DIR = REPO / "extension"

GHOST = ".monaco-editor .ghost-text-decoration"
STATUS_ITEM = ".statusbar-item"
TOAST = ".notifications-toasts .notification-toast"


class E2EError(RuntimeError):
    pass


def missing_requirements() -> str | None:
    """Why the end-to-end tests cannot run here, or None when they can."""
    for path, how in (
        (CODE_SERVER, "make editor"),
        (DRIVER_MODULES / "playwright-core", "make editor"),
        (CHROMIUM, "make editor"),
    ):
        if not path.exists():
            return f"{path} is missing ({how})"
    if find_vsix() is None:
        return "no prefloop .vsix in extension/ (make vsix)"
    return None


def find_vsix() -> Path | None:
    found = sorted(VSIX_DIR.glob("prefloop-*.vsix"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


# ---- the store ------------------------------------------------------------------------


@dataclass
class Store:
    """The service's SQLite store, read-only."""

    path: Path

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        uri = f"file:{self.path}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, params)]

    def suggestions(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM suggestions ORDER BY created_at, rowid")

    def suggestion(self, suggestion_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM suggestions WHERE id = ?", suggestion_id)
        return found[0] if found else None

    def events(self, suggestion_id: str | None = None, kind: str | None = None) -> list[dict]:
        sql = "SELECT * FROM events WHERE 1=1"
        params: list[Any] = []
        if suggestion_id is not None:
            sql += " AND suggestion_id = ?"
            params.append(suggestion_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return self.rows(sql + " ORDER BY rowid", *params)

    def wait_event(
        self,
        suggestion_id: str,
        kind: str,
        timeout: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda _row: True,
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            return next((e for e in self.events(suggestion_id, kind) if where(e)), None)

        found = wait_until(
            check,
            lambda event: event is not None,
            what=f"a {kind!r} event for {suggestion_id}",
            timeout=timeout,
            error=E2EError,
        )
        assert found is not None
        return found


def candidate_texts(row: dict[str, Any]) -> list[str]:
    return [c["text"] if isinstance(c, dict) else str(c) for c in json.loads(row["candidates"])]


def service_ms(row: dict[str, Any]) -> float | None:
    timings = json.loads(row["timings"] or "{}")
    value = timings.get("total_ms")
    return float(value) if value is not None else None


# ---- code-server ----------------------------------------------------------------------


def user_settings(server_url: str, python: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "extensions.ignoreRecommendations": True,
        "update.mode": "none",
        "files.autoSave": "off",
        "files.hotExit": "off",
        "editor.inlineSuggest.enabled": True,
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.parameterHints.enabled": False,
        "editor.autoClosingBrackets": "never",
        "editor.autoClosingQuotes": "never",
        "editor.autoIndent": "none",
        "editor.minimap.enabled": False,
        "editor.fontSize": 15,
        "window.commandCenter": False,
        "chat.commandCenter.enabled": False,
        "workbench.colorTheme": "Default Dark Modern",
        "prefloop.serverUrl": server_url,
        "prefloop.pythonPath": python,
        **overrides,
    }


@dataclass
class CodeServer:
    """One code-server process with its own state under ``root``."""

    root: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "code-server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _args(self) -> list[str]:
        return [
            str(CODE_SERVER),
            "--config",
            str(self.root / "config.yaml"),
            "--user-data-dir",
            str(self.root / "user-data"),
            "--extensions-dir",
            str(self.root / "extensions"),
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
        ]

    @classmethod
    def prepare(
        cls,
        root: Path,
        port: int,
        *,
        server_url: str,
        settings: dict[str, Any],
        lsp_env: dict[str, str],
        vsix: Path,
    ) -> CodeServer:
        """Writes the config and user settings, and installs the extension from ``vsix``."""
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("user-data/User", "extensions", "xdg/config", "xdg/data", "xdg/cache", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "config.yaml").write_text(f"bind-addr: 127.0.0.1:{port}\nauth: none\ncert: false\n")
        (root / "user-data" / "User" / "settings.json").write_text(
            json.dumps(user_settings(server_url, sys.executable, settings), indent=2)
        )
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(root / "xdg" / "config"),
            "XDG_DATA_HOME": str(root / "xdg" / "data"),
            "XDG_CACHE_HOME": str(root / "xdg" / "cache"),
            "TMPDIR": str(root / "tmp"),
            **lsp_env,
        }
        env.pop("VSCODE_IPC_HOOK_CLI", None)
        server = cls(root, port, env)
        result = subprocess.run(
            [*server._args(), "--install-extension", str(vsix), "--force"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        installed = list((root / "extensions").glob("prefloop.prefloop-*"))
        if result.returncode != 0 or not installed:
            raise E2EError(
                f"installing {vsix.name} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return server

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                self._args(),
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def health() -> int:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise E2EError(f"code-server exited early:\n{self.log()[-3000:]}")
            return httpx.get(self.url + "/healthz", timeout=2).status_code

        wait_until(
            health,
            lambda status: status == 200,
            what="code-server's /healthz to answer 200",
            timeout=timeout,
            interval=0.2,
            retry_on=(httpx.HTTPError,),
            error=E2EError,
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # code-server's own children (extension host, language server) share its group.
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


# ---- the browser ----------------------------------------------------------------------


@dataclass
class Workbench:
    """One chromium page on a code-server workbench, driven by ``driver.mjs``."""

    artifacts: Path
    proc: subprocess.Popen[str] | None = None
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stderr: list[str] = field(default_factory=list)

    def start(self, width: int = 1200, height: int = 760) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFLOOP_E2E_DRIVER_MODULES": str(DRIVER_MODULES)}
        self.proc = subprocess.Popen(
            ["node", str(DRIVER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            bufsize=1,
        )
        stderr = self.proc.stderr
        assert stderr is not None
        threading.Thread(target=lambda: self._stderr.extend(stderr), daemon=True).start()
        self.call("launch", executable=str(CHROMIUM), width=width, height=height)

    def call(self, op: str, **args: Any) -> Any:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        with self._lock:
            self._next += 1
            request_id = self._next
            proc.stdin.write(json.dumps({"id": request_id, "op": op, **args}) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        if not line:
            raise E2EError(f"the browser driver exited: {''.join(self._stderr)[-2000:]}")
        answer = json.loads(line)
        if answer.get("id") != request_id:
            raise E2EError(f"driver answered {answer.get('id')} to request {request_id}")
        if not answer["ok"]:
            raise E2EError(f"{op} failed: {answer['error']}")
        return answer["result"]

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        with suppress(E2EError, OSError, ValueError):
            self.call("close")
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.proc = None

    # ---- helpers in user terms ----------------------------------------------------------

    def open_folder(self, url: str, folder: Path) -> None:
        self.call("goto", url=f"{url}/?folder={folder}")
        self.call("wait", selector=".monaco-workbench", timeout=90000)
        self.call("wait", selector=".explorer-folders-view, .explorer-viewlet", timeout=60000)

    def open_file(self, name: str, attempts: int = 2) -> None:
        """Quick Open (Ctrl+P), the file's name, Enter; waits for its editor to have focus.
        When the editor's tab does not come up (the Enter can land while the list still
        changes, as the workbench restarts the language server), Quick Open is closed and
        used again, up to ``attempts`` times."""
        pattern = name.replace(".", r"\.")
        for attempt in range(1, attempts + 1):
            self.call("press", key="Control+P")
            self.call("wait", selector=".quick-input-widget input")
            self.call("type", text=name)
            self.call("waitText", selector=".quick-input-list .monaco-list-row", pattern=pattern)
            self.call("press", key="Enter")
            try:
                self.call("waitText", selector=".tabs-container .tab.active", pattern=pattern)
                break
            except E2EError:
                if attempt == attempts:
                    raise
                self.call("press", key="Escape")
        self.call("wait", selector=".monaco-editor.focused")

    def ghost_text(self) -> str:
        parts = self.call("texts", selector=GHOST)
        return "".join(parts).replace("\u00a0", " ")

    def wait_ghost(self, timeout: float = 60.0) -> str:
        self.call("wait", selector=GHOST, timeout=int(timeout * 1000))
        return self.ghost_text()

    def wait_no_ghost(self, timeout: float = 30.0) -> None:
        self.call("wait", selector=GHOST, state="detached", timeout=int(timeout * 1000))

    def type_and_time(self, text: str, timeout: float = 60.0) -> float:
        """Types ``text``; milliseconds from its last keystroke to ghost text on screen."""
        return float(
            self.call("typeAndTime", text=text, selector=GHOST, timeout=int(timeout * 1000))
        )

    def status_text(self) -> str:
        texts = self.call("texts", selector=STATUS_ITEM)
        return " | ".join(t.strip() for t in texts if "prefloop" in t)

    def wait_status(self, pattern: str, timeout: float = 60.0) -> str:
        return str(
            self.call(
                "waitText",
                selector=STATUS_ITEM,
                pattern=pattern,
                timeout=int(timeout * 1000),
            )
        )

    def run_command(self, title: str) -> None:
        """F1, the command's title, Enter."""
        self.call("press", key="F1")
        self.call("wait", selector=".quick-input-widget input")
        self.call("type", text=title)
        self.call(
            "waitText", selector=".quick-input-list .monaco-list-row", pattern=re.escape(title)
        )
        self.call("press", key="Enter")
        self.call("wait", selector=".quick-input-widget", state="hidden")

    def palette_entries(self, query: str) -> list[str]:
        """The command palette's entries for ``query`` (the palette is closed after)."""
        self.call("press", key="F1")
        self.call("wait", selector=".quick-input-widget input")
        self.call("type", text=query)
        self.call("waitText", selector=".quick-input-list .monaco-list-row", pattern=query)
        rows = self.call("texts", selector=".quick-input-list .monaco-list-row .label-name")
        self.call("press", key="Escape")
        self.call("wait", selector=".quick-input-widget", state="hidden")
        return [str(r) for r in rows]

    def toasts(self) -> list[str]:
        """The texts of the notification popups on screen."""
        return [str(t) for t in self.call("texts", selector=TOAST)]

    def clear_notifications(self) -> None:
        self.run_command("Notifications: Clear All Notifications")
        self.call("wait", selector=TOAST, state="detached")

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.call("screenshot", file=str(path))
        return path

    def save_file(self) -> None:
        self.call("press", key="Control+S")
        self.call("wait", selector=".tabs-container .tab.active.dirty", state="detached")


# ---- a suggestion, as a user gets it ---------------------------------------------------


@dataclass
class Shown:
    """A suggestion on screen and its row in the store."""

    suggestion_id: str
    ghost: str
    candidate: str
    row: dict[str, Any]


def normalize(text: str) -> str:
    return text.replace("\u00a0", " ").strip()


def start_line(bench: Workbench, name: str) -> None:
    """Opens ``name`` and puts the cursor on its last (empty) line."""
    bench.open_file(name)
    bench.call("press", key="Control+End")


def suggest(
    bench: Workbench,
    store: Store,
    line: str,
    on_measured: Callable[[float, str, float | None], None] | None = None,
    timeout: float = 60.0,
) -> Shown:
    """Types ``line`` and waits for ghost text; returns it with the suggestion the store
    holds for exactly that place (the text before the cursor ends with ``line``), once
    the language server has reported it shown."""
    before = {row["id"] for row in store.suggestions()}
    ms = bench.type_and_time(line, timeout=timeout)
    ghost = normalize(bench.ghost_text())
    if not ghost:
        raise E2EError("ghost text is empty")

    def matching() -> dict[str, Any] | None:
        rows = [
            r
            for r in store.suggestions()
            if r["id"] not in before and r["prefix"].endswith(line) and r["path"].endswith(".py")
        ]
        return rows[-1] if rows else None

    row = wait_until(
        matching,
        lambda found: found is not None,
        what=f"a stored suggestion for {line!r}",
        error=E2EError,
    )
    assert row is not None
    candidate = candidate_texts(row)[0]
    if normalize(candidate) != ghost:
        raise E2EError(f"on screen {ghost!r}, stored {candidate!r}")
    store.wait_event(row["id"], "shown")
    if on_measured is not None:
        on_measured(ms, row["id"], service_ms(row))
    return Shown(row["id"], ghost, candidate, row)
