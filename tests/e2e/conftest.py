"""One `prefloop serve` on the embedded model, one code-server with the freshly built
extension, and one browser page on a Python project, shared by the end-to-end tests."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, ServerProcess, free_port, start_server
from tests.e2e.workbench import (
    CodeServer,
    E2EError,
    Store,
    Workbench,
    find_vsix,
    missing_requirements,
)

ARTIFACTS = REPO / "test-artifacts" / "e2e"

# Short enough for a test to watch two snapshots, long enough to edit between them.
CHECKPOINTS = {"30s": 3, "2m": 9, "5m": 120, "10m": 240}
EDITOR_SETTINGS: dict[str, Any] = {
    "prefloop.mode": "single_line",
    "prefloop.debounceMs": 75,
    "prefloop.advanced.checkpoints": CHECKPOINTS,
    "prefloop.advanced.statusIntervalSeconds": 1,
    # Each inline-suggestion fetch in the browser console (kept when a test fails).
    "editor.inlineSuggest.logFetch": True,
}
# Read by the language server the extension starts (code-server's environment reaches it).
LSP_ENV = {
    "PREFLOOP_LSP_MAX_TOKENS": "12",
    "PREFLOOP_LSP_REWRITE_IDLE": "1.5",
    "PREFLOOP_LOG_LEVEL": "info",
}

PROJECT: dict[str, str] = {
    "warmup.py": "import os\n\n",
    "geometry.py": (
        '"""Small geometry helpers."""\n\nimport math\n\n\n'
        "def circle_area(radius):\n"
        '    """The area of a circle."""\n'
    ),
    "accept.py": 'def add(a, b):\n    """Sum of two numbers."""\n',
    "words.py": 'def greet(name):\n    """A greeting for someone."""\n',
    "typed.py": 'def square(x):\n    """x times x."""\n',
    "escape.py": 'def cube(x):\n    """x to the third power."""\n',
    "retain.py": 'def maximum(a, b):\n    """The larger of two numbers."""\n',
    "toggle.py": 'def double(x):\n    """Twice x."""\n',
    "outage.py": 'def half(x):\n    """Half of x."""\n',
}


@dataclass
class Service:
    """The running `prefloop serve`; ``restart`` brings it back on the same port."""

    home: Path
    port: int
    process: ServerProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def store(self) -> Store:
        return Store(self.process.db_path)

    def model_version(self) -> str:
        return str(httpx.get(self.url + "/healthz", timeout=10).json()["model_version"])

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.process = start_server(self.home, "embedded", port=self.port)


@dataclass
class Latencies:
    """Keystroke-to-ghost-text times measured by the tests, with their suggestion ids."""

    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ms: float, suggestion_id: str, service_ms: float | None) -> None:
        self.samples.append({"ms": ms, "suggestion_id": suggestion_id, "service_ms": service_ms})


def start_service(root: Path, embedded_model_dir: Path) -> Service:
    home = root / "service-home"
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_model_dir.name).symlink_to(embedded_model_dir)
    port = free_port()
    return Service(home, port, start_server(home, "embedded", port=port))


def write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PROJECT.items():
        (folder / name).write_text(text)
    return folder


def start_editor(root: Path, service: Service) -> CodeServer:
    vsix = find_vsix()
    assert vsix is not None
    editor = CodeServer.prepare(
        root / "code-server",
        free_port(),
        server_url=service.url,
        settings=EDITOR_SETTINGS,
        lsp_env={**LSP_ENV, "PREFLOOP_HOME": str(root / "lsp-home")},
        vsix=vsix,
    )
    editor.start()
    return editor


def open_workbench(
    editor: CodeServer, project: Path, service: Service, artifacts: Path
) -> Workbench:
    bench = Workbench(artifacts)
    bench.start()
    bench.open_folder(editor.url, project)
    # The extension is ready when its status item shows the service's model version:
    # the language client runs and has reached the service.
    bench.wait_status(rf"prefloop {_re(service.model_version())}", timeout=120)
    warm_up(bench)
    return bench


def warm_up(bench: Workbench, timeout: float = 180.0) -> None:
    """Types in a scratch file until a suggestion shows. Right after start-up the
    workbench sometimes asks no provider for the first keystrokes in a file (the status
    item already shows the extension ready); and the service's first generation is slow.
    Neither is what the tests measure."""
    bench.open_file("warmup.py")
    bench.call("type", text="print(os.")
    start = time.monotonic()
    attempts = 1
    while True:
        try:
            bench.wait_ghost(timeout=15)
            break
        except E2EError:
            if time.monotonic() > start + timeout:
                raise
        attempts += 1
        bench.call("press", key="Backspace")
        bench.call("type", text=".")
    bench.artifacts.mkdir(parents=True, exist_ok=True)
    (bench.artifacts / "warm-up.txt").write_text(
        f"first suggestion after {attempts} attempt(s), {time.monotonic() - start:.1f} s\n"
    )
    bench.call("press", key="Escape")
    bench.wait_no_ghost()


def _re(text: str) -> str:
    import re

    return re.escape(text)


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    problem = missing_requirements()
    if problem is not None:
        pytest.fail(f"end-to-end tests need the editor: {problem}")
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def service(e2e_root: Path, embedded_model_dir: Path) -> Iterator[Service]:
    svc = start_service(e2e_root, embedded_model_dir)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def project(e2e_root: Path) -> Path:
    return write_project(e2e_root / "project")


@pytest.fixture(scope="session")
def editor(e2e_root: Path, service: Service) -> Iterator[CodeServer]:
    server = start_editor(e2e_root, service)
    yield server
    server.stop()
    _keep_logs(e2e_root, server)


@pytest.fixture(scope="session")
def latencies() -> Iterator[Latencies]:
    record = Latencies()
    yield record
    if record.samples:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "latency.json").write_text(json.dumps(record.samples, indent=2))


@pytest.fixture(scope="session")
def workbench(editor: CodeServer, project: Path, service: Service) -> Iterator[Workbench]:
    bench = open_workbench(editor, project, service, ARTIFACTS)
    yield bench
    try:
        bench.screenshot("zz-last")
    finally:
        bench.stop()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "workbench" in request.fixturenames:
        bench: Workbench = request.getfixturevalue("workbench")
        try:
            bench.screenshot(f"failed-{request.node.name}")
            lines = bench.call("console")
            (ARTIFACTS / f"failed-{request.node.name}.console.txt").write_text("\n".join(lines))
        except Exception:  # the browser itself may be what failed
            pass


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def _keep_logs(root: Path, editor: CodeServer) -> None:
    """The language server's and code-server's logs next to the screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "code-server.log").write_text(editor.log()[-200_000:])
    logs = sorted((editor.root / "user-data" / "logs").rglob("*prefloop*.log"))
    for log in logs[-3:]:
        (ARTIFACTS / f"extension-{log.parent.name}-{log.name}").write_text(
            log.read_text(errors="replace")[-200_000:]
        )
    if os.environ.get("PREFLOOP_E2E_KEEP"):
        print(f"e2e state kept in {root}")
