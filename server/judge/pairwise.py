"""Pairwise judging: which of two completions for the same context is better.

The judge worker uses it to break ties: when a suggestion's best- and worst-scored
candidates are closer than ``pairs_min_score_gap``, it compares the two and stores the
verdict as a ``pairwise:<judge>`` critique, which the pair builder turns into a
``judge_ranking`` pair when one candidate won in both orders. Each pair is asked in both
orders (A/B, then B/A); verdicts that disagree reveal position bias and count as a tie.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefloop.server.engines.base import Engine
from prefloop.server.judge.answers import describe, extract_json
from prefloop.server.judge.backends import JudgeBackend
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.critic import JudgeOptions, ask
from prefloop.server.judge.from_settings import build_backend, judge_options
from prefloop.server.judge.prompts import pairwise_prompt
from prefloop.server.judge.rubric import (
    DEFAULT_PAIRWISE,
    Rubric,
    Templates,
    load_rubric,
    load_templates,
)
from prefloop.settings import Settings

Winner = Literal["a", "b", "tie"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    winner: Literal["A", "B", "tie"]
    rationale: str = Field(min_length=1, max_length=2000)

    @field_validator("winner", mode="before")
    @classmethod
    def _normalize(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().strip("\"'")
            return "tie" if text.lower() == "tie" else text.upper()
        return value


@dataclass(frozen=True)
class PairwiseVerdict:
    """``winner`` is None when the judge failed on both orders."""

    winner: Winner | None
    consistent: bool
    rationales: tuple[str, ...]
    attempts: int
    duration_ms: float
    judge: str
    judge_model: str
    rubric_version: str
    errors: tuple[str, ...] = field(default_factory=tuple)


def parse_pairwise(text: str) -> tuple[Literal["A", "B", "tie"] | None, str, str | None]:
    """(winner label, rationale, error) from a pairwise answer."""
    obj, _ = extract_json(text)
    if obj is None:
        return None, "", f"no JSON object in the answer: {' '.join(text.split())[:120]!r}"
    try:
        answer = _Answer.model_validate(obj)
    except ValidationError as exc:
        return None, "", describe(exc)
    return answer.winner, answer.rationale, None


async def _one_order(
    backend: JudgeBackend,
    templates: Templates,
    rubric: Rubric,
    ctx: JudgeContext,
    first: str,
    second: str,
    options: JudgeOptions,
) -> tuple[Literal["A", "B", "tie"] | None, str, int, list[str]]:
    prompt = pairwise_prompt(
        templates, rubric, ctx, first, second, context_chars=options.context_chars
    )
    errors: list[str] = []
    for attempt in range(1, options.max_attempts + 1):
        completion, error, _ = await ask(backend, prompt, options)
        if completion is not None:
            winner, rationale, error = parse_pairwise(completion.text)
            if winner is not None:
                return winner, rationale, attempt, errors
        errors.append(f"attempt {attempt}: {error}")
    return None, "", options.max_attempts, errors


async def compare(
    backend: JudgeBackend,
    ctx: JudgeContext,
    a: str,
    b: str,
    *,
    rubric: Rubric | None = None,
    templates: Templates | None = None,
    options: JudgeOptions | None = None,
    both_orders: bool = True,
) -> PairwiseVerdict:
    """Which of the completions ``a`` and ``b`` fits ``ctx`` better."""
    rubric = rubric or load_rubric()
    templates = templates or load_templates(DEFAULT_PAIRWISE)
    options = options or JudgeOptions()
    started = time.perf_counter()
    verdicts: list[Winner] = []
    rationales: list[str] = []
    errors: list[str] = []
    attempts = 0
    orders = [(a, b, False), (b, a, True)] if both_orders else [(a, b, False)]
    for first, second, swapped in orders:
        label, rationale, used, errs = await _one_order(
            backend, templates, rubric, ctx, first, second, options
        )
        attempts += used
        errors.extend(errs)
        if label is not None:
            verdicts.append(_unswap(label, swapped))
            rationales.append(rationale)
    if not verdicts:
        winner: Winner | None = None
        consistent = False
    elif len(set(verdicts)) == 1:
        winner, consistent = verdicts[0], len(verdicts) == len(orders)
    else:
        winner, consistent = "tie", False
    return PairwiseVerdict(
        winner=winner,
        consistent=consistent,
        rationales=tuple(rationales),
        attempts=attempts,
        duration_ms=(time.perf_counter() - started) * 1000,
        judge=backend.name,
        judge_model=backend.model,
        rubric_version=f"{templates.version}/{rubric.version}",
        errors=tuple(errors),
    )


def _unswap(label: Literal["A", "B", "tie"], swapped: bool) -> Winner:
    if label == "tie":
        return "tie"
    first_won = label == "A"
    return "b" if first_won == swapped else "a"


async def rank(
    backend: JudgeBackend,
    ctx: JudgeContext,
    *,
    indices: Sequence[int] | None = None,
    options: JudgeOptions | None = None,
) -> list[tuple[int, float]]:
    """Candidates of ``ctx`` ordered best first by pairwise wins (a tie or a failed
    comparison is half a win each), with their win counts."""
    chosen = list(range(len(ctx.candidates))) if indices is None else list(indices)
    wins = dict.fromkeys(chosen, 0.0)
    for i, j in itertools.combinations(chosen, 2):
        verdict = await compare(backend, ctx, ctx.candidates[i], ctx.candidates[j], options=options)
        if verdict.winner == "a":
            wins[i] += 1
        elif verdict.winner == "b":
            wins[j] += 1
        else:
            wins[i] += 0.5
            wins[j] += 0.5
    return sorted(wins.items(), key=lambda kv: (-kv[1], kv[0]))


def compare_pairs(
    settings: Settings,
    items: Sequence[tuple[JudgeContext, str, str]],
    *,
    engine: Engine | None = None,
) -> list[PairwiseVerdict]:
    """Compare ``(context, a, b)`` items with the judge the settings choose, from code
    without an event loop (a script, a command). The ``engine`` judge loads its own engine
    when none is given."""
    return asyncio.run(_compare_pairs(settings, items, engine))


async def _compare_pairs(
    settings: Settings,
    items: Sequence[tuple[JudgeContext, str, str]],
    engine: Engine | None,
) -> list[PairwiseVerdict]:
    own: Engine | None = None
    if settings.judge_backend == "engine" and engine is None:
        from prefloop.server.engines import create_engine

        own = engine = create_engine(settings)
        await own.start()
        settings = settings.model_copy(update={"judge_idle_seconds": 0.0})
    backend = build_backend(settings, engine)
    if backend is None:
        raise ValueError("the judge is off (PREFLOOP_JUDGE_BACKEND=off)")
    await backend.start()
    try:
        options = judge_options(settings)
        rubric = load_rubric(settings.judge_rubric)
        return [
            await compare(backend, ctx, a, b, rubric=rubric, options=options) for ctx, a, b in items
        ]
    finally:
        await backend.close()
        if own is not None:
            await own.close()
