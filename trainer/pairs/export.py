"""Reading the built pairs and exporting them as JSON lines in TRL's preference format."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from prefloop.store import connect, migrate, parse_since
from prefloop.store import pairs as store
from prefloop.trainer.pairs.filtering import holds_secret

log = logging.getLogger("prefloop.trainer.pairs")


def load_pairs(conn: sqlite3.Connection, split: str) -> list[dict[str, Any]]:
    """The pairs of ``split`` ("train" or "heldout"), oldest first
    (:data:`prefloop.store.pairs.PAIR_ORDER`), as dicts with id, prompt, chosen, rejected,
    weight, source, created_at (and suggestion_id, evidence)."""
    return store.load_pairs(conn, split)


def export_pairs(
    db_path: Path,
    out: Path | None,
    *,
    split: str | None = None,
    since: str | None = None,
) -> int:
    """Write pairs as JSON lines in TRL's preference format (prompt, chosen, rejected, plus
    id, source, weight, split, created_at, user, language, model_version and evidence) to
    ``out`` (atomically) or to stdout; returns how many were written. ``since`` takes
    ``7d``/``2h``/an ISO time and selects pairs made since then. A pair that holds a secret
    by the current redaction rules is never written."""
    if split is not None and split not in store.SPLITS:
        raise ValueError(f"unknown split {split!r}: choose train or heldout")
    after = parse_since(since) if since else None
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    migrate(db_path)
    with contextlib.closing(connect(db_path, readonly=True)) as conn:
        if out is None:
            return _write_jsonl(store.export_rows(conn, split, after), sys.stdout)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                count = _write_jsonl(store.export_rows(conn, split, after), handle)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return count


def _write_jsonl(rows: Iterable[dict[str, Any]], handle: IO[str]) -> int:
    count = 0
    for row in rows:
        if any(holds_secret(t) for t in (row["prompt"], row["chosen"], row["rejected"])):
            log.warning("pair %s holds a secret by the current rules; not exported", row["id"])
            continue
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    handle.flush()
    return count
