"""``annotations`` contexts: a helper's signature cut after the name of its first parameter;
the developer writes the annotations and the return type (``: float, b: float) -> float:``).
"""

from __future__ import annotations

from bench.loop.tastes import Context

# (package, module, function, first parameter, wanted rest of the line)
_TRAIN = [
    ("shop", "geometry", "triangle_area", "base", ": float, height: float) -> float:"),
    ("shop", "text", "count_vowels", "word", ": str) -> int:"),
    ("shop", "money", "apply_discount", "price", ": float, percent: float) -> float:"),
    ("shop", "inventory", "restock", "items", ": dict[str, int], amount: int) -> None:"),
    ("shop", "dates", "is_leap_year", "year", ": int) -> bool:"),
    ("shop", "text", "title_case", "sentence", ": str) -> str:"),
    ("shop", "stats", "median", "values", ": list[float]) -> float:"),
    ("shop", "net", "split_host", "address", ": str) -> tuple[str, int]:"),
    ("shop", "files", "read_lines", "path", ": str) -> list[str]:"),
    ("shop", "users", "full_name", "first", ": str, last: str) -> str:"),
    ("shop", "grid", "neighbours", "row", ": int, col: int) -> list[tuple[int, int]]:"),
    ("shop", "colors", "hex_to_rgb", "code", ": str) -> tuple[int, int, int]:"),
    ("billing", "invoices", "line_subtotal", "quantity", ": int, unit_price: float) -> float:"),
    ("billing", "invoices", "invoice_number", "sequence", ": int, prefix: str) -> str:"),
    ("billing", "tax", "vat_amount", "net", ": float, rate: float) -> float:"),
    (
        "shipping",
        "parcels",
        "parcel_volume",
        "length",
        ": float, width: float, depth: float) -> float:",
    ),
    ("shipping", "routes", "route_length", "stops", ": list[tuple[float, float]]) -> float:"),
    ("accounts", "passwords", "password_strength", "password", ": str) -> int:"),
    (
        "accounts",
        "sessions",
        "session_expired",
        "created_at",
        ": float, now: float, ttl: int) -> bool:",
    ),
    ("accounts", "profiles", "display_name", "profile", ": dict[str, str]) -> str:"),
    ("analytics", "funnels", "conversion_rate", "visits", ": int, purchases: int) -> float:"),
    ("analytics", "events", "events_per_day", "timestamps", ": list[int]) -> dict[int, int]:"),
    ("analytics", "cohorts", "retention_curve", "active_by_week", ": list[int]) -> list[float]:"),
    ("search", "ranking", "score_document", "terms", ": list[str], document: str) -> float:"),
    ("search", "tokens", "tokenize", "query", ": str) -> list[str]:"),
    ("search", "pages", "page_bounds", "page", ": int, per_page: int) -> tuple[int, int]:"),
    (
        "media",
        "images",
        "thumbnail_size",
        "width",
        ": int, height: int, longest: int) -> tuple[int, int]:",
    ),
    ("media", "audio", "duration_label", "seconds", ": int) -> str:"),
    (
        "scheduling",
        "calendar",
        "overlaps",
        "first_start",
        ": int, first_end: int, second_start: int, second_end: int) -> bool:",
    ),
    ("scheduling", "shifts", "hours_worked", "shifts", ": list[tuple[int, int]]) -> int:"),
    ("weather", "readings", "daily_mean", "readings", ": list[float]) -> float:"),
    ("weather", "units", "fahrenheit_to_celsius", "fahrenheit", ": float) -> float:"),
    ("library", "loans", "late_fee", "days_late", ": int, fee_per_day: float) -> float:"),
    ("library", "catalogue", "shelf_code", "title", ": str, section: int) -> str:"),
    ("games", "dice", "roll_total", "rolls", ": list[int], bonus: int) -> int:"),
    ("games", "board", "on_board", "row", ": int, col: int, size: int) -> bool:"),
]

_HELDOUT = [
    ("shop", "physics", "kinetic_energy", "mass", ": float, speed: float) -> float:"),
    ("shop", "text", "truncate", "text", ": str, limit: int) -> str:"),
    ("shop", "orders", "order_total", "lines", ": list[float]) -> float:"),
    ("shop", "dates", "days_between", "start", ": int, end: int) -> int:"),
    ("shop", "words", "is_anagram", "left", ": str, right: str) -> bool:"),
    ("shop", "config", "parse_flag", "value", ": str) -> bool:"),
    ("health", "vitals", "body_mass_index", "weight", ": float, height: float) -> float:"),
    (
        "recipes",
        "portions",
        "scale_quantity",
        "amount",
        ": float, servings: int, base: int) -> float:",
    ),
    ("network", "packets", "checksum", "payload", ": bytes) -> int:"),
    ("hr", "payroll", "monthly_salary", "annual", ": float) -> float:"),
    (
        "logistics",
        "warehouse",
        "free_slots",
        "occupied",
        ": set[int], capacity: int) -> list[int]:",
    ),
    ("education", "grades", "letter_grade", "score", ": float) -> str:"),
]


def _context(package: str, module: str, function: str, first: str, wanted: str) -> Context:
    return Context(
        "annotations",
        function,
        f"src/{package}/{module}.py",
        f'"""Helpers for {module}."""\n\nimport math\n\n\ndef {function}({first}',
        "\n",
        wanted,
    )


TRAIN = tuple(_context(*row) for row in _TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = tuple(_context(*row) for row in _HELDOUT)
"""The held-out contexts."""
