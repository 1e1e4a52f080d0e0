"""Retries and failure records against a judge endpoint whose answers the test scripts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefloop.server.judge.backends import JudgeUnavailable, OpenAIBackend
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import JudgeOptions, Outcome, critique
from prefloop.server.judge.records import CHECKS_JUDGE
from prefloop.server.judge.rubric import load_rubric
from prefloop.server.judge.worker import JudgeWorker
from prefloop.settings import Settings
from prefloop.store.writer import Writer
from tests.judge.backlog import SNIPPETS, add_backlog, critiques
from tests.judge.scripted_judge import Reply, ScriptedJudge, scripted_judge
from tests.waiting import wait_until_async

RUBRIC = load_rubric()
SCORES = {"fit": 4, "correctness": 5, "efficiency": 4, "readability": 4, "style": 4, "safety": 5}
GOOD = Reply(json.dumps({"scores": SCORES, "rationale": "Averages the values."}))
PARTIAL = Reply(json.dumps({"scores": {"fit": 4, "correctness": 5}, "rationale": "Half."}))
GARBAGE = Reply("Looks great!!! 10/10 would merge")
REFUSAL_TEXT = Reply("I'm sorry, but I cannot evaluate code.")
REFUSAL_FIELD = Reply("", refusal="I can't help with that.")
SLOW = Reply(GOOD.content, delay=1.5)
OVERLOADED = Reply(status=503)
BAD_REQUEST = Reply(status=400)

CTX = JudgeContext(
    suggestion_id="s-1",
    language="python",
    path="stats.py",
    prefix=SNIPPETS[0].prefix,
    suffix=SNIPPETS[0].suffix,
    candidates=SNIPPETS[0].candidates,
)
OPTIONS = JudgeOptions(max_attempts=3, timeout=1.0, max_tokens=64)


async def judge_one(
    judge: ScriptedJudge, ctx: JudgeContext, options: JudgeOptions = OPTIONS
) -> list[Outcome]:
    backend = OpenAIBackend(judge.url, structured=False, timeout=5.0)
    await backend.start()
    try:
        return await critique(backend, RUBRIC, ctx, options)
    finally:
        await backend.close()


ONE = JudgeContext(**{**CTX.__dict__, "candidates": CTX.candidates[:1]})


async def test_good_answer_on_the_first_try() -> None:
    with scripted_judge([GOOD]) as judge:
        [outcome] = await judge_one(judge, ONE)
    assert outcome.status == "ok" and outcome.attempts == 1
    assert outcome.scores == SCORES and outcome.rationale == "Averages the values."
    assert outcome.error is None and outcome.duration_ms > 0
    assert judge.requests[0]["model"] == "scripted-judge"
    assert judge.requests[0]["temperature"] == 0


async def test_garbage_then_partial_then_good_takes_three_attempts() -> None:
    with scripted_judge([GARBAGE, PARTIAL, GOOD]) as judge:
        [outcome] = await judge_one(judge, ONE)
    assert outcome.status == "ok" and outcome.attempts == 3
    assert [e.split(":")[0] for e in outcome.errors] == ["attempt 1", "attempt 2"]
    assert "no JSON object" in outcome.errors[0]
    assert "scores.efficiency" in outcome.errors[1]
    retry = judge.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == GARBAGE.content
    assert "no JSON object" in retry[3]["content"]


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ([GARBAGE], "no JSON object in the answer"),
        ([PARTIAL], "scores.efficiency: Field required"),
        ([REFUSAL_TEXT], "refused"),
        ([REFUSAL_FIELD], "refused: I can't help with that."),
        ([SLOW], "timed out after 1s"),
        ([BAD_REQUEST], "judge endpoint answered 400"),
    ],
    ids=["garbage", "partial", "refusal-text", "refusal-field", "timeout", "bad-request"],
)
async def test_bounded_retries_then_a_failure_record(replies: list[Reply], reason: str) -> None:
    with scripted_judge(replies) as judge:
        [outcome] = await judge_one(judge, ONE)
    assert outcome.status == "failed" and outcome.attempts == 3
    assert outcome.scores is None
    assert outcome.error is not None
    assert outcome.error.count(reason) == 3, outcome.error
    assert len(judge.requests) == 3


async def test_an_unreachable_judge_uses_no_attempt() -> None:
    with scripted_judge([OVERLOADED]) as judge:
        with pytest.raises(JudgeUnavailable, match="503"):
            await judge_one(judge, ONE)
        assert len(judge.requests) == 1
    backend = OpenAIBackend("http://127.0.0.1:9/v1", model="m", timeout=2.0)
    await backend.start()
    with pytest.raises(JudgeUnavailable, match="unreachable"):
        await critique(backend, RUBRIC, ONE, OPTIONS)
    await backend.close()


def together_answer(*labels: str) -> Reply:
    items = [{"candidate": lb, "scores": SCORES, "rationale": f"on {lb}"} for lb in labels]
    return Reply(json.dumps({"critiques": items}))


async def test_together_keeps_valid_entries_and_asks_again_for_the_rest() -> None:
    ctx = JudgeContext(**{**CTX.__dict__, "candidates": ("a = 1", "a = 2", "a = 3")})
    options = JudgeOptions(max_attempts=2, timeout=2.0, max_tokens=64, together=True)
    with scripted_judge([together_answer("A", "C"), together_answer("A")]) as judge:
        outcomes = await judge_one(judge, ctx, options)
    first = judge.requests[0]["messages"][1]["content"]
    assert all(f"Candidate {lb}:" in first for lb in "ABC")
    second = judge.requests[1]["messages"]
    assert len(second) == 2 and "Candidate" not in second[1]["content"]
    missing = first.split("Candidate B:\n```\n")[1].split("\n```")[0]
    assert f"<completion>{missing}</completion>" in second[1]["content"]
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert sorted(o.attempts for o in outcomes) == [1, 1, 2]
    positions: dict[int, set[int | None]] = {o.attempts: set() for o in outcomes}
    for o in outcomes:
        positions[o.attempts].add(o.position)
    assert positions == {1: {0, 2}, 2: {None}}, "positions shown; none when judged alone"


async def test_structured_output_sends_the_schema() -> None:
    with scripted_judge([GOOD]) as judge:
        backend = OpenAIBackend(judge.url, api="completions", structured=True, timeout=5.0)
        await backend.start()
        [outcome] = await critique(backend, RUBRIC, ONE, OPTIONS)
        await backend.close()
    body = judge.requests[0]
    assert body["_path"] == "/v1/completions" and outcome.status == "ok"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["$defs"]["Scores"]["required"]) == set(RUBRIC.aspect_ids)
    assert body["prompt"].endswith("### Assistant\n")


async def test_completions_api_without_schema_prefills_the_answer() -> None:
    rest = GOOD.content[len('{"scores": {"') :]
    with scripted_judge([Reply(rest)]) as judge:
        backend = OpenAIBackend(judge.url, api="completions", structured=False, timeout=5.0)
        await backend.start()
        [outcome] = await critique(backend, RUBRIC, ONE, OPTIONS)
        await backend.close()
    assert judge.requests[0]["prompt"].endswith('### Assistant\n{"scores": {"')
    assert outcome.status == "ok" and outcome.scores == SCORES


# ---- the worker -------------------------------------------------------------------


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(tmp_path / "prefloop.db")
    w.start()
    yield w
    w.stop()


def settings_for(judge: ScriptedJudge, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path,
        "judge_backend": "openai",
        "judge_url": judge.url,
        "judge_structured": False,
        "judge_max_attempts": 2,
        "judge_timeout": 2.0,
        "judge_poll_interval": 0.05,
        "judge_concurrency": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_worker_records_ok_and_failed_critiques_for_every_candidate(
    writer: Writer, tmp_path: Path
) -> None:
    sids = add_backlog(writer)
    with scripted_judge([GARBAGE, GARBAGE, GOOD]) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path, judge_concurrency=1), None, writer)
        await worker.start()
        try:
            await wait_until_async(
                lambda: {r["suggestion_id"] for r in critiques(writer.db_path, "llm:openai")},
                lambda done: done >= set(sids),
                what="a critique for every suggestion",
                timeout=10,
            )
        finally:
            await worker.stop()
    rows = critiques(writer.db_path, "llm:openai")
    assert len(rows) == sum(len(s.candidates) for s in SNIPPETS), "every candidate, shown or not"
    by_status = {r["status"] for r in rows}
    assert by_status == {"ok", "failed"}
    for row in rows:
        assert row["judge_model"] == "scripted-judge"
        assert row["rubric_version"] == "inline-v1"
        assert row["user"] == "tester" and row["model_version"] == "base"
        assert row["created_at"] and row["duration_ms"] > 0
        if row["status"] == "failed":
            assert row["attempts"] == 2 and row["scores"] is None
            assert "attempt 1: no JSON object" in row["error"]
            assert row["answer"] == GARBAGE.content
        else:
            assert row["scores"] == SCORES and row["rationale"] and row["error"] is None
    checks = critiques(writer.db_path, CHECKS_JUDGE)
    assert len(checks) == len(rows)
    assert worker.stats.critiques_ok + worker.stats.critiques_failed == len(rows)


async def test_worker_waits_out_an_outage_and_records_nothing_meanwhile(
    writer: Writer, tmp_path: Path
) -> None:
    [sid] = add_backlog(writer, SNIPPETS[2:])
    with scripted_judge([OVERLOADED]) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path, judge_checks=False), None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 0
            assert worker.stats.unavailable == 1
            assert critiques(writer.db_path) == []
            judge.replies = [OVERLOADED, GOOD]
            worker._resume_at = 0.0
            assert await worker.run_once() == 1
        finally:
            await worker.stop()
    [row] = critiques(writer.db_path)
    assert row["suggestion_id"] == sid and row["status"] == "ok" and row["attempts"] == 1


async def test_worker_skips_suggestions_without_candidates_and_judges_each_once(
    writer: Writer, tmp_path: Path
) -> None:
    add_backlog(writer, [SNIPPETS[0].__class__("python", "e.py", "x = ", "", ())])
    add_backlog(writer, SNIPPETS[2:])
    with scripted_judge([GOOD]) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path), None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 2  # checks, then the LLM judge
            assert await worker.run_once() == 0
        finally:
            await worker.stop()
        assert len(judge.requests) == 1


async def test_judge_texts_are_redacted_before_storage(writer: Writer, tmp_path: Path) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    leaky = Reply(json.dumps({"scores": SCORES, "rationale": f"Do not hard-code {token}."}))
    add_backlog(writer, SNIPPETS[2:])
    with scripted_judge([leaky]) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path, judge_checks=False), None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.stop()
    [row] = critiques(writer.db_path)
    assert row["rationale"] == "Do not hard-code <SECRET:github_token>."
    assert token not in row["answer"] and "<SECRET:github_token>" in row["answer"]
    for path in tmp_path.glob("prefloop.db*"):
        assert token.encode() not in path.read_bytes(), path


# ---- pairwise tie-breaks ----------------------------------------------------------


def pairwise_verdict(winner: str) -> Reply:
    return Reply(json.dumps({"winner": winner, "rationale": f"{winner} reads better"}))


HIGH = Reply(json.dumps({"scores": dict.fromkeys(SCORES, 5), "rationale": "Clean."}))


async def test_worker_breaks_a_near_tie_with_one_pairwise_verdict(
    writer: Writer, tmp_path: Path
) -> None:
    [sid] = add_backlog(writer, SNIPPETS[:1])
    first, second = SNIPPETS[0].candidates
    # candidate 0 scores 4.33, candidate 1 scores 5: closer than the default gap of 2, so
    # candidate 1 (best) is compared with candidate 0 (worst); candidate 0 wins both orders
    replies = [GOOD, HIGH, pairwise_verdict("B"), pairwise_verdict("A")]
    with scripted_judge(replies) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path, judge_checks=False), None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0, "a pairwise verdict makes nothing pending"
        finally:
            await worker.stop()
    assert len(judge.requests) == 4
    shown = [r["messages"][1]["content"] for r in judge.requests[2:]]
    assert shown[0].index(second) < shown[0].index(first), "best-scored candidate is A first"
    assert shown[1].index(first) < shown[1].index(second), "then the order is swapped"
    [row] = critiques(writer.db_path, "pairwise:llm:openai")
    assert row["suggestion_id"] == sid and row["status"] == "ok"
    assert row["candidate_index"] == 0, "the winner's index"
    assert row["findings"] == {"a": 1, "b": 0, "winner": "b", "consistent": True}
    assert row["scores"] is None and row["error"] is None
    assert row["attempts"] == 2 and row["duration_ms"] > 0
    assert row["rationale"] == "B reads better\nA reads better"
    assert row["judge_model"] == "scripted-judge"
    assert row["rubric_version"] == "pairwise-v1/inline-v1"
    assert len(critiques(writer.db_path, "llm:openai")) == 2
    assert (worker.stats.pairwise_ok, worker.stats.pairwise_failed) == (1, 0)


async def test_garbage_pairwise_answers_are_recorded_failed_and_the_worker_goes_on(
    writer: Writer, tmp_path: Path
) -> None:
    python, go = add_backlog(writer, SNIPPETS[:2])
    # newest first: the go suggestion ties and gets garbage in both orders (2 attempts
    # each), then the python suggestion ties and gets a consistent verdict
    replies = [GOOD, GOOD] + [GARBAGE] * 4 + [GOOD, GOOD, pairwise_verdict("A")]
    replies.append(pairwise_verdict("B"))
    overrides = {"judge_checks": False, "judge_concurrency": 1}
    with scripted_judge(replies) as judge:
        worker = JudgeWorker(settings_for(judge, tmp_path, **overrides), None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 1
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0
        finally:
            await worker.stop()
    assert len(judge.requests) == 10
    rows = {r["suggestion_id"]: r for r in critiques(writer.db_path, "pairwise:llm:openai")}
    failed = rows[go]
    assert failed["status"] == "failed" and failed["attempts"] == 4
    assert failed["findings"] == {"a": 0, "b": 1, "winner": None, "consistent": False}
    assert failed["candidate_index"] == 0 and failed["scores"] is None
    assert failed["error"].count("no JSON object in the answer") == 4
    ok = rows[python]
    assert ok["status"] == "ok" and ok["candidate_index"] == 0
    assert ok["findings"] == {"a": 0, "b": 1, "winner": "a", "consistent": True}
    assert (worker.stats.pairwise_ok, worker.stats.pairwise_failed) == (1, 1)
    assert worker.stats.critiques_ok == 4 and worker.stats.critiques_failed == 0


@pytest.mark.parametrize(
    ("overrides", "replies"),
    [
        ({"judge_pairwise": False}, [GOOD, GOOD]),
        ({"pairs_min_score_gap": 0.5}, [GOOD, HIGH]),
        ({}, [GOOD, PARTIAL, PARTIAL]),
    ],
    ids=["off", "gap-wide-enough", "one-scored-candidate"],
)
async def test_no_pairwise_comparison_without_a_near_tie(
    writer: Writer, tmp_path: Path, overrides: dict[str, object], replies: list[Reply]
) -> None:
    add_backlog(writer, SNIPPETS[:1])
    with scripted_judge(replies) as judge:
        settings = settings_for(judge, tmp_path, judge_checks=False, **overrides)
        worker = JudgeWorker(settings, None, writer)
        await worker.start(poll=False)
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.stop()
    assert len(judge.requests) == len(replies), "no request beyond the critiques"
    assert critiques(writer.db_path, "pairwise:llm:openai") == []
    assert len(critiques(writer.db_path, "llm:openai")) == 2
