"""Training runs end to end on the tiny model: start, gate, register/promote, crash, lock."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from prefloop import registry
from prefloop.server.schedule import TrainingSchedule, parse_schedule
from prefloop.store import migrate, utcnow
from prefloop.train_config import load_config
from prefloop.trainer.cli_train import _gate_cell
from prefloop.trainer.probing import load_probes
from prefloop.trainer.run import queue_run, run_in_process
from prefloop.training import (
    NotEnoughPairs,
    RunInProgress,
    get_run,
    list_runs,
    lock_held,
    pair_counts,
    recover_stale,
    start_run,
    wait_run,
)
from prefloop.users import add_user
from tests.trainer.training_data import FAST, LONG, TINY_MODEL_GATE, add_pairs, fast_settings
from tests.waiting import wait_until

TIMEOUT = 300


def _wait_for_step(settings, run_id: str, step: int = 1, timeout: float = 180) -> dict:  # type: ignore[no-untyped-def]
    def look() -> dict[str, Any]:
        run: dict[str, Any] = get_run(settings, run_id)
        assert run["status"] in ("queued", "running"), run
        return run

    return wait_until(
        look,
        lambda run: run["status"] == "running" and (run["metrics"] or {}).get("step", 0) >= step,
        what=f"run {run_id} to reach step {step}",
        timeout=timeout,
        interval=0.2,
    )


def wait_check(schedule: TrainingSchedule, *, after: str, timeout: float = 30) -> dict[str, Any]:
    """The schedule's first look at the data that began after ``after`` (a timestamp)."""
    check: dict[str, Any] = wait_until(
        lambda: schedule.last_check,
        lambda seen: seen is not None and seen["at"] > after,
        what=f"a check of the schedule after {after!r}",
        timeout=timeout,
        interval=0.1,
    )
    return check


def test_run_trains_gates_registers_and_promotes(tiny_model_dir: Path, tmp_path: Path) -> None:
    # ann's pairs outnumber bob's two to one; with no cap on one user's share (it has its
    # own tests, test_user_share.py) every pair is used.
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_max_user_share=1.0)
    ids = add_pairs(settings.db_path, train=12, heldout=4, users=("ann", "bob", "ann"))
    run_id = start_run(settings, config=load_config(env={}, overrides=FAST))
    run = wait_run(settings, run_id, TIMEOUT)
    assert run["status"] == "succeeded", (run["error"], run["gate"])
    assert run["reason"] == "manual"
    assert run["model_version"] == "base" and run["parent_version"] == "base"
    assert run["reference_model"].startswith("base")
    assert run["data"]["train"] == 12 and run["data"]["heldout"] == 4
    assert len(run["data"]["pair_ids_sha256"]) == 64
    assert run["metrics"]["steps"] == FAST["max_steps"] and run["metrics"]["losses"]
    assert run["config"]["learning_rate"] == FAST["learning_rate"]
    gate = run["gate"]
    assert gate["passed"] and gate["current"] == "base"
    assert gate["preferences"]["candidate"]["pairs"] == 4
    # held-out figures per user beside the overall ones: ann has pairs 0, 2, 3; bob 1
    by_user = {u["user"]: u for u in gate["preferences"]["by_user"]}
    assert sorted(by_user) == ["ann", "bob"]
    assert [by_user[u]["candidate"]["pairs"] for u in ("ann", "bob")] == [3, 1]
    assert [by_user[u]["current"]["pairs"] for u in ("ann", "bob")] == [3, 1]
    assert gate["probes"]["candidate"]["probes"] == len(load_probes(gate["probe_set"])["probes"])
    version = registry.current(settings)
    assert version is not None and version.id == run["candidate_version"] == "v1"
    assert version.run_id == run_id and version.parent == "base"
    assert run["data"]["promotion"] == {"promoted": True}  # local mode promotes
    assert run["data"]["by_user"] == {
        "train": {"ann": 8, "bob": 4},
        "heldout": {"ann": 3, "bob": 1},
    }
    assert run["data"]["user_share_cap"] == {"train": None, "heldout": None}
    assert (Path(version.adapter_path) / "adapter_config.json").is_file()
    assert not lock_held(settings)
    log = (settings.runs_dir / f"{run_id}.log").read_text()
    assert "step 1/" in log and "promoted v1" in log
    assert "held-out pairs of user ann: 3, accuracy" in log
    assert "held-out pairs of user bob: 1, accuracy" in log
    for pair_id in ids:  # pair text stays in the database, not in the log
        assert pair_id not in log
    assert "a + b" not in log

    # The next run trains a fresh adapter (the default) and compares it against v1.
    add_pairs(settings.db_path, train=4, heldout=0)
    second = wait_run(
        settings, start_run(settings, config=load_config(env={}, overrides=FAST)), TIMEOUT
    )
    assert second["model_version"] == "v1" and second["parent_version"] == "base"
    assert second["reference_model"] == "base (adapter disabled)"
    assert second["gate"]["current"] == "v1"
    assert second["status"] in ("succeeded", "rejected")

    # Asked to, a run continues from the served adapter, its frozen copy the reference.
    served = registry.current(settings)
    assert served is not None
    add_pairs(settings.db_path, train=4, heldout=0)
    overrides = {**FAST, "reference": "previous"}
    third = wait_run(
        settings, start_run(settings, config=load_config(env={}, overrides=overrides)), TIMEOUT
    )
    assert third["model_version"] == served.id == third["parent_version"]
    assert third["reference_model"].startswith(served.id)
    assert third["gate"]["current"] == served.id


def test_planted_failing_gate_promotes_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_min_margin_gain=1e9)
    add_pairs(settings.db_path, train=8, heldout=2)
    run = wait_run(
        settings, start_run(settings, config=load_config(env={}, overrides=FAST)), TIMEOUT
    )
    assert run["status"] == "rejected"
    assert any("margin" in reason for reason in run["gate"]["reasons"])
    assert registry.current(settings) is None
    versions = registry.list_versions(settings)
    assert [(v.id, v.status) for v in versions] == [("v1", "rejected")]
    with pytest.raises(registry.NotPromotable):
        registry.promote(settings, "v1", notify=False)


def test_not_enough_pairs_is_refused_and_records_nothing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_min_new_pairs=5)
    migrate(settings.db_path)
    with pytest.raises(NotEnoughPairs, match="no training pairs"):
        start_run(settings)
    add_pairs(settings.db_path, train=3, heldout=1)
    with pytest.raises(NotEnoughPairs, match="only 4 new pair"):
        start_run(settings)
    assert list_runs(settings) == []
    assert list(settings.runs_dir.glob("*.log")) == []
    assert pair_counts(settings) == {"train": 3, "heldout": 1, "new": 4}
    assert not lock_held(settings)


def test_candidate_trained_the_wrong_way_is_refused_with_its_figures(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A planted candidate that is no better: its training pairs prefer what the held-out
    pairs reject. The gate refuses it, says which figure missed by how much against what
    interval, and promotes nothing."""
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_behaviour_contexts=3)
    add_pairs(settings.db_path, train=12, heldout=4, swapped=True)
    run = wait_run(
        settings, start_run(settings, config=load_config(env={}, overrides=FAST)), TIMEOUT
    )
    assert run["status"] == "rejected", (run["error"], run["gate"])
    gate = run["gate"]
    prefs = gate["preferences"]
    assert prefs["margin_gain"] < 0
    assert prefs["margin_gain_interval"]["high"] < 0  # worse on every resample
    failed = {f["figure"]: f for f in prefs["findings"] if not f["passed"]}
    assert failed["heldout_margin_gain"]["shortfall"] > 0
    assert "paired bootstrap over 4 pairs" in failed["heldout_margin_gain"]["noise"]
    assert any(r.startswith("held-out margin gain -") for r in gate["reasons"])
    # The behavioural check ran on the held-out contexts (suggestions are not stored).
    assert gate["behaviour"]["candidate"]["contexts"] == 3
    assert "completion" not in json.dumps(gate["behaviour"])
    assert registry.current(settings) is None
    assert _gate_cell(gate).startswith("fail: heldout_margin_gain short ")
    log = (settings.runs_dir / f"{run['id']}.log").read_text()
    assert "gate FAIL heldout_margin_gain" in log and "gate failed" in log


def test_fewer_heldout_pairs_than_the_floor_are_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_min_heldout=4)
    add_pairs(settings.db_path, train=12, heldout=3)
    with pytest.raises(
        NotEnoughPairs, match=r"only 3 held-out pair\(s\) for 15 pairs.*no fewer than 4"
    ):
        start_run(settings, config=load_config(env={}, overrides=FAST), force=True)
    # The floor grows with the data: a quarter of 16 pairs is 4.
    growing = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_heldout_share=0.25)
    add_pairs(settings.db_path, train=1, heldout=0)
    with pytest.raises(NotEnoughPairs, match="no fewer than 4"):
        start_run(growing, config=load_config(env={}, overrides=FAST), force=True)
    assert list_runs(settings) == []
    assert registry.list_versions(settings) == []
    # Enough held out: five of 18 pairs reach ceil(0.25 * 18) = 5, and the gate decides.
    add_pairs(settings.db_path, train=0, heldout=2)
    run = wait_run(
        growing,
        start_run(growing, config=load_config(env={}, overrides=FAST), force=True),
        TIMEOUT,
    )
    assert run["data"]["heldout"] == 5
    assert run["gate"]["preferences"]["floor"] == 5
    assert run["status"] == "succeeded", run["gate"]["reasons"]


def test_killed_run_leaves_registry_untouched(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    add_pairs(settings.db_path, train=16, heldout=2)
    run_id = start_run(settings, config=load_config(env={}, overrides=LONG))
    running = _wait_for_step(settings, run_id)
    assert lock_held(settings)
    # A second run is refused while this one holds the lock.
    with pytest.raises(RunInProgress):
        start_run(settings, config=load_config(env={}, overrides=FAST))
    os.kill(running["pid"], signal.SIGKILL)
    run = wait_run(settings, run_id, 60)
    assert run["status"] == "failed"
    assert "signal 9" in run["error"] and "SIGKILL" in run["error"]
    assert not lock_held(settings)
    assert registry.list_versions(settings) == [] and registry.current(settings) is None
    assert not settings.adapters_dir.is_dir() or all(
        p.name == ".staging" for p in settings.adapters_dir.iterdir()
    )


def test_second_retrain_from_the_cli_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    add_pairs(settings.db_path, train=16, heldout=2)
    run_id = start_run(settings, config=load_config(env={}, overrides=LONG))
    try:
        _wait_for_step(settings, run_id)
        env = {
            **os.environ,
            "PREFLOOP_HOME": str(settings.home),
            "PREFLOOP_MODEL": str(tiny_model_dir),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "prefloop", "retrain", "--force", "--no-wait"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1
        assert "already running" in proc.stderr
        listing = subprocess.run(
            [sys.executable, "-m", "prefloop", "runs"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listing.returncode == 0 and run_id in listing.stdout and "running" in listing.stdout
    finally:
        run = get_run(settings, run_id)
        if run["status"] in ("queued", "running"):
            os.kill(run["pid"], signal.SIGKILL)
        run = wait_run(settings, run_id, 60)
    assert run["status"] == "failed" and "SIGKILL" in run["error"], run["error"]
    assert len(list_runs(settings)) == 1


def test_stale_running_run_is_marked_failed(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    migrate(settings.db_path)
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:
        conn.execute(
            "INSERT INTO training_runs (id, created_at, status, pid) VALUES "
            "('r-old', ?, 'running', 999999)",
            (utcnow(),),
        )
    assert recover_stale(settings) == ["r-old"]
    run = get_run(settings, "r-old")
    assert run["status"] == "failed" and "without finishing" in run["error"]
    assert recover_stale(settings) == []


def _imported_by(module: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules starting with one of ``prefixes`` that importing ``module`` loads."""
    code = (
        f"import sys, {module}\n"
        f"print('\\n'.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout.split()


def test_training_control_imports_no_trainer_and_no_ml_library() -> None:
    """The service and the CLI start runs through prefloop.training; training itself is in
    the training process."""
    heavy = ("torch", "transformers", "trl", "peft", "datasets", "prefloop.trainer")
    assert _imported_by("prefloop.training", heavy) == []
    assert _imported_by("prefloop.server.app", ("prefloop.trainer", "prefloop.lsp")) == []


def test_schedule_parsing() -> None:
    assert parse_schedule("off").kind == "off"
    assert parse_schedule("interval:6h").seconds == 6 * 3600
    assert parse_schedule("interval:30s").seconds == 30
    assert parse_schedule("cron:0 3 * * *").cron == "0 3 * * *"
    assert parse_schedule("15 * * * 1-5").kind == "cron"
    for bad in ("every day", "interval:6x", "cron:99 * * * *", "interval:0s"):
        with pytest.raises(ValueError, match="train_schedule"):
            parse_schedule(bad)


def test_schedule_starts_a_run_only_with_enough_new_pairs(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAST.items():
        monkeypatch.setenv(f"PREFLOOP_TRAIN_{key.upper()}", str(value))
    settings = fast_settings(
        tmp_path / "home", tiny_model_dir, train_schedule="interval:1s", train_min_new_pairs=6
    )
    add_pairs(settings.db_path, train=3, heldout=1)
    schedule = TrainingSchedule(settings)
    schedule.start()
    try:
        assert schedule.next_run_time() is not None
        check = wait_check(schedule, after="")
        assert list_runs(settings) == []
        assert check["started"] is None and "only 4 new pair" in check["why_not"]
        add_pairs(settings.db_path, train=4, heldout=1)
        runs = wait_until(
            lambda: list_runs(settings), what="the schedule to start a run", interval=0.2
        )
        assert len(runs) == 1 and runs[0]["reason"] == "schedule"
        run = wait_run(settings, runs[0]["id"], TIMEOUT)
        assert run["status"] in ("succeeded", "rejected"), run["error"]
        # The data it used is no longer new: later ticks start nothing.
        check = wait_check(schedule, after=run["finished_at"])
        while "already running" in (check["why_not"] or ""):  # its process is exiting
            check = wait_check(schedule, after=check["at"])
        assert check["started"] is None and "new pair" in check["why_not"]
        assert len(list_runs(settings)) == 1
        described = schedule.describe()
        assert described["schedule"] == "every 1s"
        assert described["last_run"]["id"] == run["id"]
    finally:
        schedule.stop()


def test_cli_retrain_waits_and_exits_by_outcome(tiny_model_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = fast_settings(home, tiny_model_dir)
    add_pairs(settings.db_path, train=8, heldout=2)
    config = tmp_path / "train.toml"
    config.write_text("".join(f"{k} = {v!r}\n" for k, v in FAST.items()))
    env = {
        **os.environ,
        "PREFLOOP_HOME": str(home),
        "PREFLOOP_MODEL": str(tiny_model_dir),
        "PREFLOOP_TRAIN_MIN_NEW_PAIRS": "100",
        **{f"PREFLOOP_{k.upper()}": str(v) for k, v in TINY_MODEL_GATE.items()},
        "PREFLOOP_TRAIN_GATE_MIN_MARGIN_GAIN": "1e9",
    }

    def retrain(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "prefloop", "retrain", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    few = retrain("--config", str(config))
    assert few.returncode == 1 and "only 10 new pair(s)" in few.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("betta = 1\n")
    refused = retrain("--config", str(bad), "--force")
    assert refused.returncode == 2 and "betta" in refused.stderr
    rejected = retrain("--config", str(config), "--force")
    assert rejected.returncode == 3, rejected.stderr
    assert "rejected by the gate" in rejected.stdout
    (run,) = list_runs(settings)
    assert run["status"] == "rejected" and run["reason"] == "cli"
    assert run["requested_by"] == settings.user  # the local user asked
    assert run["config"]["max_steps"] == FAST["max_steps"]
    shown = subprocess.run(
        [sys.executable, "-m", "prefloop", "runs", "show", run["id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and '"status": "rejected"' in shown.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "prefloop", "runs", "show", "r-none"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "no training run r-none" in missing.stderr


def test_queued_run_can_be_carried_out_in_this_process(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_auto_promote=False)
    add_pairs(settings.db_path, train=8, heldout=2)
    run_id = queue_run(settings, config=load_config(env={}, overrides=FAST))
    assert get_run(settings, run_id)["status"] == "queued"
    assert run_in_process(settings, run_id) == "succeeded"
    run = wait_run(settings, run_id, 5)
    assert run["pid"] == os.getpid() and run["candidate_version"] == "v1"
    # Registered, but not promoted: train_auto_promote is off, and the run says so.
    assert registry.get(settings, "v1").status == "candidate"
    assert run["data"]["promotion"]["promoted"] is False
    assert "train_auto_promote is off" in run["data"]["promotion"]["awaits_admin"]
    assert registry.current(settings) is None
    assert not lock_held(settings)


def test_a_run_in_a_teams_home_leaves_promotion_to_an_admin(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A run started where the service's team-mode settings are not in the environment
    (local mode, say `prefloop retrain` in another shell) on a home with user tokens
    promotes nothing either."""
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    assert settings.auth_mode == "local" and settings.train_auto_promote is None
    add_user(settings, "ann")
    add_pairs(settings.db_path, train=8, heldout=2)
    run_id = queue_run(settings, config=load_config(env={}, overrides=FAST))
    assert run_in_process(settings, run_id) == "succeeded"
    run = wait_run(settings, run_id, 5)
    assert registry.get(settings, "v1").status == "candidate"
    assert registry.current(settings) is None
    assert "users with tokens" in run["data"]["promotion"]["awaits_admin"]
