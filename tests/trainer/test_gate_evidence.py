"""The gate's evidence on known numbers: intervals, the held-out floor, probe tolerances in
counts, and the behavioural comparison by normalised edit distance."""

from __future__ import annotations

import pytest

from prefloop.protocol import GateThresholds
from prefloop.store.pairs import SplitTotals
from prefloop.trainer.behaviour import (
    comparable,
    compare_behaviour,
    levenshtein,
    normalised_distance,
)
from prefloop.trainer.gate import compare_preferences, heldout_floor
from prefloop.trainer.intervals import bootstrap_mean_interval, wilson_interval
from prefloop.trainer.pairs.split import assign_splits
from prefloop.trainer.probing import compare_probes, probe_tolerance, sign_test


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 8 of 10 at 95 %: the Wilson score interval is 0.4902 to 0.9433.
    eight = wilson_interval(8, 10)
    assert (eight.estimate, round(eight.low, 4), round(eight.high, 4)) == (0.8, 0.4902, 0.9433)
    none = wilson_interval(0, 10)
    assert (none.low, round(none.high, 4)) == (0.0, 0.2775)
    every = wilson_interval(10, 10)
    assert (round(every.low, 4), every.high) == (0.7225, 1.0)
    assert (wilson_interval(0, 0).low, wilson_interval(0, 0).high) == (0.0, 1.0)
    wider = wilson_interval(8, 10, confidence=0.99)
    assert wider.low < eight.low and wider.high > eight.high
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    first = bootstrap_mean_interval(values, seed=0)
    assert first == bootstrap_mean_interval(values, seed=0)  # deterministic
    assert (first.estimate, first.low, first.high) == (2.5, 1.5, 3.5)
    # Identical differences leave no room: the interval is the value itself.
    same = bootstrap_mean_interval([0.0] * 6)
    assert (same.low, same.high) == (0.0, 0.0)
    one = bootstrap_mean_interval([0.7])
    assert (one.low, one.estimate, one.high) == (0.7, 0.7, 0.7)
    # One better pair among unchanged ones does not lift the lower bound above zero.
    sparse = bootstrap_mean_interval([0.0, 0.0, 1.0, 0.0])
    assert (sparse.estimate, sparse.low) == (0.25, 0.0)


def test_heldout_floor_grows_with_the_data() -> None:
    assert heldout_floor(24, 8, 0.1) == 8
    assert heldout_floor(80, 8, 0.1) == 8
    assert heldout_floor(81, 8, 0.1) == 9  # ceil(8.1)
    assert heldout_floor(100, 8, 0.1) == 10  # exactly a tenth, not 11 from rounding
    assert heldout_floor(30, 1, 0.1) == 3  # 0.1 * 30 is 3.0000000000000004 in floats
    assert heldout_floor(5, 1, 0.0) == 1


def test_preferences_below_the_floor_fail_on_that_alone() -> None:
    better = [3.0, 2.0, 4.0]
    worse = [-1.0, -2.0, -1.0]
    verdict = compare_preferences(better, worse, GateThresholds(), floor=4)
    assert not verdict.passed and verdict.floor == 4
    assert verdict.reasons == [
        "only 3 held-out pair(s); the gate decides on no fewer than 4 (max(min_heldout 1, "
        "0 of the run's pairs)), 1 short"
    ]
    (finding,) = verdict.findings
    assert (finding.figure, finding.value, finding.required, finding.shortfall) == (
        "heldout_pairs",
        3,
        4,
        1,
    )
    assert verdict.margin_gain_interval is None
    assert compare_preferences(better, worse, GateThresholds(), floor=3).passed


def test_preferences_pass_on_the_lower_bound_not_the_mean() -> None:
    current = [0.0] * 8
    # Mean gain +0.5, but only one pair moved: the interval reaches zero.
    one_pair = [4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    verdict = compare_preferences(one_pair, current, GateThresholds())
    assert verdict.margin_gain == pytest.approx(0.5)
    assert verdict.margin_gain_interval is not None
    assert verdict.margin_gain_interval.low == 0.0
    assert not verdict.passed
    (reason,) = verdict.reasons
    assert reason.startswith("held-out margin gain +0.500 (95% interval +0.000 to ")
    assert "lower bound is 0.000 short of exceeding 0" in reason
    # Every pair moved a little: the whole interval is above zero.
    steady = [0.4, 0.6, 0.5, 0.3, 0.7, 0.5, 0.4, 0.6]
    verdict = compare_preferences(steady, current, GateThresholds())
    assert verdict.passed, verdict.reasons
    assert verdict.accuracy_gain == 1.0
    assert verdict.candidate.accuracy_interval is not None
    assert verdict.candidate.accuracy_interval.low == pytest.approx(0.6756, abs=1e-4)
    assert [f.figure for f in verdict.findings] == ["heldout_margin_gain", "heldout_accuracy_gain"]
    # A candidate that loses pairs it used to get right fails on accuracy.
    right = [1.0] * 8
    loses_two = [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, -0.1, -0.1]
    verdict = compare_preferences(loses_two, right, GateThresholds())
    assert not verdict.passed
    assert [f.figure for f in verdict.findings if not f.passed] == ["heldout_accuracy_gain"]
    assert verdict.findings[1].value == pytest.approx(-0.5)
    # The paired difference is what counts: a shift of every pair passes even when the
    # two sides' spreads overlap.
    spread = [-5.0, -3.0, -1.0, 1.0, 3.0, 5.0, 7.0, 9.0]
    shifted = [v + 0.2 for v in spread]
    assert compare_preferences(shifted, spread, GateThresholds()).passed


def test_probe_tolerance_is_counted_from_the_measured_noise() -> None:
    # z standard deviations of the expected flips (at least one), in whole probes.
    assert probe_tolerance(40, 0, 40, 2.0) == 2
    assert probe_tolerance(40, 1, 40, 2.0) == 2
    assert probe_tolerance(40, 4, 40, 2.0) == 4
    assert probe_tolerance(20, 4, 40, 2.0) == 3  # 2 expected: ceil(2 * 1.414)
    assert probe_tolerance(40, 9, 40, 1.0) == 3
    assert probe_tolerance(40, 9, 40, 0.0) == 0
    assert probe_tolerance(0, 9, 40, 2.0) == 0


def _probes(valid: int, degenerate: int, n: int = 40) -> list[dict[str, object]]:
    return [
        {"id": f"p{i}", "syntax_valid": i < valid, "degenerate": i < degenerate, "seconds": 1.0}
        for i in range(n)
    ]


NOISE = {"probes": 40, "syntax_flips": 1, "degenerate_flips": 4, "how": "measured"}


def test_probe_verdict_in_counts_against_noise() -> None:
    z2 = GateThresholds(probe_noise_z=2.0)
    current = _probes(valid=30, degenerate=2)
    # Two fewer syntax-valid probes of forty is within the noise (tolerance 2).
    verdict = compare_probes(_probes(28, 2), current, z2, NOISE)
    assert verdict.passed, verdict.reasons
    assert verdict.tolerance is not None
    assert (verdict.tolerance.syntax_drop, verdict.tolerance.degenerate_rise) == (2, 4)
    assert verdict.candidate.syntax_valid == 28 and verdict.candidate.syntax_checked == 40
    # Three is not, and the reason says by how much against what.
    verdict = compare_probes(_probes(27, 2), current, z2, NOISE)
    assert not verdict.passed
    assert verdict.reasons[0].startswith(
        "probe syntax-valid completions fell by 3 (27 of 40, current 30); 2 allowed (noise 1 "
        "syntax and 4 degenerate flip(s) in 40 probes between equivalent base-model runs, z 2)"
    )
    assert verdict.reasons[0].endswith(
        ", 1 over; 3 worse, 0 better: sign test p 0.125 (refuses below 1)"
    )
    failed = [f for f in verdict.findings if not f.passed]
    assert [(f.figure, f.value, f.required, f.shortfall) for f in failed] == [
        ("probe_syntax_valid_drop", 3, 2, 1)
    ]
    # Degenerate completions: four more are noise, five are not.
    assert compare_probes(_probes(30, 6), current, z2, NOISE).passed
    assert not compare_probes(_probes(30, 7), current, z2, NOISE).passed
    # A junk candidate (nothing parses, everything repeats) is refused on both counts.
    junk = compare_probes(_probes(0, 40), current, z2, NOISE)
    assert [f.figure for f in junk.findings if not f.passed] == [
        "probe_syntax_valid_drop",
        "probe_degenerate_rise",
    ]
    # Without a measured noise and with z 0 nothing is tolerated; the explicit settings
    # still set a floor of their own.
    assert not compare_probes(_probes(29, 2), current, GateThresholds()).passed
    assert compare_probes(_probes(26, 2), current, GateThresholds(max_syntax_drop=0.1)).passed


def test_sign_test_counts_the_changed_probes() -> None:
    assert sign_test(0, 0) == 1.0 and sign_test(0, 5) == 1.0
    assert sign_test(3, 0) == pytest.approx(1 / 8)
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(7, 1) == pytest.approx(9 / 256)
    assert sign_test(1, 1) == pytest.approx(3 / 4)


def test_probe_changes_beyond_the_tolerance_refuse_only_when_not_noise() -> None:
    """A trained adapter moves a few probes both ways; beyond the noise tolerance, the
    probes that changed must have gone worse significantly more often than better."""
    thresholds = GateThresholds(probe_noise_z=2.0, probe_alpha=0.05)
    current = _probes(valid=30, degenerate=2)
    # Three more empty or repetitive completions, none fewer: over the tolerance of 2, but
    # three of three could be chance (p 1/8).
    three = compare_probes(_probes(30, 5), current, thresholds)
    assert three.passed, three.reasons
    [finding] = [f for f in three.findings if f.figure == "probe_degenerate_rise"]
    assert (finding.value, finding.required, finding.shortfall) == (3, 2, 0.0)
    assert finding.noise.endswith("3 worse, 0 better: sign test p 0.125 (refuses below 0.05)")
    # Five of five is not chance (p 1/32): refused, with both figures in the reason.
    five = compare_probes(_probes(30, 7), current, thresholds)
    assert not five.passed
    assert five.reasons[0].endswith("; 5 worse, 0 better: sign test p 0.0312 (refuses below 0.05)")
    # Probes that went both ways: a net drop of 3 syntax-valid made of 4 worse and 1 better
    # (p 3/16) is noise; the strictest gate (alpha 1) refuses it on the count alone.
    mixed = _probes(26, 2)
    mixed[35]["syntax_valid"] = True
    assert sum(bool(r["syntax_valid"]) for r in mixed) == 27
    assert compare_probes(mixed, current, thresholds).passed
    assert not compare_probes(mixed, current, GateThresholds(probe_noise_z=2.0)).passed


def test_edit_distance() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0
    assert normalised_distance("abc", "abd") == pytest.approx(1 / 3)
    assert normalised_distance("", "") == 0.0
    assert normalised_distance("abc", "") == 1.0
    # A suggestion is compared over as many lines as the pair's texts hold.
    assert comparable("x: int) -> int:\n    return x", ": int) -> int:", "):") == "x: int) -> int:"
    assert comparable("a\nb\nc  ", "a\nb\n", "z") == "a\nb"


PAIRS = [
    {"chosen": ": float) -> float:", "rejected": "):"},
    {"chosen": ": str) -> str:", "rejected": "):"},
    {"chosen": ": int) -> bool:", "rejected": "):"},
    {"chosen": ": list[int]) -> int:", "rejected": "):"},
]


def test_behaviour_candidate_closer_to_what_was_kept() -> None:
    current = ["):", "):", "):", "):"]
    candidate = [": float) -> float:", ": str) -> str:", ": int) -> int:", "):"]
    verdict = compare_behaviour(candidate, current, PAIRS, GateThresholds())
    assert verdict.passed, verdict.reasons
    assert (verdict.closer, verdict.further, verdict.unchanged) == (3, 0, 1)
    assert verdict.candidate.closer_to_chosen == 3 and verdict.current.closer_to_chosen == 0
    assert verdict.gain.estimate > 0 and verdict.gain.low >= 0
    assert verdict.candidate.distance_to_chosen < verdict.current.distance_to_chosen


def test_behaviour_unchanged_or_further_is_refused() -> None:
    same = ["):"] * 4
    verdict = compare_behaviour(same, same, PAIRS, GateThresholds())
    assert not verdict.passed
    assert verdict.unchanged == 4
    assert verdict.reasons[0].startswith(
        "suggestions on 4 held-out contexts are not closer to what the developer kept"
    )
    kept = [p["chosen"] for p in PAIRS]
    worse = ["):", "):", kept[2], kept[3]]
    verdict = compare_behaviour(worse, kept, PAIRS, GateThresholds(behaviour_tolerance=0.02))
    assert not verdict.passed and verdict.further == 2
    assert [f.figure for f in verdict.findings if not f.passed] == [
        "behaviour_distance_gain",
        "behaviour_distance_gain_low",
    ]
    with pytest.raises(ValueError):
        compare_behaviour(same[:3], same, PAIRS, GateThresholds())


def test_split_holds_out_a_floor_of_groups_but_never_half() -> None:
    newest = {f"g{i:02d}": f"2026-01-01T00:00:{i:02d}" for i in range(24)}
    empty = SplitTotals(groups=0, heldout=0, train_boundary=None)
    splits, _ = assign_splits(newest, {}, empty, 0.2, "now", minimum=8)
    held = sorted(g for g, s in splits.items() if s == "heldout")
    assert held == [f"g{i:02d}" for i in range(16, 24)]  # the newest eight, not round(4.8)
    splits, _ = assign_splits(newest, {}, empty, 0.5, "now", minimum=8)
    assert sum(1 for s in splits.values() if s == "heldout") == 12  # the share is larger
    few = dict(list(newest.items())[:6])
    splits, _ = assign_splits(few, {}, empty, 0.2, "now", minimum=8)
    assert sum(1 for s in splits.values() if s == "heldout") == 3  # at most half
    splits, _ = assign_splits(newest, {}, empty, 0.2, "now")
    assert sum(1 for s in splits.values() if s == "heldout") == 5  # no minimum: the share


def test_preferences_are_reported_per_user_and_decide_nothing() -> None:
    # ann's pairs all moved the right way; bob's one pair moved the wrong way.
    current = [0.0, -1.0, 1.0, 0.5, 2.0]
    candidate = [1.0, 0.5, 2.0, 0.5, -1.0]
    users = ["ann", "ann", "ann", "", "bob"]
    verdict = compare_preferences(candidate, current, GateThresholds(), users=users)
    assert verdict.by_user is not None
    figures = {
        u.user: (u.candidate.pairs, u.candidate.accuracy, u.current.accuracy, u.candidate.margin)
        for u in verdict.by_user
    }
    assert figures == {
        "": (1, 1.0, 1.0, 0.5),
        "ann": (3, 1.0, pytest.approx(1 / 3), pytest.approx(3.5 / 3)),  # 3 of 3 against 1
        "bob": (1, 0.0, 1.0, -1.0),
    }
    assert [u.user for u in verdict.by_user] == ["", "ann", "bob"]
    # The decision is the one taken without the users.
    without = compare_preferences(candidate, current, GateThresholds())
    assert without.by_user is None
    assert verdict.model_copy(update={"by_user": None}) == without
    with pytest.raises(ValueError, match="same pairs"):
        compare_preferences(candidate, current, GateThresholds(), users=users[:2])
