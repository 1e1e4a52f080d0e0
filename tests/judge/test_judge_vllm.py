"""An OpenAI-compatible judge: the real CPU vLLM server of the integration tests, serving
the embedded model, asked through its chat and completions APIs with a JSON schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefloop.server.judge.backends import OpenAIBackend
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import JudgeOptions, critique
from prefloop.server.judge.pairwise import compare
from prefloop.server.judge.rubric import load_rubric
from prefloop.server.judge.worker import JudgeWorker
from prefloop.settings import Settings
from prefloop.store.writer import Writer
from tests.judge.backlog import SNIPPETS, add_backlog, critiques
from tests.vllm_fixture import VllmServer
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.vllm, pytest.mark.e2e, pytest.mark.slow]

RUBRIC = load_rubric()
OPTIONS = JudgeOptions(max_attempts=2, timeout=120.0, max_tokens=160)
CTX = JudgeContext(
    "v-1",
    "python",
    "stats.py",
    SNIPPETS[0].prefix,
    SNIPPETS[0].suffix,
    SNIPPETS[0].candidates,
)


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_structured_critiques_from_vllm(vllm_server: VllmServer, api: str) -> None:
    backend = OpenAIBackend(f"{vllm_server.url}/v1", api=api, structured=True, timeout=120)
    await backend.start()
    try:
        assert backend.model == vllm_server.served_name, "discovered from /v1/models"
        outcomes = await critique(backend, RUBRIC, CTX, OPTIONS)
    finally:
        await backend.close()
    assert [o.index for o in outcomes] == [0, 1]
    for outcome in outcomes:
        assert outcome.status == "ok", outcome.error
        assert set(outcome.scores or {}) == set(RUBRIC.aspect_ids)
        assert outcome.rationale


async def test_candidates_judged_together_by_vllm(vllm_server: VllmServer) -> None:
    backend = OpenAIBackend(f"{vllm_server.url}/v1", structured=True, timeout=120)
    await backend.start()
    options = JudgeOptions(max_attempts=2, timeout=120.0, max_tokens=160, together=True)
    try:
        outcomes = await critique(backend, RUBRIC, CTX, options)
    finally:
        await backend.close()
    assert all(o.status == "ok" for o in outcomes), [o.error for o in outcomes]
    assert {o.position for o in outcomes if o.attempts == 1} <= {0, 1}


async def test_pairwise_through_vllm(vllm_server: VllmServer) -> None:
    backend = OpenAIBackend(f"{vllm_server.url}/v1", structured=True, timeout=120)
    await backend.start()
    try:
        verdict = await compare(backend, CTX, *CTX.candidates, options=OPTIONS)
    finally:
        await backend.close()
    assert verdict.winner in ("a", "b", "tie")
    assert verdict.judge_model == vllm_server.served_name and verdict.rationales


async def test_worker_critiques_a_backlog_through_vllm(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    writer = Writer(tmp_path / "prefloop.db")
    writer.start()
    sids = add_backlog(writer)
    settings = Settings(
        home=tmp_path,
        judge_backend="openai",
        judge_url=f"{vllm_server.url}/v1",
        judge_model=vllm_server.served_name,
        judge_api="chat",
        judge_max_tokens=160,
        judge_concurrency=3,
        judge_poll_interval=0.2,
    )
    worker = JudgeWorker(settings, None, writer)
    await worker.start()
    try:
        await wait_until_async(
            lambda: {r["suggestion_id"] for r in critiques(writer.db_path, "llm:openai")},
            lambda done: done >= set(sids),
            what="a critique for every suggestion",
            timeout=300,
            interval=0.5,
        )
    finally:
        await worker.stop()
        writer.stop()
    rows = critiques(writer.db_path, "llm:openai")
    assert len(rows) == sum(len(s.candidates) for s in SNIPPETS)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert {r["judge_model"] for r in rows} == {vllm_server.served_name}
