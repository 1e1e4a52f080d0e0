"""Golden tests of the pair sources: evidence of one suggestion in, pairs and drops out."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from prefloop.settings import Settings
from prefloop.trainer.pairs.evidence import Evidence, Retention, Rewrite, Score, Verdict
from prefloop.trainer.pairs.sources import (
    Derived,
    Pair,
    accept_vs_alternative,
    derive,
    edit_after_accept,
    judge_ranking,
    rewrite_after_dismiss,
)


def evidence(*candidates: str, **fields: Any) -> Evidence:
    return Evidence(
        "s1", "2026-12-01T10:00:00Z", prompt="def f():\n", candidates=list(candidates), **fields
    )


def summary(derived: Derived) -> list[tuple[object, ...]]:
    return [
        (p.id, p.source, p.chosen, p.rejected, p.weight, p.events, p.critiques, p.candidates,
         p.chosen_candidate)
        for p in derived.pairs
    ]  # fmt: skip


def llm(**scores: float) -> dict[int, list[Score]]:
    return {int(k[1:]): [Score(f"c{k}", v)] for k, v in scores.items()}


def test_edit_after_accept_pairs_the_kept_text_with_the_shown_one() -> None:
    s = evidence(
        "return a + b",
        "return a - b",
        "return b",
        accepted={0: "e-acc0", 1: "e-acc1", 2: "e-acc2", 5: "e-acc5"},
        retained={
            0: Retention("e-ret0", 0.8, "return a + b  # sum"),
            1: Retention("e-ret1", 1.0, "return a - b"),
            5: Retention("e-ret5", 0.2, "x"),
        },
    )
    out = edit_after_accept(s, weight=0.7)
    assert summary(out) == [
        ("s1:edit_after_accept:0", "edit_after_accept", "return a + b  # sum", "return a + b",
         0.7, ("e-acc0", "e-ret0"), (), (0,), None),
    ]  # fmt: skip
    assert (out.ties, out.small_gaps, out.pairwise_breaks) == (0, 0, 0)


def test_rewrite_after_dismiss_pairs_what_the_user_wrote() -> None:
    s = evidence(
        "return a + b",
        "return a - b",
        dismissed={0: "e-dis0"},
        rewritten={0: Rewrite("e-rw0", "return sum((a, b))"), 1: Rewrite("e-rw1", "pass"),
                   4: Rewrite("e-rw4", "gone")},
    )  # fmt: skip
    assert summary(rewrite_after_dismiss(s, weight=1.0)) == [
        ("s1:rewrite_after_dismiss:0", "rewrite_after_dismiss", "return sum((a, b))",
         "return a + b", 1.0, ("e-dis0", "e-rw0"), (), (0,), None),
        ("s1:rewrite_after_dismiss:1", "rewrite_after_dismiss", "pass", "return a - b", 1.0,
         ("e-rw1",), (), (1,), None),
    ]  # fmt: skip


def test_accept_vs_alternative_needs_a_kept_accept_and_an_unshown_lower_candidate() -> None:
    s = evidence(
        "a + b",
        "a - b",
        "a * b",
        "b + a",
        "a / b",
        shown={0, 1},
        accepted={0: "e-acc"},
        retained={0: Retention("e-ret", 0.9, "a + b")},
        llm=llm(c0=4.5, c1=1.0, c2=3.0, c3=4.5),
        checks={4: [Score("k4", 1.0)]},
    )
    out = accept_vs_alternative(s, retained_similarity=0.6, weight=0.5)
    # candidate 1 was shown, 3 ties, 4 was judged by checks only
    assert summary(out) == [
        ("s1:accept_vs_alternative:0:2", "accept_vs_alternative", "a + b", "a * b", 0.5,
         ("e-acc", "e-ret"), ("cc0", "cc2"), (0, 2), 0),
    ]  # fmt: skip
    assert out.ties == 1
    barely_kept = evidence(
        "a + b", "a * b", accepted={0: "e"}, retained={0: Retention("r", 0.5, "a + b")},
        llm=llm(c0=5, c1=1),
    )  # fmt: skip
    assert accept_vs_alternative(barely_kept, retained_similarity=0.6, weight=0.5).pairs == []


def test_judge_ranking_pairs_best_with_worst_when_the_gap_is_large_enough() -> None:
    s = evidence("a + b", "a - b", "a * b", llm=llm(c0=2.0, c1=4.5, c2=4.5))
    out = judge_ranking(s, min_score_gap=2.0, weight=0.3)
    # equal best scores: the lower index ranks first
    assert summary(out) == [
        ("s1:judge_ranking:1:0", "judge_ranking", "a - b", "a + b", 0.3, (), ("cc1", "cc0"),
         (1, 0), 1),
    ]  # fmt: skip
    small = judge_ranking(s, min_score_gap=3.0, weight=0.3)
    assert (small.pairs, small.small_gaps, small.ties) == ([], 1, 0)


def test_judge_ranking_ranks_by_checks_without_two_llm_critiques() -> None:
    s = evidence(
        "a + b",
        "a +* b",
        llm=llm(c0=5.0),
        checks={0: [Score("k0", 5.0)], 1: [Score("k1a", 1.0), Score("k1b", 4.0)]},
    )
    # candidate 0 is judged by the LLM, so it does not rank among the check-judged
    assert summary(judge_ranking(s, min_score_gap=2.0, weight=0.3)) == []
    s.llm.clear()
    assert summary(judge_ranking(s, min_score_gap=2.0, weight=0.3)) == [
        ("s1:judge_ranking:0:1", "judge_ranking", "a + b", "a +* b", 0.3, (), ("k0", "k1a", "k1b"),
         (0, 1), 0),
    ]  # fmt: skip


def test_judge_ranking_breaks_a_close_call_with_a_pairwise_verdict() -> None:
    verdicts = [Verdict("v-other", 0, 7), Verdict("v1", 2, 0), Verdict("v2", 0, 2)]
    s = evidence("a + b", "b + a", "sum((a, b))", llm=llm(c0=4, c1=4, c2=4), verdicts=verdicts)
    out = judge_ranking(s, min_score_gap=2.0, weight=0.3)
    # the first verdict between two ranked candidates decides
    assert summary(out) == [
        ("s1:judge_ranking:2:0", "judge_ranking", "sum((a, b))", "a + b", 0.3, (),
         ("cc2", "cc0", "v1"), (2, 0), 2),
    ]  # fmt: skip
    assert (out.pairwise_breaks, out.ties) == (1, 0)
    tie = judge_ranking(evidence("a", "b", llm=llm(c0=3, c1=3)), min_score_gap=2.0, weight=0.3)
    assert (tie.pairs, tie.ties) == ([], 1)
    single = judge_ranking(evidence("a", llm=llm(c0=3)), min_score_gap=0.0, weight=0.3)
    assert single == Derived()


def test_derive_takes_each_sources_settings() -> None:
    s = evidence(
        "a + b",
        "a - b",
        shown={0},
        accepted={0: "e-acc"},
        retained={0: Retention("e-ret", 0.9, "a + b + 0")},
        llm=llm(c0=5, c1=1),
        rewritten={1: Rewrite("e-rw", "a * b")},
    )
    settings = Settings(
        pairs_weight_edit=0.1,
        pairs_weight_alternative=0.2,
        pairs_weight_rewrite=0.3,
        pairs_weight_judge=0.4,
        pairs_retained_similarity=0.5,
        pairs_min_score_gap=2,
    )
    pairs: list[Pair] = derive(s, settings).pairs
    assert sorted((p.source, p.weight) for p in pairs) == [
        ("accept_vs_alternative", 0.2),
        ("edit_after_accept", 0.1),
        ("judge_ranking", 0.4),
        ("rewrite_after_dismiss", 0.3),
    ]


def test_pair_building_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "import prefloop.trainer.pairs, prefloop.trainer.pairs.build\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
