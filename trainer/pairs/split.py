"""The train/held-out split, decided per prompt group, per user.

A group's split is decided the first time it yields a pair and never changes. A group
belongs to the user of its newest suggestion, and each user's groups are split on their
own, so that every user with feedback enough has some of it held out and the gate judges
the candidate on each user's taste. For one user, each build holds out the newest of the
groups it adds (by their newest suggestion), as many as keep that user's held-out groups at
``fraction`` of the user's groups or at ``minimum`` groups, whichever is larger (the
minimum never takes more than half of the user's groups, so a user with one group holds
none out), and only groups newer than every train group of that user, so that held-out
pairs are never older than the data trained on for the same user. The minimum lets a small
data set hold out enough pairs for the gate to judge on. With a single user this is the
split of the whole store; with several, the held-out set is the union of theirs.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefloop.store.pairs import GroupSplit, SplitTotals

NO_GROUPS = SplitTotals(groups=0, heldout=0, train_boundary=None)
"""The totals of a user with no group assigned yet."""


def newest_per_group(groups: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The newest suggestion time of each group, from (group key, suggestion time)."""
    newest: dict[str, str] = {}
    for key, at in groups:
        if at > newest.get(key, ""):
            newest[key] = at
    return newest


def group_users(groups: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """The user of each group's newest suggestion, from (group key, suggestion time, user);
    of suggestions made at the same time, the greatest user name."""
    newest: dict[str, tuple[str, str]] = {}
    for key, at, user in groups:
        if (at, user) > newest.get(key, ("", "")):
            newest[key] = (at, user)
    return {key: user for key, (_, user) in newest.items()}


def assign_splits(
    newest: dict[str, str],
    known: dict[str, str],
    totals: SplitTotals,
    fraction: float,
    now: str,
    minimum: int = 0,
    user: str = "",
) -> tuple[dict[str, str], list[GroupSplit]]:
    """The split of every group of ``newest`` (``known`` ones keep theirs) and the newly
    assigned groups, given the groups assigned so far (``totals``), all of one ``user``."""
    splits = {g: known[g] for g in newest if g in known}
    fresh = [g for g in newest if g not in known]
    if not fresh:
        return splits, []
    groups = totals.groups + len(fresh)
    target = max(round(fraction * groups), min(minimum, groups // 2))
    want = max(0, target - totals.heldout)
    boundary = totals.train_boundary
    eligible = sorted(
        (g for g in fresh if boundary is None or newest[g] > boundary),
        key=lambda g: (newest[g], g),
        reverse=True,
    )
    heldout = set(eligible[:want])
    rows = []
    for g in fresh:
        split = "heldout" if g in heldout else "train"
        splits[g] = split
        rows.append(GroupSplit(g, split, newest[g], now, user))
    return splits, rows


def assign_user_splits(
    newest: dict[str, str],
    users: dict[str, str],
    known: dict[str, str],
    totals: dict[str, SplitTotals],
    fraction: float,
    now: str,
    minimum: int = 0,
) -> tuple[dict[str, str], list[GroupSplit]]:
    """:func:`assign_splits` for each user on that user's groups: ``users`` names each
    group's user, ``totals`` the groups assigned so far per user. Returns the split of every
    group of ``newest`` and the newly assigned groups."""
    splits = {g: known[g] for g in newest if g in known}
    fresh: dict[str, dict[str, str]] = {}
    for g, at in newest.items():
        if g not in known:
            fresh.setdefault(users[g], {})[g] = at
    rows: list[GroupSplit] = []
    for user in sorted(fresh):
        assigned, new = assign_splits(
            fresh[user], {}, totals.get(user, NO_GROUPS), fraction, now, minimum, user
        )
        splits.update(assigned)
        rows += new
    return splits, rows
