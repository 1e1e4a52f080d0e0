"""Edit distance between texts: the language server's retention figures, the gate's
behavioural check and the benchmarks all measure with it.

:func:`levenshtein` uses Hyyrö's bit-parallel algorithm on Python integers, so a few
thousand characters take milliseconds, not the seconds a pure-Python dynamic programme
would.
"""

from __future__ import annotations


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


def normalised_distance(a: str, b: str) -> float:
    """Levenshtein distance over the longer text's length: 0 for equal texts, 1 for nothing
    shared (and for an empty text against a non-empty one); two empty texts are 0 apart."""
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0
