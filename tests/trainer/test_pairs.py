"""Preference pairs built from feedback stored through the store's real write paths."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from prefloop.settings import Settings
from prefloop.store import connect
from prefloop.trainer.pairs import DROP_REASONS, build_pairs, export_pairs, load_pairs
from tests.trainer.feed import Feed, accept, pair_rows, rewrite

AWS_KEY = "AKIAIOSFODNN7EXAMPLQ"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "prefloop.db"


@pytest.fixture
def feed(db: Path) -> Iterator[Feed]:
    f = Feed(db)
    yield f
    f.close()


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(home=tmp_path, **overrides)  # type: ignore[arg-type]


def stored_prompt(db: Path, sid: str) -> str:
    with closing(sqlite3.connect(db)) as conn:
        value: str = conn.execute("SELECT prompt FROM suggestions WHERE id = ?", (sid,)).fetchone()[
            0
        ]
    return value


def test_edit_after_accept(tmp_path: Path, db: Path, feed: Feed) -> None:
    sid = feed.suggestion(["a + b"])
    ids = feed.events(*accept(sid, "int(a) + int(b)", similarity=0.4))
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 1 and report.by_source["edit_after_accept"] == 1
    (pair,) = pair_rows(db)
    assert pair["source"] == "edit_after_accept"
    assert pair["prompt"] == stored_prompt(db, sid) == "# File: src/calc.py\n" + feed_prefix()
    assert (pair["chosen"], pair["rejected"]) == ("int(a) + int(b)", "a + b")
    assert pair["weight"] == 1.0 and pair["split"] == "train"
    evidence = json.loads(pair["evidence"])
    assert evidence == {
        "suggestion": sid,
        "candidates": [0],
        "events": [ids[1], ids[2]],
        "critiques": [],
    }


def feed_prefix() -> str:
    from tests.trainer.feed import PREFIX

    return PREFIX


def test_the_last_retention_snapshot_is_what_the_user_kept(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a + b"])
    feed.events(*accept(sid, "a + b + 1"))
    feed.events(
        {
            "suggestion_id": sid,
            "kind": "retained",
            "checkpoint": "2m",
            "similarity": 0.5,
            "text": "sum([a, b])",
        }
    )
    build_pairs(db, settings(tmp_path))
    assert [p["chosen"] for p in pair_rows(db)] == ["sum([a, b])"]


def test_rewrite_after_dismiss(tmp_path: Path, db: Path, feed: Feed) -> None:
    sid = feed.suggestion(["a - b", "a * b"])
    ids = feed.events(*rewrite(sid, "a + b", index=1))
    report = build_pairs(db, settings(tmp_path, pairs_weight_rewrite=0.8))
    assert report.by_source["rewrite_after_dismiss"] == 1
    (pair,) = pair_rows(db)
    assert (pair["source"], pair["chosen"], pair["rejected"]) == (
        "rewrite_after_dismiss",
        "a + b",
        "a * b",
    )
    assert pair["weight"] == 0.8
    assert json.loads(pair["evidence"])["events"] == [ids[1], ids[2]]


def test_both_texts_continue_a_prompt_that_left_the_cursor_line_to_the_model(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    # The cursor on an indented empty line: the prompt ends at the opener and the model
    # writes the line break and indentation (the stored lead) before the suggestion.
    sid = feed.suggestion(
        ["return a - b"],
        prefix="def add(a, b):\n    ",
        prompt="# File: src/calc.py\ndef add(a, b):",
        lead="\n    ",
    )
    feed.events(*rewrite(sid, "return a + b", index=0))
    build_pairs(db, settings(tmp_path))
    (pair,) = pair_rows(db)
    assert pair["prompt"] == "# File: src/calc.py\ndef add(a, b):"
    assert (pair["chosen"], pair["rejected"]) == ("\n    return a + b", "\n    return a - b")


def test_accepted_candidate_against_a_lower_judged_unshown_one(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a + b", "a - b", "b + a", "a / b"])
    ids = feed.events(*accept(sid, "a + b", similarity=1.0))
    # candidate 3 was shown too: only unshown alternatives count
    feed.events({"suggestion_id": sid, "kind": "shown", "candidate_index": 3})
    feed.judged(sid, {0: 4, 1: 3, 2: 4, 3: 1})
    report = build_pairs(db, settings(tmp_path, pairs_min_score_gap=10))
    pairs = {p["source"]: p for p in pair_rows(db)}
    assert set(pairs) == {"accept_vs_alternative"}
    pair = pairs["accept_vs_alternative"]
    assert (pair["chosen"], pair["rejected"], pair["weight"]) == ("a + b", "a - b", 0.7)
    evidence = json.loads(pair["evidence"])
    assert evidence["events"] == [ids[1], ids[2]] and evidence["candidates"] == [0, 1]
    assert sorted(evidence["critiques"]) == [
        f"{sid}:0:engine:inline-v1",
        f"{sid}:1:engine:inline-v1",
    ]
    # candidate 2 is judged equal (a tie), the gap of 3 to candidate 3 is below 10
    assert report.dropped["tie"] == 1 and report.dropped["small_gap"] == 1


def test_a_candidate_that_was_not_retained_is_no_winner(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a + b", "a - b"])
    feed.events(*accept(sid, "q", similarity=0.2))
    feed.judged(sid, {0: 4, 1: 3})
    report = build_pairs(db, settings(tmp_path, pairs_min_score_gap=2))
    assert report.pairs_added == 0
    assert report.dropped["too_short"] == 1 and report.dropped["small_gap"] == 1


def test_judge_ranking_best_against_worst(tmp_path: Path, db: Path, feed: Feed) -> None:
    sid = feed.suggestion(["a + b", "b - a", "a ** b"])
    feed.judged(sid, {0: 2, 1: 5, 2: 3})
    report = build_pairs(db, settings(tmp_path, pairs_weight_judge=0.25))
    (pair,) = pair_rows(db)
    assert (pair["source"], pair["chosen"], pair["rejected"], pair["weight"]) == (
        "judge_ranking",
        "b - a",
        "a + b",
        0.25,
    )
    assert json.loads(pair["evidence"])["critiques"] == [
        f"{sid}:1:engine:inline-v1",
        f"{sid}:0:engine:inline-v1",
    ]
    assert report.events_seen == 0 and report.by_source["judge_ranking"] == 1


def test_judge_ranking_drops_ties_and_small_gaps(tmp_path: Path, db: Path, feed: Feed) -> None:
    tie = feed.suggestion(["a + b", "b + a"])
    feed.judged(tie, {0: 4, 1: 4})
    gap = feed.suggestion(["a + b", "b - a"], prompt="# other\n")
    feed.judged(gap, {0: 4, 1: 2.5})
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 0
    assert report.dropped["tie"] == 1 and report.dropped["small_gap"] == 1


def test_verifiable_checks_rank_candidates_without_an_llm_judge(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a + b", "a +* (b"])
    feed.checks(sid)
    build_pairs(db, settings(tmp_path))
    (pair,) = pair_rows(db)
    assert (pair["source"], pair["chosen"], pair["rejected"]) == (
        "judge_ranking",
        "a + b",
        "a +* (b",
    )
    assert all(c.startswith(f"{sid}:") for c in json.loads(pair["evidence"])["critiques"])


def test_every_drop_reason(tmp_path: Path, db: Path, feed: Feed) -> None:
    s = settings(tmp_path, pairs_near_duplicate=0.9)
    no_prompt = feed.suggestion(["a + b"], prompt="")
    feed.events(*rewrite(no_prompt, "b + a"))
    short = feed.suggestion(["a + b"], prompt="# short\n")
    feed.events(*rewrite(short, "0"))
    same = feed.suggestion(["a + b"], prompt="# same\n")
    feed.events(*accept(same, "a  +  b\n"))
    near = feed.suggestion(["total = sum(values) / len(values)"], prompt="# near\n")
    feed.events(*accept(near, "total = sum(values) / len(value)"))
    broken = feed.suggestion(["a + b"], prompt="# broken\n")
    feed.events(*rewrite(broken, "a * (b + c"))
    smelly = feed.suggestion(["a + b"], prompt="# smelly\n")
    feed.events(*rewrite(smelly, "requests.get(url, verify=False)"))
    first = feed.suggestion(["a - b"], prompt="# twice\n")
    feed.events(*rewrite(first, "a + b"))
    second = feed.suggestion(["a - b"], prompt="# twice\n")
    feed.events(*rewrite(second, "a + b"))
    report = build_pairs(db, s)
    assert report.dropped == {
        "no_prompt": 1,
        "tie": 0,
        "small_gap": 0,
        "too_short": 1,
        "identical": 1,
        "near_duplicate": 1,
        "duplicate": 1,
        "secret": 0,
        "check_failed": 2,
    }
    assert set(report.dropped) == set(DROP_REASONS)
    assert [p["suggestion_id"] for p in pair_rows(db)] == [first]


def test_secrets_never_reach_a_pair(tmp_path: Path, db: Path, feed: Feed) -> None:
    # redacted at ingest: the placeholder is left, and a placeholder is still a secret
    in_chosen = feed.suggestion(["a + b"], prompt="# one\n")
    feed.events(*rewrite(in_chosen, f'key = "{AWS_KEY}"'))
    in_prompt = feed.suggestion(
        ["a - b"], prompt=f'aws_secret_access_key = "{AWS_SECRET}"\n', prefix="x = 1\n"
    )
    feed.events(*rewrite(in_prompt, "a + b"))
    in_rejected = feed.suggestion([f"token = '{AWS_KEY}'"], prompt="# three\n")
    feed.events(*rewrite(in_rejected, "token = os.environ['TOKEN']"))
    report = build_pairs(db, settings(tmp_path))
    assert report.dropped["secret"] == 3 and report.pairs_added == 0
    # a secret the redaction rules (as they were) let through is caught at build time
    with closing(connect(db)) as conn:
        sid = feed.suggestion(["a - b"], prompt="# four\n")
        rid = feed.events(*rewrite(sid, "a + b"))[-1]
        conn.execute("UPDATE events SET text = ? WHERE id = ?", (f'api_key = "{AWS_KEY}"', rid))
        conn.commit()
    report = build_pairs(db, settings(tmp_path))
    assert report.dropped["secret"] == 1 and report.pairs_added == 0
    raw = db.read_bytes() + (db.parent / "prefloop.db-wal").read_bytes()
    assert AWS_SECRET.encode() not in raw
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pairs").fetchone() == (0,)


def test_checks_of_a_chosen_candidate_come_from_its_stored_critiques(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a +* (b", "a - b"])
    feed.checks(sid)
    feed.judged(sid, {0: 5, 1: 1})
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 0 and report.dropped["check_failed"] == 1


def test_incremental_builds_read_only_new_evidence(tmp_path: Path, db: Path, feed: Feed) -> None:
    s = settings(tmp_path)
    one = feed.suggestion(["a - b"], prompt="# one\n")
    feed.events(*rewrite(one, "a + b"))
    first = build_pairs(db, s)
    assert (first.events_seen, first.suggestions, first.pairs_added) == (3, 1, 1)
    (before,) = pair_rows(db)

    again = build_pairs(db, s)
    assert (again.events_seen, again.suggestions, again.pairs_added) == (0, 0, 0)
    assert again.train == 1

    two = feed.suggestion(["a - b"], prompt="# two\n")
    feed.events(*rewrite(two, "b + a"))
    feed.events({"suggestion_id": one, "kind": "shown", "candidate_index": 0})
    third = build_pairs(db, s)
    # the shown event of the first suggestion is seen but triggers nothing
    assert (third.events_seen, third.suggestions, third.pairs_added) == (4, 1, 1)
    rows = {p["suggestion_id"]: p for p in pair_rows(db)}
    assert rows[one] == before
    assert rows[two]["build_id"] == third.build_id

    # new evidence for an old suggestion replaces its pair in place
    feed.events({"suggestion_id": one, "kind": "rewritten", "text": "add(a, b)"})
    fourth = build_pairs(db, s)
    assert (fourth.suggestions, fourth.pairs_added, fourth.pairs_updated) == (1, 0, 1)
    updated = {p["suggestion_id"]: p for p in pair_rows(db)}[one]
    assert updated["chosen"] == "add(a, b)" and updated["created_at"] == before["created_at"]

    full = build_pairs(db, s, full=True)
    assert full.full and full.events_seen == 8 and full.suggestions == 2
    assert (full.pairs_added, full.pairs_updated, full.pairs_removed) == (0, 0, 0)
    with closing(sqlite3.connect(db)) as conn:
        builds = conn.execute("SELECT id, full, events_seen FROM pair_builds").fetchall()
    assert [b[1:] for b in builds] == [(0, 3), (0, 0), (0, 4), (0, 1), (1, 8)]


def test_held_out_split_is_newest_stable_and_never_leaks(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    s = settings(tmp_path, pairs_heldout_fraction=0.25, pairs_heldout_min=0)
    sids = []
    for i in range(12):
        sid = feed.suggestion(["a - b"], prompt=f"# prompt {i % 10}\n")
        feed.events(*rewrite(sid, f"a + b + {i}"))
        sids.append(sid)
    report = build_pairs(db, s)
    assert report.train + report.heldout == 12
    splits = {p["suggestion_id"]: p["split"] for p in pair_rows(db)}
    # ten prompt groups, a group is as new as its newest suggestion: suggestions 10 and 11
    # make the groups of prompts 0 and 1 the newest; round(0.25 * 10) = 2 groups held out
    held = {i for i, sid in enumerate(sids) if splits[sid] == "heldout"}
    assert held == {0, 1, 10, 11}
    assert splits[sids[10]] == splits[sids[0]] == "heldout"

    for i in range(12, 20):
        sid = feed.suggestion(["a - b"], prompt=f"# prompt {i}\n")
        feed.events(*rewrite(sid, f"a + b + {i}"))
        sids.append(sid)
    # late evidence for old suggestions keeps their splits
    feed.events({"suggestion_id": sids[8], "kind": "rewritten", "text": "b + a"})
    feed.events({"suggestion_id": sids[1], "kind": "rewritten", "text": "b + a + 1"})
    build_pairs(db, s)
    after = {p["suggestion_id"]: p["split"] for p in pair_rows(db)}
    assert all(after[sid] == split for sid, split in splits.items())
    new_held = [i for i in range(12, 20) if after[sids[i]] == "heldout"]
    assert new_held == [18, 19]  # round(0.25 * 18) - 2 = 2, the newest two

    with closing(connect(db)) as conn:
        train = load_pairs(conn, "train")
        heldout = load_pairs(conn, "heldout")
        groups = dict(conn.execute("SELECT id, group_key FROM pairs").fetchall())
    assert len(train) + len(heldout) == 20
    assert not {groups[p["id"]] for p in train} & {groups[p["id"]] for p in heldout}
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in heldout}
    assert [p["created_at"] for p in train] == sorted(p["created_at"] for p in train)
    assert set(train[0]) >= {"id", "prompt", "chosen", "rejected", "weight", "source", "created_at"}
    with pytest.raises(ValueError, match="unknown split"):
        load_pairs(conn, "test")


def test_export_loads_as_a_trl_preference_dataset(tmp_path: Path, db: Path, feed: Feed) -> None:
    from datasets import load_dataset

    for i in range(10):
        sid = feed.suggestion(["a - b"], prompt=f"# prompt {i}\n")
        feed.events(*rewrite(sid, f"a + b + {i}"))
    sid = feed.suggestion(["a + b", "b - a"], prompt="# judged\n")
    feed.judged(sid, {0: 1, 1: 5})
    build_pairs(db, settings(tmp_path, pairs_heldout_fraction=0.2, pairs_heldout_min=0))
    out = tmp_path / "out" / "pairs.jsonl"
    assert export_pairs(db, out) == 11
    data = load_dataset("json", data_files=str(out), split="train")
    assert {"prompt", "chosen", "rejected", "source", "weight", "evidence"} <= set(
        data.column_names
    )
    assert data.num_rows == 11
    assert sorted(set(data["source"])) == ["judge_ranking", "rewrite_after_dismiss"]
    row = data[0]
    assert row["evidence"]["suggestion"] and isinstance(row["evidence"]["events"], list)
    assert export_pairs(db, tmp_path / "h.jsonl", split="heldout") == 2
    assert export_pairs(db, tmp_path / "t.jsonl", split="train") == 9
    assert export_pairs(db, tmp_path / "s.jsonl", since="2999-01-01") == 0
    assert (tmp_path / "s.jsonl").read_text() == ""
    assert export_pairs(db, tmp_path / "d.jsonl", since="1d") == 11
    with pytest.raises(ValueError, match="cannot read --since"):
        export_pairs(db, tmp_path / "bad.jsonl", since="lately")
    assert not (tmp_path / "bad.jsonl").exists()


def test_missing_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_pairs(tmp_path / "none.db", settings(tmp_path))
    assert not (tmp_path / "none.db").exists()


def test_checks_read_a_window_and_blame_only_the_completions_own_names() -> None:
    from prefloop.trainer.pairs import run_checks

    helpers = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(40))
    prefix = "import json\n\n\n" + helpers + "def total(items):\n    return "
    # helper_0 is defined far above the window the checks read: not the completion's fault
    # (the walrus makes pyflakes run: the pre-screen does not know it binds ``n``)
    completion = "helper_0(n) if (n := len(items)) else 0"
    assert dict(run_checks(prefix, completion, "\n", "python", context_lines=10)) == {
        "syntax": 5,
        "names": 5,
        "security": 5,
    }
    # a name the file never mentions is undefined
    assert (
        dict(run_checks(prefix, "missing_helper(items)", "\n", "python", context_lines=10))["names"]
        == 1
    )
    # names the completion binds itself need no pyflakes run
    assert "names" not in dict(run_checks(prefix, "[v for v in items]", "\n", "python"))
    assert dict(run_checks(prefix, "(items", "\n", "python"))["syntax"] == 1
    assert dict(run_checks(prefix, "eval(items)", "\n", "python"))["security"] == 2


def test_an_undefined_name_in_the_chosen_text_drops_the_pair(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    sid = feed.suggestion(["a - b"])
    feed.events(*rewrite(sid, "combine(a, b)"))
    report = build_pairs(db, settings(tmp_path))
    assert report.dropped["check_failed"] == 1 and report.pairs_added == 0
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT passed, worst FROM pair_checks").fetchall() == [(0, "names:1")]
    # the verdict is cached: a full rebuild does not check the same text again
    again = build_pairs(db, settings(tmp_path), full=True)
    assert again.dropped["check_failed"] == 1
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pair_checks").fetchone() == (1,)


def test_checks_spread_over_processes_give_the_same_verdicts(
    tmp_path: Path, db: Path, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prefloop.trainer.pairs as pairs_module

    written = ["a + b", "combine(a, b)", "a * (b + c", "b + a", "eval(a)", "a + b + 0"]
    for i, text in enumerate(written):
        sid = feed.suggestion(["a - b"], prompt=f"# p{i}\n")
        feed.events(*rewrite(sid, text))
    monkeypatch.setattr(pairs_module, "POOL_MIN_JOBS", 1)
    report = build_pairs(db, settings(tmp_path, pairs_check_workers=2))
    assert report.dropped["check_failed"] == 2 and report.pairs_added == 4
    assert sorted(p["chosen"] for p in pair_rows(db)) == ["a + b", "a + b + 0", "b + a", "eval(a)"]
    with closing(sqlite3.connect(db)) as conn:
        failing = dict(conn.execute("SELECT worst, COUNT(*) FROM pair_checks GROUP BY worst"))
    assert failing == {"": 4, "names:1": 1, "syntax:1": 1}


def test_a_consistent_pairwise_verdict_breaks_a_tie(tmp_path: Path, db: Path, feed: Feed) -> None:
    sid = feed.suggestion(["a + b", "b + a", "sum((a, b))"])
    feed.judged(sid, {0: 4, 1: 4, 2: 4})
    first = build_pairs(db, settings(tmp_path, pairs_weight_judge=0.3))
    assert first.pairs_added == 0 and first.dropped["tie"] == 1

    # a newly stored verdict is new evidence: the next incremental build re-derives
    cid = feed.pairwise(sid, 0, 2, "b")
    report = build_pairs(db, settings(tmp_path, pairs_weight_judge=0.3))
    assert report.suggestions == 1 and report.pairs_added == 1
    assert report.dropped["tie"] == 0 and report.pairwise_breaks == 1
    assert report.by_source["judge_ranking"] == 1
    (pair,) = pair_rows(db)
    assert (pair["source"], pair["chosen"], pair["rejected"], pair["weight"]) == (
        "judge_ranking",
        "sum((a, b))",
        "a + b",
        0.3,
    )
    evidence = json.loads(pair["evidence"])
    assert evidence["candidates"] == [2, 0]
    assert evidence["critiques"] == [
        f"{sid}:2:engine:inline-v1",
        f"{sid}:0:engine:inline-v1",
        cid,
    ]


@pytest.mark.parametrize(
    ("winner", "consistent"),
    [("a", False), ("tie", False), ("tie", True), (None, False)],
    ids=["position-bias", "inconsistent-tie", "tie", "failed"],
)
def test_a_pairwise_verdict_without_a_clear_winner_leaves_a_tie(
    tmp_path: Path, db: Path, feed: Feed, winner: str | None, consistent: bool
) -> None:
    sid = feed.suggestion(["a + b", "b + a"])
    feed.judged(sid, {0: 4, 1: 4})
    feed.pairwise(sid, 0, 1, winner, consistent=consistent)  # type: ignore[arg-type]
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 0 and report.pairwise_breaks == 0
    assert report.dropped["tie"] == 1


def test_a_pairwise_verdict_breaks_a_small_gap_but_not_a_wide_one(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    close = feed.suggestion(["a + b", "b - a"])
    feed.judged(close, {0: 4, 1: 3})
    feed.pairwise(close, 0, 1, "b")
    wide = feed.suggestion(["a + b", "b - a"], prompt="# wide\n")
    feed.judged(wide, {0: 5, 1: 2})
    feed.pairwise(wide, 0, 1, "b")
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 2 and report.pairwise_breaks == 1
    assert report.dropped["small_gap"] == 0
    pairs = {p["suggestion_id"]: p for p in pair_rows(db)}
    assert pairs[close]["chosen"] == "b - a", "the pairwise winner"
    assert pairs[wide]["chosen"] == "a + b", "scores far enough apart decide"
    assert len(json.loads(pairs[wide]["evidence"])["critiques"]) == 2


def test_a_short_rejected_suggestion_is_evidence_a_short_chosen_text_is_not(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    # A bare "):" typed over with an annotated signature is what the developer wants
    # learnt; a two-character text written over a long suggestion is too little to learn.
    typed_over = feed.suggestion(
        ["):"], prefix="def area(width", suffix="\n    return 0.0\n", prompt="def area(width"
    )
    feed.events(*rewrite(typed_over, ": float, height: float) -> float:"))
    too_little = feed.suggestion(["a + b"], prompt="def add(a, b):\n    return ")
    feed.events(*rewrite(too_little, "0"))
    report = build_pairs(db, settings(tmp_path))
    assert report.pairs_added == 1 and report.dropped["too_short"] == 1
    [pair] = pair_rows(db)
    assert (pair["chosen"], pair["rejected"]) == (": float, height: float) -> float:", "):")
