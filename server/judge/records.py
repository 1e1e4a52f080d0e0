"""Critique rows the judge writes, built from its outcomes, and what it reads to find work.

The rows follow the convention written down in :mod:`prefloop.store.critiques` (judge
names, ids, the shape of ``scores`` and ``findings``); that module also holds the queries.
All critiques of one suggestion by one judge are written in one operation through the
service's :class:`~prefloop.store.writer.Writer`: a suggestion is either fully critiqued by
a judge or still pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import sqlite_utils

from prefloop.checks.base import CHECKS_VERSION, CheckResult
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import Outcome
from prefloop.store import critiques as store
from prefloop.store import utcnow
from prefloop.store.critiques import (
    CHECKS_JUDGE,
    PAIRWISE_PREFIX,
    Critique,
    PairwiseFindings,
    critique_id,
    pairwise_critique_id,
    pairwise_judge,
    pending_suggestions,
    read_critiques,
)
from prefloop.store.writer import Writer

if TYPE_CHECKING:
    import sqlite3

    from prefloop.server.judge.pairwise import PairwiseVerdict

__all__ = [
    "CHECKS_JUDGE",
    "PAIRWISE_PREFIX",
    "check_rows",
    "critique_id",
    "insert_critiques",
    "llm_rows",
    "load_context",
    "pairwise_judge",
    "pairwise_row",
    "pending_suggestions",
    "read_critiques",
    "write_critiques",
]


def _origin(ctx: JudgeContext) -> dict[str, Any]:
    """The columns every critique of ``ctx``'s suggestion shares."""
    return {
        "suggestion_id": ctx.suggestion_id,
        "created_at": utcnow(),
        "user": ctx.user,
        "language": ctx.language,
        "model_version": ctx.model_version,
    }


def llm_rows(
    ctx: JudgeContext,
    outcomes: Sequence[Outcome],
    *,
    judge: str,
    judge_model: str,
    rubric_version: str,
) -> list[Critique]:
    """Critiques of an LLM judge's outcomes (their texts are redacted when stored)."""
    return [
        Critique(
            id=critique_id(ctx.suggestion_id, o.index, judge, rubric_version),
            candidate_index=o.index,
            judge=judge,
            rubric_version=rubric_version,
            judge_model=judge_model,
            status=o.status,
            scores=o.scores,
            rationale=o.rationale,
            error=o.error,
            attempts=o.attempts,
            duration_ms=round(o.duration_ms, 1),
            answer=o.answer,
            position=o.position,
            **_origin(ctx),
        )
        for o in outcomes
    ]


def check_rows(ctx: JudgeContext, results: Sequence[tuple[int, CheckResult]]) -> list[Critique]:
    """Critiques of verifiable checks; ``scores`` holds ``{check: score}``."""
    return [
        Critique(
            id=critique_id(ctx.suggestion_id, index, r.judge, CHECKS_VERSION),
            candidate_index=index,
            judge=r.judge,
            rubric_version=CHECKS_VERSION,
            judge_model=r.tool,
            status=r.status,
            scores={r.check: r.score} if r.score is not None else None,
            rationale=r.summary or None,
            error=r.error,
            attempts=1,
            duration_ms=round(r.duration_ms, 2),
            findings=[f.as_dict() for f in r.findings],
            **_origin(ctx),
        )
        for index, r in results
    ]


def pairwise_row(ctx: JudgeContext, a: int, b: int, verdict: PairwiseVerdict) -> Critique:
    """The critique of a pairwise verdict between candidates ``a`` and ``b``: its
    ``candidate_index`` is the winner's (``a``'s on a tie or a failure), ``findings`` is a
    :class:`~prefloop.store.critiques.PairwiseFindings`, ``scores`` stays empty."""
    judge = pairwise_judge(verdict.judge)
    failed = verdict.winner is None
    return Critique(
        id=pairwise_critique_id(ctx.suggestion_id, a, b, judge, verdict.rubric_version),
        candidate_index=b if verdict.winner == "b" else a,
        judge=judge,
        rubric_version=verdict.rubric_version,
        judge_model=verdict.judge_model,
        status="failed" if failed else "ok",
        scores=None,
        rationale="\n".join(verdict.rationales) or None,
        error="; ".join(verdict.errors)[:2000] if failed else None,
        attempts=verdict.attempts,
        duration_ms=round(verdict.duration_ms, 1),
        findings=PairwiseFindings(a, b, verdict.winner, verdict.consistent),
        **_origin(ctx),
    )


def insert_critiques(db: sqlite_utils.Database, rows: Sequence[Critique]) -> int:
    """Store critiques (redacting their texts); runs in the writer's transaction."""
    return store.insert_critiques(db.conn, rows)


def write_critiques(writer: Writer, rows: Sequence[Critique]) -> Future[Any]:
    """Store critiques through ``writer`` in one operation; the future holds their count."""
    rows = list(rows)
    future = writer.submit(lambda db: insert_critiques(db, rows))
    assert future is not None
    return future


def load_context(conn: sqlite3.Connection, suggestion_id: str) -> JudgeContext | None:
    """What the judge sees of a stored suggestion; None when there is none."""
    row = store.suggestion_to_judge(conn, suggestion_id)
    return None if row is None else JudgeContext.from_row(row)
