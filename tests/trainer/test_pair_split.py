"""The held-out split per user: golden splits of several users with different amounts of
feedback, incremental builds that keep every earlier assignment, and a one-user store that
splits exactly as the whole-store rule does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from prefloop.settings import Settings
from prefloop.store.pairs import SplitTotals
from prefloop.trainer.pairs import build_pairs
from prefloop.trainer.pairs.split import (
    NO_GROUPS,
    assign_splits,
    assign_user_splits,
    group_users,
)
from tests.trainer.feed import Feed, pair_rows, rewrite


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "prefloop.db"


@pytest.fixture
def feed(db: Path) -> Iterator[Feed]:
    f = Feed(db)
    yield f
    f.close()


def defaults(tmp_path: Path) -> Settings:
    """The shipped split settings: a fifth of the groups, at least eight."""
    s = Settings(home=tmp_path)
    assert (s.pairs_heldout_fraction, s.pairs_heldout_min) == (0.2, 8)
    return s


def at(i: int) -> str:
    return f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}Z"


# ---- the pure rule --------------------------------------------------------------------


def test_each_user_holds_out_a_share_with_a_floor_of_their_own_groups() -> None:
    # ann gave most feedback, and the newest; bob, cy and dee little, and earlier.
    owners = ["bob"] * 6 + ["cy"] * 2 + ["dee"] + ["ann"] * 24
    newest = {f"g{i:02d}": at(i) for i in range(len(owners))}
    users = {f"g{i:02d}": user for i, user in enumerate(owners)}
    splits, rows = assign_user_splits(newest, users, {}, {}, 0.2, "now", minimum=8)
    held = {
        user: sorted(g for g in newest if users[g] == user and splits[g] == "heldout")
        for user in ("ann", "bob", "cy", "dee")
    }
    assert held == {
        "ann": [f"g{i:02d}" for i in range(25, 33)],  # max(round(4.8), min(8, 12)): newest 8
        "bob": ["g03", "g04", "g05"],  # max(round(1.2), min(8, 3)) = 3, at most half of 6
        "cy": ["g07"],  # max(round(0.4), min(8, 1)) = 1 of two
        "dee": [],  # one group holds none out
    }
    assert {(r.group_key, r.split, r.user) for r in rows} == {
        (g, splits[g], users[g]) for g in newest
    }
    # The whole-store rule on the same groups would judge on ann's taste alone.
    whole, _ = assign_splits(newest, {}, NO_GROUPS, 0.2, "now", minimum=8)
    assert {users[g] for g, s in whole.items() if s == "heldout"} == {"ann"}


def test_a_later_build_adds_to_each_users_split_and_keeps_the_rest() -> None:
    users = {f"a{i}": "ann" for i in range(3)} | {f"b{i}": "bob" for i in range(2)}
    newest = {"a0": at(5), "a1": at(6), "a2": at(7), "b0": at(2), "b1": at(8)}
    # Earlier builds: ann 10 groups (2 held out, the newest train one at 3 s), bob 1 (train,
    # at 4 s).
    totals = {
        "ann": SplitTotals(groups=10, heldout=2, train_boundary=at(3)),
        "bob": SplitTotals(groups=1, heldout=0, train_boundary=at(4)),
    }
    known = {"a0": "train"}  # seen before: keeps its split though newer than the boundary
    splits, rows = assign_user_splits(newest, users, known, totals, 0.2, "now", minimum=8)
    # ann: 12 groups → max(round(2.4), min(8, 6)) = 6, 4 more; only a1, a2 are new.
    # bob: 3 groups → max(round(0.6), min(8, 1)) = 1; b1 is newer than bob's train, b0 not.
    assert splits == {
        "a0": "train",
        "a1": "heldout",
        "a2": "heldout",
        "b0": "train",
        "b1": "heldout",
    }
    assert sorted(r.group_key for r in rows) == ["a1", "a2", "b0", "b1"]


def test_a_group_belongs_to_the_user_of_its_newest_suggestion() -> None:
    seen = [("g", at(1), "ann"), ("g", at(3), "bob"), ("g", at(2), "cy"), ("h", at(1), "cy")]
    assert group_users(seen) == {"g": "bob", "h": "cy"}
    assert group_users([("g", at(1), "bob"), ("g", at(1), "ann")]) == {"g": "bob"}


def test_one_user_splits_as_the_whole_store_rule() -> None:
    """Build after build, a store with one user gets the split of the whole-store rule."""
    rules = [(0.2, 8), (0.25, 0), (0.5, 3), (0.0, 8)]
    for fraction, minimum in rules:
        whole = SplitTotals(0, 0, None)
        per_user: dict[str, SplitTotals] = {}
        start = 0
        for size in (1, 2, 5, 9, 3, 30, 1, 14):
            newest = {f"g{i:03d}": at(i) for i in range(start, start + size)}
            users = dict.fromkeys(newest, "tester")
            expected, _ = assign_splits(newest, {}, whole, fraction, "now", minimum)
            got, rows = assign_user_splits(newest, users, {}, per_user, fraction, "now", minimum)
            assert got == expected, (fraction, minimum, start)
            held = sum(1 for s in got.values() if s == "heldout")
            trains = [newest[g] for g, s in got.items() if s == "train"]
            boundary = max([*trains, whole.train_boundary or ""]) or None
            whole = SplitTotals(whole.groups + size, whole.heldout + held, boundary)
            per_user = {"tester": whole}
            assert {r.user for r in rows} == {"tester"}
            start += size


# ---- through pair builds on a store ---------------------------------------------------


def feedback(feed: Feed, user: str, groups: range) -> list[str]:
    """One rewrite-after-dismiss pair per prompt group ``groups``, from ``user``."""
    sids = []
    for i in groups:
        sid = feed.suggestion(["a - b"], prompt=f"# prompt {i}\n", user=user)
        feed.events(*rewrite(sid, f"a + b + {i}"))
        sids.append(sid)
    return sids


def held_out(db: Path, sids: list[str]) -> list[int]:
    splits = {p["suggestion_id"]: p["split"] for p in pair_rows(db)}
    return [i for i, sid in enumerate(sids) if splits[sid] == "heldout"]


def test_a_one_user_store_splits_exactly_as_before(tmp_path: Path, db: Path, feed: Feed) -> None:
    """The whole-store rule worked by hand, with the shipped settings, build by build."""
    s = defaults(tmp_path)
    sids = feedback(feed, "tester", range(12))
    build_pairs(db, s)
    # 12 groups: max(round(2.4), min(8, 6)) = 6, the newest six
    assert held_out(db, sids) == [6, 7, 8, 9, 10, 11]
    sids += feedback(feed, "tester", range(12, 22))
    build_pairs(db, s)
    # 22 groups: max(round(4.4), min(8, 11)) = 8, two more, the newest
    assert held_out(db, sids) == [6, 7, 8, 9, 10, 11, 20, 21]
    sids += feedback(feed, "tester", range(22, 25))
    build_pairs(db, s)
    # 25 groups: max(round(5.0), min(8, 12)) = 8, none more
    assert held_out(db, sids) == [6, 7, 8, 9, 10, 11, 20, 21]
    sids += feedback(feed, "tester", range(25, 45))
    build_pairs(db, s)
    # 45 groups: max(round(9.0), 8) = 9, one more
    assert held_out(db, sids) == [6, 7, 8, 9, 10, 11, 20, 21, 44]
    with closing(sqlite3.connect(db)) as conn:
        owners = conn.execute("SELECT DISTINCT user FROM pair_splits").fetchall()
    assert owners == [("tester",)]


def test_every_user_with_two_groups_or_more_is_held_out(
    tmp_path: Path, db: Path, feed: Feed
) -> None:
    s = defaults(tmp_path)
    bob = feedback(feed, "bob", range(3))  # the oldest feedback
    cy = feedback(feed, "cy", range(3, 4))
    ann = feedback(feed, "ann", range(4, 14))
    report = build_pairs(db, s)
    # ann 10 groups: max(round(2.0), min(8, 5)) = 5; bob 3: max(round(0.6), min(8, 1)) = 1;
    # cy one group: none. (The whole-store rule, 14 groups → 7 newest, would be ann's only.)
    assert (held_out(db, ann), held_out(db, bob), held_out(db, cy)) == ([5, 6, 7, 8, 9], [2], [])
    assert (report.train, report.heldout) == (8, 6)
    before = {p["id"]: p["split"] for p in pair_rows(db)}

    # More feedback from bob and ann, and late evidence on an old suggestion of bob's.
    bob += feedback(feed, "bob", range(14, 17))
    ann += feedback(feed, "ann", range(17, 18))
    feed.events({"suggestion_id": bob[0], "kind": "rewritten", "text": "b + a"})
    build_pairs(db, s)
    after = {p["id"]: p["split"] for p in pair_rows(db)}
    assert all(after[pid] == split for pid, split in before.items())
    # bob 6 groups: max(round(1.2), min(8, 3)) = 3, two more, his newest;
    # ann 11 groups: max(round(2.2), min(8, 5)) = 5, none more.
    assert held_out(db, bob) == [2, 4, 5] and held_out(db, ann) == [5, 6, 7, 8, 9]
    with closing(sqlite3.connect(db)) as conn:
        groups = dict(conn.execute("SELECT id, group_key FROM pairs").fetchall())
        rows = conn.execute("SELECT id, split FROM pairs").fetchall()
    train = {groups[pid] for pid, split in rows if split == "train"}
    assert not train & {groups[pid] for pid, split in rows if split == "heldout"}
