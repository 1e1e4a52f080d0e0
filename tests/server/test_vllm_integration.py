"""`prefloop serve --engine vllm` in front of a real CPU vLLM server."""

from __future__ import annotations

import ast
import itertools
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prefloop import registry
from prefloop.settings import Settings
from tests.adapters import make_lora_adapter
from tests.conftest import ServerProcess, start_server
from tests.load import ContinuousLoad
from tests.vllm_fixture import VllmServer
from tests.waiting import wait_until

pytestmark = [pytest.mark.vllm, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def served_through_vllm(
    tmp_path_factory: pytest.TempPathFactory, vllm_server: VllmServer
) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("vllm-home"),
        vllm_server.model_dir,
        extra_env={
            "PREFLOOP_ENGINE": "vllm",
            "PREFLOOP_VLLM_URL": vllm_server.url,
            "PREFLOOP_VLLM_MODEL": vllm_server.served_name,
        },
    )
    yield server
    server.stop()


def test_suggestion_comes_back_through_prefloop(served_through_vllm: ServerProcess) -> None:
    with served_through_vllm.client(timeout=120) as client:
        health = client.get("/healthz").json()
        assert health["engine"]["engine"] == "vllm" and health["engine"]["ok"] is True
        response = client.post(
            "/v1/suggestions",
            # Room for the whole body: a greedy answer cut at the token limit ends mid-line.
            # (vLLM's greedy text can change with what it batches alongside it.)
            json={"prefix": "def fibonacci(n):", "language": "python", "n": 2, "max_tokens": 160},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        text = body["candidates"][0]["text"]
        assert text.strip()
        ast.parse("def fibonacci(n):" + text)
        assert body["model_version"] == "base"
        event = {"id": uuid.uuid4().hex, "suggestion_id": body["suggestion_id"], "kind": "shown"}
        stored = client.post("/v1/events", json={"events": [event]}).json()
        assert stored["stored"] == [event["id"]]


def test_vllm_down_gives_a_clear_503(
    tmp_path_factory: pytest.TempPathFactory, vllm_server: VllmServer
) -> None:
    server = start_server(
        tmp_path_factory.mktemp("vllm-down-home"),
        vllm_server.model_dir,
        extra_env={"PREFLOOP_ENGINE": "vllm", "PREFLOOP_VLLM_URL": "http://127.0.0.1:9"},
        ready_status=503,
    )
    try:
        with server.client() as client:
            assert client.get("/healthz").json()["engine"]["ok"] is False
            response = client.post("/v1/suggestions", json={"prefix": "x = "})
            assert response.status_code == 503
            assert response.json()["error"] == "the model engine is unavailable"
    finally:
        server.stop()


def test_hot_swap_through_vllm_under_load(
    served_through_vllm: ServerProcess,
    vllm_server: VllmServer,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    """Promote an adapter for the served model while a client keeps asking: vLLM loads it
    at run time, no request fails, suggestions carry their versions, the text changes; a
    broken adapter is refused and serving goes on; rollback returns to the base model."""
    server = served_through_vllm
    settings = Settings(home=server.home, server_url=server.url)

    def add(adapter: Path) -> registry.Version:
        staged = registry.staging_dir(settings)
        shutil.copytree(adapter, staged, dirs_exist_ok=True)
        return registry.register(
            settings, staged, run_id=None, parent="base", base_model="smollm2", metrics={}
        )

    good = add(
        make_lora_adapter(
            vllm_server.model_dir, tmp_path / "good", seed=3, targets=("q_proj", "v_proj")
        )
    )
    broken = add(make_lora_adapter(tiny_model_dir, tmp_path / "broken", seed=4))
    token = (server.home / "admin-token").read_text().strip()
    admin = httpx.Client(
        base_url=server.url, timeout=300, headers={"Authorization": f"Bearer {token}"}
    )
    payload = {"prefix": "def fibonacci(n):", "language": "python", "max_tokens": 10}
    with admin, ContinuousLoad(server.url, payload) as load:
        load.wait_seen("base", 2, timeout=120)
        promoted = admin.post("/admin/promote", json={"version": good.id})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["model_version"] == good.id
        load.wait_seen(good.id, 2, timeout=120)
        refused = admin.post("/admin/promote", json={"version": broken.id})
        assert refused.status_code == 422, refused.text
        assert broken.id in refused.json()["error"]
        health = admin.get("/healthz").json()
        assert health["model_version"] == good.id
        assert health["swap"]["last_error"]["to_version"] == broken.id
        count = load.seen(good.id)
        load.wait_seen(good.id, count + 1, timeout=120)
        rolled = admin.post("/admin/rollback")
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["model_version"] == "base"
        load.wait_seen("base", load.seen("base") + 2, timeout=120)
    results = load.snapshot()
    assert load.failed() == []
    order = [a.version for a in results]
    assert [order[0]] + [b for a, b in itertools.pairwise(order) if a != b] == [
        "base",
        good.id,
        "base",
    ]
    base_texts = {a.text for a in results if a.version == "base"}
    adapted_texts = {a.text for a in results if a.version == good.id}
    # Greedy: each version writes its own text (vLLM may drift late when a request shares
    # a batch with the adapter's load probe, so no single-text check here).
    assert base_texts.isdisjoint(adapted_texts)
    conn = sqlite3.connect(server.db_path)
    try:
        rows = wait_until(
            lambda: dict(conn.execute("SELECT id, model_version FROM suggestions").fetchall()),
            lambda stored: all(a.suggestion_id in stored for a in results),
            what=f"all {len(results)} suggestions stored",
            interval=0.2,
        )
    finally:
        conn.close()
    assert all(rows[a.suggestion_id] == a.version for a in results)
