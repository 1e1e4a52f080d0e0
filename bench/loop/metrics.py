"""Figures on held-out contexts: what the served version suggests there and what the
developer would have done with it, summarised per round, and over seeds.

Held-out suggestions are asked for over HTTP with the request the language server sends
for that cursor (same prefix, suffix, path, mode and token budget) under a user of their
own, and nothing is reported back: held-out contexts are never given feedback.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.loop.tastes import Context, ReactionKind, Taste, first_line, react
from bench.loop.textdistance import normalised_distance, retained_chars


@dataclass(frozen=True)
class Scored:
    """One held-out context: the served suggestion and the simulated reaction to it."""

    context: str
    suggestion: str
    reaction: str
    kept: str
    distance: float
    retained_chars: int
    satisfied: bool


def score(taste: Taste, context: Context, suggestion: str) -> Scored:
    """The developer's reaction to ``suggestion`` at ``context`` and its figures: the
    normalised edit distance between the suggestion's line and what was kept, the
    characters of the suggestion kept when it was accepted, whether it had the taste."""
    line = first_line(suggestion)
    reaction = react(taste, context, suggestion)
    accepted = reaction.kind in (ReactionKind.ACCEPT, ReactionKind.EDIT)
    kept_line = first_line(reaction.kept)
    return Scored(
        context=context.name,
        suggestion=suggestion,
        reaction=reaction.kind.value,
        kept=reaction.kept,
        distance=normalised_distance(line, kept_line),
        retained_chars=retained_chars(line, kept_line) if accepted else 0,
        satisfied=bool(line.strip()) and taste.satisfied(context, line),
    )


@dataclass(frozen=True)
class RoundFigures:
    """The held-out figures of one round (round 0: before any training)."""

    round: int
    version: str
    contexts: int
    acceptance: float
    retained_chars: int
    edit_distance: float
    taste_share: float
    no_suggestion: int


def summarise(round_no: int, version: str, scored: Sequence[Scored]) -> RoundFigures:
    """Acceptance (accepted as is or accepted and then edited, over all contexts),
    accepted-and-retained characters (sum), mean normalised edit distance between the
    suggestion and what the developer kept, share with the taste, empty answers."""
    n = len(scored)
    accepted = sum(1 for s in scored if s.reaction != ReactionKind.REWRITE.value)
    return RoundFigures(
        round=round_no,
        version=version,
        contexts=n,
        acceptance=accepted / n if n else 0.0,
        retained_chars=sum(s.retained_chars for s in scored),
        edit_distance=statistics.fmean(s.distance for s in scored) if n else 0.0,
        taste_share=sum(1 for s in scored if s.satisfied) / n if n else 0.0,
        no_suggestion=sum(1 for s in scored if not s.suggestion.strip()),
    )


def suggest(
    client: httpx.Client, context: Context, *, max_tokens: int, user: str, mode: str
) -> tuple[str, str]:
    """The served suggestion at ``context`` (empty when none) and the version that made it."""
    response = client.post(
        "/v1/suggestions",
        json={
            "prefix": context.prefix,
            "suffix": context.suffix,
            "language": "python",
            "path": context.path,
            "mode": mode,
            "max_tokens": max_tokens,
            "n": 1,
            "user": user,
        },
        timeout=600,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    candidates = body.get("candidates") or []
    text = str(candidates[0]["text"]) if candidates else ""
    return text, str(body.get("model_version"))


def evaluate(
    client: httpx.Client,
    taste: Taste,
    contexts: Sequence[Context],
    *,
    max_tokens: int,
    user: str,
    mode: str = "single_line",
) -> tuple[str, list[Scored]]:
    """Score the served version on held-out ``contexts``; returns the version and scores."""
    scored, versions = [], set()
    for context in contexts:
        text, version = suggest(client, context, max_tokens=max_tokens, user=user, mode=mode)
        versions.add(version)
        scored.append(score(taste, context, text))
    return ",".join(sorted(versions)), scored


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaN for none)."""
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return float(values[0]), 0.0
    return statistics.fmean(values), statistics.stdev(values)


def as_dict(figures: RoundFigures | Scored) -> dict[str, Any]:
    """A JSON-ready dict of a record."""
    return asdict(figures)
