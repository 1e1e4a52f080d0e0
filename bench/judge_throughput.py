"""Judge throughput: critiques per minute and the share parsed on the first try.

A backlog of logged suggestions (two candidates each: a plausible one and a flawed one,
in several languages) is critiqued by the judge worker, exactly as the service runs it:
the verifiable checks, then the LLM judge on the serving engine (the embedded model on
this machine's CPU), writing through the single writer. With ``--vllm`` the same backlog
is also critiqued through a CPU vLLM server's OpenAI-compatible chat API with a JSON
schema (``response_format``).

    python -m bench.judge_throughput [--suggestions 6] [--max-tokens 256] [--vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note, shared_home
from prefloop.models import prepare_embedded
from prefloop.server.engines.hf import TransformersEngine
from prefloop.server.judge.records import CHECKS_JUDGE, read_critiques
from prefloop.server.judge.worker import JudgeWorker
from prefloop.settings import Settings
from prefloop.store.writer import Writer
from scripts import vllm_server
from tests.judge.backlog import Logged, add_backlog

BACKLOG = (
    Logged(
        "python",
        "stats.py",
        "def mean(values: list[float]) -> float:\n",
        "\n",
        ("    return sum(values) / len(values)", "    return eval(input())"),
    ),
    Logged(
        "python",
        "files.py",
        "import os\n\n\ndef list_python_files(root):\n",
        "\n",
        (
            "    return [f for f in os.listdir(root) if f.endswith('.py')]",
            "    return os.system('ls ' + root)",
        ),
    ),
    Logged(
        "javascript",
        "greet.js",
        "function greet(name) {\n",
        "\n}\n",
        ("  return `Hello, ${name}!`;", "  document.body.innerHTML = name"),
    ),
    Logged(
        "go",
        "add.go",
        "package main\n\nfunc add(a, b int) int {\n",
        "\n}\n",
        ("\treturn a + b", "\treturn a +"),
    ),
    Logged(
        "python",
        "fib.py",
        "def fibonacci(n: int) -> int:\n",
        "\n",
        (
            "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
            "    return fibonacci(n - 1) + fibonacci(n - 2)",
        ),
    ),
    Logged(
        "rust",
        "max.rs",
        "fn largest(values: &[i32]) -> Option<i32> {\n",
        "\n}\n",
        ("    values.iter().copied().max()", "    unsafe { Some(*values.get_unchecked(0)) }"),
    ),
)


def summarize(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    first = [r for r in ok if r["attempts"] == 1]
    attempts = [r["attempts"] for r in rows]
    per_attempt = [r["duration_ms"] / max(1, r["attempts"]) for r in rows]
    return {
        "critiques": len(rows),
        "seconds": round(seconds, 1),
        "critiques_per_minute": round(60 * len(rows) / seconds, 2) if seconds else None,
        "ok_share": round(len(ok) / len(rows), 3) if rows else None,
        "first_try_share": round(len(first) / len(rows), 3) if rows else None,
        "mean_attempts": round(statistics.fmean(attempts), 2) if rows else None,
        "mean_attempt_ms": round(statistics.fmean(per_attempt)) if rows else None,
    }


async def run_worker(settings: Settings, engine: Any, count: int) -> dict[str, Any]:
    writer = Writer(settings.db_path)
    writer.start()
    items = [BACKLOG[i % len(BACKLOG)] for i in range(count)]
    add_backlog(writer, items)
    worker = JudgeWorker(settings, engine, writer)
    await worker.start(poll=False)
    checks_started = time.perf_counter()
    while await worker.check_pending():
        pass
    checks_seconds = time.perf_counter() - checks_started
    started = time.perf_counter()
    while await worker.judge_pending():
        pass
    seconds = time.perf_counter() - started
    await worker.stop()
    writer.stop()
    with closing(sqlite3.connect(settings.db_path)) as conn:
        rows = read_critiques(conn)
    judged = [r for r in rows if r["judge"] == worker.backend.name] if worker.backend else []
    checks = [r for r in rows if r["judge"].startswith("check:")]
    out = summarize(judged, seconds)
    out["judge_model"] = judged[0]["judge_model"] if judged else None
    out["checks"] = {
        "critiques": len(checks),
        "candidates": sum(1 for r in checks if r["judge"] == CHECKS_JUDGE),
        "seconds": round(checks_seconds, 2),
        "candidates_per_second": round(
            sum(1 for r in checks if r["judge"] == CHECKS_JUDGE) / checks_seconds, 1
        ),
    }
    return out


async def bench_engine(model_dir: Path, count: int, max_tokens: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-judge-"))
    settings = Settings(
        home=home,
        model=str(model_dir),
        judge_backend="engine",
        judge_idle_seconds=0.0,
        judge_max_tokens=max_tokens,
    )
    engine = TransformersEngine(str(model_dir))
    await engine.start()
    try:
        return await run_worker(settings, engine, count)
    finally:
        await engine.close()


async def bench_vllm(model_dir: Path, count: int, max_tokens: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-judge-vllm-"))
    proc = vllm_server.start(model_dir, 0, home / "vllm.log")
    try:
        vllm_server.wait_ready(proc.url, timeout=600, proc=proc)
        settings = Settings(
            home=home,
            judge_backend="openai",
            judge_url=f"{proc.url}/v1",
            judge_model=proc.served_model_name,
            judge_max_tokens=max_tokens,
            judge_concurrency=4,
        )
        return await run_worker(settings, None, count)
    finally:
        vllm_server.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suggestions", type=int, default=6, help="backlog size")
    parser.add_argument("--max-tokens", type=int, default=256, help="judge tokens per answer")
    parser.add_argument("--vllm", action="store_true", help="also judge through CPU vLLM")
    args = parser.parse_args()
    model_dir = prepare_embedded(Settings(home=shared_home()))
    result: dict[str, Any] = {
        "machine": cpu_note(),
        "backlog": {"suggestions": args.suggestions, "candidates": 2 * args.suggestions},
        "max_tokens": args.max_tokens,
        "engine": asyncio.run(bench_engine(model_dir, args.suggestions, args.max_tokens)),
    }
    if args.vllm:
        result["vllm"] = asyncio.run(bench_vllm(model_dir, args.suggestions, args.max_tokens))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "judge_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
