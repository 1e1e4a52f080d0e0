"""``prefloop serve``, ``prefloop model prepare`` and ``prefloop stats``: running the
service, preparing the model it serves, and how its suggestions and judges fare."""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prefloop.commands import (
    existing_db,
    progress_reporter,
    settings_from_args,
    since_option,
)

if TYPE_CHECKING:
    from prefloop.commands import Subcommands
    from prefloop.settings import Settings

log = logging.getLogger("prefloop.serve")

_SHOWN_LOOSE_FILES = 5


def home_warnings(home: Path) -> list[str]:
    """What is readable or writable by others in the home: the home itself, then its files
    (a few named). Creates the home (0700) when it is missing."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    warnings = []
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        warnings.append(
            f"{home} is open to other users (mode {mode:04o}); `chmod 700 {home}` keeps the "
            "feedback, the database and the tokens' hashes private"
        )
    loose = []
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = Path(root) / name
            try:
                mode = stat.S_IMODE(path.lstat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077 and not path.is_symlink():
                loose.append(f"{path.relative_to(home)} ({mode:04o})")
    if loose:
        shown = ", ".join(loose[:_SHOWN_LOOSE_FILES])
        more = f" and {len(loose) - _SHOWN_LOOSE_FILES} more" if len(loose) > 5 else ""
        warnings.append(
            f"files in {home} are open to other users: {shown}{more}; "
            f"`chmod -R go-rwx {home}` closes them (new files are created 0600)"
        )
    return warnings


def access_warnings(settings: Settings) -> list[str]:
    """What is unsafe or surprising in how the service is reached: a bind beyond loopback
    without TLS or without tokens, and a wildcard bind that answers loopback names only."""
    from prefloop.settings import is_loopback

    out = []
    exposed = not is_loopback(settings.host)
    if settings.host.strip("[]") in ("0.0.0.0", "::") and not settings.allowed_hosts:
        out.append(
            f"bound to {settings.host}, but answering only requests addressed to "
            f"{', '.join(settings.allowed_host_names)}: set PREFLOOP_ALLOWED_HOSTS to the "
            "names the developers use (other Host headers get 400)"
        )
    if exposed and settings.tls_cert is None:
        out.append(
            f"bound to {settings.host} without TLS: tokens and code cross the network in clear "
            "text; pass --tls-cert/--tls-key, or bind 127.0.0.1 behind a TLS reverse proxy"
        )
    if exposed and settings.auth_mode == "local":
        out.append(
            f"bound to {settings.host} with PREFLOOP_AUTH=local: anyone who reaches the port "
            "can ask for suggestions and write feedback as the local user"
        )
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from prefloop.logconfig import setup_logging
    from prefloop.models import ModelError
    from prefloop.server.app import create_app
    from prefloop.server.engines import create_engine

    settings = settings_from_args(args)
    setup_logging(settings.log_level)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    for warning in [*home_warnings(settings.home), *access_warnings(settings)]:
        log.warning(warning)
    log.info(
        "access: %s mode (%s); answering for the hosts %s",
        "team" if settings.auth_mode == "tokens" else "local",
        "every route but /healthz needs a token"
        if settings.auth_mode == "tokens"
        else "no credential; /admin needs the admin token",
        ", ".join(settings.allowed_host_names),
    )
    try:
        engine = create_engine(settings, report=progress_reporter())
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
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    return 0


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from prefloop.models import ModelError, embedded_dir, is_prepared, resolve_model

    settings = settings_from_args(args)
    report = progress_reporter()
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


def cmd_stats(args: argparse.Namespace) -> int:
    from contextlib import closing

    from prefloop.server.judge.agreement import collect, render_table
    from prefloop.store import connect

    since = since_option(args)
    with closing(connect(existing_db(settings_from_args(args)))) as conn:
        report = collect(conn, since=since)
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0


def add_serve_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``serve`` command on the ``prefloop`` parser."""
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
    serve.add_argument(
        "--tls-cert", dest="tls_cert", help="PEM certificate: serve HTTPS (with --tls-key)"
    )
    serve.add_argument("--tls-key", dest="tls_key", help="PEM private key of --tls-cert")
    serve.set_defaults(func=cmd_serve)


def add_model_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``model`` command group on the ``prefloop`` parser."""
    model = sub.add_parser("model", help="manage the served model")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = model_sub.add_parser(
        "prepare", parents=[common], help="prepare the configured model (idempotent)"
    )
    prepare.add_argument("--model", help="`embedded` (default) or a model directory")
    prepare.set_defaults(func=cmd_model_prepare)


def add_stats_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``stats`` command on the ``prefloop`` parser."""
    stats = sub.add_parser(
        "stats", parents=[common], help="acceptance and judge agreement with user signals"
    )
    stats.add_argument("--since", help="only suggestions since: 30m, 2h, 7d, or an ISO date")
    stats.add_argument("--format", choices=["table", "json"], default="table")
    stats.set_defaults(func=cmd_stats)
