"""The train/held-out split, decided per prompt group.

A group's split is decided the first time it yields a pair and never changes. Each build
holds out the newest of the groups it adds (by their newest suggestion), as many as keep
the held-out groups at ``fraction`` of all groups or at ``minimum`` groups, whichever is
larger (the minimum never takes more than half of the groups), and only groups newer than
every train group, so that held-out pairs are never older than the training data. The
minimum lets a small data set hold out enough pairs for the gate to judge on.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefloop.store.pairs import GroupSplit, SplitTotals


def newest_per_group(groups: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The newest suggestion time of each group, from (group key, suggestion time)."""
    newest: dict[str, str] = {}
    for key, at in groups:
        if at > newest.get(key, ""):
            newest[key] = at
    return newest


def assign_splits(
    newest: dict[str, str],
    known: dict[str, str],
    totals: SplitTotals,
    fraction: float,
    now: str,
    minimum: int = 0,
) -> tuple[dict[str, str], list[GroupSplit]]:
    """The split of every group of ``newest`` (``known`` ones keep theirs) and the newly
    assigned groups, given the groups assigned so far (``totals``)."""
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
        rows.append(GroupSplit(g, split, newest[g], now))
    return splits, rows
