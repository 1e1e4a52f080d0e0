"""``early_return`` contexts: a function cut after the ``if`` that opens its body, with the
early return and the main path below; the developer writes the guard's condition.
"""

from __future__ import annotations

from bench.loop.tastes import Context

_Rows = list[tuple[str, str, str, str, str]]

# Per file: (path, the file's docstring,
#            [(function, parameters, wanted condition, early return, main path)])
_TRAIN: list[tuple[str, str, _Rows]] = [
    (
        "src/app/logic.py",
        "Small pieces of logic.",
        [
            ("total_price", "items: list[float]", "not items:", "return 0.0", "return sum(items)"),
            ("first_word", "text: str", "not text:", 'return ""', "return text.split()[0]"),
            (
                "load",
                "path: str | None",
                "path is None:",
                "return None",
                "return open(path).read()",
            ),
            (
                "average",
                "values: list[float]",
                "not values:",
                "return 0.0",
                "return sum(values) / len(values)",
            ),
            ("last_item", "queue: list[str]", "not queue:", "return None", "return queue[-1]"),
            (
                "find_user",
                "users: dict[str, str], key: str",
                "key not in users:",
                "return None",
                "return users[key]",
            ),
            ("head", "lines: list[str]", "not lines:", "return []", "return lines[:10]"),
            ("shorten", "title: str | None", "title is None:", 'return ""', "return title[:20]"),
            ("largest", "numbers: list[int]", "not numbers:", "return 0", "return max(numbers)"),
            (
                "port_of",
                "config: dict[str, int] | None",
                "config is None:",
                "return 8080",
                'return config["port"]',
            ),
            ("join_all", "parts: list[str]", "not parts:", 'return ""', 'return ", ".join(parts)'),
            (
                "ratio",
                "part: float, whole: float",
                "not whole:",
                "return 0.0",
                "return part / whole",
            ),
        ],
    ),
    (
        "src/shop/cart.py",
        "The shopping cart.",
        [
            (
                "cart_total",
                "prices: list[float]",
                "not prices:",
                "return 0.0",
                "return round(sum(prices), 2)",
            ),
            (
                "cheapest_item",
                "prices: dict[str, float]",
                "not prices:",
                "return None",
                "return min(prices, key=prices.get)",
            ),
            (
                "coupon_discount",
                "coupon: str | None",
                "coupon is None:",
                "return 0",
                "return int(coupon[-2:])",
            ),
            (
                "item_price",
                "catalogue: dict[str, float], sku: str",
                "sku not in catalogue:",
                "return 0.0",
                "return catalogue[sku]",
            ),
        ],
    ),
    (
        "src/accounts/sessions.py",
        "Sessions of signed-in users.",
        [
            (
                "session_user",
                "session: dict[str, str] | None",
                "session is None:",
                'return "anonymous"',
                'return session["user"]',
            ),
            ("last_login", "logins: list[int]", "not logins:", "return None", "return max(logins)"),
            (
                "token_owner",
                "tokens: dict[str, str], token: str",
                "token not in tokens:",
                "return None",
                "return tokens[token]",
            ),
            (
                "greeting_name",
                "nickname: str | None",
                "nickname is None:",
                'return "there"',
                "return nickname",
            ),
        ],
    ),
    (
        "src/text/parsing.py",
        "Parsing small pieces of text.",
        [
            ("first_number", "text: str", "not text:", "return 0", "return int(text.split()[0])"),
            (
                "header_of",
                "lines: list[str]",
                "not lines:",
                "return []",
                'return lines[0].split(",")',
            ),
            (
                "strip_comment",
                "line: str | None",
                "line is None:",
                'return ""',
                'return line.split("#")[0]',
            ),
            ("key_of", "pair: str", "not pair:", 'return ""', 'return pair.split("=", 1)[0]'),
        ],
    ),
    (
        "src/metrics/series.py",
        "Time series of measurements.",
        [
            (
                "latest_value",
                "series: list[float]",
                "not series:",
                "return None",
                "return series[-1]",
            ),
            ("peak", "series: list[float]", "not series:", "return 0.0", "return max(series)"),
            (
                "baseline",
                "reference: list[float] | None",
                "reference is None:",
                "return 0.0",
                "return sum(reference) / len(reference)",
            ),
            (
                "spread",
                "series: list[float]",
                "not series:",
                "return 0.0",
                "return max(series) - min(series)",
            ),
        ],
    ),
    (
        "src/config/lookup.py",
        "Looking up configuration values.",
        [
            (
                "timeout_of",
                "config: dict[str, float] | None",
                "config is None:",
                "return 30.0",
                'return config["timeout"]',
            ),
            (
                "feature_on",
                "flags: dict[str, bool], name: str",
                "name not in flags:",
                "return False",
                "return flags[name]",
            ),
            (
                "log_level",
                "env: dict[str, str] | None",
                "env is None:",
                'return "INFO"',
                'return env.get("LOG_LEVEL", "INFO")',
            ),
            (
                "retries",
                "settings: dict[str, int]",
                "not settings:",
                "return 3",
                'return settings.get("retries", 3)',
            ),
        ],
    ),
    (
        "src/games/players.py",
        "Players and their scores.",
        [
            (
                "best_player",
                "scores: dict[str, int]",
                "not scores:",
                'return ""',
                "return max(scores, key=scores.get)",
            ),
            (
                "team_size",
                "team: list[str] | None",
                "team is None:",
                "return 0",
                "return len(team)",
            ),
            ("captain", "team: list[str]", "not team:", "return None", "return team[0]"),
            (
                "average_score",
                "scores: list[int]",
                "not scores:",
                "return 0.0",
                "return sum(scores) / len(scores)",
            ),
        ],
    ),
]

_HELDOUT: list[tuple[str, str, _Rows]] = [
    (
        "src/app/logic.py",
        "Small pieces of logic.",
        [
            ("smallest", "numbers: list[int]", "not numbers:", "return 0", "return min(numbers)"),
            ("upper_name", "name: str | None", "name is None:", 'return ""', "return name.upper()"),
            (
                "lookup",
                "table: dict[str, int], key: str",
                "key not in table:",
                "return -1",
                "return table[key]",
            ),
            ("count_words", "text: str", "not text:", "return 0", "return len(text.split())"),
            ("tail", "lines: list[str]", "not lines:", "return []", "return lines[-10:]"),
            (
                "width_of",
                "box: dict[str, int] | None",
                "box is None:",
                "return 0",
                'return box["w"]',
            ),
        ],
    ),
    (
        "src/orders/status.py",
        "The status of orders.",
        [
            (
                "latest_order",
                "orders: list[int]",
                "not orders:",
                "return None",
                "return orders[-1]",
            ),
            (
                "tracking_code",
                "shipment: dict[str, str] | None",
                "shipment is None:",
                'return ""',
                'return shipment["code"]',
            ),
            (
                "order_status",
                "statuses: dict[int, str], order_id: int",
                "order_id not in statuses:",
                'return "unknown"',
                "return statuses[order_id]",
            ),
            ("items_shipped", "items: list[str]", "not items:", "return 0", "return len(items)"),
            (
                "delivery_note",
                "note: str | None",
                "note is None:",
                'return ""',
                "return note.strip()",
            ),
            (
                "heaviest_parcel",
                "weights: list[float]",
                "not weights:",
                "return 0.0",
                "return max(weights)",
            ),
        ],
    ),
]


def _contexts(files: list[tuple[str, str, _Rows]]) -> tuple[Context, ...]:
    return tuple(
        Context(
            "early_return",
            name,
            path,
            f'"""{doc}"""\n\n\ndef {name}({params}):\n    if',
            f"\n        {leave}\n    {main}\n",
            " " + wanted,
        )
        for path, doc, rows in files
        for name, params, wanted, leave, main in rows
    )


TRAIN = _contexts(_TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
