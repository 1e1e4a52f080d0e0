"""The engine interface: generate candidates, cancel, load an adapter, report a version.

An engine may also hold adapters of single users next to the shared one
(:attr:`Engine.serves_users`): a generation for such a user runs on their adapter, any
other on the shared version.

Both engines (in-process transformers, remote vLLM) implement it and pass the same
contract tests. Cancellation is asyncio cancellation of :meth:`Engine.generate`: an
engine must stop spending compute on a cancelled generation promptly.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefloop.registry import BASE

BASE_VERSION = BASE
"""The version an engine reports while no adapter is loaded: the registry's name for the
base model."""


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    n: int = 1
    temperature: float = 0.6
    stop: tuple[str, ...] = ()
    single_line: bool = False
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop", "length" or "cancelled"
    tokens: int
    version: str = ""  # the model version that generated it ("" when unknown)


@dataclass
class EngineStats:
    generations: int = 0
    cancelled: int = 0
    tokens: int = 0


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop sequence; says whether one was found."""
    cut = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut], cut < len(text)


class EngineError(RuntimeError):
    """The engine could not produce a result (backend down, bad adapter, ...)."""


class Engine(abc.ABC):
    """A text generator behind the suggestion service."""

    name: str
    stats: EngineStats
    serves_users: bool = False
    """Whether the engine can hold user adapters (:meth:`load_user_adapter`)."""

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """The model version that serves requests now (``base`` or an adapter version)."""

    @property
    @abc.abstractmethod
    def tokenizer(self) -> Any:
        """A Hugging Face tokenizer matching the served model (prompt budgets, FIM tokens)."""

    @property
    @abc.abstractmethod
    def max_context_tokens(self) -> int:
        """Prompt plus completion tokens the model accepts."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load or connect; called once before the first request."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @property
    def user_versions(self) -> dict[str, str]:
        """The users served an adapter of their own, and its version."""
        return {}

    def version_for(self, user: str | None) -> str:
        """The version a generation for ``user`` runs on now."""
        return self.user_versions.get(user, self.version) if user else self.version

    async def load_user_adapter(self, user: str, path: Path, version: str) -> None:
        """Serve ``user`` the adapter at ``path`` from their next request on; the shared
        version and other users are untouched. :class:`EngineError` when the engine
        cannot (the user keeps what they were served)."""
        raise EngineError(f"the {self.name} engine serves no adapter of a single user")

    async def drop_user_adapter(self, user: str) -> None:  # noqa: B027 - optional hook
        """Serve ``user`` the shared version again."""

    @abc.abstractmethod
    async def generate(
        self, prompt: str, params: GenerationParams, user: str | None = None
    ) -> list[Generation]:
        """Generate ``params.n`` completions of ``prompt``: the first greedy, the rest
        sampled, on the version served to ``user`` (the shared one when None or when
        the user has none of their own). Cancelling the awaiting task stops the work."""

    @abc.abstractmethod
    async def load_adapter(self, path: Path, version: str) -> None:
        """Load a LoRA adapter and serve it from the next request on, with no restart.

        Generations already running finish on the version they started with. An adapter
        that cannot be loaded (bad files, shapes that do not fit the base model) raises
        :class:`EngineError` and the engine keeps serving what it served before."""

    @abc.abstractmethod
    async def use_base(self) -> None:
        """Serve the base model without any adapter."""

    @abc.abstractmethod
    async def health(self) -> dict[str, Any]:
        """A small status report; ``ok`` says whether requests can be served."""
