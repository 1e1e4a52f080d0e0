"""`prefloop pairs build|export` as a user runs them (a real subprocess), and one loop
through a real `prefloop serve`: suggestions and events over HTTP, then a build."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from prefloop.settings import Settings
from prefloop.store import connect
from prefloop.trainer.pairs import build_pairs, load_pairs
from tests.conftest import ServerProcess, start_server
from tests.trainer.feed import Feed, rewrite


def prefloop(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLOOP_")}
    env["PREFLOOP_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "prefloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    feed = Feed(tmp_path / "prefloop.db")
    try:
        for i in range(5):
            sid = feed.suggestion(["a - b"], prompt=f"# prompt {i}\n")
            feed.events(*rewrite(sid, f"a + b + {i}"))
        bad = feed.suggestion(["a - b"], prompt="# bad\n")
        feed.events(*rewrite(bad, "a * (b + c"))
    finally:
        feed.close()
    yield tmp_path


def test_build_prints_its_report_and_export_writes_jsonl(home: Path) -> None:
    built = prefloop(home, "pairs", "build")
    assert built.returncode == 0, built.stderr
    assert "18 new events" in built.stdout
    assert "added    5 (rewrite_after_dismiss 5)" in built.stdout
    assert "dropped  1 (check_failed 1)" in built.stdout
    # five prompt groups: max(round(0.2 × 5), min(8, 5 // 2)) = 2 held out, the newest
    assert "store    train 3, heldout 2" in built.stdout

    again = prefloop(home, "pairs", "build", "--format", "json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["events_seen"], report["pairs_added"], report["full"]) == (0, 0, False)

    full = prefloop(home, "pairs", "build", "--full", "--format", "json")
    assert json.loads(full.stdout)["events_seen"] == 18

    out = home / "export" / "pairs.jsonl"
    exported = prefloop(
        home, "pairs", "export", "--split", "train", "--since", "1h", "-o", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert f"wrote 3 pairs to {out}" in exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["chosen"] for r in rows] == [f"a + b + {i}" for i in range(3)]
    assert {r["source"] for r in rows} == {"rewrite_after_dismiss"}

    stdout = prefloop(home, "pairs", "export")
    assert stdout.returncode == 0
    every = [json.loads(line) for line in stdout.stdout.splitlines()]
    assert [r["chosen"] for r in every] == [f"a + b + {i}" for i in range(5)]
    assert [r["id"] for r in every[:3]] == [r["id"] for r in rows]
    heldout = prefloop(home, "pairs", "export", "--split", "heldout").stdout.splitlines()
    assert [json.loads(line)["chosen"] for line in heldout] == ["a + b + 3", "a + b + 4"]


def test_errors_exit_non_zero_and_change_nothing(home: Path, tmp_path_factory: Any) -> None:
    empty = tmp_path_factory.mktemp("empty")
    for args in (("pairs", "build"), ("pairs", "export")):
        result = prefloop(empty, *args)
        assert result.returncode == 1
        assert "error: no database at" in result.stderr
    assert list(empty.iterdir()) == []

    bad = prefloop(home, "pairs", "export", "--since", "lately", "-o", str(home / "x.jsonl"))
    assert bad.returncode == 2 and "cannot read --since 'lately'" in bad.stderr
    assert not (home / "x.jsonl").exists()

    wrong = prefloop(home, "pairs", "export", "--split", "test")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
    with closing(sqlite3.connect(home / "prefloop.db")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pairs").fetchone() == (0,)


def event(sid: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": kind, **extra}


@pytest.fixture(scope="module")
def embedded_server(
    tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path
) -> Iterator[ServerProcess]:
    """The service on the embedded SmolLM2 (a random tiny model often suggests nothing)."""
    server = start_server(tmp_path_factory.mktemp("serve"), embedded_model_dir)
    yield server
    server.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_feedback_through_the_service_becomes_pairs(embedded_server: ServerProcess) -> None:
    server = embedded_server
    prefix = "def scale(values, factor):\n    return "
    with server.client() as client:
        sids = []
        for i in range(2):
            response = client.post(
                "/v1/suggestions",
                json={
                    "prefix": prefix,
                    "suffix": f"\n\nprint(scale([{i}], 2))\n",
                    "language": "python",
                    "path": "src/scale.py",
                    "max_tokens": 16,
                },
            )
            assert response.status_code == 200, response.text
            sids.append(response.json()["suggestion_id"])
        edited, dismissed = sids
        batch = [
            event(edited, "shown"),
            event(edited, "accepted", text="x"),
            event(
                edited,
                "retained",
                checkpoint="30s",
                similarity=0.3,
                text="[v * factor for v in values]",
            ),
            event(dismissed, "shown"),
            event(dismissed, "dismissed", reason="typed_over", shown_ms=900.0),
            event(dismissed, "rewritten", text="list(map(lambda v: v * factor, values))"),
        ]
        response = client.post("/v1/events", json={"events": batch})
        assert response.status_code == 200, response.text
        assert len(response.json()["stored"]) == 6
    # the service keeps running (and writing) while the build reads its store
    report = build_pairs(server.db_path, Settings(home=server.home))
    assert report.events_seen == 6
    with closing(connect(server.db_path)) as conn:
        splits = {split: load_pairs(conn, split) for split in ("train", "heldout")}
        pairs = {p["evidence"]["suggestion"]: p for p in splits["train"] + splits["heldout"]}
        stored = dict(
            conn.execute(
                "SELECT id, prompt FROM suggestions WHERE id IN (?, ?)", (edited, dismissed)
            ).fetchall()
        )
        candidates = {
            sid: (json.loads(c) or [{"text": ""}])[0]["text"]
            for sid, c in conn.execute(
                "SELECT id, candidates FROM suggestions WHERE id IN (?, ?)", (edited, dismissed)
            )
        }
    expected = {}
    for sid, chosen, source in (
        (edited, "[v * factor for v in values]", "edit_after_accept"),
        (dismissed, "list(map(lambda v: v * factor, values))", "rewrite_after_dismiss"),
    ):
        if len(candidates[sid].strip()) >= 3:  # a random model can suggest next to nothing
            expected[sid] = (chosen, source)
    assert expected, f"the model suggested nothing usable: {candidates}"
    assert set(pairs) == set(expected)
    # a prompt group or two: max(round(0.2 × groups), min(8, groups // 2)) held out
    groups = len({pairs[sid]["prompt"] for sid in expected})
    assert (report.train, report.heldout) == (len(expected) - groups // 2, groups // 2)
    for sid, (chosen, source) in expected.items():
        pair = pairs[sid]
        # exactly the prompt the engine saw: the service's template, header and truncation
        assert pair["prompt"] == stored[sid] and pair["prompt"].endswith(prefix)
        assert "File: src/scale.py" in pair["prompt"]
        assert (pair["chosen"], pair["rejected"], pair["source"]) == (
            chosen,
            candidates[sid],
            source,
        )
        assert len(pair["evidence"]["events"]) == 2
