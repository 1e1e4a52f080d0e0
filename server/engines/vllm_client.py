"""Engine backed by a vLLM OpenAI-compatible server (the GPU host).

Completions go to ``/v1/completions``; adapters are loaded at run time through
``/v1/load_lora_adapter`` (the server needs ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) and selected per request by name. Cancelling
a generation closes its HTTP request, and vLLM aborts a request whose client went away.
The tokenizer is loaded locally from the same model directory the server serves, for
prompt budgets and FIM detection.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx

from prefloop.redaction import redact
from prefloop.server.engines.adapters import (
    LayerShape,
    check_adapter_fits,
    model_dir_layer_shapes,
)
from prefloop.server.engines.base import (
    BASE_VERSION,
    Engine,
    EngineError,
    EngineStats,
    Generation,
    GenerationParams,
    cut_at_stop,
)

# The OpenAI-compatible endpoint accepts at most this many stop strings; the rest are
# applied to the returned text.
MAX_SERVER_STOPS = 4

log = logging.getLogger(__name__)


class VllmEngine(Engine):
    name = "vllm"

    def __init__(
        self,
        url: str,
        *,
        served_model: str,
        tokenizer_path: str,
        timeout: float = 30.0,
        keep_adapters: int = 3,
    ) -> None:
        self.url = url.rstrip("/")
        self.served_model = served_model
        self.tokenizer_path = tokenizer_path
        self.timeout = timeout
        self.keep_adapters = keep_adapters
        self.stats = EngineStats()
        self._client: httpx.AsyncClient | None = None
        self._tokenizer: Any = None
        self._max_len = 2048
        self._version = BASE_VERSION
        self._adapters: list[str] = []
        self._lock = asyncio.Lock()
        # Requests in flight per served name: an adapter is unloaded only once idle.
        self._inflight: dict[str, int] = {}
        self._unloads: set[asyncio.Task[None]] = set()
        self._layer_shape: LayerShape | None = None

    @property
    def version(self) -> str:
        return self._version

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("engine not started")
        return self._tokenizer

    @property
    def max_context_tokens(self) -> int:
        return self._max_len

    async def start(self) -> None:
        from transformers import AutoConfig, AutoTokenizer

        loop = asyncio.get_running_loop()
        self._tokenizer = await loop.run_in_executor(
            None, AutoTokenizer.from_pretrained, self.tokenizer_path
        )
        config = await loop.run_in_executor(None, AutoConfig.from_pretrained, self.tokenizer_path)
        self._max_len = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        self._layer_shape = await loop.run_in_executor(
            None, model_dir_layer_shapes, Path(self.tokenizer_path)
        )
        self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout)
        try:
            info = await self._client.get("/v1/models")
            for model in info.json().get("data", []):
                if model.get("id") == self.served_model and model.get("max_model_len"):
                    self._max_len = int(model["max_model_len"])
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("vLLM server at %s not reachable yet: %s", self.url, type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._unloads):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineError("engine not started")
        return self._client

    async def health(self) -> dict[str, Any]:
        ok = False
        try:
            response = await self._http().get("/v1/models", timeout=2.0)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        return {
            "ok": ok,
            "engine": self.name,
            "url": self.url,
            "model": self.served_model,
            "version": self._version,
            "adapters": list(self._adapters),
        }

    async def _complete(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = await self._http().post("/v1/completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM server unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            try:
                message = str(response.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise EngineError(
                f"vLLM answered {response.status_code}: {redact(message.splitlines()[0][:300])}"
                if message
                else f"vLLM answered {response.status_code}"
            )
        choices: list[dict[str, Any]] = response.json().get("choices", [])
        return sorted(choices, key=lambda c: int(c.get("index", 0)))

    async def generate(
        self, prompt: str, params: GenerationParams, user: str | None = None
    ) -> list[Generation]:
        version = self._version
        model = self.served_model if version == BASE_VERSION else version
        self._inflight[model] = self._inflight.get(model, 0) + 1
        try:
            return await self._generate(prompt, params, model, version)
        finally:
            self._inflight[model] -= 1

    async def _generate(
        self, prompt: str, params: GenerationParams, model: str, version: str
    ) -> list[Generation]:
        base: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": params.max_tokens,
            # Single-line mode is enforced by the post-processor: a completion may start
            # with a newline (the body of a block opener), so "\n" is no stop string.
            "stop": [s for s in params.stop if s][:MAX_SERVER_STOPS],
        }
        requests = [self._complete({**base, "n": 1, "temperature": 0.0})]
        if params.n > 1:
            sampled = {**base, "n": params.n - 1, "temperature": params.temperature, "top_p": 0.95}
            if params.seed is not None:
                sampled["seed"] = params.seed
            requests.append(self._complete(sampled))
        try:
            batches = await asyncio.gather(*requests)
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        results = []
        for choices in batches:
            for choice in choices:
                text, stopped = cut_at_stop(str(choice.get("text", "")), params.stop)
                reason = "stop" if stopped else str(choice.get("finish_reason") or "stop")
                results.append(
                    Generation(text=text, finish_reason=reason, tokens=0, version=version)
                )
        self.stats.generations += 1
        return results

    async def load_adapter(self, path: Path, version: str) -> None:
        async with self._lock:
            if version not in self._adapters:
                if self._layer_shape is not None:
                    # vLLM may take matrices of the wrong size without a word.
                    check_adapter_fits(Path(path), version, self._layer_shape)
                await self._load(Path(path).resolve(), version)
                try:
                    # A probe of one token: vLLM may accept an adapter it cannot run.
                    await self._complete(
                        {"model": version, "prompt": "#", "max_tokens": 1, "temperature": 0.0}
                    )
                except EngineError as exc:
                    await self._unload(version)
                    raise EngineError(f"vLLM cannot run adapter {version}: {exc}") from None
            # Most recently served last: the oldest is dropped first, never the served one.
            if version in self._adapters:
                self._adapters.remove(version)
            self._adapters.append(version)
            self._version = version
            while len(self._adapters) > self.keep_adapters:
                old = self._adapters.pop(0)
                task = asyncio.create_task(self._unload_when_idle(old))
                self._unloads.add(task)
                task.add_done_callback(self._unloads.discard)

    async def _load(self, path: Path, version: str) -> None:
        body = {"lora_name": version, "lora_path": str(path)}
        try:
            response = await self._http().post("/v1/load_lora_adapter", json=body)
            if response.status_code == 400 and "already" in response.text:
                # Loaded under this name by an earlier run: load the files again.
                await self._unload(version)
                response = await self._http().post("/v1/load_lora_adapter", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM server unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise EngineError(
                f"vLLM refused adapter {version}: {response.status_code} "
                f"{redact(response.text[:300])}"
            )

    async def _unload_when_idle(self, name: str, *, wait: float = 120.0) -> None:
        """Unload once the requests already sent to ``name`` have finished."""
        deadline = asyncio.get_running_loop().time() + wait
        while self._inflight.get(name, 0) > 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if name not in self._adapters:
            await self._unload(name)

    async def _unload(self, name: str) -> None:
        try:
            await self._http().post("/v1/unload_lora_adapter", json={"lora_name": name})
        except httpx.HTTPError as exc:
            log.warning("could not unload adapter %s: %s", name, type(exc).__name__)

    async def use_base(self) -> None:
        """Serve the base model; loaded adapters stay loaded for a quick way back."""
        async with self._lock:
            self._version = BASE_VERSION
