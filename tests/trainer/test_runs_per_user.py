"""Training runs with one adapter per user (``train_adapters = per_user``) on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefloop import registry
from prefloop.store import migrate
from prefloop.train_config import load_config
from prefloop.trainer.run import queue_run, run_in_process
from prefloop.training import NotEnoughPairs, list_runs, start_run, wait_run
from tests.trainer.training_data import FAST, add_pairs, fast_settings

TIMEOUT = 300


def test_each_user_gets_a_candidate_of_their_own_judged_on_their_pairs(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """ann's pairs teach what her held-out pairs prefer (promoted); bob's training pairs
    prefer what his held-out pairs reject (refused on his own gate); carol has no held-out
    pair (skipped, and the run says why)."""
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_adapters="per_user")
    add_pairs(settings.db_path, train=8, heldout=3, users=("ann",))
    add_pairs(settings.db_path, train=8, heldout=3, users=("bob",), swapped=True)
    add_pairs(settings.db_path, train=4, heldout=0, users=("carol",))
    run = wait_run(
        settings, start_run(settings, config=load_config(env={}, overrides=FAST)), TIMEOUT
    )
    assert run["status"] == "succeeded", (run["error"], run["users"])
    users = run["users"]
    assert users is not None and sorted(users) == ["ann", "bob", "carol"]
    assert users["carol"]["status"] == "skipped"
    assert "only 0 held-out pair(s)" in users["carol"]["reason"]
    ann, bob = users["ann"], users["bob"]
    assert (ann["train"], ann["heldout"], bob["train"], bob["heldout"]) == (8, 3, 8, 3)
    assert ann["status"] == "succeeded" and ann["gate_passed"] and ann["promoted"]
    assert bob["status"] == "rejected" and not bob["gate_passed"] and not bob["promoted"]
    assert any("margin" in reason for reason in bob["reasons"])
    # Each gate judged on that user's held-out pairs only, against what they were served.
    assert ann["gate"]["preferences"]["candidate"]["pairs"] == 3
    assert [u["user"] for u in ann["gate"]["preferences"]["by_user"]] == ["ann"]
    assert ann["served_before"] == bob["served_before"] == "base"
    assert run["gate"]["passed"] and run["gate"]["users"] == {"ann": True, "bob": False}
    assert any(reason.startswith("bob: ") for reason in run["gate"]["reasons"])
    assert run["candidate_version"] == ann["candidate_version"]
    assert run["data"]["train"] == 16 and run["data"]["heldout"] == 6
    # Each adapter learns from one user: no cap on a user's share; local mode promotes.
    assert "user_share_cap" not in run["data"]
    assert run["data"]["promotion"] == {"promoted": True}

    versions = {v.id: v for v in registry.list_versions(settings)}
    mine = versions[ann["candidate_version"]]
    his = versions[bob["candidate_version"]]
    assert (mine.for_user, mine.status) == ("ann", "promoted")
    assert (his.for_user, his.status) == ("bob", "rejected")
    assert len(versions) == 2
    assert registry.current(settings) is None  # nothing shared was trained
    served_ann = registry.served_to(settings, "ann")
    assert served_ann is not None and served_ann.id == mine.id
    assert registry.served_to(settings, "bob") is None
    assert {u: v.id for u, v in registry.user_versions(settings).items()} == {"ann": mine.id}
    log = (settings.runs_dir / f"{run['id']}.log").read_text()
    assert "user carol skipped" in log and f"promoted {mine.id} for user ann" in log

    # The next run judges ann's candidate against her own version.
    add_pairs(settings.db_path, train=4, heldout=0, users=("ann",))
    run_id = queue_run(settings, config=load_config(env={}, overrides=FAST), force=True)
    assert run_in_process(settings, run_id) in ("succeeded", "rejected")
    second = wait_run(settings, run_id, 5)
    assert second["users"] is not None
    assert second["users"]["ann"]["served_before"] == mine.id
    assert second["users"]["ann"]["gate"]["current"] == mine.id
    assert second["users"]["bob"]["served_before"] == "base"


def test_no_user_with_enough_pairs_is_refused_and_records_nothing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = fast_settings(
        tmp_path / "home", tiny_model_dir, train_adapters="per_user", train_gate_min_heldout=3
    )
    migrate(settings.db_path)
    # Together they hold four held-out pairs, above the floor of 3; neither alone does.
    add_pairs(settings.db_path, train=6, heldout=2, users=("ann",))
    add_pairs(settings.db_path, train=6, heldout=2, users=("bob",))
    with pytest.raises(NotEnoughPairs, match=r"no user has enough pairs.*ann: only 2 held-out"):
        start_run(settings, config=load_config(env={}, overrides=FAST), force=True)
    assert list_runs(settings) == []
    # The same pairs make one shared adapter.
    shared = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_min_heldout=3)
    run_id = queue_run(shared, config=load_config(env={}, overrides=FAST), force=True)
    assert list_runs(shared)[0]["id"] == run_id
