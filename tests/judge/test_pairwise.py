"""Pairwise judging (A vs B for the same context) as the trainer calls it."""

from __future__ import annotations

import json

import pytest

from prefloop.server.judge.backends import OpenAIBackend
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import JudgeOptions
from prefloop.server.judge.pairwise import (
    PairwiseVerdict,
    compare,
    compare_pairs,
    parse_pairwise,
    rank,
)
from prefloop.settings import Settings
from tests.judge.scripted_judge import Reply, ScriptedJudge, scripted_judge

CTX = JudgeContext(
    "p-1", "python", "m.py", "def mean(xs):\n", "\n", ("    return sum(xs) / len(xs)", "    pass")
)
OPTIONS = JudgeOptions(max_attempts=2, timeout=5.0, max_tokens=64)


def verdict(winner: str) -> Reply:
    return Reply(json.dumps({"winner": winner, "rationale": f"{winner} is better"}))


async def run(judge: ScriptedJudge, *, both_orders: bool = True) -> PairwiseVerdict:
    backend = OpenAIBackend(judge.url, structured=False, timeout=5.0)
    await backend.start()
    try:
        a, b = CTX.candidates
        return await compare(backend, CTX, a, b, options=OPTIONS, both_orders=both_orders)
    finally:
        await backend.close()


async def test_consistent_verdicts_in_both_orders() -> None:
    with scripted_judge([verdict("A"), verdict("B")]) as judge:
        result = await run(judge)
    assert result.winner == "a" and result.consistent and result.attempts == 2
    first, second = (r["messages"][1]["content"] for r in judge.requests)
    assert first.index(CTX.candidates[0]) < first.index(CTX.candidates[1])
    assert second.index(CTX.candidates[1]) < second.index(CTX.candidates[0])
    assert result.judge == "llm:openai" and result.rubric_version == "pairwise-v1/inline-v1"


async def test_position_bias_becomes_a_tie() -> None:
    with scripted_judge([verdict("A"), verdict("A")]) as judge:
        result = await run(judge)
    assert result.winner == "tie" and not result.consistent


async def test_one_order_failing_leaves_the_other_verdict() -> None:
    with scripted_judge([Reply("no idea"), Reply("still no idea"), verdict("A")]) as judge:
        result = await run(judge)
    assert result.winner == "b" and not result.consistent
    assert result.attempts == 3 and len(result.errors) == 2


async def test_a_judge_that_always_fails_gives_no_winner() -> None:
    with scripted_judge([Reply("¯\\_(ツ)_/¯")]) as judge:
        result = await run(judge, both_orders=False)
    assert result.winner is None and result.attempts == 2
    assert all("no JSON object" in e for e in result.errors)


async def test_rank_orders_candidates_by_wins() -> None:
    ctx = JudgeContext("p-2", "python", "m.py", "x = ", "", ("1", "2", "3"))
    with scripted_judge([verdict("B"), verdict("A")] * 3) as judge:
        backend = OpenAIBackend(judge.url, structured=False, timeout=5.0)
        await backend.start()
        order = await rank(backend, ctx, options=OPTIONS)
        await backend.close()
    assert order == [(2, 2.0), (1, 1.0), (0, 0.0)]


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ('{"winner": "a", "rationale": "x"}', "A"),
        ('{"winner": "Tie", "rationale": "x"}', "tie"),
        ('{"winner": "C", "rationale": "x"}', None),
    ],
)
def test_parse_pairwise(text: str, winner: str | None) -> None:
    assert parse_pairwise(text)[0] == winner


def test_compare_pairs_from_code_without_an_event_loop() -> None:
    with scripted_judge([verdict("B"), verdict("A")]) as judge:
        settings = Settings(judge_backend="openai", judge_url=judge.url, judge_structured=False)
        [result] = compare_pairs(settings, [(CTX, "    pass", CTX.candidates[0])])
    assert result.winner == "b" and result.consistent
