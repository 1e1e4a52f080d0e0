"""The judge the settings choose: its backend and its request options.

Shared by the background worker (:mod:`~prefloop.server.judge.worker`) and pairwise
comparisons run outside the service (:func:`~prefloop.server.judge.pairwise.compare_pairs`).
"""

from __future__ import annotations

from prefloop.models import model_label
from prefloop.server.engines.base import Engine
from prefloop.server.judge.backends import EngineBackend, JudgeBackend, OpenAIBackend
from prefloop.server.judge.critic import JudgeOptions
from prefloop.settings import Settings

__all__ = ["build_backend", "judge_options"]


def build_backend(settings: Settings, engine: Engine | None) -> JudgeBackend | None:
    """The judge backend the settings choose (None when the LLM judge is off)."""
    if settings.judge_backend == "off":
        return None
    if settings.judge_backend == "openai":
        key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
        return OpenAIBackend(
            settings.judge_url,
            model=settings.judge_model,
            api=settings.judge_api,
            api_key=key,
            structured=settings.judge_structured,
            timeout=settings.judge_timeout,
        )
    if engine is None:
        raise ValueError("the `engine` judge needs the serving engine")
    return EngineBackend(
        engine, model_label=model_label(settings), idle_seconds=settings.judge_idle_seconds
    )


def judge_options(settings: Settings) -> JudgeOptions:
    """Attempts, timeout, token and context limits of every judge request."""
    return JudgeOptions(
        max_attempts=settings.judge_max_attempts,
        timeout=settings.judge_timeout,
        max_tokens=settings.judge_max_tokens,
        context_chars=settings.judge_context_chars,
        together=settings.judge_together,
    )
