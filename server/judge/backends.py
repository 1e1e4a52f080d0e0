"""Where judge answers come from: the serving engine itself, or any OpenAI-compatible
endpoint (``/chat/completions`` or ``/completions``: a vLLM server, a hosted API).

Errors are sorted by what the caller should do. :class:`JudgeUnavailable` (endpoint down,
overloaded, engine not ready) uses no attempt: the work waits. :class:`JudgeRequestError`
and timeouts use an attempt. :class:`Preempted` means the serving engine was needed for a
suggestion; the attempt is repeated later.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx

from prefloop.redaction import redact
from prefloop.server.engines.base import Engine, EngineError, GenerationParams
from prefloop.server.judge.prompts import ChatMessage, JudgePrompt

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429, 502, 503, 504})


class JudgeUnavailable(Exception):
    """The judge cannot be reached now; try again later without using an attempt."""


class JudgeRequestError(Exception):
    """The judge failed this request (an attempt is used)."""


class Preempted(Exception):
    """A suggestion request needed the serving engine; repeat the attempt later."""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None
    refusal: str | None = None


class JudgeBackend(abc.ABC):
    """Turns a :class:`JudgePrompt` into answer text."""

    kind: str

    @property
    def name(self) -> str:
        """The ``judge`` recorded on critiques."""
        return f"llm:{self.kind}"

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The judge model recorded on critiques."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect or check readiness."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    async def ready(self) -> None:  # noqa: B027 - optional hook
        """Wait until a request may be sent (not part of an attempt's time limit)."""

    def preempt(self) -> None:  # noqa: B027 - only the engine backend shares compute
        """A suggestion request is starting: yield the compute it needs."""

    @abc.abstractmethod
    async def complete(self, prompt: JudgePrompt, *, max_tokens: int) -> Completion:
        """The judge's answer to ``prompt``, including any prefilled start. Callers
        await :meth:`ready` first."""


def render_plain(messages: tuple[ChatMessage, ...]) -> str:
    """Messages as one raw prompt, for models without a chat template."""
    parts = [f"### {m['role'].capitalize()}\n{m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\n### Assistant\n"


class EngineBackend(JudgeBackend):
    """Judges with the model that serves suggestions, only while it is idle.

    The engine counts as busy while it generates, and for ``idle_seconds`` after any
    generation that was not the judge's own or after :meth:`preempt` (called when a
    suggestion request starts); a judge generation running then is cancelled.
    """

    kind = "engine"

    def __init__(self, engine: Engine, *, model_label: str, idle_seconds: float = 2.0) -> None:
        self.engine = engine
        self.model_label = model_label
        self.idle_seconds = idle_seconds
        self._last_activity = time.monotonic()
        self._seen_generations = engine.stats.generations
        self._running: set[asyncio.Task[Any]] = set()
        self._preempted: set[asyncio.Task[Any]] = set()

    @property
    def model(self) -> str:
        return f"{self.model_label}@{self.engine.version}"

    def preempt(self) -> None:
        self._last_activity = time.monotonic()
        for task in self._running:
            if not task.done():
                self._preempted.add(task)
                task.cancel()

    async def ready(self) -> None:
        while True:
            now = time.monotonic()
            generations = self.engine.stats.generations
            if generations != self._seen_generations:
                self._seen_generations = generations
                self._last_activity = now
            health = await self.engine.health()
            if not health.get("ok"):
                raise JudgeUnavailable("the serving engine is not ready")
            if health.get("busy"):
                self._last_activity = now
            idle_for = now - self._last_activity
            if idle_for >= self.idle_seconds:
                return
            await asyncio.sleep(min(self.idle_seconds - idle_for, 0.5) + 0.01)

    def render(self, prompt: JudgePrompt) -> str:
        tokenizer = self.engine.tokenizer
        messages = [dict(m) for m in prompt.messages]
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = render_plain(prompt.messages)
        return str(text) + prompt.answer_prefix

    async def complete(self, prompt: JudgePrompt, *, max_tokens: int) -> Completion:
        text = self.render(prompt)
        params = GenerationParams(max_tokens=max_tokens, n=1, temperature=0.0)
        task = asyncio.ensure_future(self.engine.generate(text, params))
        self._running.add(task)
        try:
            generations = await task
        except asyncio.CancelledError:
            if task in self._preempted:
                raise Preempted() from None
            raise
        except EngineError as exc:
            raise JudgeRequestError(f"engine: {exc}") from exc
        finally:
            self._running.discard(task)
            self._preempted.discard(task)
        self._seen_generations = self.engine.stats.generations
        if not generations:
            raise JudgeRequestError("the engine returned no text")
        first = generations[0]
        return Completion(prompt.answer_prefix + first.text, finish_reason=first.finish_reason)


class OpenAIBackend(JudgeBackend):
    """An OpenAI-compatible endpoint; ``url`` is its base URL, ending in ``/v1``.

    With ``structured`` the answer's JSON schema is sent as ``response_format`` (vLLM
    and OpenAI constrain the output to it); without it, the completions API gets the
    answer's first characters prefilled.
    """

    kind = "openai"

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api: str = "chat",
        api_key: str | None = None,
        structured: bool = True,
        timeout: float = 120.0,
    ) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"unknown API {api!r}: use chat or completions")
        self.url = url.rstrip("/")
        self.api = api
        self.api_key = api_key
        self.structured = structured
        self.timeout = timeout
        self._model = model
        self._client: httpx.AsyncClient | None = None

    @property
    def model(self) -> str:
        return self._model or "unknown"

    async def start(self) -> None:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout, headers=headers)
        if not self._model:
            try:
                await self._discover_model()
            except (JudgeUnavailable, JudgeRequestError, TimeoutError) as exc:
                log.warning("judge endpoint has no model to offer yet: %s", exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _discover_model(self) -> None:
        body = await self._call("GET", "/models", None)
        models = body.get("data") or []
        if not models:
            raise JudgeRequestError("the endpoint lists no model: set PREFLOOP_JUDGE_MODEL")
        self._model = str(models[0]["id"])

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        if self._client is None:
            raise JudgeUnavailable("judge backend not started")
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"no answer from the judge endpoint in {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise JudgeUnavailable(f"judge endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            message = _error_message(response)
            if response.status_code in RETRY_STATUSES:
                raise JudgeUnavailable(f"judge endpoint answered {response.status_code}: {message}")
            raise JudgeRequestError(f"judge endpoint answered {response.status_code}: {message}")
        try:
            data = response.json()
        except ValueError as exc:
            raise JudgeRequestError("judge endpoint answered with invalid JSON") from exc
        if not isinstance(data, dict):
            raise JudgeRequestError("judge endpoint answered with an unexpected body")
        return data

    def _body(self, prompt: JudgePrompt, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "max_tokens": max_tokens, "temperature": 0}
        if self.structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judge_answer", "schema": prompt.schema},
            }
        return body

    async def complete(self, prompt: JudgePrompt, *, max_tokens: int) -> Completion:
        if not self._model:
            await self._discover_model()
        body = self._body(prompt, max_tokens)
        prefix = ""
        if self.api == "chat":
            body["messages"] = [dict(m) for m in prompt.messages]
            data = await self._call("POST", "/chat/completions", body)
        else:
            prefix = "" if self.structured else prompt.answer_prefix
            body["prompt"] = render_plain(prompt.messages) + prefix
            data = await self._call("POST", "/completions", body)
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise JudgeRequestError("judge endpoint answered without choices")
        choice = choices[0]
        finish = choice.get("finish_reason")
        if self.api == "chat":
            message = choice.get("message") or {}
            refusal = message.get("refusal")
            text = str(message.get("content") or "")
        else:
            refusal = None
            text = str(choice.get("text") or "")
        if finish == "content_filter" and not refusal:
            refusal = "content filter"
        return Completion(prefix + text, finish_reason=finish, refusal=refusal)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    first = str(message or "").strip().splitlines()
    return redact(first[0][:300]) if first else "(no message)"


def backoff(failures: int, *, base: float = 2.0, cap: float = 60.0) -> float:
    """Seconds to wait after ``failures`` consecutive unavailable answers."""
    return min(cap, base * math.pow(2, max(0, failures - 1)))
