"""How much of an accepted suggestion survives: normalized edit distance.

``similarity(a, b) = 1 - levenshtein(a, b) / max(len(a), len(b))``, 1.0 for two empty
texts, with the core's edit distance (:mod:`prefloop.textdistance`). Texts longer than
:data:`EXACT_LIMIT` are compared on their first :data:`EXACT_LIMIT` characters plus the
difference of the rest's lengths, an estimate that keeps the language server responsive
when a tracked range swallows a huge paste.
"""

from __future__ import annotations

from prefloop.textdistance import levenshtein

__all__ = ["EXACT_LIMIT", "levenshtein", "similarity"]

EXACT_LIMIT = 8_000


def similarity(accepted: str, current: str) -> float:
    """1 minus the edit distance normalized by the longer text's length, in [0, 1]."""
    longest = max(len(accepted), len(current))
    if longest == 0:
        return 1.0
    if longest <= EXACT_LIMIT:
        distance = levenshtein(accepted, current)
    else:
        head_a, head_b = accepted[:EXACT_LIMIT], current[:EXACT_LIMIT]
        rest = abs((len(accepted) - len(head_a)) - (len(current) - len(head_b)))
        distance = levenshtein(head_a, head_b) + rest
    return max(0.0, min(1.0, 1.0 - distance / longest))
