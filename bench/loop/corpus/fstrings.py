"""``fstrings`` contexts: a function building a message, cut after ``return`` or after
``name =``; the developer writes the message as an f-string.
"""

from __future__ import annotations

from bench.loop.tastes import Context

_Rows = list[tuple[str, str, str, str]]

# Per file: (path, the file's docstring, [(function, parameters, start, wanted)])
_TRAIN: list[tuple[str, str, _Rows]] = [
    (
        "src/app/messages.py",
        "Messages shown to users.",
        [
            ("greeting", "name: str", "return ", 'f"Hello, {name}!"'),
            (
                "describe_order",
                "order_id: int, total: float",
                "return ",
                'f"order {order_id}: {total}"',
            ),
            ("log_line", "level: str, text: str", "return ", 'f"[{level}] {text}"'),
            ("progress", "done: int, total: int", "message = ", 'f"{done} of {total} done"'),
            ("file_label", "name: str, size: int", "return ", 'f"{name} ({size} bytes)"'),
            ("url_for", "host: str, port: int", "return ", 'f"http://{host}:{port}/"'),
            ("score_text", "player: str, score: int", "text = ", 'f"{player} scored {score}"'),
            ("temperature", "degrees: float", "return ", 'f"{degrees} degrees"'),
            ("error_text", "line: int, reason: str", "return ", 'f"line {line}: {reason}"'),
            (
                "welcome",
                "user: str, count: int",
                "banner = ",
                'f"Welcome back {user}, {count} new"',
            ),
            ("coordinates", "x: int, y: int", "return ", 'f"({x}, {y})"'),
            ("price_tag", "price: float", "return ", 'f"{price} EUR"'),
        ],
    ),
    (
        "src/shop/receipts.py",
        "Lines printed on receipts.",
        [
            ("receipt_line", "item: str, price: float", "return ", 'f"{item}: {price} EUR"'),
            (
                "receipt_header",
                "shop: str, number: int",
                "header = ",
                'f"{shop} - receipt no. {number}"',
            ),
            ("change_due", "change: float", "return ", 'f"Change due: {change}"'),
            (
                "cashier_line",
                "cashier: str, till: int",
                "line = ",
                'f"Served by {cashier} at till {till}"',
            ),
        ],
    ),
    (
        "src/notifications/emails.py",
        "Subjects and bodies of notification emails.",
        [
            ("reset_subject", "site: str", "return ", 'f"Reset your {site} password"'),
            (
                "invite_subject",
                "inviter: str, team: str",
                "subject = ",
                'f"{inviter} invited you to {team}"',
            ),
            (
                "digest_line",
                "unread: int, channel: str",
                "return ",
                'f"{unread} unread messages in #{channel}"',
            ),
            ("signature", "name: str, role: str", "text = ", 'f"-- {name}, {role}"'),
        ],
    ),
    (
        "src/cli/output.py",
        "What the command line prints.",
        [
            ("elapsed", "seconds: float", "return ", 'f"done in {seconds} s"'),
            ("usage", "program: str", "return ", 'f"usage: {program} [options] FILE"'),
            ("skipped", "path: str, reason: str", "message = ", 'f"skipped {path}: {reason}"'),
            (
                "copied",
                "count: int, target: str",
                "summary = ",
                'f"copied {count} files to {target}"',
            ),
        ],
    ),
    (
        "src/web/links.py",
        "Links and routes.",
        [
            ("profile_url", "username: str", "return ", 'f"/users/{username}"'),
            ("search_url", "base: str, query: str", "url = ", 'f"{base}/search?q={query}"'),
            (
                "api_route",
                "version: int, resource: str",
                "return ",
                'f"/api/v{version}/{resource}"',
            ),
            ("asset_url", "cdn: str, name: str", "link = ", 'f"https://{cdn}/assets/{name}"'),
        ],
    ),
    (
        "src/games/scoreboard.py",
        "Lines of the scoreboard.",
        [
            ("level_banner", "level: int", "return ", 'f"Level {level}"'),
            ("lives_left", "lives: int", "return ", 'f"{lives} lives left"'),
            ("high_score", "name: str, points: int", "entry = ", 'f"{name} ... {points}"'),
            (
                "match_result",
                "home: str, away: str, score: str",
                "result = ",
                'f"{home} {score} {away}"',
            ),
        ],
    ),
    (
        "src/infra/names.py",
        "Names of machines and resources.",
        [
            ("host_name", "region: str, index: int", "return ", 'f"web-{region}-{index}"'),
            ("bucket_name", "project: str, env: str", "name = ", 'f"{project}-{env}-backups"'),
            ("image_tag", "service: str, commit: str", "return ", 'f"{service}:{commit}"'),
            ("queue_name", "team: str", "return ", 'f"jobs.{team}.default"'),
        ],
    ),
]

_HELDOUT: list[tuple[str, str, _Rows]] = [
    (
        "src/app/messages.py",
        "Messages shown to users.",
        [
            ("farewell", "name: str", "return ", 'f"Goodbye, {name}."'),
            ("row_label", "index: int, count: int", "return ", 'f"row {index} of {count}"'),
            ("version_tag", "major: int, minor: int", "return ", 'f"v{major}.{minor}"'),
            ("status_line", "service: str, state: str", "line = ", 'f"{service} is {state}"'),
            ("file_path", "folder: str, name: str", "return ", 'f"{folder}/{name}.txt"'),
            ("age_text", "name: str, age: int", "return ", 'f"{name} is {age} years old"'),
        ],
    ),
    (
        "src/calendar/labels.py",
        "Labels on the calendar.",
        [
            ("meeting_title", "topic: str, owner: str", "return ", 'f"{topic} (with {owner})"'),
            ("room_label", "building: str, room: int", "label = ", 'f"{building} room {room}"'),
            ("reminder", "minutes: int", "return ", 'f"starts in {minutes} minutes"'),
            ("date_label", "day: int, month: str", "return ", 'f"{day} {month}"'),
            ("attendees_line", "count: int", "line = ", 'f"{count} people attending"'),
            ("week_label", "week: int, year: int", "return ", 'f"week {week} of {year}"'),
        ],
    ),
]


def _contexts(files: list[tuple[str, str, _Rows]]) -> tuple[Context, ...]:
    return tuple(
        Context(
            "fstrings",
            name,
            path,
            f'"""{doc}"""\n\n\ndef {name}({params}) -> str:\n    ' + start.rstrip(),
            "\n" if start == "return " else f"\n    return {start.split()[0]}\n",
            " " + wanted,
        )
        for path, doc, rows in files
        for name, params, start, wanted in rows
    )


TRAIN = _contexts(_TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
