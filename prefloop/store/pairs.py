"""Preference pairs in the store: the evidence a pair build reads, the build's own tables
(``pair_builds``, ``pair_splits``, ``pair_checks``) and the ``pairs`` table with its readers.

A build runs in two transactions on one connection in autocommit mode (see
:func:`open_build`): a read snapshot (:func:`snapshot`) and one short write
(:func:`immediate`). The suggestions a build concerns are collected in a temporary table
(:func:`mark_affected`); the loaders read their evidence from it.

Every reader of the ``pairs`` table returns pairs in one order, :data:`PAIR_ORDER`: the
time the pair was made, then the time of its suggestion, then its id. Pairs made by one
build share ``created_at``, so the suggestion's time is what orders them by the age of
their evidence; the id makes the order total. Readers that take the newest pairs walk the
same order backwards.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from prefloop.store.connection import connect
from prefloop.store.critiques import PAIRWISE_PREFIX

SPLITS = ("train", "heldout")
PAIR_ORDER = "created_at, suggestion_at, id"
"""The order of pairs for every reader: oldest first, ties by suggestion time, then id."""
_NEWEST_FIRST = "created_at DESC, suggestion_at DESC, id DESC"
_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


# ---- transactions ------------------------------------------------------------------------


def open_build(db_path: Path | str) -> contextlib.closing[sqlite3.Connection]:
    """A connection for a pair build, in autocommit mode (transactions are explicit)."""
    conn = connect(db_path)
    conn.isolation_level = None
    return contextlib.closing(conn)


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: one consistent view, no write lock."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


# ---- high-water marks --------------------------------------------------------------------


@dataclass(frozen=True)
class HighWater:
    """How far the last build read (event and critique row ids) and its id (None before
    the first build)."""

    event_rowid: int
    critique_rowid: int
    build_id: int | None


def high_water(conn: sqlite3.Connection) -> HighWater:
    """The high-water marks of the newest build."""
    row = conn.execute(
        "SELECT event_rowid, critique_rowid, id FROM pair_builds ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return HighWater(0, 0, None) if row is None else HighWater(*(int(v) for v in row))


def newest_rowids(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest stored event and critique row ids (0 when there are none)."""
    events = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
    critiques = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM critiques").fetchone()[0]
    return int(events), int(critiques)


def count_events(conn: sqlite3.Connection, after: int, upto: int) -> int:
    """How many events have a row id in (``after``, ``upto``]."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM events WHERE rowid > ? AND rowid <= ?", (after, upto)
        ).fetchone()[0]
    )


# ---- the suggestions a build concerns, and their evidence ---------------------------------

_AFFECTED_BY_EVENTS = """
INSERT OR IGNORE INTO _pb_affected
SELECT e.suggestion_id FROM events e
WHERE e.rowid > ? AND e.rowid <= ? AND +e.kind IN ('accepted', 'retained', 'rewritten') AND (
  +e.kind = 'rewritten'
  OR (+e.kind = 'retained' AND (e.similarity IS NULL OR e.similarity < 1.0))
  OR EXISTS (SELECT 1 FROM suggestions s WHERE s.id = e.suggestion_id
             AND s.n >= 2 AND json_valid(s.candidates)
             AND json_array_length(s.candidates) >= 2)
  OR EXISTS (SELECT 1 FROM pairs p WHERE p.suggestion_id = e.suggestion_id)
)
"""
_AFFECTED_BY_CRITIQUES = f"""
INSERT OR IGNORE INTO _pb_affected
SELECT c.suggestion_id FROM critiques c
WHERE c.rowid > ? AND c.rowid <= ? AND c.status = 'ok'
  AND (c.scores IS NOT NULL OR c.judge LIKE '{PAIRWISE_PREFIX}%')
  AND EXISTS (SELECT 1 FROM suggestions s WHERE s.id = c.suggestion_id
              AND s.n >= 2 AND json_valid(s.candidates)
              AND json_array_length(s.candidates) >= 2)
"""


def mark_affected(
    conn: sqlite3.Connection, events: tuple[int, int], critiques: tuple[int, int]
) -> None:
    """Collect the suggestions whose pairs the events and critiques in the row-id ranges
    ``events`` and ``critiques`` (each (after, upto]) can change: a rewrite, a retention
    snapshot that differs from the suggestion, an accept or snapshot of a request with
    several candidates or with pairs already, a critique (a pairwise verdict included) of
    a request with several candidates."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pb_affected (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _pb_affected")
    conn.execute(_AFFECTED_BY_EVENTS, events)
    conn.execute(_AFFECTED_BY_CRITIQUES, critiques)


EVIDENCE_KINDS = ("shown", "accepted", "retained", "dismissed", "rewritten")
"""The event kinds a pair build reads."""


@dataclass(frozen=True)
class SuggestionRow:
    """A suggestion as a pair build reads it; ``candidates`` is the stored JSON."""

    id: str
    created_at: str
    user: str | None
    language: str | None
    model_version: str | None
    path: str | None
    prompt: str | None
    candidates: str | None
    prompt_lead: str | None


@dataclass(frozen=True)
class EventRow:
    """An event of a suggestion a build concerns."""

    suggestion_id: str
    id: str
    kind: str
    candidate_index: int | None
    similarity: float | None
    text: str | None


@dataclass(frozen=True)
class ScoreRow:
    """A critique with scores (an LLM judge's or a check's); ``scores`` is the stored JSON."""

    suggestion_id: str
    id: str
    candidate_index: int | None
    judge: str
    scores: str


@dataclass(frozen=True)
class VerdictRow:
    """A pairwise verdict; ``findings`` is the stored JSON."""

    suggestion_id: str
    id: str
    findings: str | None


def affected_suggestions(conn: sqlite3.Connection) -> list[SuggestionRow]:
    """The suggestions marked by :func:`mark_affected`."""
    return [
        SuggestionRow(*row)
        for row in conn.execute(
            "SELECT s.id, s.created_at, s.user, s.language, s.model_version, s.path, s.prompt, "
            "s.candidates, s.prompt_lead "
            "FROM _pb_affected a CROSS JOIN suggestions s ON s.id = a.id"
        )
    ]


def affected_events(conn: sqlite3.Connection) -> Iterator[EventRow]:
    """Their events of the kinds in :data:`EVIDENCE_KINDS`, per suggestion in the order
    they were stored."""
    kinds = ",".join(f"'{k}'" for k in EVIDENCE_KINDS)
    for row in conn.execute(
        "SELECT e.suggestion_id, e.id, e.kind, e.candidate_index, e.similarity, e.text "
        "FROM _pb_affected a CROSS JOIN events e ON e.suggestion_id = a.id "
        f"WHERE e.kind IN ({kinds}) ORDER BY e.suggestion_id, e.rowid"
    ):
        yield EventRow(*row)


def affected_scores(conn: sqlite3.Connection) -> Iterator[ScoreRow]:
    """Their successful critiques with scores (pairwise verdicts have none)."""
    for row in conn.execute(
        "SELECT c.suggestion_id, c.id, c.candidate_index, c.judge, c.scores "
        "FROM _pb_affected a CROSS JOIN critiques c ON c.suggestion_id = a.id "
        "WHERE c.status = 'ok' AND c.scores IS NOT NULL "
        f"AND c.judge NOT LIKE '{PAIRWISE_PREFIX}%'"
    ):
        yield ScoreRow(*row)


def affected_verdicts(conn: sqlite3.Connection) -> Iterator[VerdictRow]:
    """Their successful pairwise verdicts, by critique id."""
    for row in conn.execute(
        "SELECT c.suggestion_id, c.id, c.findings "
        "FROM _pb_affected a CROSS JOIN critiques c ON c.suggestion_id = a.id "
        f"WHERE c.status = 'ok' AND c.judge LIKE '{PAIRWISE_PREFIX}%' ORDER BY c.id"
    ):
        yield VerdictRow(*row)


def suggestion_contexts(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(prefix, suffix) of the suggestions ``ids``."""
    out: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(ids):
        for sid, prefix, suffix in conn.execute(
            f"SELECT id, prefix, suffix FROM suggestions WHERE id IN ({_marks(chunk)})",
            list(chunk),
        ):
            out[sid] = (prefix or "", suffix or "")
    return out


@dataclass(frozen=True)
class StoredPair:
    """What a build keeps of a pair it replaces: when it was made, its split, its key."""

    created_at: str
    split: str
    pair_key: str


def affected_pairs(conn: sqlite3.Connection) -> dict[str, StoredPair]:
    """The stored pairs of the marked suggestions, by pair id."""
    return {
        pid: StoredPair(created, split, pkey)
        for pid, created, split, pkey in conn.execute(
            "SELECT p.id, p.created_at, p.split, p.pair_key FROM _pb_affected a "
            "CROSS JOIN pairs p ON p.suggestion_id = a.id"
        )
    }


def taken_pair_keys(conn: sqlite3.Connection, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` that pairs of suggestions the build does not touch already have."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pb_keys (key TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _pb_keys")
    conn.executemany("INSERT OR IGNORE INTO _pb_keys VALUES (?)", [(k,) for k in keys])
    return {
        r[0]
        for r in conn.execute(
            "SELECT p.pair_key FROM _pb_keys k CROSS JOIN pairs p ON p.pair_key = k.key "
            "WHERE p.suggestion_id IS NULL OR p.suggestion_id NOT IN (SELECT id FROM _pb_affected)"
        )
    }


# ---- cached check verdicts ---------------------------------------------------------------


@dataclass(frozen=True)
class CheckVerdict:
    """A cached verdict of the verifiable checks on one text in its context: ``worst``
    lists the failing ``check:score``s, comma-separated."""

    key: str
    passed: bool
    worst: str
    checked_at: str


def cached_checks(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, bool]:
    """Whether the texts of ``keys`` passed, for those checked before."""
    out: dict[str, bool] = {}
    for chunk in _chunks(keys):
        for key, passed in conn.execute(
            f"SELECT key, passed FROM pair_checks WHERE key IN ({_marks(chunk)})", list(chunk)
        ):
            out[key] = bool(passed)
    return out


def save_checks(conn: sqlite3.Connection, verdicts: Sequence[CheckVerdict]) -> None:
    """Cache check verdicts, replacing older ones with the same key."""
    conn.executemany(
        "INSERT OR REPLACE INTO pair_checks (key, passed, worst, checked_at) VALUES (?, ?, ?, ?)",
        [(v.key, int(v.passed), v.worst, v.checked_at) for v in verdicts],
    )


# ---- the train/held-out split of prompt groups -------------------------------------------


@dataclass(frozen=True)
class SplitTotals:
    """The groups assigned so far: how many, how many held out, and the newest suggestion
    time of a train group (None without one)."""

    groups: int
    heldout: int
    train_boundary: str | None


@dataclass(frozen=True)
class GroupSplit:
    """The permanent split of one prompt group, and the user it was assigned for ("" for
    a group assigned before splits were per user whose user is not known)."""

    group_key: str
    split: str
    suggestion_at: str
    assigned_at: str
    user: str = ""


def known_splits(conn: sqlite3.Connection, group_keys: Sequence[str]) -> dict[str, str]:
    """The split of those of ``group_keys`` assigned before."""
    out: dict[str, str] = {}
    for chunk in _chunks(group_keys):
        for key, split in conn.execute(
            f"SELECT group_key, split FROM pair_splits WHERE group_key IN ({_marks(chunk)})",
            list(chunk),
        ):
            out[key] = split
    return out


def split_totals_by_user(conn: sqlite3.Connection) -> dict[str, SplitTotals]:
    """The groups assigned a split so far, per user they were assigned for ("" for those
    whose user is not known)."""
    return {
        user: SplitTotals(int(total), int(held), boundary)
        for user, total, held, boundary in conn.execute(
            "SELECT COALESCE(user, ''), COUNT(*), COALESCE(SUM(split = 'heldout'), 0), "
            "MAX(CASE WHEN split = 'train' THEN suggestion_at END) FROM pair_splits "
            "GROUP BY COALESCE(user, '')"
        )
    }


def save_splits(conn: sqlite3.Connection, splits: Sequence[GroupSplit]) -> None:
    """Store newly assigned splits; a group keeps the split it has."""
    conn.executemany(
        "INSERT OR IGNORE INTO pair_splits (group_key, split, suggestion_at, assigned_at, user) "
        "VALUES (?, ?, ?, ?, ?)",
        [astuple(s) for s in splits],
    )


# ---- writing a build ---------------------------------------------------------------------


@dataclass(frozen=True)
class PairRow:
    """A row of the ``pairs`` table; ``evidence`` is JSON (suggestion, candidates, events,
    critiques)."""

    id: str
    created_at: str
    user: str
    language: str
    model_version: str
    source: str
    prompt: str
    chosen: str
    rejected: str
    weight: float
    evidence: str
    split: str
    suggestion_id: str
    suggestion_at: str
    group_key: str
    pair_key: str
    build_id: int


_PAIR_COLUMNS = tuple(f.name for f in fields(PairRow))
_INSERT_PAIR = (
    f"INSERT INTO pairs ({', '.join(_PAIR_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _PAIR_COLUMNS)})"
)


def start_build(
    conn: sqlite3.Connection, *, started_at: str, full: bool, event_rowid: int, critique_rowid: int
) -> int:
    """Record a build with its high-water marks; returns its id."""
    build_id = conn.execute(
        "INSERT INTO pair_builds (started_at, full, event_rowid, critique_rowid) "
        "VALUES (?, ?, ?, ?)",
        (started_at, int(full), event_rowid, critique_rowid),
    ).lastrowid
    assert build_id is not None
    return build_id


def replace_affected_pairs(conn: sqlite3.Connection, rows: Sequence[PairRow]) -> None:
    """Delete the pairs of the marked suggestions and store ``rows`` instead."""
    conn.execute(
        "DELETE FROM pairs WHERE rowid IN (SELECT p.rowid FROM _pb_affected a CROSS "
        "JOIN pairs p ON p.suggestion_id = a.id)"
    )
    conn.executemany(_INSERT_PAIR, [astuple(r) for r in rows])


@dataclass(frozen=True)
class BuildSummary:
    """What a finished build records about itself."""

    finished_at: str
    events_seen: int
    suggestions: int
    pairs_added: int
    pairs_updated: int
    pairs_removed: int
    dropped: dict[str, int]
    train: int
    heldout: int
    seconds: float
    settings: dict[str, Any]


def finish_build(conn: sqlite3.Connection, build_id: int, summary: BuildSummary) -> None:
    """Record what build ``build_id`` did (``dropped`` and ``settings`` as JSON)."""
    conn.execute(
        "UPDATE pair_builds SET finished_at = ?, events_seen = ?, suggestions = ?, "
        "pairs_added = ?, pairs_updated = ?, pairs_removed = ?, dropped = ?, train = ?, "
        "heldout = ?, seconds = ?, settings = ? WHERE id = ?",
        (
            summary.finished_at,
            summary.events_seen,
            summary.suggestions,
            summary.pairs_added,
            summary.pairs_updated,
            summary.pairs_removed,
            json.dumps(summary.dropped),
            summary.train,
            summary.heldout,
            round(summary.seconds, 3),
            json.dumps(summary.settings),
            build_id,
        ),
    )


# ---- reading the pairs -------------------------------------------------------------------


def split_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many pairs each split holds (every split named, zero included)."""
    counts = dict.fromkeys(SPLITS, 0)
    for split, count in conn.execute("SELECT split, COUNT(*) FROM pairs GROUP BY split"):
        counts[split] = int(count)
    return counts


def split_counts_by_user(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """How many pairs each split holds, per user (users with no pairs are absent)."""
    counts: dict[str, dict[str, int]] = {}
    for user, split, count in conn.execute(
        "SELECT COALESCE(user, ''), split, COUNT(*) FROM pairs GROUP BY 1, split"
    ):
        counts.setdefault(str(user), dict.fromkeys(SPLITS, 0))[split] = int(count)
    return counts


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose train or heldout")


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        if "evidence" in item:
            item["evidence"] = json.loads(item["evidence"] or "{}")
        yield item


def load_pairs(conn: sqlite3.Connection, split: str) -> list[dict[str, Any]]:
    """The pairs of ``split`` ("train" or "heldout") in :data:`PAIR_ORDER`, as dicts with
    id, prompt, chosen, rejected, weight, source, created_at, suggestion_id and evidence
    (decoded)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose train or heldout")
    cursor = conn.execute(
        "SELECT id, prompt, chosen, rejected, weight, source, created_at, suggestion_id, "
        f"evidence FROM pairs WHERE split = ? ORDER BY {PAIR_ORDER}",
        (split,),
    )
    return list(_dicts(cursor))


def export_rows(
    conn: sqlite3.Connection, split: str | None = None, since: str | None = None
) -> Iterator[dict[str, Any]]:
    """Pairs for export in :data:`PAIR_ORDER` (of one split, made at or after ``since``):
    prompt, chosen, rejected, id, source, weight, split, created_at, user, language,
    model_version and evidence (decoded)."""
    _check_split(split)
    where, params = [], []
    if split is not None:
        where.append("split = ?")
        params.append(split)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    sql = (
        "SELECT prompt, chosen, rejected, id, source, weight, split, created_at, user, "
        "language, model_version, evidence FROM pairs"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    yield from _dicts(conn.execute(f"{sql} ORDER BY {PAIR_ORDER}", params))


def load_split(
    conn: sqlite3.Connection, split: str, limit: int, user: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` pairs of ``split`` (of one ``user``'s pairs when given),
    returned in :data:`PAIR_ORDER` (oldest first), as dicts with id, created_at, prompt,
    chosen, rejected, weight, source, user."""
    _check_split(split)
    mine = "" if user is None else "AND COALESCE(user, '') = ? "
    rows = conn.execute(
        "SELECT id, created_at, prompt, chosen, rejected, weight, source, user FROM pairs "
        f"WHERE split = ? {mine}ORDER BY {_NEWEST_FIRST} LIMIT ?",
        (split, limit) if user is None else (split, user, limit),
    ).fetchall()
    names = ("id", "created_at", "prompt", "chosen", "rejected", "weight", "source", "user")
    return [dict(zip(names, row, strict=True)) for row in reversed(rows)]


def load_split_quotas(
    conn: sqlite3.Connection, split: str, quotas: dict[str, int]
) -> list[dict[str, Any]]:
    """The newest ``quotas[user]`` pairs of ``split`` of each user named (a user's pairs
    beyond their quota, and users not named, are left out), in :data:`PAIR_ORDER`, as
    dicts like :func:`load_split`'s. Reads only those rows' texts."""
    _check_split(split)
    names = ("id", "created_at", "prompt", "chosen", "rejected", "weight", "source", "user")
    rows = conn.execute(
        "WITH quota(user, n) AS (SELECT key, value FROM json_each(?)), "
        "ranked AS (SELECT id, COALESCE(user, '') AS owner, ROW_NUMBER() OVER "
        f"(PARTITION BY COALESCE(user, '') ORDER BY {_NEWEST_FIRST}) AS place "
        "FROM pairs WHERE split = ?) "
        "SELECT p.id, p.created_at, p.prompt, p.chosen, p.rejected, p.weight, p.source, p.user "
        "FROM ranked JOIN quota ON quota.user = ranked.owner "
        "JOIN pairs AS p ON p.id = ranked.id "
        "WHERE ranked.place <= quota.n "
        f"ORDER BY {', '.join('p.' + c.strip() for c in PAIR_ORDER.split(','))}",
        (json.dumps(quotas), split),
    ).fetchall()
    return [dict(zip(names, row, strict=True)) for row in rows]


def newest_pair_used(conn: sqlite3.Connection) -> str | None:
    """``created_at`` of the newest pair a finished (succeeded or rejected) training run
    trained on, from the data record of the newest such run that names one."""
    for (data,) in conn.execute(
        "SELECT data FROM training_runs WHERE status IN ('succeeded', 'rejected') "
        "ORDER BY created_at DESC"
    ):
        found = json.loads(data or "{}").get("newest_pair_at")
        if found:
            return str(found)
    return None


def pair_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Pairs per split (``train``, ``heldout``) and ``new``: pairs made after the newest
    pair a finished training run used (:func:`newest_pair_used`); all when none has."""
    counts = split_counts(conn)
    since = newest_pair_used(conn)
    new = conn.execute("SELECT count(*) FROM pairs WHERE created_at > ?", (since or "",))
    return {"train": counts["train"], "heldout": counts["heldout"], "new": int(new.fetchone()[0])}
