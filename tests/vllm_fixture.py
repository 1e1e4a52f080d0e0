"""One real CPU vLLM server per test session, serving the embedded model.

The server runs from its own virtualenv (`make vllm` / scripts/setup-vllm.sh), standing in
for the GPU host. Set PREFLOOP_TEST_SKIP_VLLM=1 to skip these tests on a machine without
that environment; CI never sets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import vllm_server as vllm_server_script


@dataclass
class VllmServer:
    url: str
    served_name: str
    model_dir: Path
    log_path: Path


@pytest.fixture(scope="session")
def vllm_server(
    tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path
) -> Iterator[VllmServer]:
    if os.environ.get("PREFLOOP_TEST_SKIP_VLLM") == "1":
        pytest.skip("PREFLOOP_TEST_SKIP_VLLM=1")
    if not vllm_server_script.is_installed():
        pytest.fail("the vLLM environment is missing: run `make vllm` (scripts/setup-vllm.sh)")
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    proc = vllm_server_script.start(embedded_model_dir, 0, log_path)
    try:
        vllm_server_script.wait_ready(proc.url, timeout=600, proc=proc)
        yield VllmServer(proc.url, proc.served_model_name, embedded_model_dir, log_path)
    finally:
        vllm_server_script.stop(proc)
