"""Shared fixtures: one prepared embedded model per machine, a tiny random model per run,
and real `prefloop serve` processes."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent


def shared_home() -> Path:
    """Where the embedded model is prepared once and reused by every test run."""
    return Path(os.environ.get("PREFLOOP_TEST_SHARED_HOME", REPO / ".cache" / "test-home"))


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    return prepare_embedded(Settings(home=shared_home()))


def build_tiny_model(out: Path, tokenizer_dir: Path, *, hidden_size: int = 64) -> Path:
    """A tiny Llama with random weights (fixed seed) and a real tokenizer, saved to ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> Path:
    """A tiny random model with the embedded model's real tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), embedded_model_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A real `prefloop serve` subprocess."""

    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    log_path: Path
    verify: ssl.SSLContext | bool = field(default=True)
    """What HTTPS clients trust (the test certificate of a service started with TLS)."""

    @property
    def db_path(self) -> Path:
        return self.home / "prefloop.db"

    def client(self, timeout: float = 60.0, token: str | None = None) -> httpx.Client:
        """A client of the service; ``token`` is sent as its bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        return httpx.Client(base_url=self.url, timeout=timeout, verify=self.verify, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    home: Path,
    model: str | Path,
    *,
    extra_env: dict[str, str] | None = None,
    timeout: float = 180.0,
    ready_status: int = 200,
    port: int | None = None,
    tls: tuple[Path, Path] | None = None,
) -> ServerProcess:
    """Start `prefloop serve` and wait until /healthz answers ``ready_status``.

    ``port`` pins the address (to restart a service where it was); the log is appended to,
    so a restarted service keeps its earlier log. ``tls`` (certificate, key): the service
    speaks HTTPS, and its clients trust that certificate.
    """
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "serve.log"
    env = {
        **os.environ,
        "PREFLOOP_HOME": str(home),
        "PREFLOOP_MODEL": str(model),
        "PREFLOOP_PORT": str(port),
        "PREFLOOP_LOG_LEVEL": "info",
        "HF_HUB_OFFLINE": "1",
        # The judge competes for the 2 cores; tests that are about it turn it on.
        "PREFLOOP_JUDGE_BACKEND": "off",
        "PREFLOOP_JUDGE_CHECKS": "false",
        **(extra_env or {}),
    }
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        env["PREFLOOP_TLS_CERT"], env["PREFLOOP_TLS_KEY"] = str(tls[0]), str(tls[1])
        verify = ssl.create_default_context(cafile=str(tls[0]))
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefloop", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    scheme = "https" if tls is not None else "http"
    server = ServerProcess(proc, f"{scheme}://127.0.0.1:{port}", home, log_path, verify)

    def health() -> int:
        if proc.poll() is not None:
            raise RuntimeError(f"prefloop serve exited early:\n{server.log()[-3000:]}")
        return httpx.get(server.url + "/healthz", timeout=2, verify=verify).status_code

    try:
        wait_until(
            health,
            lambda status: status == ready_status,
            what=f"/healthz of prefloop serve to answer {ready_status}",
            timeout=timeout,
            interval=0.2,
            retry_on=(httpx.HTTPError,),
            error=lambda message: RuntimeError(
                f"prefloop serve did not become ready: {message}\n{server.log()[-3000:]}"
            ),
        )
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def tiny_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("home"), tiny_model_dir)
    yield server
    server.stop()


from tests.vllm_fixture import vllm_server  # noqa: E402, F401  (session fixture)
