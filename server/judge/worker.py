"""The judge worker: critiques logged suggestions in the background.

It polls the store for suggestions that lack critiques (newest first), runs the
verifiable checks on every candidate, then has the LLM judge critique every candidate,
shown or not, and writes the results through the single writer. It never runs on the
request path: with the ``engine`` judge it uses the serving model only while that is idle
and gives it up when :meth:`JudgeWorker.on_request` says a suggestion needs it. A judge
that cannot be reached pauses the LLM critiques (with backoff) and records nothing; a
judge that answers badly is retried and then recorded as failed.

When the best- and worst-scored candidates of a suggestion are closer than
``pairs_min_score_gap`` (a tie included), the worker then compares those two pairwise, in
both orders, and stores the verdict as one ``pairwise:<judge>`` critique (``judge_pairwise``
turns this off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from prefloop.checks.base import CHECKS_VERSION
from prefloop.server.engines.base import Engine
from prefloop.server.judge.backends import JudgeBackend, JudgeUnavailable, backoff
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import Outcome, critique
from prefloop.server.judge.from_settings import build_backend, judge_options
from prefloop.server.judge.pairwise import PairwiseVerdict, compare
from prefloop.server.judge.records import (
    CHECKS_JUDGE,
    check_rows,
    llm_rows,
    load_context,
    pairwise_row,
    pending_suggestions,
    write_critiques,
)
from prefloop.server.judge.rubric import DEFAULT_PAIRWISE, Rubric, load_rubric, load_templates
from prefloop.server.judge.verification import check_suggestion
from prefloop.settings import Settings
from prefloop.store import connect
from prefloop.store.writer import Writer

log = logging.getLogger(__name__)

CHECK_BATCH = 20


@dataclass
class WorkerStats:
    suggestions: int = 0
    critiques_ok: int = 0
    critiques_failed: int = 0
    first_try_ok: int = 0
    checked_suggestions: int = 0
    unavailable: int = 0
    pairwise_ok: int = 0
    pairwise_failed: int = 0


class JudgeWorker:
    """Background critiques; ``start()``/``stop()`` from the service's lifespan."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None,
        writer: Writer,
        *,
        backend: JudgeBackend | None = None,
        rubric: Rubric | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.rubric = rubric or load_rubric(settings.judge_rubric)
        self.backend = backend if backend is not None else build_backend(settings, engine)
        self.options = judge_options(settings)
        self.pairwise_templates = load_templates(DEFAULT_PAIRWISE)
        self.stats = WorkerStats()
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[str] = set()
        self._failures = 0
        self._resume_at = 0.0

    # ---- life cycle -----------------------------------------------------------------

    async def start(self, *, poll: bool = True) -> None:
        """Connect, start the backend and (unless ``poll`` is false, for callers that
        drive :meth:`run_once` themselves) the background loop."""
        self._conn = await asyncio.to_thread(connect, self.writer.db_path)
        if self.backend is not None:
            await self.backend.start()
        self._stopping = False
        if poll:
            self._task = asyncio.create_task(self._run(), name="prefloop-judge")
        log.info(
            "judge started: %s, rubric %s, checks %s",
            f"{self.backend.name} ({self.backend.model})" if self.backend else "no LLM judge",
            self.rubric.version,
            "on" if self.settings.judge_checks else "off",
        )

    async def stop(self) -> None:
        """Stop at once; unfinished suggestions stay pending for the next start."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.backend is not None:
            await self.backend.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def describe(self) -> dict[str, object]:
        """What ``/healthz`` shows of the judge."""
        return {
            "backend": self.backend.kind if self.backend else "off",
            "model": self.backend.model if self.backend else None,
            "rubric": self.rubric.version,
            "checks": self.settings.judge_checks,
            "paused": time.monotonic() < self._resume_at,
            **asdict(self.stats),
        }

    def on_request(self) -> None:
        """A suggestion request is starting: the ``engine`` judge yields the model."""
        if self.backend is not None:
            self.backend.preempt()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    # ---- work -----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("judge round failed")
                done = 0
            if done == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.judge_poll_interval)

    async def run_once(self) -> int:
        """One round: checks, then LLM critiques; returns the suggestions processed."""
        return await self.check_pending() + await self.judge_pending()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("judge worker not started")
        return self._conn

    async def _pending(self, judge: str, version: str, limit: int) -> list[JudgeContext]:
        def load() -> list[JudgeContext]:
            conn = self._connection()
            ids = pending_suggestions(conn, judge, version, limit=limit, exclude=self._inflight)
            found = (load_context(conn, sid) for sid in ids)
            return [ctx for ctx in found if ctx is not None]

        return await asyncio.to_thread(load)

    async def check_pending(self) -> int:
        if not self.settings.judge_checks:
            return 0
        contexts = await self._pending(CHECKS_JUDGE, CHECKS_VERSION, CHECK_BATCH)
        for ctx in contexts:
            results = await asyncio.to_thread(check_suggestion, ctx)
            await asyncio.wrap_future(write_critiques(self.writer, check_rows(ctx, results)))
            self.stats.checked_suggestions += 1
        return len(contexts)

    async def judge_pending(self) -> int:
        if self.backend is None or time.monotonic() < self._resume_at:
            return 0
        contexts = await self._pending(
            self.backend.name, self.rubric.version, self.settings.judge_concurrency
        )
        if not contexts:
            return 0
        self._inflight.update(ctx.suggestion_id for ctx in contexts)
        try:
            done = await asyncio.gather(*(self._judge(ctx) for ctx in contexts))
        finally:
            self._inflight.difference_update(ctx.suggestion_id for ctx in contexts)
        return sum(done)

    async def _judge(self, ctx: JudgeContext) -> int:
        assert self.backend is not None
        try:
            outcomes = await critique(self.backend, self.rubric, ctx, self.options)
        except JudgeUnavailable as exc:
            self._unavailable(exc)
            return 0
        except Exception as exc:
            log.exception("critique of %s failed", ctx.suggestion_id)
            outcomes = _internal_failure(ctx, exc)
        self._failures = 0
        rows = llm_rows(
            ctx,
            outcomes,
            judge=self.backend.name,
            judge_model=self.backend.model,
            rubric_version=self.rubric.version,
        )
        await asyncio.wrap_future(write_critiques(self.writer, rows))
        self._count(outcomes)
        if self.settings.judge_pairwise:
            await self._break_tie(ctx, outcomes)
        return 1

    async def _break_tie(self, ctx: JudgeContext, outcomes: Sequence[Outcome]) -> None:
        """One pairwise comparison of the best- and worst-scored candidates when their
        scores are closer than the pair builder's minimum gap; its verdict is stored as a
        critique (a failed one when the judge answered badly)."""
        assert self.backend is not None
        pair = tie_to_break(outcomes, self.settings.pairs_min_score_gap)
        if pair is None:
            return
        a, b = pair
        try:
            verdict = await compare(
                self.backend,
                ctx,
                ctx.candidates[a],
                ctx.candidates[b],
                rubric=self.rubric,
                templates=self.pairwise_templates,
                options=self.options,
            )
        except JudgeUnavailable as exc:
            self._unavailable(exc)
            return
        except Exception as exc:
            log.exception("pairwise comparison of %s failed", ctx.suggestion_id)
            verdict = PairwiseVerdict(
                winner=None,
                consistent=False,
                rationales=(),
                attempts=0,
                duration_ms=0.0,
                judge=self.backend.name,
                judge_model=self.backend.model,
                rubric_version=f"{self.pairwise_templates.version}/{self.rubric.version}",
                errors=(f"internal error: {type(exc).__name__}: {exc}"[:500],),
            )
        row = pairwise_row(ctx, a, b, verdict)
        await asyncio.wrap_future(write_critiques(self.writer, [row]))
        if verdict.winner is None:
            self.stats.pairwise_failed += 1
        else:
            self.stats.pairwise_ok += 1

    def _unavailable(self, exc: JudgeUnavailable) -> None:
        self._failures += 1
        self.stats.unavailable += 1
        wait = backoff(self._failures, cap=max(60.0, self.settings.judge_poll_interval))
        self._resume_at = time.monotonic() + wait
        log.warning("judge unavailable (%s); retrying in %.0fs", exc, wait)

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        self.stats.suggestions += 1
        for o in outcomes:
            if o.status == "ok":
                self.stats.critiques_ok += 1
                self.stats.first_try_ok += int(o.attempts == 1)
            else:
                self.stats.critiques_failed += 1


def tie_to_break(outcomes: Sequence[Outcome], min_gap: float) -> tuple[int, int] | None:
    """(best, worst) candidate indices when at least two candidates were scored and the
    best and worst mean scores differ by less than ``min_gap``; ranked like the pair
    builder ranks them (higher mean first, then lower index)."""
    means = [
        (sum(o.scores.values()) / len(o.scores), o.index)
        for o in outcomes
        if o.status == "ok" and o.scores
    ]
    if len(means) < 2:
        return None
    ranked = sorted(means, key=lambda t: (-t[0], t[1]))
    (best, bi), (worst, wi) = ranked[0], ranked[-1]
    return (bi, wi) if best - worst < min_gap else None


def _internal_failure(ctx: JudgeContext, exc: Exception) -> list[Outcome]:
    error = f"internal error: {type(exc).__name__}: {exc}"[:500]
    return [Outcome(index=i, status="failed", error=error) for i in range(len(ctx.candidates))]
