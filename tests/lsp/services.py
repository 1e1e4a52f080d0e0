"""A `prefloop serve` process on a chosen port, for tests that stop the service and start
it again at the same address with the same data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess


def serve_on(home: Path, model: Path, port: int, timeout: float = 180.0) -> ServerProcess:
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "serve.log"
    env = {
        **os.environ,
        "PREFLOOP_HOME": str(home),
        "PREFLOOP_MODEL": str(model),
        "PREFLOOP_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
    }
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefloop.cli", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", home, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefloop serve exited early:\n{server.log()[-3000:]}")
        try:
            if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"prefloop serve did not become ready:\n{server.log()[-3000:]}")
