"""The whole learning loop on the embedded model, through the real processes.

A real ``prefloop serve`` answers a simulated developer who consistently prefers
type-annotated signatures; the feedback becomes preference pairs, a DPO run trains a LoRA
adapter in its own process, the gate passes, the registry promotes it, and the running
service hot-swaps it in while an editor keeps asking for suggestions. The served
completions on held-out functions (never trained on) must then lean toward the taste.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from prefloop.settings import Settings
from prefloop.trainer.demo import format_result, run_demo
from prefloop.trainer.gate import load_probes
from prefloop.trainer.simulate import HELDOUT_TASKS, TRAINING_TASKS
from tests.conftest import shared_home

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_feedback_for_annotated_signatures_moves_the_served_model(
    tmp_path: Path, embedded_model_dir: Path
) -> None:
    home = tmp_path / "loop"
    lines: list[str] = []
    result = run_demo(Settings(home=shared_home()), home=home, rounds=1, report=lines.append)
    print(format_result(result))

    # The base model never annotates; the trained version does on functions it never saw.
    assert result.version_before == "base"
    assert result.version_after != "base"
    assert result.after > result.before, format_result(result)
    assert result.after >= 0.5, format_result(result)

    # The run passed its gate and is the promoted version.
    run = result.run
    assert run["status"] == "succeeded"
    assert run["gate"]["passed"] is True
    prefs = run["gate"]["preferences"]
    assert prefs["candidate"]["accuracy"] >= prefs["current"]["accuracy"]
    assert prefs["candidate"]["margin"] > prefs["current"]["margin"]
    probes = run["gate"]["probes"]
    assert probes["candidate"]["degenerate"] <= probes["current"]["degenerate"]
    # At most one Python probe may flip to invalid (the demo's gate lets one of its five
    # flip: a 135M model's probe completions are noise after their first line). Counted in
    # probes, as the gate means it, not as a difference of rates.
    probe_set = load_probes(run["gate"]["probe_set"])
    assert probes["candidate"]["probes"] == probes["current"]["probes"] == len(probe_set["probes"])
    python_probes = sum(1 for probe in probe_set["probes"] if probe["language"] == "python")
    valid = {
        side: round(probes[side]["syntax_valid_rate"] * python_probes)
        for side in ("candidate", "current")
    }
    assert valid["candidate"] >= valid["current"] - 1, (valid, python_probes)

    # The swap happened under load without failing a request, and both versions answered.
    assert result.failed_requests == []
    assert result.versions_served.get("base", 0) >= 1
    assert result.versions_served.get(result.version_after, 0) >= 1

    with sqlite3.connect(home / "prefloop.db") as conn:
        # Pairs came from the developer's rewrites, with their evidence, and no held-out
        # prompt group leaked into training.
        sources = dict(conn.execute("SELECT source, count(*) FROM pairs GROUP BY source"))
        assert sources.get("rewrite_after_dismiss", 0) >= len(TRAINING_TASKS) // 2
        evidence = json.loads(conn.execute("SELECT evidence FROM pairs LIMIT 1").fetchone()[0])
        assert evidence
        leaked = conn.execute(
            "SELECT count(*) FROM pairs a JOIN pairs b ON a.prompt = b.prompt "
            "WHERE a.split = 'train' AND b.split = 'heldout'"
        ).fetchone()[0]
        assert leaked == 0
        # Registry: the new version is promoted; suggestions record who made them.
        status = dict(conn.execute("SELECT id, status FROM model_versions"))
        assert status[result.version_after] == "promoted"
        held_out_names = {task.name for task in HELDOUT_TASKS}
        versions = {
            row[0]
            for row in conn.execute("SELECT model_version, prefix FROM suggestions")
            if any(f"def {name}(" in row[1] for name in held_out_names)
        }
        assert {"base", result.version_after} <= versions
