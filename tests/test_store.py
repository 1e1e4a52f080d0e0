"""Schema, migrations and the single writer."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from prefloop.protocol import EVENT_ADAPTER
from prefloop.store import Store, applied_migrations, migrate, parse_since
from prefloop.store.writer import Writer, suggestion_row

TABLES = ("suggestions", "events", "critiques", "pairs", "model_versions", "training_runs")


def make_suggestion(sid: str, prefix: str = "x = 1\n") -> dict[str, object]:
    return suggestion_row(
        suggestion_id=sid,
        user="alice",
        session_id="s",
        client_request_id=None,
        language="python",
        path="a.py",
        model_version="base",
        engine="transformers",
        mode="multi_line",
        n=1,
        max_tokens=8,
        cursor=(0, 0),
        prefix=prefix,
        suffix="",
        prompt=prefix,
        template="prefix",
        prefix_truncated=False,
        suffix_truncated=False,
        candidates=["y = 2"],
        timings={"total_ms": 1.0},
    )


def test_fresh_database_gets_every_table_with_common_columns(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    assert migrate(db) == [
        "m001_initial",
        "m002_critique_details",
        "m003_pair_builds",
        "m004_registry",
        "m005_training_runs",
        "m006_pair_split_users",
        "m007_user_versions",
        "m008_prompt_lead",
        "m009_users",
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        for table in TABLES:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            assert {"id", "created_at", "user", "language", "model_version"} <= columns, table


def test_migrations_are_idempotent_and_keep_data(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    migrate(db)
    writer = Writer(db)
    writer.start()
    writer.add_suggestion(make_suggestion("s1"))
    writer.flush()
    writer.stop()
    assert migrate(db) == []
    assert applied_migrations(db) == [
        "m001_initial",
        "m002_critique_details",
        "m003_pair_builds",
        "m004_registry",
        "m005_training_runs",
        "m006_pair_split_users",
        "m007_user_versions",
        "m008_prompt_lead",
        "m009_users",
    ]
    with Store(db) as store:
        row = store.get_suggestion("s1")
    assert row is not None and row["candidates"] == [{"index": 0, "text": "y = 2"}]


def test_writer_groups_commits_and_isolates_a_failing_operation(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    writer = Writer(db, batch_size=10_000)
    writer.start()

    def boom(_db: object) -> None:
        raise RuntimeError("bad op")

    for i in range(200):
        writer.add_suggestion(make_suggestion(f"s{i}"))
    failing = writer.submit(boom)
    writer.flush()
    writer.stop()
    assert failing is not None
    with pytest.raises(RuntimeError, match="bad op"):
        failing.result(1)
    with Store(db) as store:
        assert store.count("suggestions") == 200
    assert writer.commits < 200


def test_ingest_reports_stored_duplicates_and_unknown(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    writer = Writer(db)
    writer.start()
    writer.add_suggestion(make_suggestion("s1"))
    events = [
        EVENT_ADAPTER.validate_python({"id": "e1", "suggestion_id": "s1", "kind": "shown"}),
        EVENT_ADAPTER.validate_python({"id": "e2", "suggestion_id": "zz", "kind": "shown"}),
        EVENT_ADAPTER.validate_python({"id": "e1", "suggestion_id": "s1", "kind": "shown"}),
    ]

    async def run() -> None:
        first = await writer.ingest_events(events)
        assert (first.stored, first.duplicates, first.unknown) == (["e1"], ["e1"], ["e2"])
        again = await writer.ingest_events(events[:1])
        assert (again.stored, again.duplicates) == ([], ["e1"])

    asyncio.run(run())
    writer.stop()
    with Store(db) as store:
        assert [e["id"] for e in store.query_events()] == ["e1"]
        assert store.query_events()[0]["user"] == "alice"


def test_query_filters(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    writer = Writer(db)
    writer.start()
    writer.add_suggestion(make_suggestion("s1"))
    events = [
        EVENT_ADAPTER.validate_python(
            {"id": f"e{i}", "suggestion_id": "s1", "kind": kind, "reason": "escaped"}
            if kind == "dismissed"
            else {"id": f"e{i}", "suggestion_id": "s1", "kind": kind}
        )
        for i, kind in enumerate(["shown", "dismissed", "shown"])
    ]
    asyncio.run(writer.ingest_events(events))
    writer.stop()
    with Store(db) as store:
        assert [e["id"] for e in store.query_events(kinds=["shown"])] == ["e0", "e2"]
        assert [e["reason"] for e in store.query_events(kinds=["dismissed"])] == ["escaped"]
        assert store.query_events(language="go") == []
        assert len(store.query_events(since=parse_since("1h"))) == 3
        assert store.query_events(since=parse_since("2999-01-01")) == []
        assert len(store.query_events(limit=2)) == 2


def test_parse_since_forms() -> None:
    assert parse_since("2026-11-23") == "2026-11-23T00:00:00.000000Z"
    assert parse_since("2026-11-23T10:00:00+02:00") == "2026-11-23T08:00:00.000000Z"
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday-ish")
