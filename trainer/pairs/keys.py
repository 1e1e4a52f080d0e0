"""Content keys and text comparisons shared by the pair filters and the check cache."""

from __future__ import annotations

import difflib
import hashlib


def content_hash(*parts: str) -> str:
    """A short, stable hash of ``parts`` (their boundaries count)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def normal(text: str) -> str:
    """``text`` with every run of whitespace made one space, ends trimmed."""
    return " ".join(text.split())


def group_key(prompt: str) -> str:
    """The key of a prompt group: all pairs with the same prompt text."""
    return content_hash("prompt", prompt)


def pair_key(prompt: str, chosen: str, rejected: str) -> str:
    """The key that makes two pairs duplicates: the same prompt and the same chosen and
    rejected texts up to whitespace (``chosen`` and ``rejected`` already :func:`normal`)."""
    return content_hash("pair", prompt, chosen, rejected)


def similar(a: str, b: str, threshold: float) -> bool:
    """Is the difflib ratio of ``a`` and ``b`` at least ``threshold``? The cheap upper
    bounds (length ratio, character multiset) rule most pairs out before the full match."""
    la, lb = len(a), len(b)
    if la + lb == 0:
        return True
    if 2.0 * min(la, lb) / (la + lb) < threshold:
        return False
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return False
    return matcher.ratio() >= threshold
