"""Critiquing the candidates of one suggestion with bounded retries.

Each candidate is judged alone, or all together under shuffled labels. An answer that is
garbage, partial, refused, or late uses an attempt; a retry asks again for the candidates
still without a valid critique (reshuffled). After the last attempt those are recorded as
failed, with every attempt's error.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Literal

from prefloop.server.judge.answers import (
    ParseResult,
    parse_single,
    parse_together,
    salvage_prefix,
)
from prefloop.server.judge.backends import (
    Completion,
    JudgeBackend,
    JudgeRequestError,
    Preempted,
)
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.prompts import JudgePrompt, critique_prompt, retry_prompt
from prefloop.server.judge.rubric import Rubric

MAX_ANSWER_CHARS = 4000

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class JudgeOptions:
    max_attempts: int = 3
    timeout: float = 120.0
    max_tokens: int = 256
    context_chars: int = 3000
    together: bool = False


@dataclass
class Outcome:
    """The critique of one candidate."""

    index: int
    status: Status
    scores: dict[str, int] | None = None
    rationale: str | None = None
    error: str | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    position: int | None = None
    answer: str | None = None
    errors: list[str] = field(default_factory=list)


def _read(prompt: JudgePrompt, completion: Completion, rubric: Rubric) -> ParseResult:
    if completion.refusal:
        return ParseResult(error=f"refused: {completion.refusal[:200]}")
    if prompt.together:
        return parse_together(completion.text, rubric, list(prompt.labels))
    return parse_single(completion.text, rubric)


async def ask(
    backend: JudgeBackend, prompt: JudgePrompt, options: JudgeOptions
) -> tuple[Completion | None, str | None, float]:
    """One attempt: the completion or the error that used the attempt up, and the
    milliseconds it took. A preempted attempt is repeated once the backend is ready
    again; waiting for it is not part of an attempt's time or time limit."""
    while True:
        await backend.ready()
        started = time.perf_counter()
        try:
            completion = await asyncio.wait_for(
                backend.complete(prompt, max_tokens=options.max_tokens * len(prompt.labels)),
                options.timeout,
            )
        except Preempted:
            continue
        except TimeoutError:
            error = f"timed out after {options.timeout:g}s"
            return None, error, (time.perf_counter() - started) * 1000
        except JudgeRequestError as exc:
            return None, str(exc), (time.perf_counter() - started) * 1000
        return completion, None, (time.perf_counter() - started) * 1000


async def _judge_group(
    backend: JudgeBackend,
    rubric: Rubric,
    ctx: JudgeContext,
    group: list[int],
    options: JudgeOptions,
) -> list[Outcome]:
    outcomes = {i: Outcome(index=i, status="failed") for i in group}
    remaining = list(group)
    attempt = 0
    last: tuple[str, str] | None = None
    while remaining and attempt < options.max_attempts:
        attempt += 1
        rng = random.Random(f"{ctx.suggestion_id}:{attempt}")
        prompt = critique_prompt(
            rubric, ctx, remaining, rng=rng, context_chars=options.context_chars
        )
        if last is not None and len(remaining) == 1:
            previous, problem = last
            prefix = salvage_prefix(previous, rubric)
            prompt = retry_prompt(rubric, prompt, previous, problem, prefix)
        completion, error, elapsed = await ask(backend, prompt, options)
        parsed = _read(prompt, completion, rubric) if completion else ParseResult(error=error)
        for label, index in prompt.labels.items():
            outcome = outcomes[index]
            outcome.attempts = attempt
            outcome.duration_ms += elapsed
            if completion is not None:
                outcome.answer = completion.text[:MAX_ANSWER_CHARS]
            critique = parsed.critiques.get(label)
            if critique is not None:
                outcome.status = "ok"
                outcome.scores = critique.scores
                outcome.rationale = critique.rationale
                outcome.position = prompt.position(label) if prompt.together else None
            else:
                outcome.errors.append(f"attempt {attempt}: {parsed.error or 'no critique'}")
        remaining = [i for i in remaining if outcomes[i].status != "ok"]
        last = None
        if completion is not None and parsed.error and not prompt.together:
            last = (completion.text, parsed.error)
    for index in remaining:
        outcomes[index].error = "; ".join(outcomes[index].errors)
    return [outcomes[i] for i in group]


async def critique(
    backend: JudgeBackend, rubric: Rubric, ctx: JudgeContext, options: JudgeOptions
) -> list[Outcome]:
    """Critiques of every candidate of ``ctx``, in candidate order.

    Raises :class:`~prefloop.server.judge.backends.JudgeUnavailable` when the judge
    cannot be reached (nothing is recorded then; the suggestion stays pending).
    """
    indices = list(range(len(ctx.candidates)))
    groups = [indices] if options.together and len(indices) > 1 else [[i] for i in indices]
    outcomes: list[Outcome] = []
    for group in groups:
        outcomes.extend(await _judge_group(backend, rubric, ctx, group, options))
    return sorted(outcomes, key=lambda o: o.index)
