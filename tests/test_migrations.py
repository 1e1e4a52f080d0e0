"""Migrations: applied once, each with its record in one transaction, by whichever
process opens the database first."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from prefloop.store import applied_migrations, connect, migrate, migrations
from prefloop.store.schema import apply_migrations

ALL = [m.name for m in migrations.pending(sqlite_utils.Database(memory=True))]

RACER = """
import json, os, sys, time
from pathlib import Path
from prefloop.store import migrate
db, ready, go = (Path(a) for a in sys.argv[1:4])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
print(json.dumps(migrate(db)))
"""


def wait_for(paths: list[Path], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"never appeared: {paths}"
        time.sleep(0.01)


def recorded(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, count(*) FROM _sqlite_migrations GROUP BY name ORDER BY name"
        ).fetchall()


def columns(db: Path, table: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_two_processes_migrating_a_new_database_at_once(tmp_path: Path) -> None:
    db = tmp_path / "home" / "prefloop.db"
    go = tmp_path / "go"
    racers = []
    for i in range(2):
        ready = tmp_path / f"ready-{i}"
        racers.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", RACER, str(db), str(ready), str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    wait_for([ready for ready, _ in racers])
    go.touch()
    applied: list[list[str]] = []
    for _, process in racers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        applied.append(json.loads(out))
    # Between them they applied every migration, none twice.
    assert sorted(applied[0] + applied[1]) == sorted(ALL)
    assert recorded(db) == [(name, 1) for name in sorted(ALL)]
    assert applied_migrations(db) == ALL
    assert {"findings", "answer", "position"} <= columns(db, "critiques")
    assert "pruned_at" in columns(db, "model_versions")
    assert {"reason", "pid", "log_path"} <= columns(db, "training_runs")


def test_a_failing_migration_leaves_neither_its_changes_nor_its_record(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    steps = Migrations("failing")

    @steps()
    def m001_things(d: sqlite_utils.Database) -> None:
        d.table("things").create({"id": int, "name": str}, pk="id")

    broken = {"yes": True}

    @steps()
    def m002_more(d: sqlite_utils.Database) -> None:
        d.table("things").add_column("colour", str)
        d.table("others").create({"id": int}, pk="id")
        d.table("things").insert({"id": 1, "name": "a"})
        if broken["yes"]:
            raise RuntimeError("migration failed midway")

    with pytest.raises(RuntimeError, match="midway"):
        apply_migrations(db, steps)
    assert [m.name for m in steps.applied(sqlite_utils.Database(db))] == ["m001_things"]
    assert columns(db, "things") == {"id", "name"}
    assert columns(db, "others") == set()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (0,)

    # Run again once fixed: no "duplicate column", applied exactly once.
    broken["yes"] = False
    assert apply_migrations(db, steps) == ["m002_more"]
    assert columns(db, "things") == {"id", "name", "colour"}
    assert apply_migrations(db, steps) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'failing' ORDER BY id"
        ).fetchall() == [("m001_things",), ("m002_more",)]


def test_an_up_to_date_database_needs_no_write_lock(tmp_path: Path) -> None:
    """Another process is writing (it holds the write lock): migrating what is already
    migrated neither waits for it nor fails, in this process or a fresh one."""
    db = tmp_path / "p.db"
    assert migrate(db) == ALL
    holder = connect(db)
    holder.isolation_level = None
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert migrate(db) == []
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, json\n"
                "from prefloop.store import migrate, schema\n"
                "print(json.dumps(migrate(sys.argv[1])))\n",
                str(db),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_database_replaced_at_the_same_path_is_migrated_again(tmp_path: Path) -> None:
    db = tmp_path / "home" / "p.db"
    assert migrate(db) == ALL
    (tmp_path / "home").rename(tmp_path / "old-home")
    connect(db).close()  # an empty database where the migrated one was
    assert migrate(db) == ALL
    assert applied_migrations(db) == ALL
