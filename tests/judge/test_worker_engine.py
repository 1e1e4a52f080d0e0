"""The judge worker on the serving engine: a tiny random model (fast, answers garbage) and
the embedded model end to end on a small backlog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from prefloop.server.engines import GenerationParams
from prefloop.server.engines.hf import TransformersEngine
from prefloop.server.judge.backends import EngineBackend
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import JudgeOptions, critique
from prefloop.server.judge.pairwise import compare
from prefloop.server.judge.records import CHECKS_JUDGE
from prefloop.server.judge.rubric import load_rubric
from prefloop.server.judge.worker import JudgeWorker
from prefloop.settings import Settings
from prefloop.store.writer import Writer
from tests.judge.backlog import SNIPPETS, add_backlog, critiques
from tests.waiting import wait_until_async

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tiny_engine(tiny_model_dir: Path) -> AsyncIterator[TransformersEngine]:
    engine = TransformersEngine(str(tiny_model_dir), threads=1)
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(tmp_path / "prefloop.db")
    w.start()
    yield w
    w.stop()


def engine_settings(tmp_path: Path, model: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path,
        "model": str(model),
        "judge_backend": "engine",
        "judge_idle_seconds": 0.0,
        "judge_max_attempts": 2,
        "judge_max_tokens": 24,
        "judge_poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_garbage_from_a_random_model_is_retried_then_recorded_failed(
    tiny_engine: TransformersEngine, tiny_model_dir: Path, writer: Writer, tmp_path: Path
) -> None:
    sids = add_backlog(writer, SNIPPETS[:2])
    worker = JudgeWorker(engine_settings(tmp_path, tiny_model_dir), tiny_engine, writer)
    await worker.start(poll=False)
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.stop()
    rows = critiques(writer.db_path, "llm:engine")
    assert {r["suggestion_id"] for r in rows} == set(sids)
    assert len(rows) == 4, "both candidates of both suggestions, shown or not"
    for row in rows:
        assert row["status"] == "failed" and row["attempts"] == 2
        assert row["error"].startswith("attempt 1: ") and "attempt 2: " in row["error"]
        assert row["judge_model"] == f"{tiny_model_dir.name}@base"
        assert row["answer"].startswith('{"scores": {"')
    assert len(critiques(writer.db_path, CHECKS_JUDGE)) == 4


async def test_the_engine_judge_waits_for_an_idle_engine(tiny_engine: TransformersEngine) -> None:
    backend = EngineBackend(tiny_engine, model_label="tiny", idle_seconds=0.6)
    await tiny_engine.generate("x = ", GenerationParams(max_tokens=2))
    started = time.monotonic()
    await backend.ready()
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    await backend.ready()
    assert time.monotonic() - started < 0.3, "no foreign generation since: no wait"


async def test_a_suggestion_request_preempts_the_judge(tiny_engine: TransformersEngine) -> None:
    backend = EngineBackend(tiny_engine, model_label="tiny", idle_seconds=0.2)
    backend._last_activity = 0.0
    ctx = JudgeContext("s-pre", "python", "a.py", "x = ", "", ("1",))
    options = JudgeOptions(max_attempts=1, timeout=60.0, max_tokens=1500)
    cancelled = tiny_engine.stats.cancelled
    task = asyncio.create_task(critique(backend, load_rubric(), ctx, options))

    async def busy() -> bool:
        return bool((await tiny_engine.health())["busy"])

    async def cancelled_once() -> bool:
        return tiny_engine.stats.cancelled == cancelled + 1

    await wait_until_async(busy, what="the judge's generation to start", timeout=60, interval=0.01)
    backend.preempt()
    await wait_until_async(cancelled_once, what="the cancellation", timeout=60, interval=0.01)
    [outcome] = await asyncio.wait_for(task, 120)
    assert outcome.attempts == 1, "the preempted attempt is repeated, not counted"


async def test_a_suggestion_request_preempts_a_pairwise_comparison(
    tiny_engine: TransformersEngine,
) -> None:
    backend = EngineBackend(tiny_engine, model_label="tiny", idle_seconds=0.2)
    backend._last_activity = 0.0
    ctx = JudgeContext("s-pair", "python", "a.py", "x = ", "", ("1", "2"))
    options = JudgeOptions(max_attempts=1, timeout=60.0, max_tokens=1500)
    cancelled = tiny_engine.stats.cancelled
    task = asyncio.create_task(compare(backend, ctx, "1", "2", options=options))

    async def busy() -> bool:
        return bool((await tiny_engine.health())["busy"])

    async def cancelled_once() -> bool:
        return tiny_engine.stats.cancelled == cancelled + 1

    await wait_until_async(busy, what="the judge's generation to start", timeout=60, interval=0.01)
    backend.preempt()
    await wait_until_async(cancelled_once, what="the cancellation", timeout=60, interval=0.01)
    verdict = await asyncio.wait_for(task, 240)
    assert verdict.attempts == 2, "one per order: the preempted attempt is repeated"
    assert verdict.winner is None and len(verdict.errors) == 2, "a random model's garbage"


@pytest.mark.slow
@pytest.mark.e2e
async def test_backlog_end_to_end_with_the_embedded_model(
    embedded_model_dir: Path, tmp_path: Path
) -> None:
    writer = Writer(tmp_path / "prefloop.db")
    writer.start()
    engine = TransformersEngine(str(embedded_model_dir))
    await engine.start()
    settings = engine_settings(
        tmp_path, embedded_model_dir, judge_max_tokens=96, judge_idle_seconds=0.5
    )
    sids = add_backlog(writer, SNIPPETS[:2])
    worker = JudgeWorker(settings, engine, writer)
    await worker.start()
    try:
        await wait_until_async(
            lambda: {r["suggestion_id"] for r in critiques(writer.db_path, "llm:engine")},
            lambda done: done >= set(sids),
            what="a critique for every suggestion",
            timeout=600,
            interval=0.5,
        )
    finally:
        await worker.stop()
        await engine.close()
        writer.stop()
    rows = critiques(writer.db_path, "llm:engine")
    assert len(rows) == 4
    assert {r["candidate_index"] for r in rows} == {0, 1}
    for row in rows:
        assert row["status"] in ("ok", "failed")
        assert row["judge_model"] == "smollm2-135m-instruct@base"
        assert row["rubric_version"] == "inline-v1" and row["duration_ms"] > 0
        assert 1 <= row["attempts"] <= 2
        if row["status"] == "ok":
            assert set(row["scores"]) == set(load_rubric().aspect_ids)
            assert all(1 <= v <= 5 for v in row["scores"].values()) and row["rationale"]
        else:
            assert row["error"]
    assert any(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    checks = {
        (r["suggestion_id"], r["candidate_index"]): r
        for r in critiques(writer.db_path, CHECKS_JUDGE)
    }
    assert len(checks) == 4
    go_broken = checks[(sids[1], 1)]
    assert go_broken["scores"] == {"syntax": 1}
