"""Distances between short texts (the core's Levenshtein and its normalised form), their
similarity, and the characters of one text that survive in another."""

from __future__ import annotations

from difflib import SequenceMatcher

from prefloop.textdistance import levenshtein, normalised_distance

__all__ = ["levenshtein", "normalised_distance", "retained_chars", "similarity"]


def similarity(a: str, b: str) -> float:
    """One minus :func:`normalised_distance`."""
    return 1.0 - normalised_distance(a, b)


def retained_chars(shown: str, kept: str) -> int:
    """Characters of ``shown`` still present, in order, in ``kept`` (matching blocks)."""
    if not shown or not kept:
        return 0
    matcher = SequenceMatcher(None, shown, kept, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())
