"""``prefloop lsp``: the language server for one editor, over stdio (TCP for debugging)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prefloop.commands import settings_from_args

if TYPE_CHECKING:
    from prefloop.commands import Subcommands


def cmd_lsp(args: argparse.Namespace) -> int:
    from .main import run

    return run(settings_from_args(args), tcp=args.tcp, host=args.tcp_host, port=args.tcp_port)


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``lsp`` command on the ``prefloop`` parser."""
    lsp = sub.add_parser(
        "lsp", parents=[common], help="run the language server (stdio; --tcp for debugging)"
    )
    lsp.add_argument("--tcp", action="store_true", help="listen on TCP instead of stdio")
    lsp.add_argument(
        "--host", dest="tcp_host", default="127.0.0.1", help="TCP address (default 127.0.0.1)"
    )
    lsp.add_argument(
        "--port", dest="tcp_port", type=int, default=2087, help="TCP port (default 2087)"
    )
    lsp.add_argument("--server-url", dest="server_url", help="the service (PREFLOOP_SERVER_URL)")
    lsp.add_argument("--log-level", dest="log_level", help="debug, info, warning, error")
    lsp.set_defaults(func=cmd_lsp)
