"""The gate's behavioural check: what a model would suggest on the held-out contexts.

Both the candidate and the current version complete the prompts of the held-out pairs
greedily (the prompt a pair records is the one the service rendered for that suggestion).
A suggestion is compared with the pair's chosen text (what the developer kept) and its
rejected text by normalised edit distance: Levenshtein distance over the longer text's
length, 0 for equal texts, 1 for nothing in common. Per context, gain = the current
version's distance to the chosen text − the candidate's; the candidate must be closer on
average (``behaviour_min_gain``), and the bootstrap interval of the mean gain may reach at
most ``behaviour_tolerance`` below zero.

A suggestion is compared over as many lines as the longer of the chosen and the rejected
text holds (a single-line suggestion is judged on its line), after the end-of-text token,
with trailing whitespace dropped.

The comparison functions are pure; :func:`suggest` runs a model (torch imported lazily).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefloop.protocol import BehaviourFigures, BehaviourVerdict, GateFinding, GateThresholds
from prefloop.textdistance import levenshtein, normalised_distance
from prefloop.trainer.intervals import bootstrap_mean_interval
from prefloop.trainer.probing import greedy_completion

__all__ = [
    "behaviour_figures",
    "comparable",
    "compare_behaviour",
    "levenshtein",
    "normalised_distance",
    "suggest",
]


def _line_count(text: str) -> int:
    return len(text.rstrip().split("\n"))


def comparable(suggestion: str, chosen: str, rejected: str) -> str:
    """The part of a suggestion compared with a pair: as many lines as the longer of the
    chosen and rejected texts, trailing whitespace dropped."""
    lines = max(_line_count(chosen), _line_count(rejected))
    return "\n".join(suggestion.split("\n")[:lines]).rstrip()


def behaviour_figures(
    suggestions: Sequence[str], pairs: Sequence[dict[str, Any]]
) -> tuple[BehaviourFigures, list[float]]:
    """One model's figures on the contexts and its per-context distance to the chosen."""
    to_chosen: list[float] = []
    to_rejected: list[float] = []
    for text, pair in zip(suggestions, pairs, strict=True):
        chosen, rejected = pair["chosen"].rstrip(), pair["rejected"].rstrip()
        shown = comparable(text, chosen, rejected)
        to_chosen.append(normalised_distance(shown, chosen))
        to_rejected.append(normalised_distance(shown, rejected))
    n = len(to_chosen)
    figures = BehaviourFigures(
        contexts=n,
        distance_to_chosen=sum(to_chosen) / n if n else 0.0,
        distance_to_rejected=sum(to_rejected) / n if n else 0.0,
        closer_to_chosen=sum(1 for c, r in zip(to_chosen, to_rejected, strict=True) if c < r),
    )
    return figures, to_chosen


def compare_behaviour(
    candidate: Sequence[str],
    current: Sequence[str],
    pairs: Sequence[dict[str, Any]],
    thresholds: GateThresholds,
    *,
    seed: int = 0,
) -> BehaviourVerdict:
    """The behavioural half of the gate on both models' suggestions for ``pairs``."""
    if not len(candidate) == len(current) == len(pairs):
        raise ValueError("candidate, current and pairs must be the same contexts")
    cand, cand_d = behaviour_figures(candidate, pairs)
    cur, cur_d = behaviour_figures(current, pairs)
    gains = [b - a for a, b in zip(cand_d, cur_d, strict=True)]
    gain = bootstrap_mean_interval(
        gains,
        confidence=thresholds.confidence,
        samples=thresholds.bootstrap_samples,
        seed=seed,
    )
    closer = sum(1 for g in gains if g > 0)
    further = sum(1 for g in gains if g < 0)
    n = len(gains)
    noise = (
        f"paired bootstrap over {n} contexts: gain {gain.estimate:+.3f} "
        f"({gain.confidence:.0%} interval {gain.low:+.3f} to {gain.high:+.3f}); "
        f"{closer} closer, {further} further"
    )
    reasons: list[str] = []
    mean_ok = gain.estimate > thresholds.behaviour_min_gain
    bound_ok = gain.low >= -thresholds.behaviour_tolerance - 1e-12
    findings = [
        GateFinding(
            figure="behaviour_distance_gain",
            passed=mean_ok,
            value=gain.estimate,
            required=thresholds.behaviour_min_gain,
            shortfall=0.0 if mean_ok else thresholds.behaviour_min_gain - gain.estimate,
            noise=noise,
            detail=(
                f"mean edit distance to the kept text {cand.distance_to_chosen:.3f}, "
                f"current {cur.distance_to_chosen:.3f}"
            ),
        ),
        GateFinding(
            figure="behaviour_distance_gain_low",
            passed=bound_ok,
            value=gain.low,
            required=-thresholds.behaviour_tolerance,
            shortfall=0.0 if bound_ok else -thresholds.behaviour_tolerance - gain.low,
            noise=noise,
        ),
    ]
    if not mean_ok:
        reasons.append(
            f"suggestions on {n} held-out contexts are not closer to what the developer kept: "
            f"mean edit distance {cand.distance_to_chosen:.3f} against current "
            f"{cur.distance_to_chosen:.3f}, gain {gain.estimate:+.3f} must exceed "
            f"{thresholds.behaviour_min_gain:g} ({noise})"
        )
    if not bound_ok:
        reasons.append(
            f"suggestions may be further from what the developer kept: the gain's lower "
            f"bound {gain.low:+.3f} is {-thresholds.behaviour_tolerance - gain.low:.3f} below "
            f"the tolerated {-thresholds.behaviour_tolerance:+.3f} ({noise})"
        )
    return BehaviourVerdict(
        passed=not reasons,
        reasons=reasons,
        candidate=cand,
        current=cur,
        gain=gain,
        closer=closer,
        further=further,
        unchanged=n - closer - further,
        findings=findings,
    )


def suggest(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
    """Greedy completions of the recorded prompts, up to the end-of-text token."""
    return [
        greedy_completion(model, tokenizer, prompt, max_tokens=max_tokens).text
        for prompt in prompts
    ]
