"""Start, probe and stop a CPU vLLM OpenAI-compatible server for tests and CI.

The server runs from its own virtual environment (``scripts/setup-vllm.sh`` creates
it at ``$PREFLOOP_VLLM_VENV``, default ``<repo>/.vllm-venv``) and serves a local
Hugging Face model directory with runtime LoRA loading enabled.

Library use (from the repository root, as the tests and benchmarks do)::

    from scripts import vllm_server

    proc = vllm_server.start("/path/to/model", 0, "vllm.log")   # port 0: a free port
    vllm_server.wait_ready(proc.url, timeout=300, proc=proc)
    ...                                                          # talk to proc.url
    vllm_server.stop(proc)

Command line::

    python scripts/vllm_server.py run   --model DIR [--port N] [--log FILE]
    python scripts/vllm_server.py check --model DIR [--port N] [--log FILE]

``run`` serves until interrupted; ``check`` starts the server, sends one completion,
prints timings as JSON and stops it. Only the standard library is used, so any
Python 3.11 can drive the server.

The server logs request ids and sampling parameters (not prompts); a request whose
HTTP client disconnects is logged as ``Aborted request(s) <id>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "prefloop-base"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_KV_CACHE_GIB = 1
DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_MAX_NUM_SEQS = 16
DEFAULT_MAX_LORA_RANK = 16
DEFAULT_MAX_LORAS = 4


class VllmServerError(RuntimeError):
    """The server exited or did not become ready."""


def default_venv() -> Path:
    return Path(os.environ.get("PREFLOOP_VLLM_VENV") or REPO_ROOT / ".vllm-venv")


def venv_python(venv: str | os.PathLike[str] | None = None) -> Path:
    return Path(venv or default_venv()) / "bin" / "python"


def is_installed(venv: str | os.PathLike[str] | None = None) -> bool:
    """True when the virtual environment holds a completed vLLM install."""
    root = Path(venv or default_venv())
    return (root / "bin" / "python").exists() and (root / ".prefloop-vllm-stamp").exists()


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_env(
    base: Mapping[str, str] | None = None,
    *,
    kv_cache_gib: int | None = DEFAULT_KV_CACHE_GIB,
    worker_in_engine: bool = True,
) -> dict[str, str]:
    """Environment for the server process.

    ``kv_cache_gib`` None leaves the KV cache size to vLLM (a share of the memory
    given by ``--gpu-memory-utilization``, found after a warm-up pass). An explicit
    size lets the CPU worker skip that warm-up pass and bypasses the free-memory check
    tied to ``--gpu-memory-utilization``.

    ``worker_in_engine`` runs the model worker inside the engine-core process instead
    of spawning a third process (each spawn re-imports vLLM, about 10 s on two cores).
    vLLM then does not pin its OpenMP threads, so the worker is held to one thread:
    that leaves the other core to the HTTP front end and avoids OpenMP spin-wait
    contention, which otherwise makes latencies erratic.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "VLLM_TARGET_DEVICE": "cpu",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if kv_cache_gib is None:
        env.pop("VLLM_CPU_KVCACHE_SPACE", None)
    else:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib)
    if worker_in_engine:
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        env["OMP_NUM_THREADS"] = "1"
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return env


def server_command(
    model_dir: str | os.PathLike[str],
    port: int,
    *,
    venv: str | os.PathLike[str] | None = None,
    served_model_name: str = DEFAULT_MODEL_NAME,
    host: str = DEFAULT_HOST,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
    max_loras: int = DEFAULT_MAX_LORAS,
    dtype: str = "bfloat16",
    extra_args: Sequence[str] = (),
) -> list[str]:
    return [
        str(venv_python(venv)),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--gpu-memory-utilization",
        "0.4",
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(max_num_seqs),
        "--enforce-eager",
        "--enable-lora",
        "--max-lora-rank",
        str(max_lora_rank),
        "--max-loras",
        str(max_loras),
        "--generation-config",
        "vllm",
        "--enable-log-requests",
        *extra_args,
    ]


class VllmProcess(subprocess.Popen[bytes]):
    """A started vLLM server: the process, its base URL (without ``/v1``), the model name
    it serves and its log file."""

    url: str
    served_model_name: str
    log_path: str


def start(
    model_dir: str | os.PathLike[str],
    port: int,
    log_path: str | os.PathLike[str],
    venv: str | os.PathLike[str] | None = None,
    *,
    served_model_name: str = DEFAULT_MODEL_NAME,
    host: str = DEFAULT_HOST,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
    max_loras: int = DEFAULT_MAX_LORAS,
    kv_cache_gib: int | None = DEFAULT_KV_CACHE_GIB,
    worker_in_engine: bool = True,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> VllmProcess:
    """Launch the server in its own process group and return at once.

    ``port`` 0 picks a free port. The returned process carries ``url`` (base URL
    without ``/v1``), ``served_model_name`` and ``log_path`` attributes. Call
    :func:`wait_ready` before sending requests and :func:`stop` afterwards.
    """
    python = venv_python(venv)
    if not python.exists():
        raise VllmServerError(f"{python} not found; run scripts/setup-vllm.sh first")
    model_path = Path(model_dir).resolve()
    if not (model_path / "config.json").exists():
        raise VllmServerError(f"{model_path} is not a Hugging Face model directory")
    if port == 0:
        port = free_port(host)
    command = server_command(
        model_path,
        port,
        venv=venv,
        served_model_name=served_model_name,
        host=host,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        max_lora_rank=max_lora_rank,
        max_loras=max_loras,
        extra_args=extra_args,
    )
    log_file = Path(log_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(("$ " + " ".join(command) + "\n").encode())
        log.flush()
        proc = VllmProcess(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(env, kv_cache_gib=kv_cache_gib, worker_in_engine=worker_in_engine),
            start_new_session=True,
        )
    proc.url = f"http://{host}:{port}"
    proc.served_model_name = served_model_name
    proc.log_path = str(log_file)
    return proc


def log_tail(log_path: str | os.PathLike[str], lines: int = 40) -> str:
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    url: str,
    timeout: float = 300.0,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.5,
) -> float:
    """Poll ``{url}/v1/models`` until it answers 200; return the seconds waited.

    With ``proc`` given, fail as soon as that process exits.
    """
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            tail = log_tail(getattr(proc, "log_path", ""))
            raise VllmServerError(f"vLLM server exited with code {proc.returncode}\n{tail}")
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=5) as response:
                if response.status == 200:
                    json.load(response)
                    return time.monotonic() - started
        except (OSError, ValueError, urllib.error.URLError):
            pass
        if time.monotonic() >= deadline:
            raise VllmServerError(f"vLLM server at {base} not ready after {timeout:.0f} s")
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    """Terminate the server and its engine processes; return the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)
    return proc.returncode


def post_json(url: str, payload: Mapping[str, object], timeout: float = 120.0) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "check"])
    parser.add_argument("--model", required=True, help="Hugging Face model directory")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help="served model name")
    parser.add_argument("--log", default=None, help="server log file")
    parser.add_argument("--venv", default=None, help="vLLM virtual environment")
    parser.add_argument("--timeout", type=float, default=300.0, help="start-up timeout (s)")
    parser.add_argument("--kv-cache-gib", type=int, default=DEFAULT_KV_CACHE_GIB)
    parser.add_argument("--prompt", default="def fibonacci(n):", help="prompt for check")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    log_path = args.log or str(REPO_ROOT / ".cache" / "vllm-server.log")
    began = time.monotonic()
    try:
        proc = start(
            args.model,
            args.port,
            log_path,
            venv=args.venv,
            served_model_name=args.name,
            kv_cache_gib=args.kv_cache_gib,
        )
    except VllmServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = proc.url
    try:
        wait_ready(url, args.timeout, proc=proc)
        ready = time.monotonic() - began
        if args.action == "run":
            print(f"vLLM serving {args.name} at {url}/v1 (ready in {ready:.1f} s)", flush=True)
            proc.wait()
            return proc.returncode or 0
        sent = time.monotonic()
        result = post_json(
            url + "/v1/completions",
            {"model": args.name, "prompt": args.prompt, "max_tokens": 32, "temperature": 0},
        )
        elapsed = time.monotonic() - sent
        text = result["choices"][0]["text"] if isinstance(result, dict) else result
        report = {"url": url, "ready_s": round(ready, 1), "completion_s": round(elapsed, 2)}
        report["text"] = text
        print(json.dumps(report), flush=True)
        return 0
    except VllmServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
