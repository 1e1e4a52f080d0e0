"""The admin API of training runs on a real `prefloop serve` process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop import registry
from prefloop.settings import Settings
from tests.conftest import ServerProcess, start_server
from tests.trainer.training_data import FAST, LONG, TINY_MODEL_GATE, add_pairs
from tests.waiting import wait_until

TOKEN = "test-admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[ServerProcess]:
    env = {
        "PREFLOOP_ADMIN_TOKEN": TOKEN,
        "PREFLOOP_TRAIN_MIN_NEW_PAIRS": "1",
        # A gate no candidate can pass: the run must be rejected and nothing served changes.
        "PREFLOOP_TRAIN_GATE_MIN_MARGIN_GAIN": "1e9",
        **{f"PREFLOOP_{k.upper()}": str(v) for k, v in TINY_MODEL_GATE.items()},
    }
    srv = start_server(tmp_path_factory.mktemp("home"), tiny_model_dir, extra_env=env)
    yield srv
    srv.stop()


def _wait(client: httpx.Client, run_id: str, timeout: float = 300) -> dict[str, Any]:
    run: dict[str, Any] = wait_until(
        lambda: client.get(f"/admin/runs/{run_id}", headers=AUTH).json(),
        lambda now: now["status"] in ("succeeded", "rejected", "failed"),
        what=f"run {run_id} to finish",
        timeout=timeout,
        interval=0.3,
    )
    return run


def test_admin_routes_need_the_token(server: ServerProcess) -> None:
    with server.client() as client:
        for method, path in (
            ("POST", "/admin/retrain"),
            ("GET", "/admin/runs"),
            ("GET", "/admin/runs/x"),
        ):
            assert client.request(method, path).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert client.request(method, path, headers=wrong).status_code == 401
        assert client.get("/admin/runs/no-such-run", headers=AUTH).status_code == 404
        assert client.get("/admin/runs", headers=AUTH).json() == {"runs": []}
        # No pairs yet: refused at once, and no run is recorded.
        refused = client.post("/admin/retrain", headers=AUTH)
        assert refused.status_code == 422
        assert refused.json() == {
            "error": "no training pairs yet: the feedback log has none to offer",
            "detail": [],
        }
        assert client.get("/admin/runs", headers=AUTH).json() == {"runs": []}
        health = client.get("/healthz").json()
        assert health["trainer"]["schedule"] == "off"
        assert health["trainer"]["last_run"] is None


def test_retrain_202_then_409_while_running(server: ServerProcess) -> None:
    add_pairs(server.db_path, train=16, heldout=2)
    with server.client() as client:
        bad = client.post("/admin/retrain", json={"config": {"bta": 1}}, headers=AUTH)
        assert bad.status_code == 422 and "bta" in bad.json()["error"]
        first = client.post("/admin/retrain", json={"config": LONG}, headers=AUTH)
        assert first.status_code == 202, first.text
        run_id = first.json()["run_id"]
        second = client.post("/admin/retrain", json={"config": FAST}, headers=AUTH)
        assert second.status_code == 409
        assert "already running" in second.json()["error"]
        runs = client.get("/admin/runs", headers=AUTH).json()["runs"]
        assert [r["id"] for r in runs] == [run_id] and runs[0]["reason"] == "admin"
        # Local mode: the admin token is the local user's.
        assert runs[0]["requested_by"] == Settings(home=server.home).user
        run = wait_until(
            lambda: client.get(f"/admin/runs/{run_id}", headers=AUTH).json(),
            lambda now: now["status"] == "running" and now["pid"],
            what=f"run {run_id} to run in its own process",
            timeout=120,
            interval=0.2,
        )
        assert client.get("/healthz").json()["trainer"]["running"] is True
        os.kill(run["pid"], signal.SIGKILL)
        run = _wait(client, run_id, 60)
        assert run["status"] == "failed" and "SIGKILL" in run["error"]


def test_rejected_candidate_changes_nothing_served(server: ServerProcess) -> None:
    settings = Settings(home=server.home)
    with server.client() as client:
        before = client.get("/healthz").json()["model_version"]
        started = client.post("/admin/retrain", json={"config": FAST, "force": True}, headers=AUTH)
        assert started.status_code == 202, started.text
        run = _wait(client, started.json()["run_id"])
        assert run["status"] == "rejected", run["error"]
        assert run["candidate_version"] == "v1"
        assert registry.current(settings) is None
        assert registry.get(settings, "v1").status == "rejected"
        # The service looks at the registry now instead of at its next poll.
        reload = client.post("/admin/reload", headers=AUTH)
        assert reload.status_code == 200 and reload.json()["model_version"] == "base"
        health = client.get("/healthz").json()
        assert health["model_version"] == before == "base"
        assert health["trainer"]["last_run"]["status"] == "rejected"
        suggestion = client.post(
            "/v1/suggestions",
            json={"prefix": "def f():\n    return ", "suffix": "", "language": "python"},
        )
        assert suggestion.status_code == 200
        assert suggestion.json()["model_version"] == "base"


def test_passing_candidate_is_promoted_and_served(tmp_path: Path, tiny_model_dir: Path) -> None:
    env = {
        "PREFLOOP_ADMIN_TOKEN": TOKEN,
        "PREFLOOP_TRAIN_MIN_NEW_PAIRS": "1",
        "PREFLOOP_SWAP_POLL_SECONDS": "0.5",
        **{f"PREFLOOP_{k.upper()}": str(v) for k, v in TINY_MODEL_GATE.items()},
    }
    home = tmp_path / "home"
    srv = start_server(home, tiny_model_dir, extra_env=env)
    try:
        add_pairs(srv.db_path, train=12, heldout=4)
        with srv.client() as client:
            started = client.post("/admin/retrain", json={"config": FAST}, headers=AUTH)
            assert started.status_code == 202, started.text
            run = _wait(client, started.json()["run_id"])
            assert run["status"] == "succeeded", (run["error"], run["gate"])
            health = wait_until(
                lambda: client.get("/healthz").json(),
                lambda now: now["model_version"] == run["candidate_version"],
                what=f"{run['candidate_version']} to be served",
                timeout=30,
                interval=0.3,
            )
            assert health["model_version"] == run["candidate_version"] == "v1"
            assert health["trainer"]["last_run"]["status"] == "succeeded"
    finally:
        srv.stop()
