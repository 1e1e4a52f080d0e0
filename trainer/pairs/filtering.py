"""Which derived pairs are kept, and why the others are dropped.

In order: a missing prompt (``no_prompt``), a chosen text shorter than ``pairs_min_chars``
or a blank rejected one (``too_short``: a short rejected suggestion, such as a bare ``):``
the developer typed over, is evidence; a short chosen text is too little to learn), texts
equal up to whitespace (``identical``) or at least ``pairs_near_duplicate`` similar
(``near_duplicate``), a pair already made (``duplicate``: the same prompt and texts, from
an older suggestion of this build or a suggestion it does not touch), a text or prompt
still holding a secret (``secret``); the verifiable checks (``check_failed``) come last, in
:mod:`prefloop.trainer.pairs.checks`. Small score gaps and ties are counted where the
pairs are derived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prefloop.redaction import contains_secret
from prefloop.trainer.pairs.keys import group_key, normal, pair_key, similar
from prefloop.trainer.pairs.sources import Pair

DROP_REASONS = (
    "no_prompt",
    "tie",
    "small_gap",
    "too_short",
    "identical",
    "near_duplicate",
    "duplicate",
    "secret",
    "check_failed",
)
SECRET_PLACEHOLDER = "<SECRET:"
"""What redaction leaves where a secret was; a text holding it is treated as secret."""


@dataclass(frozen=True)
class Keyed:
    """A pair that passed the text filters, with its prompt group and duplicate keys."""

    pair: Pair
    group_key: str
    pair_key: str


def screen(
    pairs: list[Pair], *, min_chars: int, near_duplicate: float, dropped: dict[str, int]
) -> list[Keyed]:
    """The pairs with a prompt, a long enough chosen text and a different, non-blank
    rejected one, keyed; the others
    counted in ``dropped`` by reason."""
    out: list[Keyed] = []
    for p in pairs:
        if not p.suggestion.prompt:
            dropped["no_prompt"] += 1
            continue
        if len(p.chosen.strip()) < min_chars or not p.rejected.strip():
            dropped["too_short"] += 1
            continue
        a, b = normal(p.chosen), normal(p.rejected)
        if a == b:
            dropped["identical"] += 1
            continue
        if near_duplicate < 1.0 and similar(a, b, near_duplicate):
            dropped["near_duplicate"] += 1
            continue
        prompt = p.suggestion.prompt
        out.append(Keyed(p, group_key(prompt), pair_key(prompt, a, b)))
    return out


def oldest_first(pairs: list[Keyed]) -> list[Keyed]:
    """``pairs`` by the time of their suggestion, then suggestion id, then pair id."""
    return sorted(
        pairs, key=lambda k: (k.pair.suggestion.created_at, k.pair.suggestion.id, k.pair.id)
    )


def unique(pairs: list[Keyed], taken: set[str], dropped: dict[str, int]) -> list[Keyed]:
    """The first pair of each key not in ``taken`` (the oldest, given
    :func:`oldest_first`); the others counted as duplicates."""
    seen = set(taken)
    out: list[Keyed] = []
    for k in pairs:
        if k.pair_key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(k.pair_key)
        out.append(k)
    return out


def holds_secret(text: str) -> bool:
    """Does ``text`` hold a secret by the current redaction rules (or its placeholder)?"""
    return SECRET_PLACEHOLDER in text or contains_secret(text)


def without_secrets(
    pairs: list[Keyed], dropped: dict[str, int], secret: Callable[[str], bool] = holds_secret
) -> list[Keyed]:
    """The pairs whose prompt, chosen and rejected texts hold no secret."""
    found: dict[str, bool] = {}

    def check(text: str) -> bool:
        if text not in found:
            found[text] = secret(text)
        return found[text]

    out: list[Keyed] = []
    for k in pairs:
        p = k.pair
        if check(p.chosen) or check(p.rejected) or check(p.suggestion.prompt):
            dropped["secret"] += 1
            continue
        out.append(k)
    return out
