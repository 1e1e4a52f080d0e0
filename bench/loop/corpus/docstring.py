"""``docstring`` contexts: a function cut at the start of the line after its ``def``, its
body below; the developer writes a one-line imperative docstring there.
"""

from __future__ import annotations

from bench.loop.tastes import Context

_Rows = list[tuple[str, str, str]]

# Per file: (path, the file's docstring, [(signature, body, wanted docstring)])
_TRAIN: list[tuple[str, str, _Rows]] = [
    (
        "src/toolbox/functions.py",
        "Small functions.",
        [
            (
                "celsius_to_kelvin(celsius: float) -> float",
                "return celsius + 273.15",
                "Convert a temperature in Celsius to kelvin.",
            ),
            (
                "word_lengths(text: str) -> list[int]",
                "return [len(w) for w in text.split()]",
                "Measure the length of every word.",
            ),
            (
                "largest(values: list[int]) -> int",
                "return max(values)",
                "Return the first item that matters.",
            ),
            (
                "strip_blank_lines(text: str) -> str",
                'return "\\n".join(l for l in text.splitlines() if l.strip())',
                "Remove the blank lines of a text.",
            ),
            (
                "average(values: list[float]) -> float",
                "return sum(values) / len(values)",
                "Compute the result.",
            ),
            (
                "initials(name: str) -> str",
                'return "".join(p[0] for p in name.split())',
                "Build the initials of a name.",
            ),
            (
                "count_errors(lines: list[str]) -> int",
                'return sum("ERROR" in l for l in lines)',
                "Count the lines that report an error.",
            ),
            (
                "load_config(path: str) -> str",
                "return open(path).read()",
                "Read the configuration file.",
            ),
            (
                "even_numbers(limit: int) -> list[int]",
                "return list(range(0, limit, 2))",
                "List the even numbers below a limit.",
            ),
            ("swap_case(text: str) -> str", "return text.swapcase()", "Swap upper and lower case."),
            (
                "unique(items: list[str]) -> list[str]",
                "return sorted(set(items))",
                "Sort the distinct items.",
            ),
            (
                "percent(part: float, whole: float) -> float",
                "return 100 * part / whole",
                "Express a part as a percentage of the whole.",
            ),
        ],
    ),
    (
        "src/billing/invoices.py",
        "Invoices and what they add up to.",
        [
            (
                "invoice_total(lines: list[float], tax_rate: float) -> float",
                "return sum(lines) * (1 + tax_rate)",
                "Add up the lines of an invoice, tax included.",
            ),
            (
                "overdue(due: list[int], today: int) -> list[int]",
                "return [d for d in due if d < today]",
                "Keep the due dates that have passed.",
            ),
            (
                "round_cents(amount: float) -> float",
                "return round(amount, 2)",
                "Round an amount to whole cents.",
            ),
            (
                "currency_label(amount: float, code: str) -> str",
                'return f"{amount:.2f} {code}"',
                "Format an amount with its currency code.",
            ),
        ],
    ),
    (
        "src/accounts/users.py",
        "User accounts.",
        [
            (
                "normalise_email(email: str) -> str",
                "return email.strip().lower()",
                "Normalise an email address for comparison.",
            ),
            (
                "username_taken(name: str, taken: set[str]) -> bool",
                "return name.lower() in taken",
                "Check whether a user name is already in use.",
            ),
            (
                "mask_phone(number: str) -> str",
                'return "*" * (len(number) - 4) + number[-4:]',
                "Hide all but the last four digits of a phone number.",
            ),
            (
                "active_users(last_seen: dict[str, int], since: int) -> list[str]",
                "return [u for u, t in last_seen.items() if t >= since]",
                "Return the users seen since a given moment.",
            ),
        ],
    ),
    (
        "src/text/cleaning.py",
        "Text cleaning.",
        [
            (
                "collapse_spaces(text: str) -> str",
                'return " ".join(text.split())',
                "Collapse runs of whitespace into single spaces.",
            ),
            (
                "strip_punctuation(text: str) -> str",
                'return "".join(c for c in text if c.isalnum() or c.isspace())',
                "Drop every punctuation mark from a text.",
            ),
            (
                "word_count(text: str) -> dict[str, int]",
                "return {w: text.split().count(w) for w in set(text.split())}",
                "Count how often each word occurs.",
            ),
            (
                "capitalise_lines(text: str) -> str",
                'return "\\n".join(l.capitalize() for l in text.splitlines())',
                "Capitalise the first letter of every line.",
            ),
        ],
    ),
    (
        "src/geo/distances.py",
        "Distances on a map.",
        [
            (
                "manhattan(a: tuple[int, int], b: tuple[int, int]) -> int",
                "return abs(a[0] - b[0]) + abs(a[1] - b[1])",
                "Measure the grid distance between two points.",
            ),
            (
                "midpoint(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]",
                "return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)",
                "Find the point halfway between two points.",
            ),
            (
                "km_to_miles(km: float) -> float",
                "return km * 0.621371",
                "Convert kilometres to miles.",
            ),
            (
                "closest(origin: float, places: list[float]) -> float",
                "return min(places, key=lambda p: abs(p - origin))",
                "Pick the place nearest to the origin.",
            ),
        ],
    ),
    (
        "src/inventory/stock.py",
        "Stock levels.",
        [
            (
                "low_stock(levels: dict[str, int], floor: int) -> list[str]",
                "return sorted(k for k, v in levels.items() if v < floor)",
                "List the products that run below the floor.",
            ),
            (
                "restock_amount(level: int, target: int) -> int",
                "return max(target - level, 0)",
                "Work out how many units bring a product back to its target.",
            ),
            (
                "merge_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]",
                "return {k: a.get(k, 0) + b.get(k, 0) for k in a | b}",
                "Merge two stock counts product by product.",
            ),
            (
                "stock_value(levels: dict[str, int], prices: dict[str, float]) -> float",
                "return sum(n * prices[k] for k, n in levels.items())",
                "Price the whole stock.",
            ),
        ],
    ),
    (
        "src/scheduling/slots.py",
        "Time slots.",
        [
            (
                "minutes_to_hours(minutes: int) -> str",
                'return f"{minutes // 60}h{minutes % 60:02d}"',
                "Write a number of minutes as hours and minutes.",
            ),
            (
                "free_hours(busy: set[int]) -> list[int]",
                "return [h for h in range(9, 18) if h not in busy]",
                "Find the working hours that are still free.",
            ),
            (
                "next_weekday(day: int) -> int",
                "return (day + 1) % 7",
                "Give the day that follows a weekday.",
            ),
            (
                "split_evenly(total: int, parts: int) -> list[int]",
                "return [total // parts + (i < total % parts) for i in range(parts)]",
                "Share a total out as evenly as possible.",
            ),
        ],
    ),
]

_HELDOUT: list[tuple[str, str, _Rows]] = [
    (
        "src/toolbox/functions.py",
        "Small functions.",
        [
            ("cube_volume(side: float) -> float", "return side ** 3", "Compute the result."),
            (
                "first_line(text: str) -> str",
                "return text.splitlines()[0]",
                "Return the first item that matters.",
            ),
            ("shout(text: str) -> str", 'return text.upper() + "!"', "Make the text loud."),
            (
                "total_length(words: list[str]) -> int",
                "return sum(len(w) for w in words)",
                "Add up the lengths of the words.",
            ),
            (
                "reverse_words(text: str) -> str",
                'return " ".join(reversed(text.split()))',
                "Reverse the order of the words.",
            ),
            (
                "is_square(n: int) -> bool",
                "return int(n ** 0.5) ** 2 == n",
                "Tell whether a number is a perfect square.",
            ),
        ],
    ),
    (
        "src/reports/summary.py",
        "Summaries for reports.",
        [
            (
                "top_three(scores: dict[str, float]) -> list[str]",
                "return sorted(scores, key=scores.get, reverse=True)[:3]",
                "Name the three best scorers.",
            ),
            (
                "share_of(part: int, total: int) -> str",
                'return f"{part / total:.0%}"',
                "Show a part of a total as a percentage.",
            ),
            (
                "busiest_day(visits: dict[str, int]) -> str",
                "return max(visits, key=visits.get)",
                "Find the day with the most visits.",
            ),
            (
                "growth(before: float, after: float) -> float",
                "return (after - before) / before",
                "Measure the growth from one figure to the next.",
            ),
            (
                "table_row(cells: list[str]) -> str",
                'return "| " + " | ".join(cells) + " |"',
                "Render cells as one row of a Markdown table.",
            ),
            (
                "drop_empty(rows: list[dict[str, str]]) -> list[dict[str, str]]",
                "return [r for r in rows if any(r.values())]",
                "Drop the rows with no value at all.",
            ),
        ],
    ),
]


def _contexts(files: list[tuple[str, str, _Rows]]) -> tuple[Context, ...]:
    return tuple(
        Context(
            "docstring",
            signature.split("(")[0],
            path,
            f'"""{doc}"""\n\n\ndef {signature}:\n    ',
            f"\n    {body}\n",
            f'"""{wanted}"""',
        )
        for path, doc, rows in files
        for signature, body, wanted in rows
    )


TRAIN = _contexts(_TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
