"""The schema: its migrations and the one way they are applied.

The schema is created and upgraded by ``sqlite_utils`` migrations. :func:`migrate` may be
called by any process at any time: the first process to open a database applies what is
pending, each migration together with its record in one transaction under the
database's write lock, so a concurrent start waits and then finds nothing left to do,
and a migration that fails (or a crash midway) leaves neither its changes nor its
record. Each process remembers the databases it has seen up to date, which makes
further calls cheap.
"""

from __future__ import annotations

import os
import threading
from contextlib import closing
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from prefloop.store.connection import connect

migrations = Migrations("prefloop")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Suggestions, events, critiques, pairs, model versions and training runs."""
    db.table("suggestions").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "session_id": str,
            "client_request_id": str,
            "language": str,
            "path": str,
            "model_version": str,
            "engine": str,
            "mode": str,
            "n": int,
            "max_tokens": int,
            "cursor_line": int,
            "cursor_character": int,
            "prefix": str,
            "suffix": str,
            "prompt": str,
            "template": str,
            "prefix_truncated": int,
            "suffix_truncated": int,
            "candidates": str,
            "timings": str,
        },
        pk="id",
        not_null={"created_at", "model_version", "language", "user"},
    )
    db.table("suggestions").create_index(["created_at"])
    db.table("events").create(
        {
            "id": str,
            "suggestion_id": str,
            "kind": str,
            "candidate_index": int,
            "created_at": str,
            "client_ts": float,
            "user": str,
            "language": str,
            "model_version": str,
            "reason": str,
            "accepted_chars": int,
            "checkpoint": str,
            "similarity": float,
            "shown_ms": float,
            "text": str,
        },
        pk="id",
        foreign_keys=[("suggestion_id", "suggestions", "id")],
        not_null={"suggestion_id", "kind", "created_at"},
    )
    db.table("events").create_index(["suggestion_id"])
    db.table("events").create_index(["created_at"])
    db.table("events").create_index(["kind", "created_at"])
    db.table("critiques").create(
        {
            "id": str,
            "suggestion_id": str,
            "candidate_index": int,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "judge": str,
            "judge_model": str,
            "rubric_version": str,
            "status": str,
            "scores": str,
            "rationale": str,
            "error": str,
            "attempts": int,
            "duration_ms": float,
        },
        pk="id",
        foreign_keys=[("suggestion_id", "suggestions", "id")],
    )
    db.table("critiques").create_index(["suggestion_id"])
    db.table("pairs").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "source": str,
            "prompt": str,
            "chosen": str,
            "rejected": str,
            "weight": float,
            "evidence": str,
            "split": str,
        },
        pk="id",
    )
    db.table("pairs").create_index(["created_at"])
    db.table("model_versions").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "base_model": str,
            "parent": str,
            "adapter_path": str,
            "status": str,
            "run_id": str,
            "metrics": str,
            "promoted_at": str,
        },
        pk="id",
    )
    db.table("training_runs").create(
        {
            "id": str,
            "created_at": str,
            "user": str,
            "language": str,
            "model_version": str,
            "status": str,
            "started_at": str,
            "finished_at": str,
            "config": str,
            "data": str,
            "metrics": str,
            "gate": str,
            "error": str,
            "candidate_version": str,
        },
        pk="id",
    )


@migrations()
def m002_critique_details(db: sqlite_utils.Database) -> None:
    """What a check found, the judge's raw answer, the candidate's place in the prompt."""
    critiques = db.table("critiques")
    critiques.add_column("findings", str)
    critiques.add_column("answer", str)
    critiques.add_column("position", int)


@migrations()
def m003_pair_builds(db: sqlite_utils.Database) -> None:
    """Incremental preference-pair builds: what each build processed (its high-water
    marks), the permanent train/held-out assignment of prompt groups, cached check
    verdicts, and the pairs' links back to their suggestion."""
    db.table("pair_builds").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "full": int,
            "event_rowid": int,
            "critique_rowid": int,
            "events_seen": int,
            "suggestions": int,
            "pairs_added": int,
            "pairs_updated": int,
            "pairs_removed": int,
            "dropped": str,
            "train": int,
            "heldout": int,
            "seconds": float,
            "settings": str,
        },
        pk="id",
    )
    db.table("pair_splits").create(
        {"group_key": str, "split": str, "suggestion_at": str, "assigned_at": str},
        pk="group_key",
    )
    db.table("pair_checks").create(
        {"key": str, "passed": int, "worst": str, "checked_at": str},
        pk="key",
    )
    pairs = db.table("pairs")
    pairs.add_column("suggestion_id", str)
    pairs.add_column("suggestion_at", str)
    pairs.add_column("group_key", str)
    pairs.add_column("pair_key", str)
    pairs.add_column("build_id", int)
    pairs.create_index(["suggestion_id"])
    pairs.create_index(["pair_key"])
    pairs.create_index(["split", "created_at"])


@migrations()
def m004_registry(db: sqlite_utils.Database) -> None:
    """Promotion history of the model registry, and when a version's files were pruned."""
    db.table("promotions").create(
        {
            "id": int,
            "created_at": str,
            "user": str,
            "action": str,
            "from_version": str,
            "to_version": str,
            "reason": str,
        },
        pk="id",
        not_null={"created_at", "action", "from_version", "to_version"},
    )
    db.table("model_versions").add_column("pruned_at", str)


@migrations()
def m005_training_runs(db: sqlite_utils.Database) -> None:
    """Why a run started, what it was trained from and against, and its process."""
    runs = db.table("training_runs")
    runs.add_column("reason", str)
    runs.add_column("parent_version", str)
    runs.add_column("reference_model", str)
    runs.add_column("pid", int)
    runs.add_column("log_path", str)
    runs.create_index(["created_at"])


@migrations()
def m006_pair_split_users(db: sqlite_utils.Database) -> None:
    """The user a prompt group's split was assigned for (the held-out split is per user).

    Groups assigned before take the user of their newest pair, or the only user of a
    store with one; the rest keep none and count as one user of their own."""
    db.table("pair_splits").add_column("user", str)
    db.execute(
        "UPDATE pair_splits SET user = (SELECT p.user FROM pairs p "
        "WHERE p.group_key = pair_splits.group_key "
        "ORDER BY p.suggestion_at DESC, p.user DESC LIMIT 1)"
    )
    db.execute(
        "UPDATE pair_splits SET user = (SELECT MIN(user) FROM suggestions) "
        "WHERE user IS NULL AND (SELECT COUNT(DISTINCT user) FROM suggestions) = 1"
    )


@migrations()
def m007_user_versions(db: sqlite_utils.Database) -> None:
    """Versions trained for one user (``for_user``; NULL: shared by everyone), the scope
    of each promotion and rollback, and each user's outcome of a training run."""
    db.table("model_versions").add_column("for_user", str)
    db.table("promotions").add_column("for_user", str)
    db.table("training_runs").add_column("users", str)


@migrations()
def m008_prompt_lead(db: sqlite_utils.Database) -> None:
    """The blank end of a suggestion's prefix that its prompt left for the model to write
    (``prompt_lead``; NULL for suggestions served before prompts did so)."""
    db.table("suggestions").add_column("prompt_lead", str)


@migrations()
def m009_users(db: sqlite_utils.Database) -> None:
    """Team mode's bearer tokens (only their SHA-256 hashes, with their user and role), and
    who asked for each training run, promotion and rollback (``requested_by``)."""
    db.table("tokens").create(
        {
            "id": str,
            "user": str,
            "role": str,
            "token_hash": str,
            "created_at": str,
            "created_by": str,
            "last_used_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null={"user", "role", "token_hash", "created_at"},
    )
    db.table("tokens").create_index(["token_hash"], unique=True)
    db.table("tokens").create_index(["user"])
    db.table("training_runs").add_column("requested_by", str)
    db.table("promotions").add_column("requested_by", str)


_migrated: dict[Path, tuple[int, int]] = {}
_migrating = threading.Lock()


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is now (device, inode); ``None`` when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def migrate(path: Path | str) -> list[str]:
    """Create or upgrade the schema; returns the names of the migrations this call applied.

    Safe to call from any thread or process at any time, and cheap once the database is
    up to date: the process remembers the file (device and inode) it brought up to date
    at that path, so a database moved aside and replaced is migrated again."""
    key = Path(path).resolve()
    identity = _identity(key)
    if identity is not None and _migrated.get(key) == identity:
        return []
    with _migrating:
        identity = _identity(key)
        if identity is not None and _migrated.get(key) == identity:
            return []
        applied = apply_migrations(key, migrations)
        identity = _identity(key)
        if identity is not None:
            _migrated[key] = identity
        return applied


def apply_migrations(path: Path | str, migration_set: Migrations) -> list[str]:
    """Apply the pending migrations of ``migration_set``, one write transaction each.

    Each transaction takes the database's write lock (``BEGIN IMMEDIATE``), reads what
    is still pending and applies the first of it together with its record, so another
    process doing the same at the same moment never applies a migration twice. Returns
    the names this call applied; a failing migration raises after rolling back."""
    applied: list[str] = []
    with closing(connect(path)) as conn:
        db = sqlite_utils.Database(conn)
        if not _pending_names(db, migration_set):
            return applied
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                migration_set.ensure_migrations_table(db)
                pending = _pending_names(db, migration_set)
                if pending:
                    # Applies exactly the first pending migration: sqlite-utils runs it
                    # and inserts its record in a savepoint of this transaction.
                    migration_set.apply(db, stop_before=pending[1:])
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            if not pending:
                return applied
            applied.append(pending[0])


def _pending_names(db: sqlite_utils.Database, migration_set: Migrations) -> list[str]:
    return [m.name for m in migration_set.pending(db)]


def applied_migrations(path: Path | str) -> list[str]:
    """The names of the migrations recorded in the database, in the order applied."""
    with closing(connect(path)) as conn:
        return [m.name for m in migrations.applied(sqlite_utils.Database(conn))]
