"""Judge agreement with user signals, and `prefloop stats`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from prefloop.checks.base import CheckResult
from prefloop.protocol import EVENT_ADAPTER
from prefloop.server.judge.agreement import agreement_by_judge, auc, user_signals
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import Outcome
from prefloop.server.judge.pairwise import PairwiseVerdict
from prefloop.server.judge.records import check_rows, llm_rows, pairwise_row, write_critiques
from prefloop.store.critiques import ScoredCritique, SignalEvent
from prefloop.store.writer import Writer
from tests.judge.backlog import Logged, add_backlog


def ev(sid: str, kind: str, index: int = 0, **fields: object) -> dict[str, object]:
    return {"suggestion_id": sid, "candidate_index": index, "kind": kind, **fields}


def signal(
    sid: str,
    kind: str,
    index: int = 0,
    *,
    reason: str | None = None,
    similarity: float | None = None,
) -> SignalEvent:
    return SignalEvent(sid, index, kind, reason, similarity)


def test_user_signals() -> None:
    events = [
        signal("kept", "shown"),
        signal("kept", "accepted"),
        signal("kept", "retained", similarity=0.9),
        signal("edited", "accepted"),
        signal("edited", "retained", similarity=0.8),
        signal("edited", "retained", similarity=0.2),
        signal("escaped", "dismissed", reason="escaped"),
        signal("moved", "dismissed", reason="moved_away"),
        signal("rewritten", "dismissed", reason="replaced_by_newer"),
        signal("rewritten", "rewritten"),
        signal("second", "accepted", index=1),
        signal("shown-only", "shown"),
    ]
    assert user_signals(events) == {
        ("kept", 0): "kept",
        ("edited", 0): "rejected",
        ("escaped", 0): "rejected",
        ("rewritten", 0): "rejected",
        ("second", 1): "kept",
    }


@pytest.mark.parametrize(
    ("kept", "rejected", "expected"),
    [
        ([5.0, 4.0], [1.0, 2.0], 1.0),
        ([1.0, 2.0], [5.0, 4.0], 0.0),
        ([3.0, 3.0], [3.0], 0.5),
        ([5.0, 2.0], [3.0, 1.0], 0.75),
        ([], [1.0], None),
    ],
)
def test_auc(kept: list[float], rejected: list[float], expected: float | None) -> None:
    assert auc(kept, rejected) == expected


def scores(value: int) -> dict[str, int]:
    return dict.fromkeys(
        ("fit", "correctness", "efficiency", "readability", "style", "safety"), value
    )


async def test_prefloop_stats_reports_agreement(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "prefloop.db")
    writer.start()
    item = Logged("python", "a.py", "def f():\n", "", ("    return 1", "    return eval(s)"))
    sids = add_backlog(writer, [item] * 4)
    raw = [
        ev(sids[0], "shown"),
        ev(sids[0], "accepted", text="    return 1"),
        ev(sids[1], "shown"),
        ev(sids[1], "accepted", text="    return 1"),
        ev(sids[2], "shown"),
        ev(sids[2], "dismissed", reason="typed_over"),
        ev(sids[3], "shown"),
        ev(sids[3], "dismissed", reason="escaped"),
    ]
    events = [EVENT_ADAPTER.validate_python({"id": uuid.uuid4().hex, **e}) for e in raw]
    await writer.ingest_events(events)
    judge_scores = {sids[0]: (5, 2), sids[1]: (4, 2), sids[2]: (2, 1), sids[3]: (4, 3)}
    for sid, (first, second) in judge_scores.items():
        ctx = JudgeContext(
            sid, "python", "a.py", item.prefix, "", item.candidates, "tester", "base"
        )
        outcomes = [
            Outcome(0, "ok", scores(first), "fine", attempts=1),
            Outcome(1, "ok", scores(second), "eval", attempts=2),
        ]
        rows = llm_rows(
            ctx, outcomes, judge="llm:engine", judge_model="m", rubric_version="inline-v1"
        )
        checks = [
            (0, CheckResult("syntax", "ast", "ok", 5)),
            (1, CheckResult("syntax", "ast", "ok", 5)),
        ]
        # a pairwise verdict (the second candidate won) scores no single candidate
        verdict = PairwiseVerdict("b", True, ("b",), 2, 1.0, "llm:engine", "m", "pairwise-v1")
        pairwise = pairwise_row(ctx, 0, 1, verdict)
        write_critiques(writer, [*rows, *check_rows(ctx, checks), pairwise]).result(10)
    writer.stop()

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefloop",
            "stats",
            "--format",
            "json",
            "--home",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["suggestions"] == 4 and report["shown"] == 4 and report["accepted"] == 2
    assert report["acceptance_rate"] == 0.5
    judges = {j["judge"]: j for j in report["judges"]}
    assert set(judges) == {"llm:engine", "check:syntax"}, "pairwise rows left out"
    llm = judges["llm:engine"]
    assert llm["kept"] == 2 and llm["rejected"] == 2
    assert llm["mean_kept"] == 4.5 and llm["mean_rejected"] == 3.0
    assert llm["agreement"] == 0.875  # kept 5, 4 vs rejected 2, 4: three wins, one tie
    assert llm["top1"] == 1.0 and llm["top1_suggestions"] == 2
    assert llm["ok"] == 8 and llm["first_try"] == 4 and llm["critiques"] == 8
    assert judges["check:syntax"]["agreement"] == 0.5

    table = subprocess.run(
        [sys.executable, "-m", "prefloop", "stats", "--home", str(tmp_path), "--since", "1h"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    assert "judge agreement with user signals" in table.stdout and "llm:engine" in table.stdout
    assert "acceptance 0.500" in table.stdout


def test_prefloop_stats_without_a_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prefloop", "stats", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "no database" in result.stderr


def test_agreement_leaves_pairwise_rows_out() -> None:
    rows = [
        ScoredCritique("s", 0, "llm:x", "m", "v", "ok", {"fit": 5}, 1),
        ScoredCritique("s", 1, "pairwise:llm:x", "m", "p/v", "failed", None, 4),
    ]
    [only] = agreement_by_judge(rows, {("s", 1): "kept"})
    assert (only.judge, only.critiques, only.failed) == ("llm:x", 1, 0)
