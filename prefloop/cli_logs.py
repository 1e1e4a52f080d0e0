"""``prefloop logs query``: the stored feedback events, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefloop.commands import existing_db, render_table, settings_from_args, since_option
from prefloop.protocol import EVENT_KINDS

if TYPE_CHECKING:
    from prefloop.commands import Subcommands

TABLE_COLUMNS = (
    "created_at",
    "kind",
    "suggestion_id",
    "language",
    "model_version",
    "user",
    "reason",
    "accepted_chars",
    "checkpoint",
    "similarity",
    "text",
)


def _short(value: Any, width: int = 60) -> str:
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def format_rows(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str]) -> str:
    """Events as ``json``, ``csv`` or a ``table`` of shortened cells with a count line."""
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = (["" if row[c] is None else _short(row[c]) for c in columns] for row in rows)
    return render_table(columns, cells, fold=True) + f"\n{len(rows)} event(s)"


def cmd_logs_query(args: argparse.Namespace) -> int:
    from prefloop.store import EVENT_COLUMNS, Store

    settings = settings_from_args(args)
    kinds: list[str] = []
    for value in args.kind or []:
        kinds.extend(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown:
        print(
            f"error: unknown event kind(s) {', '.join(unknown)}; "
            f"choose from {', '.join(EVENT_KINDS)}",
            file=sys.stderr,
        )
        return 2
    since = since_option(args)
    with Store(existing_db(settings)) as store:
        rows = store.query_events(
            since=since,
            kinds=kinds,
            language=args.language,
            user=args.user,
            suggestion_id=args.suggestion,
            limit=args.limit,
        )
    columns = TABLE_COLUMNS if args.format == "table" else EVENT_COLUMNS
    print(format_rows(rows, args.format, columns))
    return 0


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``logs`` command group on the ``prefloop`` parser."""
    logs = sub.add_parser("logs", help="read the feedback logs")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    query = logs_sub.add_parser("query", parents=[common], help="list stored feedback events")
    query.add_argument("--since", help="30m, 2h, 7d, or an ISO date/time")
    query.add_argument(
        "--kind", action="append", help=f"event kind(s), comma-separated: {', '.join(EVENT_KINDS)}"
    )
    query.add_argument("--language", help="language id, e.g. python")
    query.add_argument("--user", help="user name")
    query.add_argument("--suggestion", help="only events about this suggestion id")
    query.add_argument("--limit", type=int, help="at most this many events")
    query.add_argument("--format", choices=["table", "json", "csv"], default="table")
    query.set_defaults(func=cmd_logs_query)
