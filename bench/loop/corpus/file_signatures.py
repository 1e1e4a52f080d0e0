"""``signatures_by_file`` contexts, two per module: the library function's signature cut
after its first parameter's name (the developer annotates it), and its test's signature cut
after the first fixture (the developer leaves the fixtures bare and writes ``-> None``).
"""

from __future__ import annotations

from bench.loop.tastes import Context

# (module, library function, first parameter, library rest, the test's further fixtures)
_TRAIN = [
    ("ports", "parse_port", "value", ": str) -> int:", ", monkeypatch"),
    ("names", "normalise_name", "raw", ": str) -> str:", ""),
    ("prices", "add_tax", "price", ": float, rate: float) -> float:", ", tmp_path"),
    ("lines", "count_lines", "text", ": str) -> int:", ""),
    ("tags", "split_tags", "raw", ": str) -> list[str]:", ", capsys"),
    ("ages", "age_in_days", "years", ": int) -> int:", ""),
    ("slugs", "slugify", "title", ": str) -> str:", ", tmp_path"),
    ("sizes", "human_size", "size", ": int) -> str:", ""),
    ("emails", "domain_of", "address", ": str) -> str:", ", monkeypatch"),
    ("carts", "cart_weight", "weights", ": list[float]) -> float:", ""),
    ("tokens", "make_token", "user_id", ": int, secret: str) -> str:", ", tmp_path"),
    (
        "colours",
        "lighten",
        "rgb",
        ": tuple[int, int, int], amount: int) -> tuple[int, int, int]:",
        "",
    ),
    ("records", "parse_row", "line", ": str, delimiter: str) -> list[str]:", ", capsys"),
    ("durations", "to_seconds", "minutes", ": int, seconds: int) -> int:", ""),
    ("headers", "bearer_header", "token", ": str) -> dict[str, str]:", ", monkeypatch"),
    ("ratings", "average_rating", "stars", ": list[int]) -> float:", ""),
    ("batches", "chunked", "items", ": list[str], size: int) -> list[list[str]]:", ", tmp_path"),
    ("versions", "bump_minor", "version", ": str) -> str:", ""),
]

_HELDOUT = [
    ("speeds", "average_speed", "distance", ": float, hours: float) -> float:", ""),
    ("codes", "country_code", "name", ": str) -> str:", ", monkeypatch"),
    ("words", "longest_word", "text", ": str) -> str:", ""),
    ("totals", "grand_total", "amounts", ": list[float]) -> float:", ", tmp_path"),
    ("phones", "format_phone", "digits", ": str, country: str) -> str:", ", capsys"),
    ("queues", "next_job", "jobs", ": list[str]) -> str | None:", ""),
]


def _contexts(rows: list[tuple[str, str, str, str, str]]) -> tuple[Context, ...]:
    out: list[Context] = []
    for module, function, first, rest, fixtures in rows:
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
    return tuple(out)


TRAIN = _contexts(_TRAIN)
"""The training contexts (a library function, then its test), in the order they were
written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
