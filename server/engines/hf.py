"""In-process engine on Hugging Face transformers (CPU or GPU), LoRA adapters via peft.

Generation runs on one dedicated thread: on a small machine concurrent generations only
slow each other down, and a single thread makes adapter swaps trivially safe (they run
between two generations). Cancellation sets a flag that a stopping criterion checks
after every token, so a cancelled generation stops within one decoding step.

Several adapters stay loaded in one peft model, each under its version's name: the
shared version and the users' own (:meth:`TransformersEngine.load_user_adapter`). Each
generation activates the one its user is served (or runs with adapters disabled when
that is the base model), on the generation thread, so a choice never changes mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefloop.server.engines.adapters import check_adapter_fits
from prefloop.server.engines.base import (
    BASE_VERSION,
    Engine,
    EngineError,
    EngineStats,
    Generation,
    GenerationParams,
    cut_at_stop,
)

log = logging.getLogger(__name__)


class TransformersEngine(Engine):
    name = "transformers"
    serves_users = True

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 0,
        keep_adapters: int = 3,
    ) -> None:
        self.model_path = model_path
        self.device_setting = device
        self.dtype_setting = dtype
        self.keep_adapters = keep_adapters
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.stats = EngineStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefloop-gen")
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._version = BASE_VERSION
        self._adapters: list[str] = []  # loaded adapter versions, least recently chosen first
        self._user_versions: dict[str, str] = {}  # user -> the version of their own adapter
        self._load_lock = asyncio.Lock()
        self.last_load_seconds: float | None = None  # the last swap, without the wait
        self._busy = False

    # ---- properties -----------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def user_versions(self) -> dict[str, str]:
        return dict(self._user_versions)

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("engine not started")
        return self._tokenizer

    @property
    def max_context_tokens(self) -> int:
        config = self._model.config if self._model is not None else None
        return int(getattr(config, "max_position_embeddings", 2048) or 2048)

    # ---- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        # Set on the generation thread: OpenMP keeps the thread count per calling thread.
        torch.set_num_threads(self.threads)
        device = self.device_setting
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype: Any
        if self.dtype_setting == "auto":
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
        else:
            dtype = getattr(torch, self.dtype_setting)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        model: Any = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        model = model.to(device)
        model.eval()
        self._model = model
        self._device = device
        log.info(
            "loaded %s on %s in %.1fs",
            Path(self.model_path).name,
            device,
            time.perf_counter() - started,
        )

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def health(self) -> dict[str, Any]:
        return {
            "ok": self._model is not None,
            "engine": self.name,
            "model": self.model_path,
            "device": self._device,
            "version": self._version,
            "adapters": list(self._adapters),
            "user_adapters": len(self._user_versions),
            "busy": self._busy,
            "generations": self.stats.generations,
            "cancelled": self.stats.cancelled,
            "tokens": self.stats.tokens,
        }

    # ---- generation -----------------------------------------------------------------

    async def generate(
        self, prompt: str, params: GenerationParams, user: str | None = None
    ) -> list[Generation]:
        if self._model is None:
            raise EngineError("engine not started")
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._generate, prompt, params, cancel, user)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            self.stats.cancelled += 1
            raise

    def _generate(
        self, prompt: str, params: GenerationParams, cancel: threading.Event, user: str | None
    ) -> list[Generation]:
        if cancel.is_set():
            return []
        self._busy = True
        try:
            # Read on the generation thread, where swaps also run: the version that generates.
            version = self.version_for(user)
            with self._activated(version):
                return self._run_generation(prompt, params, cancel, version)
        finally:
            self._busy = False

    @contextlib.contextmanager
    def _activated(self, version: str) -> Iterator[None]:
        """Generate on ``version``: its adapter active, or every adapter disabled for the
        base model."""
        from peft import PeftModel

        if not isinstance(self._model, PeftModel):
            yield
        elif version == BASE_VERSION:
            with self._model.disable_adapter():
                yield
        else:
            if self._model.active_adapter != version:
                self._model.set_adapter(version)
            yield

    def _run_generation(
        self, prompt: str, params: GenerationParams, cancel: threading.Event, version: str
    ) -> list[Generation]:
        import torch

        tok = self._tokenizer
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self._device)
        prompt_len = int(inputs["input_ids"].shape[1])
        room = self.max_context_tokens - prompt_len
        if room <= 0:
            raise EngineError("prompt longer than the model's context")
        max_new = min(params.max_tokens, room)
        results: list[Generation] = []
        runs: list[tuple[bool, int]] = [(False, 1)]
        if params.n > 1:
            runs.append((True, params.n - 1))
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        for sample, count in runs:
            criteria = _StopCriteria(tok, prompt_len, params, cancel)
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new,
                "do_sample": sample,
                "num_return_sequences": count,
                "stopping_criteria": [criteria],
                "pad_token_id": pad_id,
            }
            if sample:
                kwargs["temperature"] = max(params.temperature, 0.05)
                kwargs["top_p"] = 0.95
                if params.seed is not None:
                    torch.manual_seed(params.seed)
            else:
                # Unset sampling knobs a model's generation_config may carry.
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                output = self._model.generate(**inputs, **kwargs)
            if cancel.is_set():
                return []
            for seq in output:
                ids = [int(t) for t in seq[prompt_len:]]
                ended = tok.eos_token_id in ids
                if ended:
                    ids = ids[: ids.index(tok.eos_token_id)]
                text = tok.decode(ids, skip_special_tokens=True)
                text, stopped = cut_at_stop(text, params.stop)
                reason = "stop" if (ended or stopped or len(ids) < max_new) else "length"
                results.append(
                    Generation(text=text, finish_reason=reason, tokens=len(ids), version=version)
                )
                self.stats.tokens += len(ids)
        self.stats.generations += 1
        return results

    # ---- adapters -------------------------------------------------------------------

    async def load_adapter(self, path: Path, version: str) -> None:
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                self._executor, self._load_adapter, Path(path), version, None
            )

    async def load_user_adapter(self, user: str, path: Path, version: str) -> None:
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                self._executor, self._load_adapter, Path(path), version, user
            )

    async def drop_user_adapter(self, user: str) -> None:
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._drop_user_adapter, user)

    def _drop_user_adapter(self, user: str) -> None:
        if self._user_versions.pop(user, None) is not None:
            self._evict()

    def _in_use(self) -> set[str]:
        return {self._version, *self._user_versions.values()}

    def _evict(self) -> None:
        """Delete the least recently chosen adapters beyond ``keep_adapters`` that nobody
        is served; with none in use at all, return to the plain base model."""
        from peft import PeftModel

        in_use = self._in_use()
        for old in list(self._adapters):
            if len(self._adapters) <= self.keep_adapters:
                break
            if old not in in_use:
                self._adapters.remove(old)
                self._model.delete_adapter(old)
        if in_use == {BASE_VERSION} and isinstance(self._model, PeftModel):
            self._model = self._model.unload()
            self._model.eval()
            self._adapters.clear()

    def _load_adapter(self, path: Path, version: str, user: str | None) -> None:
        """Runs on the generation thread, so never during a generation. On any failure
        the model is left as it was: the adapter's layers are removed again. ``user``
        None: serve it to everyone without an adapter of their own; else to that user."""
        from peft import PeftConfig, PeftModel

        started = time.perf_counter()
        self.last_load_seconds = None
        if not (path / "adapter_config.json").is_file():
            raise EngineError(f"{path} is not a LoRA adapter directory")
        if version not in self._adapters:
            self._check_adapter_shapes(path, version)
            try:
                if isinstance(self._model, PeftModel):
                    try:
                        self._model.load_adapter(str(path), adapter_name=version)
                    except BaseException:
                        if version in self._model.peft_config:
                            self._model.delete_adapter(version)
                        raise
                else:
                    config = PeftConfig.from_pretrained(str(path))
                    wrapped = PeftModel(self._model, config, adapter_name=version)
                    try:
                        wrapped.load_adapter(str(path), adapter_name=version)
                    except BaseException:
                        self._model = wrapped.unload()
                        self._model.eval()
                        raise
                    wrapped.eval()
                    self._model = wrapped
            except EngineError:
                raise
            except Exception as exc:
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                raise EngineError(
                    f"adapter {version} cannot be loaded: {type(exc).__name__}: {first}"
                ) from exc
        self._model.set_adapter(version)
        if user is None:
            self._version = version
        else:
            self._user_versions[user] = version
        # Most recently chosen last: the oldest unused is dropped first, never a served one.
        if version in self._adapters:
            self._adapters.remove(version)
        self._adapters.append(version)
        self._evict()
        self.last_load_seconds = time.perf_counter() - started

    def _check_adapter_shapes(self, path: Path, version: str) -> None:
        """Refuse an adapter whose LoRA matrices do not fit the served model's layers,
        before any layer of the model is touched."""
        model = self._model
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        modules = dict(model.named_modules())

        def layer_shape(name: str) -> tuple[int, int] | None:
            module = modules.get(name)
            if module is None:
                raise EngineError(f"adapter {version} targets {name}, which the model lacks")
            features_in = getattr(module, "in_features", None)
            features_out = getattr(module, "out_features", None)
            if features_in is None or features_out is None:
                return None
            return int(features_in), int(features_out)

        check_adapter_fits(path, version, layer_shape)

    async def use_base(self) -> None:
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._use_base)

    def _use_base(self) -> None:
        from peft import PeftModel

        started = time.perf_counter()
        self._version = BASE_VERSION
        if not self._user_versions:
            if isinstance(self._model, PeftModel):
                self._model = self._model.unload()
                self._model.eval()
            self._adapters.clear()
        else:
            self._evict()
        self.last_load_seconds = time.perf_counter() - started


class _StopCriteria:
    """Stops a sequence on cancellation, a stop string, or (single-line mode) a newline
    after some content; checked after every generated token."""

    def __init__(
        self, tokenizer: Any, prompt_len: int, params: GenerationParams, cancel: threading.Event
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = tuple(s for s in params.stop if s)
        self.single_line = params.single_line
        self.cancel = cancel

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        batch = input_ids.shape[0]
        if self.cancel.is_set():
            return torch.ones(batch, dtype=torch.bool, device=input_ids.device)
        done = []
        for row in input_ids:
            text = self.tokenizer.decode(row[self.prompt_len :], skip_special_tokens=False)
            stop = any(s in text for s in self.stops)
            if not stop and self.single_line:
                stripped = text.lstrip("\n")
                # A leading newline may start the line the completion belongs on.
                stop = "\n" in stripped.strip(" \t") if stripped else text.count("\n") > 1
            done.append(stop)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
