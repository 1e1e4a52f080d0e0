"""The judge: critiques of logged suggestions by an LLM and by verifiable checks.

- :class:`JudgeWorker` (``worker``): the background worker the service starts.
- ``rubric``, ``prompts``, ``answers``: versioned rubrics, prompt building, validation.
- ``backends``: the serving engine or an OpenAI-compatible endpoint; ``from_settings``:
  the backend and request options the settings choose.
- ``critic``: one suggestion's critiques with bounded retries.
- ``verification``: the verifiable checks (:mod:`prefloop.checks`: parse after insertion,
  undefined names, security smells) run on every candidate.
- ``pairwise``: A vs B for the same context (the worker's tie-breaks; ``compare_pairs``
  for code without an event loop).
- ``agreement``: judge scores against user signals (``prefloop stats``).
"""

from __future__ import annotations

from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.from_settings import build_backend
from prefloop.server.judge.pairwise import PairwiseVerdict, compare, compare_pairs, rank
from prefloop.server.judge.rubric import load_rubric
from prefloop.server.judge.worker import JudgeWorker

__all__ = [
    "JudgeContext",
    "JudgeWorker",
    "PairwiseVerdict",
    "build_backend",
    "compare",
    "compare_pairs",
    "load_rubric",
    "rank",
]
