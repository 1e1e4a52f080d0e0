"""``prefloop users``: the users of team mode and their tokens, on the database directly.

``add NAME [--admin]`` and ``rotate NAME`` print the new token alone on standard output
(shown this once; only its hash is kept), so ``TOKEN=$(prefloop users add ann)`` works;
what happened goes to standard error. ``list`` never shows a token; ``revoke`` ends a
user's token at once, for a running service too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from prefloop.commands import CommandError, render_table, settings_from_args

if TYPE_CHECKING:
    from prefloop.commands import Subcommands


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The ``users`` command group on the ``prefloop`` parser."""
    group = sub.add_parser("users", help="users of team mode and their tokens")
    actions = group.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", parents=[common], help="add a user and print their token (shown once)"
    )
    add.add_argument("name", help="user name: letters, digits, '.', '_', '@', '-'")
    add.add_argument("--admin", action="store_true", help="an admin (default: a developer)")
    add.set_defaults(func=cmd_add)

    listing = actions.add_parser("list", parents=[common], help="list users (never tokens)")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(func=cmd_list)

    revoke = actions.add_parser("revoke", parents=[common], help="revoke a user's token")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_revoke)

    rotate = actions.add_parser(
        "rotate", parents=[common], help="replace a user's token and print the new one"
    )
    rotate.add_argument("name")
    rotate.set_defaults(func=cmd_rotate)


def _issued(message: str, token: str) -> int:
    print(message + " (this is the only time it is shown):", file=sys.stderr)
    print(token)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from prefloop import users

    settings = settings_from_args(args)
    role: users.Role = "admin" if args.admin else "developer"
    try:
        record, token = users.add_user(settings, args.name, role=role, created_by=settings.user)
    except users.UserError as exc:
        raise CommandError(str(exc)) from None
    return _issued(f"added {record.user} ({record.role}); their token", token)


def cmd_rotate(args: argparse.Namespace) -> int:
    from prefloop import users

    settings = settings_from_args(args)
    try:
        record, token = users.rotate_user(settings, args.name, created_by=settings.user)
    except users.UserError as exc:
        raise CommandError(str(exc)) from None
    return _issued(f"the old token of {record.user} is revoked; their new token", token)


def cmd_revoke(args: argparse.Namespace) -> int:
    from prefloop import users

    settings = settings_from_args(args)
    try:
        users.revoke_user(settings, args.name)
    except users.UserError as exc:
        raise CommandError(str(exc)) from None
    print(f"revoked the token of {args.name}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from prefloop import users

    found = users.list_users(settings_from_args(args))
    if args.format == "json":
        print(json.dumps([asdict(u) for u in found], indent=2))
        return 0
    columns = ("name", "role", "status", "created", "token issued", "last used")
    rows = [
        (
            u.name,
            u.role,
            "active" if u.active else f"revoked {u.revoked_at or ''}"[:27],
            u.created_at[:19],
            u.token_created_at[:19],
            (u.last_used_at or "never")[:19],
        )
        for u in found
    ]
    print(render_table(columns, rows, fold=False))
    print(f"{len(found)} user(s)")
    return 0
