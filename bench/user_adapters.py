"""One adapter per user, the serving side: what holding many users' adapters costs.

A real `prefloop serve` (embedded SmolLM2-135M, ``PREFLOOP_TRAIN_ADAPTERS=per_user``)
serves a shared LoRA adapter; then ``--users`` users get an adapter of their own each
(rank 8 on q_proj/v_proj, random non-zero weights), promoted in the registry and loaded
by one ``POST /admin/reload``. Reported: the reload time per user adapter, the service's
resident memory before and after, and the engine's generation time per request (16
tokens, greedy, one request at a time) for a user on the shared adapter before, for the
users on their own adapters taking turns, and for a user on the shared adapter with all
of them loaded.

    python -m bench.user_adapters [--users 8] [--requests 12]
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
from tests.adapters import make_lora_adapter

PAYLOAD = {"prefix": "def fibonacci(n):", "language": "python", "max_tokens": 16}


def adapter(model_dir: Path, work: Path, seed: int) -> Path:
    return make_lora_adapter(
        model_dir,
        work / f"adapter-{seed}",
        seed=seed,
        scale=0.2,
        rank=8,
        targets=("q_proj", "v_proj"),
    )


def register(settings: Settings, path: Path, user: str | None) -> str:
    staged = registry.staging_dir(settings)
    shutil.copytree(path, staged, dirs_exist_ok=True)
    version = registry.register(
        settings,
        staged,
        run_id=None,
        parent="base",
        base_model="smollm2",
        metrics={},
        for_user=user,
    )
    return version.id


def rss_mib(server: ServerProcess) -> float:
    """The service process's resident memory (VmRSS), MiB."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate_seconds(
    client: httpx.Client, users: list[str], requests: int
) -> tuple[dict[str, float], set[str]]:
    """The engine's generation time per request, users taking turns; the versions seen."""
    seconds, versions = [], set()
    for index in range(requests):
        body = client.post("/v1/suggestions", json={**PAYLOAD, "user": users[index % len(users)]})
        body.raise_for_status()
        answer = body.json()
        seconds.append(answer["timings"]["generate_ms"] / 1000)
        versions.add(answer["model_version"])
    return summary(seconds), versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="users with an adapter of their own")
    parser.add_argument("--requests", type=int, default=12, help="requests per measurement")
    args = parser.parse_args()
    model_dir = prepare_embedded(Settings(home=shared_home()))
    work = Path(tempfile.mkdtemp(prefix="prefloop-bench-user-adapters-"))
    home = work / "home"
    settings = Settings(home=home, registry_keep=1000)
    shared = register(settings, adapter(model_dir, work, 1), None)
    registry.promote(settings, shared, notify=False)
    users = [f"dev-{i}" for i in range(args.users)]
    own = {
        user: register(settings, adapter(model_dir, work, 2 + i), user)
        for i, user in enumerate(users)
    }
    (home / "models").mkdir(exist_ok=True)
    (home / "models" / model_dir.name).symlink_to(model_dir)
    server = start_server(
        home,
        "embedded",
        extra_env={
            "PREFLOOP_TRAIN_ADAPTERS": "per_user",
            "PREFLOOP_REGISTRY_KEEP": "1000",
            "PREFLOOP_SWAP_POLL_SECONDS": "0",
        },
    )
    token = (home / "admin-token").read_text().strip()
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            generate_seconds(client, ["nobody"], 2)  # warm up
            rss_before = rss_mib(server)
            shared_before, seen_before = generate_seconds(client, ["nobody"], args.requests)
            for version in own.values():
                registry.promote(settings, version, notify=False)
            started = time.monotonic()
            client.post(
                "/admin/reload", headers={"Authorization": f"Bearer {token}"}
            ).raise_for_status()
            reload_seconds = time.monotonic() - started
            health = client.get("/healthz").json()
            assert health["user_versions_total"] == len(users), health
            rss_after = rss_mib(server)
            per_user, seen_users = generate_seconds(client, users, args.requests)
            shared_after, seen_after = generate_seconds(client, ["nobody"], args.requests)
    finally:
        server.stop()
    result: dict[str, Any] = {
        "machine": cpu_note(),
        "model": "SmolLM2-135M-Instruct (embedded), LoRA rank 8 on q_proj/v_proj",
        "users": len(users),
        "reload_seconds": reload_seconds,
        "reload_seconds_per_user_adapter": reload_seconds / len(users),
        "rss_mib_shared_only": rss_before,
        "rss_mib_with_user_adapters": rss_after,
        "rss_mib_per_user_adapter": (rss_after - rss_before) / len(users),
        "generate_seconds_shared_before": shared_before,
        "generate_seconds_users_taking_turns": per_user,
        "generate_seconds_shared_with_user_adapters_loaded": shared_after,
        "versions_seen": {
            "shared_before": sorted(seen_before),
            "users": sorted(seen_users),
            "shared_after": sorted(seen_after),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "user_adapters.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
