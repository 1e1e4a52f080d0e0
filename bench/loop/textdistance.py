"""Distances between short texts: Levenshtein, its normalised form, and the characters of
one text that survive in another."""

from __future__ import annotations

from difflib import SequenceMatcher


def levenshtein(a: str, b: str) -> int:
    """Insertions, deletions and substitutions that turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def normalised_distance(a: str, b: str) -> float:
    """Levenshtein distance over the longer length: 0 for equal texts, 1 for nothing shared
    (and for an empty text against a non-empty one); two empty texts are 0 apart."""
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


def similarity(a: str, b: str) -> float:
    """One minus :func:`normalised_distance`."""
    return 1.0 - normalised_distance(a, b)


def retained_chars(shown: str, kept: str) -> int:
    """Characters of ``shown`` still present, in order, in ``kept`` (matching blocks)."""
    if not shown or not kept:
        return 0
    matcher = SequenceMatcher(None, shown, kept, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())
