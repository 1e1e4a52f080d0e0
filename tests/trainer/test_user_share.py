"""The cap on one user's share of a run's pairs: the counts it keeps, which pairs, the
refusal it leads to, and a one-user store left as it was."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest

from prefloop.store import runs as stored_runs
from prefloop.train_config import load_config
from prefloop.trainer.pairs.share import UserShareCap, cap_user_share, keep_newest
from prefloop.trainer.run import load_capped, queue_run, share_caps
from prefloop.training import NotEnoughPairs, get_run
from tests.trainer.training_data import FAST, add_pairs, fast_settings


def test_a_dominant_user_keeps_as_many_as_the_others_together() -> None:
    cap = cap_user_share({"mallory": 100, "ann": 10, "bob": 6}, 0.5, 2000)
    assert cap is not None
    assert cap.kept == {"mallory": 16, "ann": 10, "bob": 6}
    assert cap.left_out == {"mallory": 84}
    assert cap.total == 32 and cap.per_user == 16
    assert cap.record() == {
        "max_share": 0.5,
        "share_applied": 0.5,
        "per_user": 16,
        "kept": {"ann": 10, "bob": 6, "mallory": 16},
        "left_out": {"mallory": 84},
    }


def test_no_cap_for_one_user_or_a_share_of_one() -> None:
    assert cap_user_share({"ann": 40}, 0.5, 2000) is None
    assert cap_user_share({"ann": 40, "bob": 0}, 0.5, 2000) is None
    assert cap_user_share({"ann": 40, "bob": 2}, 1.0, 2000) is None


def test_balanced_users_lose_nothing() -> None:
    cap = cap_user_share({"ann": 5, "bob": 5}, 0.5, 2000)
    assert cap is not None and cap.left_out == {} and cap.total == 10
    cap = cap_user_share({"ann": 5, "bob": 4, "carol": 3}, 0.5, 2000)
    assert cap is not None and cap.left_out == {}


def test_a_share_no_users_can_meet_becomes_equal_counts() -> None:
    cap = cap_user_share({"ann": 10, "bob": 3}, 0.3, 2000)
    assert cap is not None and cap.share == Fraction(1, 2)
    assert cap.kept == {"ann": 3, "bob": 3}


def test_a_decimal_share_is_exact() -> None:
    # 63 of 90 is exactly 0.7 (in floating point 0.7 * 90 is 62.99999999999999).
    cap = cap_user_share({"mallory": 100, "ann": 27}, 0.7, 2000)
    assert cap is not None and cap.kept == {"mallory": 63, "ann": 27}


def test_the_limit_is_shared_out_under_the_cap() -> None:
    cap = cap_user_share({"mallory": 100, "ann": 50}, 0.5, 20)
    assert cap is not None and cap.kept == {"mallory": 10, "ann": 10}


def test_every_user_keeps_a_pair_when_the_limit_is_below_the_users() -> None:
    cap = cap_user_share({"ann": 5, "bob": 5, "carol": 5}, 0.5, 2)
    assert cap is not None and cap.kept == {"ann": 1, "bob": 1, "carol": 1}


@pytest.mark.parametrize("seed", range(200))
def test_the_cap_holds_fits_the_limit_and_keeps_the_most(seed: int) -> None:
    rng = random.Random(seed)
    counts = {f"u{i}": rng.randint(0, 60) for i in range(rng.randint(2, 6))}
    share = rng.choice([0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9])
    limit = rng.randint(1, 200)
    cap = cap_user_share(counts, share, limit)
    if sum(1 for n in counts.values() if n) < 2:
        assert cap is None
        return
    assert cap is not None
    limit = max(limit, len([n for n in counts.values() if n]))
    assert cap.total <= limit
    assert max(cap.kept.values()) <= cap.share * cap.total
    assert all(cap.kept[u] == min(n, cap.per_user) for u, n in counts.items() if n)
    # One more pair per user would break the cap or the limit (or there is none left).
    more = {u: min(n, cap.per_user + 1) for u, n in counts.items() if n}
    if more != cap.kept:
        total = sum(more.values())
        assert total > limit or max(more.values()) > cap.share * total
    assert cap == cap_user_share(dict(reversed(counts.items())), share, limit)


def _pairs(users: str) -> list[dict[str, object]]:
    return [{"id": f"p{i}", "user": u} for i, u in enumerate(users)]


def test_the_newest_pairs_of_each_user_are_kept_in_order() -> None:
    pairs = _pairs("mmammbmmam")
    cap = UserShareCap(
        max_share=0.5,
        share=Fraction(1, 2),
        per_user=3,
        available={"m": 7, "a": 2, "b": 1},
        kept={"m": 3, "a": 2, "b": 1},
    )
    kept = keep_newest(pairs, cap)
    assert [p["id"] for p in kept] == ["p2", "p5", "p6", "p7", "p8", "p9"]
    assert keep_newest(pairs, cap) == kept


def test_a_run_keeps_the_capped_pairs_and_says_what_it_left_out(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    add_pairs(settings.db_path, train=4, heldout=2, users=("ann", "bob"))
    mallory = add_pairs(settings.db_path, train=30, heldout=10, users=("mallory",))
    config = load_config(env={}, overrides=FAST)
    caps = share_caps(settings, config)
    assert caps["train"] is not None and caps["train"].kept == {
        "ann": 2,
        "bob": 2,
        "mallory": 4,
    }
    assert caps["heldout"] is not None and caps["heldout"].left_out == {"mallory": 8}
    train = load_capped(settings, "train", config.max_train_pairs, caps["train"])
    # The store reads each user's newest pairs up to their count: what keep_newest keeps of
    # the whole split, in the same order.
    for split, cap in caps.items():
        assert cap is not None
        every = stored_runs.load_split(settings.db_path, split, sum(cap.available.values()))
        assert load_capped(settings, split, 2000, cap) == keep_newest(every, cap)
    newest = stored_runs.load_split(settings.db_path, "train", 4, "mallory")
    assert [p for p in train if p["user"] == "mallory"] == newest
    assert len(mallory) == 40
    run_id = queue_run(settings, config=config)
    assert get_run(settings, run_id)["status"] == "queued"


def test_the_held_out_floor_counts_the_capped_pairs(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir, train_gate_min_heldout=4)
    add_pairs(settings.db_path, train=4, heldout=1, users=("ann",))
    add_pairs(settings.db_path, train=4, heldout=19, users=("mallory",))
    with pytest.raises(NotEnoughPairs) as refused:
        queue_run(settings, config=load_config(env={}, overrides=FAST))
    message = str(refused.value)
    assert message.startswith("only 2 held-out pair(s) for 10 pairs")
    assert "left out 18 held-out pair(s) of mallory" in message
    assert "train_max_user_share 0.5" in message
    assert stored_runs.list_runs(settings.db_path) == []


def test_a_one_user_store_is_used_as_before(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", tiny_model_dir)
    add_pairs(settings.db_path, train=30, heldout=10, users=("ann",))
    config = load_config(env={}, overrides={**FAST, "max_train_pairs": 20})
    caps = share_caps(settings, config)
    assert caps == {"train": None, "heldout": None}
    for split, limit in (("train", 20), ("heldout", config.max_heldout_pairs)):
        assert load_capped(settings, split, limit, None) == stored_runs.load_split(
            settings.db_path, split, limit
        )
