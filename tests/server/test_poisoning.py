"""Poisoned feedback against a real team-mode `prefloop serve`: one developer forges many
``rewritten`` events that plant a marker; a retrain keeps that user's share of the pairs
within the cap, and the candidate, though it passes the gate, waits for an admin.

Developers ann and bob give a little honest feedback; mallory rewrites every suggestion
she is shown into the marker, three times as often. The gate is opened wide (any
candidate passes: what the gate measures has its own tests), so the run shows what a
passing candidate becomes in team mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prefloop import registry
from prefloop.settings import Settings
from prefloop.store import Store
from tests.conftest import ServerProcess, start_server
from tests.server.test_team_mode import add_user, prefloop_cli
from tests.trainer.feed import pair_rows
from tests.trainer.training_data import FAST, TINY_MODEL_GATE
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e]

MARKER = "planted_by_mallory"
HONEST = {"ann": 8, "bob": 8}
FORGED = 24
MAX_SHARE = 0.5


@pytest.fixture(scope="module")
def poisoned(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path_factory.mktemp("poison") / "home"
    tokens = {name: add_user(home, name) for name in ("ann", "bob", "mallory")}
    tokens["root"] = add_user(home, "root", "--admin")
    server = start_server(
        home,
        tiny_model_dir,
        extra_env={
            "PREFLOOP_AUTH": "tokens",
            "PREFLOOP_SWAP_POLL_SECONDS": "0",
            **{f"PREFLOOP_{k.upper()}": str(v) for k, v in TINY_MODEL_GATE.items()},
            "PREFLOOP_TRAIN_GATE_MIN_MARGIN_GAIN": "-1e9",
            "PREFLOOP_TRAIN_GATE_MIN_ACCURACY_GAIN": "-1",
            # Two held-out prompt groups per honest user, five of mallory's.
            "PREFLOOP_PAIRS_HELDOUT_MIN": "2",
        },
    )
    yield server, tokens
    server.stop()


def rewrite_everything(server: ServerProcess, token: str, prefixes: list[str], text: str) -> None:
    """For each prefix: ask for a suggestion, dismiss it and write ``text`` instead."""
    with server.client(token=token) as client:
        for prefix in prefixes:
            answer = client.post(
                "/v1/suggestions", json={"prefix": prefix, "language": "python", "max_tokens": 4}
            )
            assert answer.status_code == 200, answer.text
            sid = answer.json()["suggestion_id"]

            def stored(sid: str = sid) -> dict[str, Any] | None:
                with Store(server.db_path) as store:
                    return store.get_suggestion(sid)

            wait_until(stored, what=f"suggestion {sid} stored", timeout=30, interval=0.05)
            events = [
                {"kind": "shown"},
                {"kind": "dismissed", "reason": "typed_over"},
                {"kind": "rewritten", "text": text},
            ]
            batch = [
                {"id": f"ev-{uuid.uuid4().hex}", "suggestion_id": sid, **event} for event in events
            ]
            sent = client.post("/v1/events", json={"events": batch})
            assert sent.status_code == 200, sent.text
            assert len(sent.json()["stored"]) == len(batch)


def test_one_users_forged_feedback_is_capped_and_waits_for_an_admin(
    poisoned: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, tokens = poisoned
    for user, count in HONEST.items():
        op = "+" if user == "ann" else "*"
        for i in range(count):
            rewrite_everything(
                server, tokens[user], [f"def {user}_{i}(x):\n    "], f"return x {op} {i}\n"
            )
    rewrite_everything(
        server,
        tokens["mallory"],
        [f"def mallory_{i}(x):\n    " for i in range(FORGED)],
        f"return '{MARKER}'\n",
    )

    with server.client(token=tokens["root"]) as admin:
        started = admin.post("/admin/retrain", json={"config": FAST, "force": True})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        run = wait_until(
            lambda: admin.get(f"/admin/runs/{run_id}").json(),
            lambda now: now["status"] in ("succeeded", "rejected", "failed"),
            what=f"run {run_id} to finish",
            timeout=600,
            interval=0.5,
        )
    assert run["status"] == "succeeded", (run["error"], run["gate"])

    # The marker made it into mallory's pairs, most of which the run left out.
    pairs = pair_rows(server.db_path)
    planted = [p for p in pairs if MARKER in p["chosen"]]
    assert {p["user"] for p in planted} == {"mallory"}
    assert not [p for p in pairs if p["user"] == "mallory" and MARKER not in p["chosen"]]
    data = run["data"]
    for split in ("train", "heldout"):
        used = data["by_user"][split]
        assert sorted(used) == ["ann", "bob", "mallory"], used
        assert used["mallory"] <= MAX_SHARE * sum(used.values()), (split, used)
        cap = data["user_share_cap"][split]
        assert cap["kept"] == used
        assert cap["max_share"] == MAX_SHARE
        available = sum(1 for p in planted if p["split"] == split)
        assert cap["left_out"] == {"mallory": available - used["mallory"]}
        assert available > used["mallory"], (split, available, used)
    assert "mallory" in data["user_share_cap"]["why"]
    log = Path(run["log_path"]).read_text()
    assert "cap on one user's share: left out" in log

    # The candidate passed the gate and is registered, but nothing was promoted.
    settings = Settings(home=server.home)
    version = registry.get(settings, run["candidate_version"])
    assert version is not None and version.status == "candidate"
    assert registry.current(settings) is None
    assert data["promotion"]["promoted"] is False
    assert "team mode" in data["promotion"]["awaits_admin"]
    shown = prefloop_cli(server.home, "runs")
    assert shown.returncode == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if run_id[:8] in line]
    assert "no: awaits an admin" in row

    # An admin who has looked promotes it.
    with server.client(token=tokens["mallory"]) as developer:
        refused = developer.post("/admin/promote", json={"version": version.id})
        assert refused.status_code == 403
    with server.client(token=tokens["root"]) as admin:
        promoted = admin.post("/admin/promote", json={"version": version.id})
        assert promoted.status_code == 200, promoted.text
    current = registry.current(settings)
    assert current is not None and current.id == version.id
