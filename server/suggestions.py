"""The suggestion service: prompt, generate, post-process, record.

A newer request from the same editor session cancels the older generation, and so does
the client going away; the engine stops spending time on cancelled work. The suggestion
is handed to the database writer without waiting for the disk.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from prefloop.prompting import FimTemplate, build_prompt, resolve_template, special_tokens
from prefloop.protocol import Candidate, SuggestionRequest, SuggestionResponse, Timings
from prefloop.server.engines import Engine, GenerationParams
from prefloop.server.metrics import Metrics
from prefloop.server.postprocess import postprocess_candidates
from prefloop.settings import Settings
from prefloop.store.writer import Writer, suggestion_row

DISCONNECT_POLL_SECONDS = 0.05


class Superseded(Exception):
    """A newer request from the same session replaced this one."""


class ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


class SuggestionService:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        writer: Writer,
        metrics: Metrics,
        *,
        on_request: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.writer = writer
        self.metrics = metrics
        self.on_request = on_request
        self.template: FimTemplate | None = None
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    def start(self) -> None:
        """Resolve the prompt template once the engine's tokenizer is loaded."""
        self.template = resolve_template(
            self.settings.fim_template, special_tokens(self.engine.tokenizer)
        )

    @property
    def template_name(self) -> str:
        return self.template.name if self.template else "prefix"

    async def suggest(
        self, req: SuggestionRequest, is_disconnected: Callable[[], Awaitable[bool]]
    ) -> SuggestionResponse:
        started = time.perf_counter()
        if self.on_request is not None:
            self.on_request()
        max_tokens = req.max_tokens or self.settings.default_max_tokens
        budget = min(self.settings.max_prompt_tokens, self.engine.max_context_tokens - max_tokens)
        prompt = build_prompt(
            req.prefix,
            req.suffix,
            template=self.template,
            tokenizer=self.engine.tokenizer,
            max_prompt_tokens=max(budget, 16),
            language=req.language,
            path=req.path,
        )
        prompt_done = time.perf_counter()
        params = GenerationParams(
            max_tokens=max_tokens,
            n=min(req.n, self.settings.max_candidates),
            temperature=self.settings.temperature,
            stop=tuple(prompt.stop),
            single_line=req.mode == "single_line",
        )
        user = req.user or self.settings.user
        version = self.engine.version_for(user)
        task = asyncio.create_task(self.engine.generate(prompt.text, params, user))
        key = req.session_id
        if key:
            older = self._inflight.get(key)
            if older is not None and not older.done():
                older.cancel()
                self.metrics.cancelled.labels("superseded").inc()
            self._inflight[key] = task
        try:
            generations = await self._wait(task, is_disconnected)
        finally:
            if not task.done():
                task.cancel()
            if key and self._inflight.get(key) is task:
                del self._inflight[key]
        generated = time.perf_counter()
        # The engine says which version generated: a swap may have happened meanwhile.
        if generations and generations[0].version:
            version = generations[0].version
        texts = postprocess_candidates(
            [g.text for g in generations],
            prefix=prompt.prefix,
            suffix=prompt.suffix,
            mode=req.mode,
            lead=prompt.lead,
        )
        suggestion_id = uuid.uuid4().hex
        timings = {
            "prompt_ms": (prompt_done - started) * 1000,
            "generate_ms": (generated - prompt_done) * 1000,
            "total_ms": (time.perf_counter() - started) * 1000,
        }
        self.writer.add_suggestion(
            suggestion_row(
                suggestion_id=suggestion_id,
                user=user,
                session_id=req.session_id,
                client_request_id=req.client_request_id,
                language=req.language,
                path=req.path,
                model_version=version,
                engine=self.engine.name,
                mode=req.mode,
                n=params.n,
                max_tokens=max_tokens,
                cursor=(req.cursor.line, req.cursor.character) if req.cursor else None,
                prefix=req.prefix,
                suffix=req.suffix,
                prompt=prompt.text,
                prompt_lead=prompt.lead,
                template=prompt.template,
                prefix_truncated=prompt.prefix_truncated,
                suffix_truncated=prompt.suffix_truncated,
                candidates=texts,
                timings=timings,
            )
        )
        self.metrics.suggestions.labels(version, req.language).inc()
        self.metrics.generate_seconds.labels(self.engine.name).observe(generated - prompt_done)
        return SuggestionResponse(
            suggestion_id=suggestion_id,
            candidates=[Candidate(index=i, text=t) for i, t in enumerate(texts)],
            model_version=version,
            timings=Timings(**timings),
            client_request_id=req.client_request_id,
        )

    async def _wait(
        self, task: asyncio.Task[Any], is_disconnected: Callable[[], Awaitable[bool]]
    ) -> Any:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                if task.cancelled():
                    raise Superseded()
                return task.result()
            if await is_disconnected():
                task.cancel()
                self.metrics.cancelled.labels("disconnected").inc()
                raise ClientGone()
