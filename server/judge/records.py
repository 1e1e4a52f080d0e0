"""Critique rows: what the judge reads from the store and writes through the writer.

A critique's id names its suggestion, candidate, judge and rubric version, so writing the
same critique again replaces it. All critiques of one suggestion by one judge are written
in one operation: a suggestion is either fully critiqued by a judge or still pending.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import sqlite_utils

from prefloop.checks.base import CHECKS_VERSION, CheckResult
from prefloop.redaction import redact
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import Outcome
from prefloop.store import utcnow
from prefloop.store.writer import Writer

if TYPE_CHECKING:
    from prefloop.server.judge.pairwise import PairwiseVerdict

CHECKS_JUDGE = "check:syntax"
"""The check every candidate gets; its rows mark a suggestion as checked."""
PAIRWISE_PREFIX = "pairwise:"
"""Judges of pairwise verdicts start with this; their rows hold no per-candidate scores."""

COLUMNS = (
    "id",
    "suggestion_id",
    "candidate_index",
    "created_at",
    "user",
    "language",
    "model_version",
    "judge",
    "judge_model",
    "rubric_version",
    "status",
    "scores",
    "rationale",
    "error",
    "attempts",
    "duration_ms",
    "findings",
    "answer",
    "position",
)
_INSERT = (
    f"INSERT OR REPLACE INTO critiques ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_TEXT = ("rationale", "error", "answer")


def critique_id(suggestion_id: str, index: int, judge: str, rubric_version: str) -> str:
    return f"{suggestion_id}:{index}:{judge}:{rubric_version}"


def _base(ctx: JudgeContext, index: int, judge: str, rubric_version: str) -> dict[str, Any]:
    return {
        "id": critique_id(ctx.suggestion_id, index, judge, rubric_version),
        "suggestion_id": ctx.suggestion_id,
        "candidate_index": index,
        "created_at": utcnow(),
        "user": ctx.user,
        "language": ctx.language,
        "model_version": ctx.model_version,
        "judge": judge,
        "rubric_version": rubric_version,
    }


def llm_rows(
    ctx: JudgeContext,
    outcomes: Sequence[Outcome],
    *,
    judge: str,
    judge_model: str,
    rubric_version: str,
) -> list[dict[str, Any]]:
    """Rows for an LLM judge's outcomes (not yet redacted: the writer's op redacts)."""
    return [
        {
            **_base(ctx, o.index, judge, rubric_version),
            "judge_model": judge_model,
            "status": o.status,
            "scores": o.scores,
            "rationale": o.rationale,
            "error": o.error,
            "attempts": o.attempts,
            "duration_ms": round(o.duration_ms, 1),
            "findings": None,
            "answer": o.answer,
            "position": o.position,
        }
        for o in outcomes
    ]


def check_rows(
    ctx: JudgeContext, results: Sequence[tuple[int, CheckResult]]
) -> list[dict[str, Any]]:
    """Rows for verifiable checks; ``scores`` holds ``{check: score}``."""
    return [
        {
            **_base(ctx, index, r.judge, CHECKS_VERSION),
            "judge_model": r.tool,
            "status": r.status,
            "scores": {r.check: r.score} if r.score is not None else None,
            "rationale": r.summary or None,
            "error": r.error,
            "attempts": 1,
            "duration_ms": round(r.duration_ms, 2),
            "findings": [f.as_dict() for f in r.findings],
            "answer": None,
            "position": None,
        }
        for index, r in results
    ]


def pairwise_judge(judge: str) -> str:
    return f"{PAIRWISE_PREFIX}{judge}"


def pairwise_row(ctx: JudgeContext, a: int, b: int, verdict: PairwiseVerdict) -> dict[str, Any]:
    """The row of a pairwise verdict between candidates ``a`` and ``b``: its
    ``candidate_index`` is the winner's (``a``'s on a tie or a failure), ``findings`` holds
    ``{"a", "b", "winner", "consistent"}``, ``scores`` stays empty."""
    judge = pairwise_judge(verdict.judge)
    winner_index = b if verdict.winner == "b" else a
    row = _base(ctx, winner_index, judge, verdict.rubric_version)
    row["id"] = f"{ctx.suggestion_id}:{a}~{b}:{judge}:{verdict.rubric_version}"
    failed = verdict.winner is None
    return {
        **row,
        "judge_model": verdict.judge_model,
        "status": "failed" if failed else "ok",
        "scores": None,
        "rationale": "\n".join(verdict.rationales) or None,
        "error": "; ".join(verdict.errors)[:2000] if failed else None,
        "attempts": verdict.attempts,
        "duration_ms": round(verdict.duration_ms, 1),
        "findings": {"a": a, "b": b, "winner": verdict.winner, "consistent": verdict.consistent},
        "answer": None,
        "position": None,
    }


def _prepare(row: dict[str, Any]) -> list[Any]:
    out = dict(row)
    for key in _TEXT:
        if out.get(key):
            out[key] = redact(out[key])
    if out.get("scores") is not None:
        out["scores"] = json.dumps(out["scores"])
    if isinstance(out.get("findings"), list):
        findings = [{**f, "message": redact(str(f.get("message", "")))} for f in out["findings"]]
        out["findings"] = json.dumps(findings, ensure_ascii=False)
    elif out.get("findings") is not None:
        out["findings"] = json.dumps(out["findings"], ensure_ascii=False)
    return [out.get(c) for c in COLUMNS]


def insert_critiques(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> int:
    """Store critique rows (redacting their texts); runs in the writer's transaction."""
    db.conn.executemany(_INSERT, [_prepare(r) for r in rows])
    return len(rows)


def write_critiques(writer: Writer, rows: Sequence[dict[str, Any]]) -> Future[Any]:
    rows = list(rows)
    future = writer.submit(lambda db: insert_critiques(db, rows))
    assert future is not None
    return future


_PENDING = """
SELECT s.id FROM suggestions s
WHERE json_valid(s.candidates) AND json_array_length(s.candidates) > 0
  AND NOT EXISTS (
    SELECT 1 FROM critiques c
    WHERE c.suggestion_id = s.id AND c.judge = ? AND c.rubric_version = ?
  )
ORDER BY s.created_at DESC, s.rowid DESC
LIMIT ?
"""


def pending_suggestions(
    conn: sqlite3.Connection,
    judge: str,
    rubric_version: str,
    *,
    limit: int,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Ids of suggestions with candidates that ``judge`` has not critiqued under
    ``rubric_version``, newest first; ``exclude`` (work in progress) left out."""
    skip = set(exclude)
    rows = conn.execute(_PENDING, (judge, rubric_version, limit + len(skip))).fetchall()
    return [r[0] for r in rows if r[0] not in skip][:limit]


def load_context(conn: sqlite3.Connection, suggestion_id: str) -> JudgeContext | None:
    cursor = conn.execute("SELECT * FROM suggestions WHERE id = ?", (suggestion_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    return JudgeContext.from_row(dict(zip(names, row, strict=True)))


def read_critiques(
    conn: sqlite3.Connection, suggestion_id: str | None = None
) -> list[dict[str, Any]]:
    """Critique rows with ``scores`` and ``findings`` decoded (tests, stats, the trainer)."""
    sql = "SELECT * FROM critiques"
    params: tuple[Any, ...] = ()
    if suggestion_id is not None:
        sql += " WHERE suggestion_id = ?"
        params = (suggestion_id,)
    cursor = conn.execute(sql + " ORDER BY suggestion_id, candidate_index, judge", params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in rows:
        for key in ("scores", "findings"):
            if row.get(key):
                row[key] = json.loads(row[key])
    return rows
