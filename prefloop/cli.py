"""The ``prefloop`` command line."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefloop.protocol import EVENT_KINDS
from prefloop.settings import Settings
from prefloop.trainer import cli_pairs as pairs_cli
from prefloop.trainer.cli_train import add_parsers as add_train_parsers


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    names = ("home", "host", "port", "engine", "model", "vllm_url", "vllm_model", "server_url")
    for name in (*names, "log_level"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


class CommandError(Exception):
    """Ends a command with ``error: <message>`` on stderr and exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _since(args: argparse.Namespace) -> str | None:
    """The ``--since`` option as a timestamp (exit 2 when it cannot be read)."""
    from prefloop.store import parse_since

    if not args.since:
        return None
    try:
        return parse_since(args.since)
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from exc


def _existing_db(settings: Settings) -> Path:
    """The database, migrated to this version; an error when the service never ran."""
    from prefloop.store import migrate

    if not settings.db_path.exists():
        raise CommandError(f"no database at {settings.db_path} (has `prefloop serve` run?)")
    migrate(settings.db_path)
    return settings.db_path


def _progress_reporter() -> Any:
    from rich.console import Console

    console = Console(stderr=True)

    def report(message: str) -> None:
        console.print(f"[bold cyan]prefloop[/] {message}")

    return report


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from prefloop.models import ModelError, embedded_dir, is_prepared, resolve_model

    settings = _settings(args)
    report = _progress_reporter()
    already = settings.model == "embedded" and is_prepared(embedded_dir(settings))
    try:
        path = resolve_model(settings, report=report)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if already:
        report(f"already prepared: {path}")
    print(path)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from prefloop.logconfig import setup_logging
    from prefloop.models import ModelError
    from prefloop.server.app import create_app
    from prefloop.server.engines import create_engine

    settings = _settings(args)
    setup_logging(settings.log_level)
    try:
        engine = create_engine(settings, report=_progress_reporter())
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = create_app(settings, engine=engine)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_lsp(args: argparse.Namespace) -> int:
    from prefloop.lsp.main import run

    return run(_settings(args), tcp=args.tcp, host=args.tcp_host, port=args.tcp_port)


def _format_rows(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str]) -> str:
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else _short(row[c]) for c in columns))
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out).rstrip("\n") + f"\n{len(rows)} event(s)"


def _short(value: Any, width: int = 60) -> str:
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


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


def cmd_logs_query(args: argparse.Namespace) -> int:
    from prefloop.store import EVENT_COLUMNS, Store

    settings = _settings(args)
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
    since = _since(args)
    with Store(_existing_db(settings)) as store:
        rows = store.query_events(
            since=since,
            kinds=kinds,
            language=args.language,
            user=args.user,
            suggestion_id=args.suggestion,
            limit=args.limit,
        )
    columns = TABLE_COLUMNS if args.format == "table" else EVENT_COLUMNS
    print(_format_rows(rows, args.format, columns))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from contextlib import closing

    from prefloop.server.judge.agreement import collect, render_table
    from prefloop.store import connect

    since = _since(args)
    with closing(connect(_existing_db(_settings(args)))) as conn:
        report = collect(conn, since=since)
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefloop",
        description="Self-hosted inline code suggestions that learn from their users.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="data directory (PREFLOOP_HOME, default ~/.prefloop)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", parents=[common], help="run the suggestion service (prepares the model)"
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8765)")
    serve.add_argument("--engine", choices=["transformers", "vllm"], help="generation engine")
    serve.add_argument("--model", help="`embedded`, a local HF model directory, or a hub id")
    serve.add_argument("--vllm-url", dest="vllm_url", help="vLLM server URL (engine vllm)")
    serve.add_argument("--vllm-model", dest="vllm_model", help="model name served by vLLM")
    serve.add_argument("--log-level", dest="log_level", help="debug, info, warning, error")
    serve.set_defaults(func=cmd_serve)

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

    model = sub.add_parser("model", help="manage the served model")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = model_sub.add_parser(
        "prepare", parents=[common], help="prepare the configured model (idempotent)"
    )
    prepare.add_argument("--model", help="`embedded` (default) or a model directory")
    prepare.set_defaults(func=cmd_model_prepare)

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

    stats = sub.add_parser(
        "stats", parents=[common], help="acceptance and judge agreement with user signals"
    )
    stats.add_argument("--since", help="only suggestions since: 30m, 2h, 7d, or an ISO date")
    stats.add_argument("--format", choices=["table", "json"], default="table")
    stats.set_defaults(func=cmd_stats)
    add_train_parsers(sub, common)

    from prefloop.trainer import cli_models

    cli_models.add_parsers(sub, common)

    pairs_cli.add_parsers(sub, common)

    from prefloop.trainer import demo

    demo.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return result


if __name__ == "__main__":
    # Run the imported module's main so that commands defined in other modules raise the
    # same CommandError class that main catches.
    from prefloop.cli import main as _main

    raise SystemExit(_main())
