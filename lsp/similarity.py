"""How much of an accepted suggestion survives: normalized edit distance.

``similarity(a, b) = 1 - levenshtein(a, b) / max(len(a), len(b))``, 1.0 for two empty
texts. The distance is computed with Hyyrö's bit-parallel algorithm on Python integers,
so a few thousand characters take milliseconds, not the seconds a pure-Python dynamic
programme would. Texts longer than :data:`EXACT_LIMIT` are compared on their first
:data:`EXACT_LIMIT` characters plus the difference of the rest's lengths, an estimate
that keeps the language server responsive when a tracked range swallows a huge paste.
"""

from __future__ import annotations

EXACT_LIMIT = 8_000


def levenshtein(a: str, b: str) -> int:
    """The edit distance (insertions, deletions, substitutions) between ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, char in enumerate(b):
        peq[char] = peq.get(char, 0) | (1 << i)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for char in a:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score


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
