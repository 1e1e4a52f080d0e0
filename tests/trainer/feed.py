"""Writes test feedback through the store's real paths: the writer's suggestion rows,
event ingest (validation and redaction included) and the judge's critique records."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from prefloop.protocol import EVENT_ADAPTER
from prefloop.server.judge.critic import Outcome
from prefloop.server.judge.pairwise import PairwiseVerdict, Winner
from prefloop.server.judge.records import (
    check_rows,
    insert_critiques,
    llm_rows,
    load_context,
    pairwise_row,
)
from prefloop.server.judge.verification import check_suggestion
from prefloop.store import connect
from prefloop.store.critiques import Critique
from prefloop.store.writer import (
    IngestResult,
    Writer,
    insert_events,
    redact_event_texts,
    suggestion_row,
)

PREFIX = "def add(a, b):\n    return "


class Feed:
    """A running writer on ``db`` and helpers that store suggestions, events, critiques."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.writer = Writer(db, user="tester")
        self.writer.start()

    def close(self) -> None:
        self.writer.stop()

    def suggestion(
        self,
        candidates: Sequence[str],
        *,
        prefix: str = PREFIX,
        suffix: str = "\n",
        prompt: str | None = None,
        language: str = "python",
        path: str = "src/calc.py",
        sid: str | None = None,
        user: str = "tester",
        lead: str = "",
    ) -> str:
        sid = sid or uuid.uuid4().hex
        row = suggestion_row(
            suggestion_id=sid,
            user=user,
            session_id=None,
            client_request_id=None,
            language=language,
            path=path,
            model_version="base",
            engine="transformers",
            mode="multi_line",
            n=len(candidates),
            max_tokens=32,
            cursor=(1, 11),
            prefix=prefix,
            suffix=suffix,
            prompt=f"# File: {path}\n{prefix}" if prompt is None else prompt,
            template="prefix-only",
            prefix_truncated=False,
            suffix_truncated=False,
            candidates=candidates,
            timings={"total_ms": 1.0},
            prompt_lead=lead,
        )
        self.writer.add_suggestion(row)
        self.writer.flush()
        return sid

    def events(self, *events: dict[str, Any]) -> list[str]:
        parsed = [EVENT_ADAPTER.validate_python({"id": uuid.uuid4().hex, **e}) for e in events]
        texts = redact_event_texts(parsed)
        future = self.writer.submit(lambda db: insert_events(db, parsed, texts, "tester"))
        assert future is not None
        result: IngestResult = future.result(30)
        assert result.stored == [e.id for e in parsed], result
        return result.stored

    def _context(self, sid: str) -> Any:
        with closing(connect(self.db)) as conn:
            ctx = load_context(conn, sid)
        assert ctx is not None
        return ctx

    def checks(self, sid: str) -> None:
        """The judge's verifiable checks of every candidate, stored as critiques."""
        ctx = self._context(sid)
        rows = check_rows(ctx, check_suggestion(ctx))
        self._store(rows)

    def judged(self, sid: str, scores: dict[int, float], judge: str = "engine") -> None:
        """LLM critiques: every aspect of candidate ``i`` scored ``scores[i]``."""
        ctx = self._context(sid)
        outcomes = [
            Outcome(index=i, status="ok", scores={"fit": s, "correctness": s}, attempts=1)
            for i, s in scores.items()
        ]
        rows = llm_rows(ctx, outcomes, judge=judge, judge_model="m", rubric_version="inline-v1")
        self._store(rows)

    def pairwise(
        self,
        sid: str,
        a: int,
        b: int,
        winner: Winner | None,
        *,
        consistent: bool = True,
        judge: str = "llm:engine",
    ) -> str:
        """A pairwise verdict between candidates ``a`` and ``b`` as the judge worker stores
        it; returns the critique id."""
        verdict = PairwiseVerdict(
            winner=winner,
            consistent=consistent,
            rationales=("one reads better",),
            attempts=2,
            duration_ms=3.0,
            judge=judge,
            judge_model="m",
            rubric_version="pairwise-v1/inline-v1",
        )
        row = pairwise_row(self._context(sid), a, b, verdict)
        self._store([row])
        return row.id

    def _store(self, rows: list[Critique]) -> None:
        future = self.writer.submit(lambda db: insert_critiques(db, rows))
        assert future is not None
        future.result(30)


def accept(sid: str, kept: str, *, index: int = 0, similarity: float = 0.9) -> list[dict[str, Any]]:
    """Events of a shown, accepted and retained candidate (``kept`` is the text at the last
    snapshot)."""
    return [
        {"suggestion_id": sid, "kind": "shown", "candidate_index": index},
        {"suggestion_id": sid, "kind": "accepted", "candidate_index": index, "text": "x"},
        {
            "suggestion_id": sid,
            "kind": "retained",
            "candidate_index": index,
            "checkpoint": "30s",
            "similarity": similarity,
            "text": kept,
        },
    ]


def rewrite(sid: str, written: str, *, index: int = 0) -> list[dict[str, Any]]:
    return [
        {"suggestion_id": sid, "kind": "shown", "candidate_index": index},
        {
            "suggestion_id": sid,
            "kind": "dismissed",
            "candidate_index": index,
            "reason": "typed_over",
        },
        {"suggestion_id": sid, "kind": "rewritten", "candidate_index": index, "text": written},
    ]


def pair_rows(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM pairs ORDER BY id")]
