"""Judge prompts: the rubric, the code around the cursor with the completion marked, and
the candidates under shuffled labels when several are judged together."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from prefloop.server.judge.answers import answer_schema
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.rubric import Rubric, Templates

LABELS = "ABCDEFGHIJKLMNOP"
COMPLETION_OPEN = "<completion>"
COMPLETION_CLOSE = "</completion>"
CURSOR = "<cursor/>"


class ChatMessage(TypedDict):
    role: str
    content: str


@dataclass(frozen=True)
class JudgePrompt:
    """A rendered prompt and how to read its answer.

    ``labels`` maps each label shown to the candidate index it stands for (in the order
    shown); ``answer_prefix`` is how the answer starts, prefilled by backends that send a
    raw prompt and have no schema to constrain the output.
    """

    messages: tuple[ChatMessage, ...]
    labels: dict[str, int]
    schema: dict[str, Any]
    answer_prefix: str = ""
    together: bool = False

    def position(self, label: str) -> int:
        return list(self.labels).index(label)


def _score_keys(rubric: Rubric) -> str:
    return ", ".join(f'"{a}": <1-5>' for a in rubric.aspect_ids)


def _system(rubric: Rubric) -> ChatMessage:
    text = rubric.templates.render("system", task=rubric.task, aspects=rubric.render_aspects())
    return {"role": "system", "content": text}


def _fence(text: str) -> str:
    """Candidate text for a fenced block (a fence inside it must not end the block)."""
    return text.replace("```", "`\u200b``")


def critique_prompt(
    rubric: Rubric,
    ctx: JudgeContext,
    indices: Sequence[int],
    *,
    rng: random.Random,
    context_chars: int = 3000,
) -> JudgePrompt:
    """A prompt critiquing the candidates ``indices`` of ``ctx``: one alone, with the
    completion marked inside the code, or several together, shuffled, under labels."""
    if not indices:
        raise ValueError("no candidate to judge")
    if len(indices) > len(LABELS):
        raise ValueError(f"at most {len(LABELS)} candidates per prompt")
    prefix, suffix = ctx.window(context_chars)
    common = {"language": ctx.language, "path": ctx.path or "(unnamed)"}
    keys = _score_keys(rubric)
    templates = rubric.templates
    if len(indices) == 1:
        text = ctx.candidates[indices[0]]
        code = f"{prefix}{COMPLETION_OPEN}{_fence(text)}{COMPLETION_CLOSE}{suffix}"
        user = templates.render(
            "user_single",
            code=_fence(code),
            format=templates.render("format_single", score_keys=keys),
            **common,
        )
        return JudgePrompt(
            messages=(_system(rubric), {"role": "user", "content": user}),
            labels={"A": indices[0]},
            schema=answer_schema(rubric),
            answer_prefix=templates.get("answer_prefix_single"),
        )
    order = list(indices)
    rng.shuffle(order)
    labels = {LABELS[i]: index for i, index in enumerate(order)}
    blocks = [
        f"Candidate {label}:\n```\n{_fence(ctx.candidates[index])}\n```"
        for label, index in labels.items()
    ]
    user = templates.render(
        "user_together",
        code=_fence(f"{prefix}{CURSOR}{suffix}"),
        candidates="\n\n".join(blocks),
        format=templates.render("format_together", score_keys=keys, labels=", ".join(labels)),
        **common,
    )
    return JudgePrompt(
        messages=(_system(rubric), {"role": "user", "content": user}),
        labels=labels,
        schema=answer_schema(rubric, list(labels)),
        answer_prefix=templates.get("answer_prefix_together"),
        together=True,
    )


MAX_ECHO_CHARS = 1500


def retry_prompt(
    rubric: Rubric, prompt: JudgePrompt, previous: str, error: str, prefix: str | None
) -> JudgePrompt:
    """``prompt`` followed by the invalid answer and what was wrong with it; the new answer
    starts with ``prefix`` (the valid part of the old one) when there is one."""
    feedback = rubric.templates.render("retry", error=error[:300])
    messages = (
        *prompt.messages,
        ChatMessage(role="assistant", content=previous[:MAX_ECHO_CHARS]),
        ChatMessage(role="user", content=feedback),
    )
    return replace(prompt, messages=messages, answer_prefix=prefix or prompt.answer_prefix)


PAIRWISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": ["A", "B", "tie"]},
        "rationale": {"type": "string", "minLength": 1},
    },
    "required": ["winner", "rationale"],
}


def pairwise_prompt(
    templates: Templates,
    rubric: Rubric,
    ctx: JudgeContext,
    first: str,
    second: str,
    *,
    context_chars: int = 3000,
) -> JudgePrompt:
    """A prompt asking which of two completions (shown as A, then B) is better."""
    prefix, suffix = ctx.window(context_chars)
    aspects = "\n".join(f"- {a.id}: {a.question}" for a in rubric.aspects)
    system = templates.render("system", task=rubric.task, aspects=aspects)
    user = templates.render(
        "user",
        language=ctx.language,
        path=ctx.path or "(unnamed)",
        code=_fence(f"{prefix}{CURSOR}{suffix}"),
        a=_fence(first),
        b=_fence(second),
    )
    return JudgePrompt(
        messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
        labels={"A": 0, "B": 1},
        schema=PAIRWISE_SCHEMA,
        answer_prefix=templates.get("answer_prefix"),
    )
