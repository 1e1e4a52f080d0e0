"""Golden tests of the benchmark's text distances, held-out figures and report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.loop.corpus import corpus
from bench.loop.metrics import mean_and_spread, score, summarise
from bench.loop.report import BEGIN, END, write_section
from bench.loop.tastes import TASTES, Context
from bench.loop.textdistance import levenshtein, normalised_distance, retained_chars, similarity
from tests.loop.base_style import plain_forms


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "abc", 0), ("kitten", "sitting", 3), ("", "abc", 3), ("ab", "ba", 2)],
)
def test_levenshtein(a: str, b: str, distance: int) -> None:
    assert levenshtein(a, b) == distance == levenshtein(b, a)


def test_normalised_distance_and_retained_chars() -> None:
    assert normalised_distance("", "") == 0.0
    assert normalised_distance("", "abc") == 1.0
    assert normalised_distance("kitten", "sitting") == 3 / 7
    assert similarity("abcd", "abcd") == 1.0
    assert retained_chars('"%s items" % n', 'f"{n} items"') == len('" items"')
    assert retained_chars("abc", "") == 0


CONTEXT = Context("fstrings", "c", "src/m.py", "return", "\n", ' f"{n} items"')


def test_score_each_reaction() -> None:
    taste = TASTES["fstrings"]
    accepted = score(taste, CONTEXT, ' f"{n} things"')
    assert (accepted.reaction, accepted.distance, accepted.satisfied) == ("accept", 0.0, True)
    assert accepted.retained_chars == len(' f"{n} things"')
    edited = score(taste, CONTEXT, ' "%s things" % n')
    assert edited.reaction == "edit_after_accept" and not edited.satisfied
    assert edited.distance == normalised_distance(' "%s things" % n', ' f"{n} things"')
    assert edited.retained_chars == retained_chars(' "%s things" % n', ' f"{n} things"')
    rewritten = score(taste, CONTEXT, " None")
    assert (rewritten.reaction, rewritten.retained_chars) == ("dismiss_and_rewrite", 0)
    empty = score(taste, CONTEXT, "")
    assert (empty.distance, empty.satisfied) == (1.0, False)


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_every_context_scores_its_wanted_line_and_its_plain_style(taste: str) -> None:
    """On every context: the wanted line is kept as is (distance 0, all of it retained, the
    taste satisfied); a plain-style line is edited into the wanted one (distance above 0,
    not satisfied); no suggestion costs the whole line."""
    split = corpus(taste)
    for context in split.train + split.heldout:
        wanted = score(TASTES[taste], context, context.wanted)
        assert (wanted.reaction, wanted.distance, wanted.satisfied) == ("accept", 0.0, True)
        assert wanted.retained_chars == len(context.wanted)
        for line in plain_forms(context):
            plain = score(TASTES[taste], context, line)
            assert plain.reaction == "edit_after_accept" and not plain.satisfied, line
            assert plain.distance == normalised_distance(line, context.wanted) > 0, line
        nothing = score(TASTES[taste], context, "")
        assert (nothing.distance, nothing.retained_chars) == (1.0, 0)


def test_summarise_a_round() -> None:
    taste = TASTES["fstrings"]
    scored = [score(taste, CONTEXT, s) for s in (' f"{n} things"', ' "%s things" % n', " None", "")]
    figures = summarise(2, "v2", scored)
    assert figures.round == 2 and figures.version == "v2" and figures.contexts == 4
    assert figures.acceptance == 2 / 4
    assert figures.taste_share == 1 / 4
    assert figures.no_suggestion == 1
    assert figures.retained_chars == scored[0].retained_chars + scored[1].retained_chars
    assert figures.edit_distance == pytest.approx(sum(s.distance for s in scored) / 4)


def test_mean_and_spread() -> None:
    assert mean_and_spread([0.5]) == (0.5, 0.0)
    assert mean_and_spread([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert all(math.isnan(v) for v in mean_and_spread([]))


def test_the_section_is_replaced_in_place(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Before\n")
    write_section(results, f"{BEGIN}\nfirst\n{END}\n")
    results.write_text(results.read_text() + "\n## After\n")
    write_section(results, f"{BEGIN}\nsecond\n{END}\n")
    text = results.read_text()
    assert "first" not in text and text.count("second") == 1
    assert text.index("## Before") < text.index("second") < text.index("## After")


def test_probe_syntax_rate_per_round_comes_from_the_gates_that_measured_what_was_served() -> None:
    from bench.loop.run import DeveloperResult, ServiceResult

    dev = DeveloperResult("dev", "fstrings")
    dev.rounds = [{"round": r, "version": v} for r, v in enumerate(["base", "base", "v1", "v1"])]
    refused = {"status": "refused", "syntax_valid_current": None, "syntax_valid_candidate": None}
    promoted = {"status": "succeeded", "syntax_valid_current": 0.88, "syntax_valid_candidate": 0.85}
    rejected = {"status": "rejected", "syntax_valid_current": 0.85, "syntax_valid_candidate": 0.8}
    result = ServiceResult(seed=0, developers=[dev], runs=[refused, promoted, rejected])
    # Round 1's retrain was refused before training: round 2's gate measured base, served
    # in rounds 0 and 1; its promoted candidate is served from round 2 on.
    assert result.syntax_valid() == [0.88, 0.88, 0.85, 0.85]
    # Nothing measured base when no gate ran.
    result.runs = [refused, refused, refused]
    dev.rounds = [{"round": r, "version": "base"} for r in range(4)]
    assert result.syntax_valid() == [None, None, None, None]


def test_a_humaneval_drop_counts_only_beyond_the_noise_of_which_problems_changed() -> None:
    from bench.loop.report import humaneval_change
    from bench.loop.run import DeveloperResult, ServiceResult

    def service(*rounds: list[str]) -> ServiceResult:
        return ServiceResult(
            seed=0,
            developers=[DeveloperResult("dev", "fstrings")],
            humaneval=[len(r) / 16 for r in rounds],
            humaneval_solved=list(rounds),
        )

    before = [f"HumanEval/{i}" for i in range(6)]
    # Two lost, one gained: p = 0.5 (three changes, at least two of them worse).
    swapped = service(before, [*before[:4], "HumanEval/99"])
    assert humaneval_change([swapped]) == (
        "2 problems lost, 1 gained, sign test p 0.50: not lower beyond noise"
    )
    # Five lost and none gained: p = 1/32.
    assert humaneval_change([service(before, before[5:])]).endswith("lower beyond noise")
    assert "not lower" not in humaneval_change([service(before, before[5:])])
    # Shares only (older results): judged on the net change.
    shares = [ServiceResult(seed=0, developers=[], humaneval=[6 / 16, 4 / 16])]
    assert humaneval_change(shares, 16) == ("net 2 problems lost, p ≥ 0.25: not lower beyond noise")
    assert humaneval_change(shares) == "problems not recorded"


def test_humaneval_tests_judge_a_completion_in_a_separate_process() -> None:
    from bench.loop.humaneval import passes, problems

    (add,) = [p for p in problems(16) if p.task_id == "HumanEval/53"]
    assert passes(add, "    return x + y")
    assert not passes(add, "    return x - y")
    assert not passes(add, "    while True:\n        pass", time_limit=1.0)
