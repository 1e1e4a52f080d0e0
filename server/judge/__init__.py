"""The judge: critiques of logged suggestions by an LLM and by verifiable checks.

- :class:`JudgeWorker` (``worker``): the background worker the service starts.
- ``rubric``, ``prompts``, ``answers``: versioned rubrics, prompt building, validation.
- ``backends``: the serving engine or an OpenAI-compatible endpoint.
- ``critic``: one suggestion's critiques with bounded retries.
- ``checks``: parse after insertion, undefined names, security smells.
- ``pairwise``: A vs B for the same context (used by the trainer).
- ``agreement``: judge scores against user signals (``prefloop stats``).
"""

from __future__ import annotations

from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.pairwise import PairwiseVerdict, compare, compare_pairs, rank
from prefloop.server.judge.rubric import load_rubric
from prefloop.server.judge.worker import JudgeWorker, build_backend

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
