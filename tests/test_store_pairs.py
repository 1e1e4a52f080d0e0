"""The pairs table's readers and the critique convention in the store."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from prefloop.store import connect, migrate, migrations
from prefloop.store import pairs as store
from prefloop.store.critiques import (
    Critique,
    PairwiseFindings,
    check_judge,
    critique_id,
    insert_critiques,
    is_check,
    is_pairwise,
    pairwise_critique_id,
    pairwise_judge,
    read_critiques,
    score_values,
)
from prefloop.store.schema import apply_migrations

# (id, created_at, suggestion_at, split): a and b were made by one build, b's evidence older
PAIRS = [
    ("c", "2026-12-02T00:00:00Z", "2026-12-01T09:00:00Z", "train"),
    ("a", "2026-12-01T00:00:00Z", "2026-11-30T12:00:00Z", "train"),
    ("b", "2026-12-01T00:00:00Z", "2026-11-30T08:00:00Z", "train"),
    ("d", "2026-12-01T00:00:00Z", "2026-11-30T08:00:00Z", "heldout"),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "prefloop.db"
    migrate(path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO pairs (id, created_at, suggestion_at, split, prompt, chosen, rejected, "
            "weight, source, evidence, user, language, model_version) "
            "VALUES (?, ?, ?, ?, 'p', 'x', 'y', 1.0, 'judge_ranking', '{}', 'u', 'python', 'm')",
            PAIRS,
        )
    return path


def test_every_reader_of_the_pairs_table_uses_one_order(db: Path) -> None:
    with closing(connect(db)) as conn:
        assert [p["id"] for p in store.load_pairs(conn, "train")] == ["b", "a", "c"]
        assert [p["id"] for p in store.export_rows(conn, "train")] == ["b", "a", "c"]
        assert [p["id"] for p in store.export_rows(conn)] == ["b", "d", "a", "c"]
        # the newest two, oldest first: the same order, cut from the new end
        assert [p["id"] for p in store.load_split(conn, "train", 2)] == ["a", "c"]
        assert [p["id"] for p in store.load_split(conn, "train", 10)] == ["b", "a", "c"]
        with pytest.raises(ValueError, match="unknown split"):
            store.load_split(conn, "test", 1)


def test_pair_counts_count_pairs_newer_than_the_last_finished_run(db: Path) -> None:
    with closing(connect(db)) as conn:
        assert store.pair_counts(conn) == {"train": 3, "heldout": 1, "new": 4}
        assert store.newest_pair_used(conn) is None
        runs = [
            ("r1", "2026-12-01T01:00:00Z", "succeeded", {"newest_pair_at": "2026-12-01T00:00:00Z"}),
            ("r2", "2026-12-01T02:00:00Z", "failed", {"newest_pair_at": "2026-12-02T00:00:00Z"}),
            ("r3", "2026-12-01T03:00:00Z", "rejected", {}),
        ]
        with conn:
            conn.executemany(
                "INSERT INTO training_runs (id, created_at, status, data) VALUES (?, ?, ?, ?)",
                [(i, at, status, json.dumps(data)) for i, at, status, data in runs],
            )
        assert store.newest_pair_used(conn) == "2026-12-01T00:00:00Z"
        assert store.pair_counts(conn) == {"train": 3, "heldout": 1, "new": 1}


def test_the_critique_convention() -> None:
    assert check_judge("syntax") == "check:syntax" and is_check("check:names")
    assert pairwise_judge("llm:engine") == "pairwise:llm:engine"
    assert is_pairwise("pairwise:llm:engine") and not is_pairwise("llm:engine")
    assert critique_id("s", 1, "llm:engine", "v1") == "s:1:llm:engine:v1"
    assert pairwise_critique_id("s", 0, 2, "pairwise:j", "p/v") == "s:0~2:pairwise:j:p/v"
    assert score_values('{"fit": 4, "style": null, "safety": 2}') == [4.0, 2.0]
    assert score_values("[1, 2]") is None and score_values(None) is None


@pytest.mark.parametrize(
    ("findings", "decided"),
    [
        ('{"a": 0, "b": 2, "winner": "b", "consistent": true}', (2, 0)),
        ('{"a": 0, "b": 2, "winner": "a", "consistent": true}', (0, 2)),
        ('{"a": 0, "b": 2, "winner": "a", "consistent": false}', None),
        ('{"a": 0, "b": 2, "winner": null, "consistent": true}', None),
        ('{"a": 1, "b": 1, "winner": "a", "consistent": true}', None),
        ('{"a": "0", "b": 2, "winner": "a", "consistent": true}', None),
        ('{"a": 0, "b": 2, "consistent": true}', None),
        ("not json", None),
        (None, None),
    ],
)
def test_pairwise_findings_decide_only_consistent_wins(
    findings: str | None, decided: tuple[int, int] | None
) -> None:
    parsed = PairwiseFindings.parse(findings)
    assert (parsed.decided() if parsed is not None else None) == decided


def test_critiques_are_stored_redacted_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "prefloop.db"
    migrate(path)
    secret = "AK" + "IA" + "Q3EGRT5LXKZ7YW2M"
    verdict = Critique(
        id=pairwise_critique_id("s", 0, 1, "pairwise:llm:x", "p/v"),
        suggestion_id="s",
        candidate_index=1,
        created_at="2026-12-01T00:00:00Z",
        user="u",
        language="python",
        model_version="m",
        judge="pairwise:llm:x",
        judge_model="jm",
        rubric_version="p/v",
        status="ok",
        scores=None,
        rationale=f"b reads better than {secret}",
        error=None,
        attempts=2,
        duration_ms=1.5,
        findings=PairwiseFindings(0, 1, "b", True),
    )
    with closing(connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO suggestions (id, created_at, model_version, language, user) "
            "VALUES ('s', '2026-12-01', 'm', 'python', 'u')"
        )
        assert insert_critiques(conn, [verdict, verdict]) == 2
        (row,) = read_critiques(conn, "s")
    assert row["findings"] == {"a": 0, "b": 1, "winner": "b", "consistent": True}
    assert row["scores"] is None and secret not in row["rationale"]
    assert PairwiseFindings.parse(json.dumps(row["findings"])) == verdict.findings


def test_splits_assigned_before_users_were_recorded_get_their_groups_user(
    tmp_path: Path,
) -> None:
    """m006 on a store whose splits have no user: a group takes the user of its newest pair;
    one without pairs, the only user of a one-user store, or none (its own bucket)."""

    def unmigrated(path: Path, users: list[str]) -> None:
        migrate(path)
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("ALTER TABLE pair_splits DROP COLUMN user")
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_pair_split_users'")
            conn.executemany(
                "INSERT INTO pair_splits (group_key, split, suggestion_at, assigned_at) "
                "VALUES (?, 'train', ?, 'then')",
                [("g1", "2026-12-01T00:00:02Z"), ("g2", "2026-12-01T00:00:03Z")],
            )
            conn.executemany(
                "INSERT INTO pairs (id, created_at, suggestion_at, group_key, split, prompt, "
                "chosen, rejected, weight, source, evidence, user, language, model_version) "
                "VALUES (?, 'then', ?, 'g1', 'train', 'p', 'x', 'y', 1.0, 'judge_ranking', "
                "'{}', ?, 'python', 'm')",
                [
                    ("a", "2026-12-01T00:00:01Z", "bob"),
                    ("b", "2026-12-01T00:00:02Z", users[0]),
                ],
            )
            conn.executemany(
                "INSERT INTO suggestions (id, created_at, user, language, model_version) "
                "VALUES (?, 'then', ?, 'python', 'm')",
                [(f"s{i}", user) for i, user in enumerate(users)],
            )
        assert apply_migrations(path, migrations) == ["m006_pair_split_users"]

    one = tmp_path / "one.db"
    unmigrated(one, ["ann"])
    with closing(connect(one)) as conn:
        totals = store.split_totals_by_user(conn)
    # g1 from its newest pair (ann's, not bob's older one); g2 from the only user
    assert totals == {"ann": store.SplitTotals(2, 0, "2026-12-01T00:00:03Z")}

    two = tmp_path / "two.db"
    unmigrated(two, ["ann", "cy"])
    with closing(connect(two)) as conn:
        totals = store.split_totals_by_user(conn)
    assert totals == {
        "ann": store.SplitTotals(1, 0, "2026-12-01T00:00:02Z"),
        "": store.SplitTotals(1, 0, "2026-12-01T00:00:03Z"),
    }
