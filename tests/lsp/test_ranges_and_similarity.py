"""Range tracking through edits, and the similarity retention reports."""

from __future__ import annotations

import random

import pytest

from prefloop.lsp.documents import Edit
from prefloop.lsp.ranges import Relation, TrackedRange
from prefloop.lsp.similarity import EXACT_LIMIT, levenshtein, similarity


def follow(text: str, start: int, end: int, edits: list[Edit], growing: bool = False) -> str:
    """Apply edits to ``text`` and to a range over it; return the range's final text."""
    tracked = TrackedRange(start, end, growing=growing)
    for edit in edits:
        tracked.apply(edit)
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text[tracked.start : tracked.end]


TEXT = "head [accepted] tail"
START, END = TEXT.index("["), TEXT.index("]") + 1


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ([Edit(0, 0, "new line\n")], "[accepted]"),  # above: the range moves
        ([Edit(0, 4, "")], "[accepted]"),
        ([Edit(START, START, "x")], "[accepted]"),  # typed right before it: outside
        ([Edit(END, END, "x")], "[accepted]"),  # typed right after it: outside
        ([Edit(START + 1, START + 9, "kept")], "[kept]"),  # inside
        ([Edit(START - 2, START + 3, "~")], "~cepted]"),  # across its start
        ([Edit(END - 3, END + 2, "~")], "[accept~"),  # across its end
        ([Edit(0, len(TEXT), "gone")], "gone"),  # everything replaced
        ([Edit(START, END, "")], ""),  # deleted
        # backspace over its end, then type: the new text replaces part of it
        (
            [Edit(END - 2, END, ""), Edit(END - 2, END - 2, "D"), Edit(END - 1, END - 1, "]")],
            "[accepteD]",
        ),
        # but typing after its untouched end stays outside
        ([Edit(START + 1, START + 2, ""), Edit(END - 1, END - 1, "!")], "[ccepted]"),
    ],
)
def test_fixed_range_follows_edits(edits: list[Edit], expected: str) -> None:
    assert follow(TEXT, START, END, edits) == expected


def test_growing_range_takes_typing_at_its_ends() -> None:
    assert follow("ab", 1, 1, [Edit(1, 1, "x"), Edit(2, 2, "y"), Edit(1, 1, "<")], True) == "<xy"
    tracked = TrackedRange(1, 1, growing=True)
    assert tracked.apply(Edit(0, 0, "z")) is Relation.BEFORE
    assert (tracked.start, tracked.end) == (2, 2)
    assert tracked.apply(Edit(5, 5, "z")) is Relation.AFTER
    assert tracked.apply(Edit(0, 3, "")) is Relation.ACROSS_START
    assert (tracked.start, tracked.end) == (0, 0)


def test_range_cannot_be_inverted() -> None:
    with pytest.raises(ValueError):
        TrackedRange(3, 2)


def dynamic_programming(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_levenshtein_matches_the_textbook_definition() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        a = "".join(rng.choice("ab \n😀") for _ in range(rng.randint(0, 70)))
        b = "".join(rng.choice("ab \n😀") for _ in range(rng.randint(0, 70)))
        assert levenshtein(a, b) == dynamic_programming(a, b), (a, b)


def test_similarity_bounds() -> None:
    assert similarity("", "") == 1.0
    assert similarity("abc", "abc") == 1.0
    assert similarity("abc", "") == 0.0
    assert similarity("return a + b", "return a - b") == pytest.approx(1 - 1 / 12)
    assert similarity("ab", "xyzw") == 0.0
    huge = "x = 1\n" * (EXACT_LIMIT // 3)
    assert 0.0 < similarity(huge, huge + "tail") < 1.0
