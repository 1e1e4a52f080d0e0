"""``predicate_names`` contexts: a comment saying what a yes-or-no function tells, then
``def``; the developer writes the signature with an ``is_``/``has_``/``can_``/``should_``
name.
"""

from __future__ import annotations

from bench.loop.tastes import Context

_Rows = list[tuple[str, str, str]]

# Per file: (path, the file's docstring, [(comment, wanted signature, returned expression)])
_TRAIN: list[tuple[str, str, _Rows]] = [
    (
        "src/app/rules.py",
        "Rules.",
        [
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
            (
                "Check whether an upload is too large",
                "is_too_large(size: int) -> bool:",
                "size > 10_000",
            ),
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
        ],
    ),
    (
        "src/accounts/policy.py",
        "Account policies.",
        [
            (
                "Tell whether a password is long enough",
                "is_long_enough(password: str) -> bool:",
                "len(password) >= 12",
            ),
            (
                "Check whether a user may delete a post",
                "can_delete(role: str) -> bool:",
                'role in ("owner", "admin")',
            ),
            (
                "Tell whether an account is locked",
                "is_locked(failed_logins: int) -> bool:",
                "failed_logins >= 5",
            ),
            (
                "Tell whether a user has verified their email address",
                "has_verified_email(user: dict[str, bool]) -> bool:",
                'user.get("verified", False)',
            ),
        ],
    ),
    (
        "src/shop/offers.py",
        "Offers and discounts.",
        [
            (
                "Check whether an order ships for free",
                "is_free_shipping(total: float) -> bool:",
                "total >= 50",
            ),
            (
                "Tell whether a coupon is still valid",
                "is_coupon_valid(expires: int, today: int) -> bool:",
                "today <= expires",
            ),
            (
                "Check whether a basket qualifies for a discount",
                "can_get_discount(items: int) -> bool:",
                "items >= 3",
            ),
            (
                "Tell whether a product has any reviews",
                "has_reviews(reviews: list[str]) -> bool:",
                "bool(reviews)",
            ),
        ],
    ),
    (
        "src/scheduling/rules.py",
        "Scheduling rules.",
        [
            ("Tell whether a day falls on a weekend", "is_weekend(day: int) -> bool:", "day >= 5"),
            (
                "Check whether two meetings overlap",
                "is_overlapping(a: tuple[int, int], b: tuple[int, int]) -> bool:",
                "a[0] < b[1] and b[0] < a[1]",
            ),
            (
                "Tell whether a reminder should be sent",
                "should_remind(minutes_left: int) -> bool:",
                "0 < minutes_left <= 15",
            ),
            (
                "Check whether a room can hold a group",
                "can_fit(capacity: int, people: int) -> bool:",
                "people <= capacity",
            ),
        ],
    ),
    (
        "src/text/checks.py",
        "Checks on text.",
        [
            ("Tell whether a string is blank", "is_blank(text: str) -> bool:", "not text.strip()"),
            (
                "Tell whether a text has an upper-case letter",
                "has_uppercase(text: str) -> bool:",
                "any(c.isupper() for c in text)",
            ),
            (
                "Check whether a word is a number",
                "is_numeric(word: str) -> bool:",
                "word.isdigit()",
            ),
            (
                "Tell whether a line is too long",
                "is_too_long(line: str) -> bool:",
                "len(line) > 100",
            ),
        ],
    ),
    (
        "src/deploy/health.py",
        "Health of deployed services.",
        [
            (
                "Tell whether a service is healthy",
                "is_healthy(status: int) -> bool:",
                "status == 200",
            ),
            (
                "Check whether a deploy should be rolled back",
                "should_roll_back(error_rate: float) -> bool:",
                "error_rate > 0.05",
            ),
            (
                "Tell whether a disk is nearly full",
                "is_disk_full(used: int, total: int) -> bool:",
                "used / total > 0.9",
            ),
            (
                "Check whether a node has any pending jobs",
                "has_pending_jobs(queue: list[str]) -> bool:",
                "len(queue) > 0",
            ),
        ],
    ),
    (
        "src/library/loans.py",
        "Loans of the lending library.",
        [
            (
                "Tell whether a loan is overdue",
                "is_overdue(due: int, today: int) -> bool:",
                "today > due",
            ),
            (
                "Check whether a member may borrow another book",
                "can_borrow(loans: int) -> bool:",
                "loans < 5",
            ),
            (
                "Tell whether a book has been reserved",
                "has_reservation(reservations: list[str]) -> bool:",
                "bool(reservations)",
            ),
            (
                "Check whether a fine should be waived",
                "should_waive(fine: float) -> bool:",
                "fine < 1.0",
            ),
        ],
    ),
]

_HELDOUT: list[tuple[str, str, _Rows]] = [
    (
        "src/app/rules.py",
        "Rules.",
        [
            (
                "Check whether a product is sold out",
                "is_sold_out(stock: int) -> bool:",
                "stock == 0",
            ),
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
        ],
    ),
    (
        "src/weather/alerts.py",
        "Weather alerts.",
        [
            ("Tell whether it is freezing", "is_freezing(celsius: float) -> bool:", "celsius <= 0"),
            (
                "Check whether a storm warning should be issued",
                "should_warn(wind_speed: float) -> bool:",
                "wind_speed > 90",
            ),
            (
                "Tell whether a forecast mentions rain",
                "has_rain(forecast: list[str]) -> bool:",
                '"rain" in forecast',
            ),
            (
                "Check whether a flight may take off",
                "can_take_off(visibility: int) -> bool:",
                "visibility >= 800",
            ),
            (
                "Tell whether the air is humid",
                "is_humid(humidity: float) -> bool:",
                "humidity > 0.7",
            ),
            (
                "Tell whether a reading is out of range",
                "is_out_of_range(value: float, low: float, high: float) -> bool:",
                "not low <= value <= high",
            ),
        ],
    ),
]


def _contexts(files: list[tuple[str, str, _Rows]]) -> tuple[Context, ...]:
    return tuple(
        Context(
            "predicate_names",
            wanted.split("(")[0],
            path,
            f'"""{doc}"""\n\n\n# {comment}.\ndef',
            f"\n    return {body}\n",
            " " + wanted,
        )
        for path, doc, rows in files
        for comment, wanted, body in rows
    )


TRAIN = _contexts(_TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
