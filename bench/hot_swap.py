"""Hot swap under load: promote model versions on a running service while a client keeps
asking for suggestions.

A real `prefloop serve` process serves the embedded SmolLM2-135M; two LoRA adapters
(peft, random non-zero weights) are registered as alternating versions, and each round
promotes the next one through ``POST /admin/promote`` while one client sends suggestion
requests back to back. Reported per engine: the swap time the service measured, the
time from the promote call to the first suggestion made by the new version, and the
requests that failed. Three more promotions go through the registry alone (as
``prefloop promote`` does when the notification is lost), which the service picks up by
polling. ``--vllm`` repeats the API rounds with the same model behind a CPU vLLM server
(runtime LoRA loading).

    python -m bench.hot_swap [--promotions 10] [--vllm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, ServerProcess, cpu_note, shared_home, start_server, summary
from prefloop import registry
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from scripts import vllm_server
from tests.adapters import make_lora_adapter
from tests.load import ContinuousLoad

PAYLOAD = {"prefix": "def fibonacci(n):", "language": "python", "max_tokens": 16}


def make_adapters(model_dir: Path, work: Path) -> list[Path]:
    return [
        make_lora_adapter(
            model_dir,
            work / f"adapter-{seed}",
            seed=seed,
            scale=0.2,
            rank=8,
            targets=("q_proj", "v_proj"),
        )
        for seed in (1, 2)
    ]


def register_versions(settings: Settings, adapters: list[Path], count: int) -> list[str]:
    ids = []
    for index in range(count):
        staged = registry.staging_dir(settings)
        shutil.copytree(adapters[index % len(adapters)], staged, dirs_exist_ok=True)
        version = registry.register(
            settings, staged, run_id=None, parent="base", base_model="smollm2", metrics={}
        )
        ids.append(version.id)
    return ids


def run_rounds(server: ServerProcess, versions: list[str], poll_rounds: int) -> dict[str, Any]:
    settings = Settings(home=server.home, server_url=server.url, registry_keep=100)
    token = (server.home / "admin-token").read_text().strip()
    swap_s: list[float] = []
    load_s: list[float] = []
    to_first_s: list[float] = []
    poll_to_first_s: list[float] = []
    promote_call_s: list[float] = []
    with (
        httpx.Client(
            base_url=server.url, timeout=600, headers={"Authorization": f"Bearer {token}"}
        ) as admin,
        ContinuousLoad(server.url, PAYLOAD) as load,
    ):
        load.wait_seen("base", 3, timeout=300)
        api_versions = versions[: len(versions) - poll_rounds]
        for version in api_versions:
            started = time.monotonic()
            response = admin.post("/admin/promote", json={"version": version})
            promote_call_s.append(time.monotonic() - started)
            response.raise_for_status()
            swap = response.json()["swap"]
            swap_s.append(float(swap["seconds"]))
            if swap.get("load_seconds") is not None:
                load_s.append(float(swap["load_seconds"]))
            load.wait_seen(version, 1, timeout=300)
            first = load.first_from(version, started)
            assert first is not None
            to_first_s.append(first.done - started)
            load.wait_seen(version, 2, timeout=300)
        for version in versions[len(api_versions) :]:
            started = time.monotonic()
            registry.promote(settings, version, notify=False)
            load.wait_seen(version, 1, timeout=300)
            first = load.first_from(version, started)
            assert first is not None
            poll_to_first_s.append(first.done - started)
            load.wait_seen(version, 2, timeout=300)
    answers = load.snapshot()
    return {
        "promotions_api": len(api_versions),
        "promotions_poll": len(versions) - len(api_versions),
        "swap_seconds": summary(swap_s),
        "swap_load_seconds": summary(load_s),
        "promote_call_seconds": summary(promote_call_s),
        "request_seconds": summary([a.done - a.sent for a in answers]),
        "promote_to_first_suggestion_seconds": summary(to_first_s),
        "poll_promote_to_first_suggestion_seconds": summary(poll_to_first_s),
        "requests": len(answers),
        "failed_requests": sum(1 for a in answers if a.status != 200),
        "versions_seen": sorted({a.version for a in answers}),
    }


def bench_transformers(model_dir: Path, adapters: list[Path], count: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-swap-"))
    # Every version is registered up front: keep them all (the default keeps 5).
    register_versions(Settings(home=home, registry_keep=100), adapters, count + 3)
    (home / "models").mkdir(exist_ok=True)
    (home / "models" / model_dir.name).symlink_to(model_dir)
    server = start_server(home, "embedded", extra_env={"PREFLOOP_REGISTRY_KEEP": "100"})
    try:
        versions = [v.id for v in reversed(registry.list_versions(Settings(home=home)))]
        return run_rounds(server, versions, poll_rounds=3)
    finally:
        server.stop()


def bench_vllm(model_dir: Path, adapters: list[Path], count: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-swap-vllm-"))
    proc = vllm_server.start(model_dir, 0, home / "vllm.log")
    try:
        vllm_server.wait_ready(proc.url, timeout=900, proc=proc)
        register_versions(Settings(home=home, registry_keep=100), adapters, count)
        server = start_server(
            home,
            model_dir,
            extra_env={
                "PREFLOOP_ENGINE": "vllm",
                "PREFLOOP_VLLM_URL": proc.url,
                "PREFLOOP_VLLM_MODEL": proc.served_model_name,
                "PREFLOOP_REGISTRY_KEEP": "100",
            },
        )
        try:
            versions = [v.id for v in reversed(registry.list_versions(Settings(home=home)))]
            return run_rounds(server, versions, poll_rounds=0)
        finally:
            server.stop()
    finally:
        vllm_server.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=10, help="promotions per engine")
    parser.add_argument("--vllm", action="store_true", help="also swap on a CPU vLLM server")
    args = parser.parse_args()
    model_dir = prepare_embedded(Settings(home=shared_home()))
    work = Path(tempfile.mkdtemp(prefix="prefloop-bench-adapters-"))
    adapters = make_adapters(model_dir, work)
    result: dict[str, Any] = {
        "machine": cpu_note(),
        "model": "SmolLM2-135M-Instruct (embedded), LoRA rank 8 on q_proj/v_proj",
        "load": "1 client, back-to-back requests, 16 tokens",
        "transformers": bench_transformers(model_dir, adapters, args.promotions),
    }
    if args.vllm:
        result["vllm"] = bench_vllm(model_dir, adapters, max(2, args.promotions // 2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hot_swap.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
