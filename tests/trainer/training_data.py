"""Preference pairs written straight into the ``pairs`` table, and settings for fast runs."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from prefloop.settings import Settings
from prefloop.store import migrate, utcnow

# A run of a few steps on the tiny model with a learning rate high enough to move it.
FAST = {
    "max_steps": 4,
    "batch_size": 4,
    "learning_rate": 5e-3,
    "warmup_ratio": 0.0,
    "probe_max_tokens": 8,
    "max_length": 128,
}
# Many slow-ish steps: long enough to kill or to collide with.
LONG = {**FAST, "max_steps": 20000, "learning_rate": 1e-5}

# The gate's probe and behavioural checks and its held-out floor are measured in their own
# tests; random-weight models write noise, so runs on the tiny model judge candidates on
# the held-out preferences of the few pairs each test writes.
TINY_MODEL_GATE = {
    "train_gate_max_syntax_drop": 1.0,
    "train_gate_max_degenerate_increase": 100,
    "train_gate_latency_factor": 100.0,
    "train_gate_min_heldout": 1,
    "train_gate_heldout_share": 0.0,
    "train_gate_behaviour_contexts": 0,
}


def fast_settings(home: Path, model: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "model": str(model),
        "train_min_new_pairs": 1,
        "swap_poll_seconds": 0,
        **TINY_MODEL_GATE,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def pair(i: int, split: str, user: str = "tester") -> dict[str, object]:
    return {
        "id": f"p-{uuid.uuid4().hex}",
        "created_at": utcnow(),
        "user": user,
        "language": "python",
        "model_version": "base",
        "source": "accept_vs_dismiss",
        "prompt": f"# path: calc{i}.py\ndef add_{i}(a, b):\n    return",
        "chosen": " a + b\n",
        "rejected": " None  # not done\n",
        "weight": 1.0,
        "evidence": "{}",
        "split": split,
    }


def add_pairs(
    db: Path,
    train: int,
    heldout: int,
    *,
    swapped: bool = False,
    users: Sequence[str] = ("tester",),
) -> list[str]:
    """Insert ``train`` + ``heldout`` pairs; returns their ids. ``swapped``: the training
    pairs prefer what the held-out ones reject (a candidate trained on them is worse).
    ``users`` take turns as the pairs' users, in each split from its first pair on."""
    migrate(db)
    rows = [pair(i, "train", users[i % len(users)]) for i in range(train)]
    if swapped:
        for row in rows:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    rows += [pair(1000 + i, "heldout", users[i % len(users)]) for i in range(heldout)]
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "INSERT INTO pairs (id, created_at, user, language, model_version, source, prompt, "
            "chosen, rejected, weight, evidence, split) VALUES (:id, :created_at, :user, "
            ":language, :model_version, :source, :prompt, :chosen, :rejected, :weight, "
            ":evidence, :split)",
            rows,
        )
    return [str(r["id"]) for r in rows]
