"""``prefloop pairs build`` and ``prefloop pairs export``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prefloop.commands import CommandError, existing_db, settings_from_args, since_option

if TYPE_CHECKING:
    from prefloop.commands import Subcommands


def cmd_pairs_build(args: argparse.Namespace) -> int:
    from prefloop.trainer.pairs import PairBuildError, build_pairs

    settings = settings_from_args(args)
    db = existing_db(settings)
    try:
        report = build_pairs(db, settings, full=args.full)
    except PairBuildError as exc:
        raise CommandError(str(exc)) from exc
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    dropped = ", ".join(f"{k} {v}" for k, v in report.dropped.items() if v) or "none"
    added = ", ".join(f"{k} {v}" for k, v in report.by_source.items() if v) or "none"
    kind = "full" if report.full else "incremental"
    print(
        f"pair build {report.build_id} ({kind}): {report.events_seen} new events, "
        f"{report.suggestions} suggestions re-read in {report.seconds:.2f} s"
    )
    print(f"added    {report.pairs_added} ({added})")
    if report.pairwise_breaks:
        print(f"         {report.pairwise_breaks} judge_ranking ties broken by a pairwise verdict")
    print(f"updated  {report.pairs_updated}, removed {report.pairs_removed}")
    print(f"dropped  {sum(report.dropped.values())} ({dropped})")
    print(f"store    train {report.train}, heldout {report.heldout}")
    return 0


def cmd_pairs_export(args: argparse.Namespace) -> int:
    from prefloop.trainer.pairs import export_pairs

    since = since_option(args)
    db = existing_db(settings_from_args(args))
    out = None if args.output in (None, "-") else Path(args.output)
    count = export_pairs(db, out, split=args.split, since=since)
    if out is not None:
        print(f"wrote {count} pairs to {out}", file=sys.stderr)
    return 0


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``pairs`` command group on the ``prefloop`` parser."""
    pairs = sub.add_parser("pairs", help="preference pairs for training")
    pairs_sub = pairs.add_subparsers(dest="pairs_command", required=True, metavar="ACTION")
    build = pairs_sub.add_parser(
        "build",
        parents=[common],
        help="turn the feedback stored since the last build into preference pairs",
    )
    build.add_argument(
        "--full", action="store_true", help="re-read all feedback, not only what is new"
    )
    build.add_argument("--format", choices=["text", "json"], default="text")
    build.set_defaults(func=cmd_pairs_build)
    export = pairs_sub.add_parser(
        "export",
        parents=[common],
        help="write pairs as JSON lines (TRL preference format, with source and evidence)",
    )
    export.add_argument("--split", choices=["train", "heldout"], help="only this split")
    export.add_argument("--since", help="pairs made since: 30m, 2h, 7d, or an ISO date")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(func=cmd_pairs_export)
