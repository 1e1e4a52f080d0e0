"""The ``prefloop`` command line: one parser made of every process's commands.

Each process keeps its commands with it: ``serve``, ``model prepare`` and ``stats`` in
:mod:`prefloop.server.cli`, ``lsp`` in :mod:`prefloop.lsp.cli`, the training ones in
``prefloop.trainer.cli_*`` and :mod:`prefloop.trainer.demo`, ``logs query`` in
:mod:`prefloop.cli_logs`, ``users`` in :mod:`prefloop.cli_users`. They share
:mod:`prefloop.commands` and none of them imports this module. Their modules are imported
when the parser is built, and the libraries a command needs only when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from prefloop.commands import CommandError


def build_parser() -> argparse.ArgumentParser:
    """The ``prefloop`` parser; every command sets ``func``, the function that runs it."""
    from prefloop import cli_logs, cli_users
    from prefloop.lsp import cli as lsp_cli
    from prefloop.server import cli as server_cli
    from prefloop.trainer import cli_models, cli_pairs, cli_train, demo

    parser = argparse.ArgumentParser(
        prog="prefloop",
        description="Self-hosted inline code suggestions that learn from their users.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="data directory (PREFLOOP_HOME, default ~/.prefloop)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_cli.add_serve_parser(sub, common)
    lsp_cli.add_parsers(sub, common)
    server_cli.add_model_parsers(sub, common)
    cli_logs.add_parsers(sub, common)
    cli_users.add_parsers(sub, common)
    server_cli.add_stats_parser(sub, common)
    cli_train.add_parsers(sub, common)
    cli_models.add_parsers(sub, common)
    cli_pairs.add_parsers(sub, common)
    demo.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (``error: <message>`` on stderr when it fails).

    Every file a command creates is its owner's alone (umask 077): the home and its
    directories 0700, the database, its WAL, run logs, adapters and exports 0600."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = os.umask(0o077)
    try:
        result: int = args.func(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    finally:
        os.umask(previous)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
