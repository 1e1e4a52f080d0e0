"""What every ``prefloop`` command shares: settings from the options, the database check,
the ``--since`` option, progress and table output, and :class:`CommandError`.

The command modules of each process (``prefloop.server.cli``, ``prefloop.lsp.cli``,
``prefloop.trainer.cli_*``) import this module; :mod:`prefloop.cli` puts them together
into one parser. It imports nothing from the server, the language server or the trainer.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from prefloop.settings import Settings

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

# Options that map one to one onto a settings field of the same name.
SETTING_OPTIONS = (
    "home",
    "host",
    "port",
    "engine",
    "model",
    "vllm_url",
    "vllm_model",
    "server_url",
    "log_level",
    "tls_cert",
    "tls_key",
)


class CommandError(Exception):
    """Ends a command with ``error: <message>`` on stderr and exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings, with every option the user gave on the command line applied."""
    overrides: dict[str, Any] = {}
    for name in SETTING_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def existing_db(settings: Settings) -> Path:
    """The database, migrated to this version; a :class:`CommandError` when the service
    never ran in this home."""
    from prefloop.store import migrate

    if not settings.db_path.exists():
        raise CommandError(f"no database at {settings.db_path} (has `prefloop serve` run?)")
    migrate(settings.db_path)
    return settings.db_path


def since_option(args: argparse.Namespace) -> str | None:
    """The ``--since`` option as a timestamp; None without it (exit 2 when unreadable)."""
    from prefloop.store import parse_since

    if not args.since:
        return None
    try:
        return parse_since(args.since)
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from exc


def progress_reporter() -> Callable[[str], None]:
    """A function that prints one progress line on stderr, ``prefloop <message>``."""
    from rich.console import Console

    console = Console(stderr=True)

    def report(message: str) -> None:
        console.print(f"[bold cyan]prefloop[/] {message}")

    return report


def render_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, fold: bool) -> str:
    """A text table 200 columns wide, without a trailing newline; ``fold`` wraps long cells
    instead of cutting them."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in columns:
        if fold:
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column)
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue().rstrip("\n")
