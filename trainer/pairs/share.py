"""The cap on one user's share of a training run's pairs (shared adapter).

In a shared adapter every user's pairs teach the model everyone is served, so one user who
sends many events (or forges them) could make up most of a run's train pairs and most of
the held-out pairs that judge it. :func:`cap_user_share` decides, from the number of pairs
each user has in one split, how many of them a run keeps: the largest count ``c`` such
that, when every user keeps at most ``c`` pairs, no user's pairs are more than
``max_share`` of the pairs kept, and (when the split's limit binds) the pairs kept fit the
limit. Users with fewer than ``c`` pairs keep them all; the others keep ``c`` each.

Which pairs of a capped user are kept: their newest (:func:`keep_newest`), the same rule as
the run's ``max_train_pairs`` and ``max_heldout_pairs``. It is deterministic (no seed to
record), keeps what reflects the user's present taste and code, and keeps the split's
promise that a user's held-out pairs are never older than their train pairs (dropping the
oldest of either split cannot break it).

The cap applies to a split only when pairs of more than one user are in it and
``max_share`` is below 1. A share no set of users can meet (below ``1 / users``) is raised
to ``1 / users``: every user then keeps the same count. A limit below the number of users
is raised to it, so that every user keeps a pair. Counts are compared as fractions
of integers, so a share such as 0.3 is exact. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class UserShareCap:
    """How many pairs of each user one split of a run keeps under the cap."""

    max_share: float
    """The setting (``train_max_user_share``)."""
    share: Fraction
    """The share applied: ``max_share``, or ``1 / users`` when that is larger."""
    per_user: int
    """The most pairs any one user keeps."""
    available: dict[str, int]
    """Pairs each user has in the split."""
    kept: dict[str, int]
    """Pairs of each user the run keeps."""

    @property
    def left_out(self) -> dict[str, int]:
        """Users with pairs left out, and how many."""
        return {
            user: self.available[user] - kept
            for user, kept in self.kept.items()
            if self.available[user] > kept
        }

    @property
    def total(self) -> int:
        """Pairs kept, all users together."""
        return sum(self.kept.values())

    def record(self) -> dict[str, Any]:
        """The cap as the run's data record keeps it."""
        return {
            "max_share": self.max_share,
            "share_applied": float(self.share),
            "per_user": self.per_user,
            "kept": dict(sorted(self.kept.items())),
            "left_out": dict(sorted(self.left_out.items())),
        }


def _share(value: float) -> Fraction:
    """``value`` as the fraction its decimal spelling says (0.3 is 3/10, not 0.2999...)."""
    return Fraction(str(value))


def cap_user_share(counts: Mapping[str, int], max_share: float, limit: int) -> UserShareCap | None:
    """The cap for a split whose users have ``counts`` pairs, of which a run uses at most
    ``limit``; None when no cap applies (one user with pairs, or ``max_share`` 1)."""
    available = {user: n for user, n in counts.items() if n > 0}
    if max_share >= 1 or len(available) < 2:
        return None
    share = max(_share(max_share), Fraction(1, len(available)))
    limit = max(limit, len(available))

    def kept_at(c: int) -> dict[str, int]:
        return {user: min(n, c) for user, n in available.items()}

    def fits(c: int) -> bool:
        kept = kept_at(c)
        total = sum(kept.values())
        return total <= limit and max(kept.values()) <= share * total

    # Both conditions hold for every count up to the largest that meets them: the kept
    # total grows with c, and the largest user's share of it does not shrink.
    low, high = 0, max(available.values())
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return UserShareCap(
        max_share=max_share,
        share=share,
        per_user=low,
        available=dict(available),
        kept=kept_at(low),
    )


def keep_newest(pairs: Sequence[dict[str, Any]], cap: UserShareCap) -> list[dict[str, Any]]:
    """The pairs ``cap`` keeps: each user's newest ``cap.kept[user]``, from ``pairs`` in the
    pairs table's order (oldest first), which they keep."""
    room = dict(cap.kept)
    kept: list[dict[str, Any]] = []
    for pair in reversed(pairs):
        user = pair.get("user") or ""
        if room.get(user, 0) > 0:
            room[user] -= 1
            kept.append(pair)
    kept.reverse()
    return kept
