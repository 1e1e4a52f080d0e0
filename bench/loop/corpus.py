"""The benchmark's coding contexts, written for it: for every taste, short Python files cut
at a place where the taste shows in the rest of the line, split once and for all into
training contexts (the developer works through them and the service learns from the
feedback) and held-out contexts (only ever evaluated, never reacted to).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.loop.tastes import Context


@dataclass(frozen=True)
class TasteCorpus:
    """One taste's contexts: ``train`` to work through, ``heldout`` to evaluate."""

    taste: str
    train: tuple[Context, ...]
    heldout: tuple[Context, ...]


# ---- annotations: `def name(first` -> `: T, b: U) -> R:` ------------------------------

_SIGNATURES = [
    # (module, function, first parameter, wanted rest)
    ("geometry", "triangle_area", "base", ": float, height: float) -> float:"),
    ("text", "count_vowels", "word", ": str) -> int:"),
    ("money", "apply_discount", "price", ": float, percent: float) -> float:"),
    ("inventory", "restock", "items", ": dict[str, int], amount: int) -> None:"),
    ("dates", "is_leap_year", "year", ": int) -> bool:"),
    ("text", "title_case", "sentence", ": str) -> str:"),
    ("stats", "median", "values", ": list[float]) -> float:"),
    ("net", "split_host", "address", ": str) -> tuple[str, int]:"),
    ("files", "read_lines", "path", ": str) -> list[str]:"),
    ("users", "full_name", "first", ": str, last: str) -> str:"),
    ("grid", "neighbours", "row", ": int, col: int) -> list[tuple[int, int]]:"),
    ("colors", "hex_to_rgb", "code", ": str) -> tuple[int, int, int]:"),
    # held out
    ("physics", "kinetic_energy", "mass", ": float, speed: float) -> float:"),
    ("text", "truncate", "text", ": str, limit: int) -> str:"),
    ("orders", "order_total", "lines", ": list[float]) -> float:"),
    ("dates", "days_between", "start", ": int, end: int) -> int:"),
    ("words", "is_anagram", "left", ": str, right: str) -> bool:"),
    ("config", "parse_flag", "value", ": str) -> bool:"),
]


def _annotations() -> list[Context]:
    return [
        Context(
            "annotations",
            function,
            f"src/shop/{module}.py",
            f'"""Helpers for {module}."""\n\nimport math\n\n\ndef {function}({first}',
            "\n",
            wanted,
        )
        for module, function, first, wanted in _SIGNATURES
    ]


# ---- docstring: the line after `def ...:` -> `"""Return the x."""` -------------------

_DOCSTRINGS = [
    ("celsius_to_kelvin(celsius: float) -> float", "return celsius + 273.15", "Convert"),
    ("word_lengths(text: str) -> list[int]", "return [len(w) for w in text.split()]", "Measure"),
    ("largest(values: list[int]) -> int", "return max(values)", "Return"),
    (
        "strip_blank_lines(text: str) -> str",
        'return "\\n".join(l for l in text.splitlines() if l.strip())',
        "Remove",
    ),
    ("average(values: list[float]) -> float", "return sum(values) / len(values)", "Compute"),
    ("initials(name: str) -> str", 'return "".join(p[0] for p in name.split())', "Build"),
    ("count_errors(lines: list[str]) -> int", 'return sum("ERROR" in l for l in lines)', "Count"),
    ("load_config(path: str) -> str", "return open(path).read()", "Read"),
    ("even_numbers(limit: int) -> list[int]", "return list(range(0, limit, 2))", "List"),
    ("swap_case(text: str) -> str", "return text.swapcase()", "Swap"),
    ("unique(items: list[str]) -> list[str]", "return sorted(set(items))", "Sort"),
    ("percent(part: float, whole: float) -> float", "return 100 * part / whole", "Express"),
    # held out
    ("cube_volume(side: float) -> float", "return side ** 3", "Compute"),
    ("first_line(text: str) -> str", "return text.splitlines()[0]", "Return"),
    ("shout(text: str) -> str", 'return text.upper() + "!"', "Make"),
    ("total_length(words: list[str]) -> int", "return sum(len(w) for w in words)", "Add"),
    ("reverse_words(text: str) -> str", 'return " ".join(reversed(text.split()))', "Reverse"),
    ("is_square(n: int) -> bool", "return int(n ** 0.5) ** 2 == n", "Tell"),
]

_DOC_OBJECTS = {
    "Convert": "a temperature in Celsius to kelvin",
    "Measure": "the length of every word",
    "Return": "the first item that matters",
    "Remove": "the blank lines of a text",
    "Compute": "the result",
    "Build": "the initials of a name",
    "Count": "the lines that report an error",
    "Read": "the configuration file",
    "List": "the even numbers below a limit",
    "Swap": "upper and lower case",
    "Sort": "the distinct items",
    "Express": "a part as a percentage of the whole",
    "Make": "the text loud",
    "Add": "up the lengths of the words",
    "Reverse": "the order of the words",
    "Tell": "whether a number is a perfect square",
}


def _docstrings() -> list[Context]:
    out = []
    for signature, body, verb in _DOCSTRINGS:
        name = signature.split("(")[0]
        out.append(
            Context(
                "docstring",
                name,
                "src/toolbox/functions.py",
                f'"""Small functions."""\n\n\ndef {signature}:\n    ',
                f"\n    {body}\n",
                f'"""{verb} {_DOC_OBJECTS[verb]}."""',
            )
        )
    return out


# ---- f-strings: `    return ` / `    message = ` -> `f"..."` --------------------------

_MESSAGES = [
    ("greeting", "name: str", "return ", 'f"Hello, {name}!"'),
    ("describe_order", "order_id: int, total: float", "return ", 'f"order {order_id}: {total}"'),
    ("log_line", "level: str, text: str", "return ", 'f"[{level}] {text}"'),
    ("progress", "done: int, total: int", "message = ", 'f"{done} of {total} done"'),
    ("file_label", "name: str, size: int", "return ", 'f"{name} ({size} bytes)"'),
    ("url_for", "host: str, port: int", "return ", 'f"http://{host}:{port}/"'),
    ("score_text", "player: str, score: int", "text = ", 'f"{player} scored {score}"'),
    ("temperature", "degrees: float", "return ", 'f"{degrees} degrees"'),
    ("error_text", "line: int, reason: str", "return ", 'f"line {line}: {reason}"'),
    ("welcome", "user: str, count: int", "banner = ", 'f"Welcome back {user}, {count} new"'),
    ("coordinates", "x: int, y: int", "return ", 'f"({x}, {y})"'),
    ("price_tag", "price: float", "return ", 'f"{price} EUR"'),
    # held out
    ("farewell", "name: str", "return ", 'f"Goodbye, {name}."'),
    ("row_label", "index: int, count: int", "return ", 'f"row {index} of {count}"'),
    ("version_tag", "major: int, minor: int", "return ", 'f"v{major}.{minor}"'),
    ("status_line", "service: str, state: str", "line = ", 'f"{service} is {state}"'),
    ("file_path", "folder: str, name: str", "return ", 'f"{folder}/{name}.txt"'),
    ("age_text", "name: str, age: int", "return ", 'f"{name} is {age} years old"'),
]


def _fstrings() -> list[Context]:
    return [
        Context(
            "fstrings",
            name,
            "src/app/messages.py",
            f'"""Messages shown to users."""\n\n\ndef {name}({params}) -> str:\n    '
            + start.rstrip(),
            "\n" if start == "return " else f"\n    return {start.split()[0]}\n",
            " " + wanted,
        )
        for name, params, start, wanted in _MESSAGES
    ]


# ---- pathlib: `    target = ` -> `Path(root) / "x"` -----------------------------------

_PATHS = [
    ("config_file", "root: str", "path = ", 'Path(root) / "config.toml"'),
    ("log_dir", "home: str", "logs = ", 'Path(home) / "logs"'),
    ("has_cache", "root: str", "return ", 'Path(root, ".cache").exists()'),
    ("stem_of", "filename: str", "return ", "Path(filename).stem"),
    ("parent_of", "filename: str", "return ", "Path(filename).parent"),
    ("data_file", "base: str, name: str", "path = ", 'Path(base) / "data" / name'),
    ("file_name", "path: str", "return ", "Path(path).name"),
    ("read_text", "path: str", "return ", "Path(path).read_text()"),
    ("is_python", "path: str", "return ", 'Path(path).suffix == ".py"'),
    ("backup_of", "path: str", "backup = ", 'Path(path).with_suffix(".bak")'),
    ("size_of", "path: str", "return ", "Path(path).stat().st_size"),
    ("absolute", "path: str", "return ", "Path(path).resolve()"),
    # held out
    ("settings_file", "home: str", "path = ", 'Path(home) / "settings.json"'),
    ("exists", "path: str", "return ", "Path(path).exists()"),
    ("extension", "path: str", "return ", "Path(path).suffix"),
    ("output_dir", "root: str", "out = ", 'Path(root) / "build" / "out"'),
    ("folder_of", "path: str", "return ", "Path(path).parent"),
    ("cache_file", "root: str, key: str", "path = ", 'Path(root) / "cache" / key'),
]


def _pathlib() -> list[Context]:
    return [
        Context(
            "pathlib",
            name,
            "src/app/paths.py",
            f'"""Where files live."""\n\nimport os\nfrom pathlib import Path\n\n\n'
            f"def {name}({params}):\n    {start.rstrip()}",
            "\n" if start == "return " else f"\n    return {start.split()[0]}\n",
            " " + wanted,
        )
        for name, params, start, wanted in _PATHS
    ]


# ---- early return: `    if ` -> `not items:` -----------------------------------------

_GUARDS = [
    ("total_price", "items: list[float]", "not items:", "return 0.0", "return sum(items)"),
    ("first_word", "text: str", "not text:", 'return ""', "return text.split()[0]"),
    ("load", "path: str | None", "path is None:", "return None", "return open(path).read()"),
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
    ("ratio", "part: float, whole: float", "not whole:", "return 0.0", "return part / whole"),
    # held out
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
    ("width_of", "box: dict[str, int] | None", "box is None:", "return 0", 'return box["w"]'),
]


def _early_returns() -> list[Context]:
    return [
        Context(
            "early_return",
            name,
            "src/app/logic.py",
            f'"""Small pieces of logic."""\n\n\ndef {name}({params}):\n    if',
            f"\n        {leave}\n    {main}\n",
            " " + wanted,
        )
        for name, params, wanted, leave, main in _GUARDS
    ]


# ---- predicate names: after a comment, `def` -> ` is_x(a: T) -> bool:` -----------------

_PREDICATES = [
    (
        "Tell whether an address looks like an email address",
        "is_email(address: str) -> bool:",
        '"@" in address',
    ),
    (
        "Tell whether a year is a leap year",
        "is_leap(year: int) -> bool:",
        "year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
    ),
    (
        "Tell whether a text contains a digit",
        "has_digit(text: str) -> bool:",
        "any(c.isdigit() for c in text)",
    ),
    ("Check whether a person may vote", "can_vote(age: int) -> bool:", "age >= 18"),
    (
        "Check whether a file name is hidden",
        "is_hidden(name: str) -> bool:",
        'name.startswith(".")',
    ),
    ("Check whether a number is even", "is_even(n: int) -> bool:", "n % 2 == 0"),
    (
        "Tell whether any item is negative",
        "has_negative(items: list[int]) -> bool:",
        "any(i < 0 for i in items)",
    ),
    (
        "Tell whether a request should be retried",
        "should_retry(attempt: int) -> bool:",
        "attempt < 3",
    ),
    ("Check whether an upload is too large", "is_too_large(size: int) -> bool:", "size > 10_000"),
    (
        "Tell whether a line is a comment",
        "is_comment(line: str) -> bool:",
        'line.lstrip().startswith("#")',
    ),
    (
        "Tell whether a user is an admin",
        "is_admin(user: dict[str, str]) -> bool:",
        'user.get("role") == "admin"',
    ),
    (
        "Tell whether a list is sorted",
        "is_sorted(values: list[int]) -> bool:",
        "values == sorted(values)",
    ),
    # held out
    ("Check whether a product is sold out", "is_sold_out(stock: int) -> bool:", "stock == 0"),
    (
        "Tell whether a word reads the same backwards",
        "is_palindrome(word: str) -> bool:",
        "word == word[::-1]",
    ),
    (
        "Tell whether a post carries a tag",
        "has_tag(tags: list[str], tag: str) -> bool:",
        "tag in tags",
    ),
    ("Check whether a player won", "has_won(score: int) -> bool:", "score >= 100"),
    (
        "Check whether a link is secure",
        "is_secure(url: str) -> bool:",
        'url.startswith("https://")',
    ),
    ("Check whether a number is positive", "is_positive(n: int) -> bool:", "n > 0"),
]


def _predicate_names() -> list[Context]:
    return [
        Context(
            "predicate_names",
            wanted.split("(")[0],
            "src/app/rules.py",
            f'"""Rules."""\n\n\n# {comment}.\ndef',
            f"\n    return {body}\n",
            " " + wanted,
        )
        for comment, wanted, body in _PREDICATES
    ]


# ---- signatures by file: library annotated, tests `-> None` --------------------------

_FILE_SIGNATURES = [
    # (module, library function, first param, library rest, test fixtures)
    ("ports", "parse_port", "value", ": str) -> int:", ", monkeypatch"),
    ("names", "normalise_name", "raw", ": str) -> str:", ""),
    ("prices", "add_tax", "price", ": float, rate: float) -> float:", ", tmp_path"),
    ("lines", "count_lines", "text", ": str) -> int:", ""),
    ("tags", "split_tags", "raw", ": str) -> list[str]:", ", capsys"),
    ("ages", "age_in_days", "years", ": int) -> int:", ""),
    ("slugs", "slugify", "title", ": str) -> str:", ", tmp_path"),
    ("sizes", "human_size", "size", ": int) -> str:", ""),
    # held out
    ("speeds", "average_speed", "distance", ": float, hours: float) -> float:", ""),
    ("codes", "country_code", "name", ": str) -> str:", ", monkeypatch"),
    ("words", "longest_word", "text", ": str) -> str:", ""),
    ("totals", "grand_total", "amounts", ": list[float]) -> float:", ", tmp_path"),
]


def _signatures_by_file() -> list[Context]:
    out = []
    for module, function, first, rest, fixtures in _FILE_SIGNATURES:
        out.append(
            Context(
                "signatures_by_file",
                function,
                f"src/app/{module}.py",
                f'"""{module.capitalize()}."""\n\n\ndef {function}({first}',
                "\n",
                rest,
            )
        )
        fixture = fixtures.lstrip(", ") or "request"
        out.append(
            Context(
                "signatures_by_file",
                f"test_{function}",
                f"tests/test_{module}.py",
                f'"""Tests of {module}."""\n\nfrom app.{module} import {function}\n\n\n'
                f"def test_{function}({fixture}",
                "\n",
                ") -> None:",
            )
        )
    return out


_BUILDERS = {
    "annotations": (_annotations, 12),
    "docstring": (_docstrings, 12),
    "fstrings": (_fstrings, 12),
    "pathlib": (_pathlib, 12),
    "early_return": (_early_returns, 12),
    "predicate_names": (_predicate_names, 12),
    "signatures_by_file": (_signatures_by_file, 16),
}


def corpus(taste: str) -> TasteCorpus:
    """The fixed training and held-out contexts of ``taste``."""
    build, n_train = _BUILDERS[taste]
    contexts = build()
    return TasteCorpus(taste, tuple(contexts[:n_train]), tuple(contexts[n_train:]))


def training_order(contexts: tuple[Context, ...], seed: int) -> list[Context]:
    """The order a developer works through ``contexts`` in, fixed by ``seed``."""
    order = list(contexts)
    random.Random(seed).shuffle(order)
    return order
