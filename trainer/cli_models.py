"""``prefloop models``, ``prefloop promote VERSION`` and ``prefloop rollback``.

The commands work on the database directly, then tell a running service to serve the
result (``POST /admin/reload`` with the admin token); without a service they say so and
the service serves the promoted version when it next starts. Exit 0 on success, 1 with
``error: <message>`` otherwise.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from prefloop.commands import CommandError, existing_db, settings_from_args
from prefloop.settings import Settings

if TYPE_CHECKING:
    from prefloop.commands import Subcommands


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the three commands to the ``prefloop`` parser."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--server-url", dest="server_url", help="the service to notify (PREFLOOP_SERVER_URL)"
    )

    models = sub.add_parser(
        "models",
        parents=[common],
        help="list model versions (* marks the promoted ones; USER: a user's own version)",
    )
    models.add_argument("--format", choices=["table", "json"], default="table")
    models.set_defaults(func=cmd_models)

    promote = sub.add_parser(
        "promote", parents=[common, server], help="serve a model version (no restart)"
    )
    promote.add_argument("version", help="a version listed by `prefloop models`, e.g. v3")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser(
        "rollback", parents=[common, server], help="serve the previously promoted version"
    )
    rollback.add_argument(
        "--user",
        help="roll back only this user's own version (train_adapters = per_user); with none "
        "of theirs left they are served the shared version",
    )
    rollback.set_defaults(func=cmd_rollback)


def _summary(metrics: dict[str, Any], limit: int = 3) -> str:
    parts = []
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
        if len(parts) == limit:
            break
    return " ".join(parts)


def cmd_models(args: argparse.Namespace) -> int:
    from prefloop import registry

    settings = settings_from_args(args)
    existing_db(settings)
    versions = registry.list_versions(settings)
    current = registry.current(settings)
    current_id = current.id if current else registry.BASE
    users = {user: v.id for user, v in registry.user_versions(settings).items()}

    def served(v: registry.Version) -> bool:
        return v.id == (current_id if v.for_user is None else users.get(v.for_user))

    if args.format == "json":
        rows = [
            {
                "id": v.id,
                "status": v.status,
                "parent": v.parent,
                "created_at": v.created_at,
                "promoted_at": v.promoted_at,
                "run_id": v.run_id,
                "metrics": v.metrics,
                "files": v.files_present,
                "current": served(v),
                "user": v.for_user,
            }
            for v in versions
        ]
        print(json.dumps({"current": current_id, "users": users, "versions": rows}, indent=2))
        return 0
    # The USER column appears once some version belongs to one user.
    scoped = any(v.for_user is not None for v in versions)
    header = ("", "VERSION", "USER", "STATUS", "PARENT", "CREATED", "METRICS")
    table: list[tuple[str, ...]] = [header]
    for v in versions:
        status = v.status if v.files_present else f"{v.status} (pruned)"
        table.append(
            (
                "*" if served(v) else "",
                v.id,
                v.for_user or "(shared)",
                status,
                v.parent,
                v.created_at[:19].replace("T", " "),
                _summary(v.metrics),
            )
        )
    table.append(
        ("*" if current_id == registry.BASE else "", registry.BASE, "(shared)", "", "", "", "")
    )
    if not scoped:
        table = [row[:2] + row[3:] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _tell_service(settings: Settings, wanted: str) -> int:
    """Notify a running service; 1 when it refused the version it was asked to serve."""
    from prefloop import registry

    result = registry.notify_service(settings)
    if result.ok:
        print(result.message)
        return 0
    if result.served is None and "no service answered" in result.message:
        print(f"no service is running at {settings.server_url}; it serves {wanted} when it starts")
        return 0
    print(result.message)
    return 1


def cmd_promote(args: argparse.Namespace) -> int:
    from prefloop import registry

    settings = settings_from_args(args)
    existing_db(settings)
    try:
        user = registry.get(settings, args.version).for_user
        before = registry.current(settings) if user is None else registry.served_to(settings, user)
        version = registry.promote(settings, args.version, notify=False, requested_by=settings.user)
    except registry.RegistryError as exc:
        raise CommandError(str(exc)) from None
    was = before.id if before else registry.BASE
    scope = "" if user is None else f" for user {user}"
    print(f"promoted {version.id}{scope} (was {was})")
    if _tell_service(settings, version.id) != 0:
        back = registry.rollback(
            settings,
            notify=False,
            reason="refused by the running service",
            user=user,
            requested_by=settings.user,
        )
        raise CommandError(
            f"{version.id} was refused by the service; the registry is back on {back}"
        )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from prefloop import registry

    settings = settings_from_args(args)
    existing_db(settings)
    user = args.user
    try:
        before = (
            registry.current(settings)
            if user is None
            else registry.user_versions(settings).get(user)
        )
        target = registry.rollback(settings, notify=False, user=user, requested_by=settings.user)
    except registry.RegistryError as exc:
        raise CommandError(str(exc)) from None
    scope = "" if user is None else f" user {user}"
    was = before.id if before else registry.BASE
    print(f"rolled back{scope} from {was} to {target}")
    if _tell_service(settings, target) != 0:
        raise CommandError(f"the service could not serve {target}; see its /healthz")
    return 0
