"""Hot swap on the real service: a `prefloop serve` process on the tiny model, real peft
adapters in the registry, a client sending suggestions the whole time."""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop import registry
from prefloop.settings import Settings
from tests.adapters import make_lora_adapter, make_wrong_shape_adapter
from tests.conftest import REPO, ServerProcess, start_server
from tests.load import ContinuousLoad
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e]

# A prompt the tiny random model (with and without the test adapters) answers with text
# that survives post-processing.
PROMPT = {"prefix": "x = ", "language": "python", "max_tokens": 12}


@dataclass
class Swappable:
    server: ServerProcess
    settings: Settings
    adapters: dict[str, Path]

    def token(self) -> str:
        return (self.server.home / "admin-token").read_text().strip()

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            timeout=120,
            headers={"Authorization": f"Bearer {self.token()}"},
        )

    def register(self, name: str) -> registry.Version:
        staged = registry.staging_dir(self.settings)
        shutil.copytree(self.adapters[name], staged, dirs_exist_ok=True)
        return registry.register(
            self.settings, staged, run_id=None, parent="base", base_model="tiny", metrics={}
        )


@pytest.fixture(scope="module")
def swappable(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, embedded_model_dir: Path
) -> Iterator[Swappable]:
    work = tmp_path_factory.mktemp("swap-adapters")
    adapters = {
        "a": make_lora_adapter(tiny_model_dir, work / "a", seed=1),
        "b": make_lora_adapter(tiny_model_dir, work / "b", seed=2),
        "wrong-shape": make_wrong_shape_adapter(embedded_model_dir, work / "wrong", work),
    }
    home = tmp_path_factory.mktemp("swap-home")
    server = start_server(home, tiny_model_dir, extra_env={"PREFLOOP_SWAP_POLL_SECONDS": "0.5"})
    settings = Settings(home=home, server_url=server.url, registry_keep=10)
    swappable = Swappable(server, settings, adapters)
    yield swappable
    swappable.server.stop()  # the one running now: a test may have restarted the service


def suggest(client: httpx.Client, **extra: Any) -> httpx.Response:
    return client.post("/v1/suggestions", json={**PROMPT, **extra})


def served(s: Swappable) -> str:
    with s.server.client() as client:
        version: str = client.get("/healthz").json()["model_version"]
    return version


def wait_served(s: Swappable, version: str, timeout: float = 60) -> None:
    wait_until(
        lambda: served(s),
        lambda now: now == version,
        what=f"{version} to be served",
        timeout=timeout,
        interval=0.1,
    )


def cli(s: Swappable, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefloop", *args, "--home", str(s.server.home)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PREFLOOP_SERVER_URL": s.server.url},
        timeout=180,
    )


def stored_versions(db: Path, ids: list[str]) -> dict[str, str]:
    """The model version stored with each of the suggestions ``ids``, once all are stored."""

    def rows() -> dict[str, str]:
        conn = sqlite3.connect(db)
        try:
            marks = ",".join("?" for _ in ids)
            return dict(
                conn.execute(
                    f"SELECT id, model_version FROM suggestions WHERE id IN ({marks})", ids
                ).fetchall()
            )
        finally:
            conn.close()

    return wait_until(
        rows,
        lambda found: len(found) == len(ids),
        what=f"{len(ids)} suggestions stored",
        timeout=30,
        interval=0.2,
    )


def test_admin_api_needs_the_token(swappable: Swappable) -> None:
    token_file = swappable.server.home / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    with swappable.server.client() as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "token"}):
            for method, path in (
                ("GET", "/admin/models"),
                ("POST", "/admin/reload"),
                ("POST", "/admin/rollback"),
            ):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert "admin token" in response.json()["error"]
                assert response.headers["www-authenticate"] == "Bearer"
        response = client.post(
            "/admin/promote", json={"version": "v1"}, headers={"Authorization": "Bearer x"}
        )
        assert response.status_code == 401
    with swappable.admin() as admin:
        body = admin.get("/admin/models").json()
        assert body["served"] == "base" and body["versions"] == []


def test_hot_swap_under_continuous_load(swappable: Swappable) -> None:
    """Promote (API), promote (CLI), roll back (CLI) while a client keeps asking: no
    request fails, each suggestion carries the version that made it, outputs change."""
    v1 = swappable.register("a")
    v2 = swappable.register("b")
    with ContinuousLoad(swappable.server.url, PROMPT) as load:
        load.wait_seen("base", 3)
        with swappable.admin() as admin:
            response = admin.post("/admin/promote", json={"version": v1.id})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == v1.id
        swap = response.json()["swap"]
        assert swap["from_version"] == "base" and swap["to_version"] == v1.id
        load.wait_seen(v1.id, 3)
        promoted = cli(swappable, "promote", v2.id)
        assert promoted.returncode == 0, promoted.stderr
        assert f"promoted {v2.id} (was {v1.id})" in promoted.stdout
        assert f"now serves {v2.id}" in promoted.stdout
        load.wait_seen(v2.id, 3)
        rolled = cli(swappable, "rollback")
        assert rolled.returncode == 0, rolled.stderr
        assert f"rolled back from {v2.id} to {v1.id}" in rolled.stdout
        load.wait_seen(v1.id, load.seen(v1.id) + 3)
    results = load.snapshot()
    assert load.failed() == []
    assert len(results) > 12
    order = [r.version for r in results]
    # The served version changes exactly at the swaps, never back and forth.
    phases = [order[0]] + [b for a, b in itertools.pairwise(order) if a != b]
    assert phases == ["base", v1.id, v2.id, v1.id]
    texts: dict[str, set[str]] = {}
    for answer in results:
        texts.setdefault(answer.version, set()).add(answer.text)
    # Greedy decoding: one text per version, and each version writes its own.
    assert all(len(t) == 1 for t in texts.values()), texts
    assert len({next(iter(t)) for t in texts.values()}) == 3, texts
    rows = stored_versions(swappable.server.db_path, [r.suggestion_id for r in results])
    assert rows == {r.suggestion_id: r.version for r in results}
    health = httpx.get(swappable.server.url + "/healthz").json()
    assert health["model_version"] == v1.id
    last = health["swap"]["last"]
    assert last["to_version"] == v1.id and last["error"] is None and last["seconds"] < 5


def test_generation_in_flight_finishes_on_the_version_it_started_with(
    swappable: Swappable,
) -> None:
    before = served(swappable)
    long = {"max_tokens": 2048}
    with swappable.server.client() as client:
        reference = suggest(client, **long).json()
    assert reference["model_version"] == before
    # Long enough (seconds) that the promotion below lands while it runs.
    assert reference["timings"]["generate_ms"] > 1500
    new = swappable.register("b")
    out: dict[str, Any] = {}

    def ask() -> None:
        with swappable.server.client() as client:
            out["body"] = suggest(client, **long).json()

    asker = threading.Thread(target=ask)
    asker.start()
    wait_until(
        lambda: httpx.get(swappable.server.url + "/healthz").json()["engine"],
        lambda engine: engine["busy"],
        what="the generation to start",
        timeout=30,
        interval=0.01,
    )
    with swappable.admin() as admin:
        response = admin.post("/admin/promote", json={"version": new.id})
    assert response.status_code == 200, response.text
    asker.join(120)
    body = out["body"]
    assert body["model_version"] == before
    assert body["candidates"][0]["text"] == reference["candidates"][0]["text"]
    assert stored_versions(swappable.server.db_path, [body["suggestion_id"]]) == {
        body["suggestion_id"]: before
    }
    assert served(swappable) == new.id


def test_polling_serves_a_promotion_made_without_notice(swappable: Swappable) -> None:
    version = swappable.register("a")
    registry.promote(swappable.settings, version.id, notify=False)
    wait_served(swappable, version.id, timeout=30)
    health = httpx.get(swappable.server.url + "/healthz").json()
    assert health["swap"]["last"]["trigger"] == "poll"
    assert health["swap"]["in_sync"] is True


def test_unknown_and_unpromotable_versions_change_nothing(swappable: Swappable) -> None:
    with swappable.admin() as admin:
        before = admin.get("/admin/models").json()
        unknown = admin.post("/admin/promote", json={"version": "v999"})
        assert unknown.status_code == 404 and "v999" in unknown.json()["error"]
        current = admin.post("/admin/promote", json={"version": before["served"]})
        assert current.status_code == 409 and "already" in current.json()["error"]
        rejected = swappable.register("b")
        registry.reject(swappable.settings, rejected.id, "lost the comparison")
        refused = admin.post("/admin/promote", json={"version": rejected.id})
        assert refused.status_code == 409 and "rejected" in refused.json()["error"]
        empty = admin.post("/admin/promote", json={"version": ""})
        assert empty.status_code == 422
        after = admin.get("/admin/models").json()
    assert after["served"] == before["served"]
    assert after["promoted"] == before["promoted"]
    assert {v["id"]: v["status"] for v in after["versions"] if v["id"] != rejected.id} == {
        v["id"]: v["status"] for v in before["versions"]
    }
    bad = cli(swappable, "promote", "v999")
    assert bad.returncode == 1 and "no model version 'v999'" in bad.stderr


def test_broken_adapter_is_refused_and_serving_continues(swappable: Swappable) -> None:
    before = served(swappable)
    broken = swappable.register("wrong-shape")  # well-formed files, wrong shapes
    with swappable.admin() as admin:
        response = admin.post("/admin/promote", json={"version": broken.id})
        assert response.status_code == 422
        assert "does not fit the model" in response.json()["error"]
        assert served(swappable) == before
        health = httpx.get(swappable.server.url + "/healthz").json()
        assert health["status"] == "ok"
        assert health["swap"]["last_error"]["to_version"] == broken.id
        assert "does not fit" in health["swap"]["last_error"]["error"]
        # The promotion was undone in the registry too.
        current = registry.current(swappable.settings)
        assert (current.id if current else "base") == before
        # Promoted behind the service's back: polling refuses it once and keeps serving.
        registry.promote(swappable.settings, broken.id, notify=False)
        health = wait_until(
            lambda: httpx.get(swappable.server.url + "/healthz").json(),
            lambda now: now["swap"]["promoted"] == broken.id,
            what="the poller to look at the registry",
            timeout=30,
            interval=0.1,
        )
        assert health["model_version"] == before
        assert health["swap"]["promoted"] == broken.id and health["swap"]["in_sync"] is False
        with swappable.server.client() as client:
            answer = suggest(client)
        assert answer.status_code == 200 and answer.json()["model_version"] == before
        reload = admin.post("/admin/reload")
        assert reload.status_code == 200 and "does not fit" in reload.json()["error"]
        # Truncated weights: refused as well.
        weights = Path(broken.adapter_path) / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:64])
        reload = admin.post("/admin/reload")
        assert reload.json()["error"] and reload.json()["model_version"] == before
        rolled = admin.post("/admin/rollback")
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["model_version"] == before
    wait_served(swappable, before)
    assert httpx.get(swappable.server.url + "/healthz").json()["swap"]["in_sync"] is True


def test_models_cli_and_rollback_chain_to_base(swappable: Swappable) -> None:
    listing = cli(swappable, "models")
    assert listing.returncode == 0, listing.stderr
    current = served(swappable)
    starred = [line for line in listing.stdout.splitlines() if line.startswith("*")]
    assert len(starred) == 1 and starred[0].split()[1] == current
    with swappable.admin() as admin:
        while served(swappable) != "base":
            response = admin.post("/admin/rollback")
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == served(swappable)
        final = admin.post("/admin/rollback")
        assert final.status_code == 409 and "nothing to roll back" in final.json()["error"]
    with swappable.server.client() as client:
        assert suggest(client).json()["model_version"] == "base"


def test_a_restarted_service_serves_the_promoted_version(
    swappable: Swappable, tiny_model_dir: Path
) -> None:
    version = swappable.register("b")
    port = int(swappable.server.url.rsplit(":", 1)[1])
    swappable.server.stop()
    down = cli(swappable, "promote", version.id)
    assert down.returncode == 0, down.stderr
    assert "no service is running" in down.stdout
    swappable.server = start_server(swappable.server.home, tiny_model_dir, port=port)
    assert served(swappable) == version.id
    health = httpx.get(swappable.server.url + "/healthz").json()
    assert health["swap"]["last"]["trigger"] == "start-up"
    with swappable.server.client() as client:
        assert suggest(client).json()["model_version"] == version.id
