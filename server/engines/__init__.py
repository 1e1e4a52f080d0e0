"""Engines behind the suggestion service; :func:`create_engine` picks one from settings."""

from __future__ import annotations

from prefloop.models import Report, resolve_model
from prefloop.server.engines.base import (
    BASE_VERSION,
    Engine,
    EngineError,
    Generation,
    GenerationParams,
)
from prefloop.settings import Settings

__all__ = [
    "BASE_VERSION",
    "Engine",
    "EngineError",
    "Generation",
    "GenerationParams",
    "create_engine",
]


def create_engine(settings: Settings, *, report: Report | None = None) -> Engine:
    """The configured engine, not yet started. Prepares the embedded model if needed."""
    if settings.engine == "vllm" and settings.train_adapters == "per_user":
        raise EngineError(
            "train_adapters = per_user needs the transformers engine: the vllm engine serves "
            "one shared adapter only (set PREFLOOP_ENGINE=transformers or "
            "PREFLOOP_TRAIN_ADAPTERS=shared)"
        )
    model_path = resolve_model(settings, report=report)
    if settings.engine == "vllm":
        from prefloop.server.engines.vllm_client import VllmEngine

        return VllmEngine(
            settings.vllm_url,
            served_model=settings.vllm_model,
            tokenizer_path=model_path,
            timeout=settings.vllm_timeout,
        )
    from prefloop.server.engines.hf import TransformersEngine

    return TransformersEngine(
        model_path, device=settings.device, dtype=settings.dtype, threads=settings.torch_threads
    )
