"""Logged suggestions to critique, written through the real writer."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefloop.server.judge.records import read_critiques
from prefloop.store.writer import Writer, suggestion_row


@dataclass(frozen=True)
class Logged:
    language: str
    path: str
    prefix: str
    suffix: str
    candidates: tuple[str, ...]


SNIPPETS = (
    Logged(
        "python",
        "stats.py",
        "def mean(values: list[float]) -> float:\n",
        "\n\n\ndef median(values: list[float]) -> float:\n"
        "    return sorted(values)[len(values) // 2]\n",
        ("    return sum(values) / len(values)", "    return eval(input())"),
    ),
    Logged(
        "go",
        "add.go",
        "package main\n\nfunc add(a, b int) int {\n",
        "\n}\n",
        ("\treturn a + b", "\treturn a +"),
    ),
    Logged(
        "javascript",
        "greet.js",
        "function greet(name) {\n",
        "\n}\n",
        ("  return `Hello, ${name}!`;",),
    ),
)


def add_backlog(writer: Writer, items: Sequence[Logged] = SNIPPETS) -> list[str]:
    """Store one suggestion per item (the first candidate shown, the rest never shown)."""
    ids = []
    for item in items:
        sid = uuid.uuid4().hex
        writer.add_suggestion(
            suggestion_row(
                suggestion_id=sid,
                user="tester",
                session_id="s",
                client_request_id=None,
                language=item.language,
                path=item.path,
                model_version="base",
                engine="transformers",
                mode="multi_line",
                n=len(item.candidates),
                max_tokens=32,
                cursor=(item.prefix.count("\n"), 0),
                prefix=item.prefix,
                suffix=item.suffix,
                prompt=item.prefix,
                template="prefix",
                prefix_truncated=False,
                suffix_truncated=False,
                candidates=list(item.candidates),
                timings={"total_ms": 1.0},
            )
        )
        ids.append(sid)
    writer.flush()
    return ids


def critiques(db_path: Path, judge: str | None = None) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db_path)) as conn:
        rows = read_critiques(conn)
    return [r for r in rows if judge is None or r["judge"] == judge]
