"""Hot swap: keep the engine serving the registry's promoted version, with no restart.

The service calls :meth:`Swapper.sync` at start-up, on ``POST /admin/reload`` and every
``swap_poll_seconds``. The engine loads the new adapter between generations, so no
request fails and each suggestion records the version that generated it. An adapter the
engine refuses leaves the old version serving; the error is logged and shown in
``/healthz``, and polling retries that same version only after
:data:`REFUSED_RETRY_SECONDS` (a vLLM server that was down may be back), when its files
change, or when a reload asks.

With ``train_adapters = per_user`` each sync also follows the users' own promoted
versions: a user's new version is loaded next to the others, a user rolled back to the
shared version has theirs dropped. A user adapter the engine refuses leaves that user on
what they were served, with the same retry rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.server.engines import BASE_VERSION, Engine
from prefloop.settings import Settings
from prefloop.store import utcnow

log = logging.getLogger(__name__)

REFUSED_RETRY_SECONDS = 60.0
HEALTH_USERS = 20
"""At most this many users are named in ``/healthz``; the counts cover all."""


@dataclass(frozen=True)
class SwapRecord:
    """One attempt to change the served version."""

    from_version: str
    to_version: str
    at: str
    seconds: float
    trigger: str  # "start-up", "reload", "poll", "promote", "rollback"
    error: str | None = None
    # Of ``seconds``, the time the engine spent switching; the rest was spent waiting
    # for the generation already running to finish on the old version.
    load_seconds: float | None = None


class Swapper:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.last: SwapRecord | None = None
        self.last_error: SwapRecord | None = None
        self.registry_version: str = BASE_VERSION
        self.registry_error: str | None = None
        self.per_user = settings.train_adapters == "per_user" and engine.serves_users
        self.user_registry: dict[str, str] = {}  # user -> their own promoted version
        self.user_errors: dict[str, str] = {}  # user -> why their version was refused
        self.last_user_swap: SwapRecord | None = None
        # (user or "", version) -> (adapter mtime, monotonic time) when it was refused
        self._refused: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def sync(self, trigger: str, *, retry: bool = False) -> SwapRecord | None:
        """Serve the registry's promoted version (and, per user, the users' own); returns
        the swap of the shared version made, if any."""
        async with self._lock:
            record = await self._sync_shared(trigger, retry)
            if self.per_user and self.registry_error is None:
                await self._sync_users(trigger, retry)
            return record

    def _refused_recently(self, key: tuple[str, str], stamp: float, retry: bool) -> bool:
        refused = self._refused.get(key)
        return (
            not retry
            and refused is not None
            and refused[0] == stamp
            and time.monotonic() - refused[1] < REFUSED_RETRY_SECONDS
        )

    async def _sync_shared(self, trigger: str, retry: bool) -> SwapRecord | None:
        try:
            wanted = await asyncio.to_thread(registry.current, self.settings)
        except Exception as exc:
            # A registry that cannot be read leaves serving as it is.
            self.registry_error = f"{type(exc).__name__}: {exc}"
            log.warning("cannot read the model registry: %s", self.registry_error)
            return None
        self.registry_error = None
        target = wanted.id if wanted is not None else BASE_VERSION
        self.registry_version = target
        served = self.engine.version
        if target == served:
            return None
        stamp = _stamp(wanted.adapter_path) if wanted is not None else 0.0
        if self._refused_recently(("", target), stamp, retry):
            return None
        started = time.perf_counter()
        error: str | None = None
        load_seconds: float | None = None
        try:
            if wanted is None:
                await self.engine.use_base()
            else:
                await self.engine.load_adapter(Path(wanted.adapter_path), wanted.id)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            measured = getattr(self.engine, "last_load_seconds", None)
            load_seconds = round(measured, 4) if isinstance(measured, float) else None
        record = SwapRecord(
            from_version=served,
            to_version=target,
            at=utcnow(),
            seconds=round(time.perf_counter() - started, 4),
            trigger=trigger,
            error=error,
            load_seconds=load_seconds,
        )
        self.last = record
        if error is None:
            self._refused.pop(("", target), None)
            log.info("now serving %s (was %s; %s, %.3fs)", target, served, trigger, record.seconds)
        else:
            self._refused[("", target)] = (stamp, time.monotonic())
            self.last_error = record
            log.error(
                "refused model version %s, still serving %s: %s",
                target,
                self.engine.version,
                error,
            )
        return record

    async def _sync_users(self, trigger: str, retry: bool) -> None:
        """Load each user's own promoted version that the engine does not serve them yet;
        drop the adapters of users who have none any more."""
        try:
            wanted = await asyncio.to_thread(registry.user_versions, self.settings)
        except Exception as exc:
            self.registry_error = f"{type(exc).__name__}: {exc}"
            log.warning("cannot read the users' versions: %s", self.registry_error)
            return
        self.user_registry = {user: version.id for user, version in wanted.items()}
        served = self.engine.user_versions
        for user in sorted(set(served) - set(wanted)):
            await self.engine.drop_user_adapter(user)
            self.user_errors.pop(user, None)
            log.info("user %s is served the shared version again (was %s)", user, served[user])
        for user, version in sorted(wanted.items()):
            if served.get(user) == version.id:
                continue
            stamp = _stamp(version.adapter_path)
            if self._refused_recently((user, version.id), stamp, retry):
                continue
            started = time.perf_counter()
            error: str | None = None
            try:
                await self.engine.load_user_adapter(user, Path(version.adapter_path), version.id)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.last_user_swap = SwapRecord(
                from_version=served.get(user, self.engine.version),
                to_version=version.id,
                at=utcnow(),
                seconds=round(time.perf_counter() - started, 4),
                trigger=f"{trigger} (user {user})",
                error=error,
            )
            if error is None:
                self._refused.pop((user, version.id), None)
                self.user_errors.pop(user, None)
                log.info("user %s now served %s (%s)", user, version.id, trigger)
            else:
                self._refused[(user, version.id)] = (stamp, time.monotonic())
                self.user_errors[user] = f"{version.id}: {error}"
                log.error("refused %s for user %s: %s", version.id, user, error)

    def served_users(self, limit: int = HEALTH_USERS) -> dict[str, str]:
        """Users served a version of their own and that version, the first ``limit`` by name."""
        served = self.engine.user_versions
        return {user: served[user] for user in sorted(served)[:limit]}

    def start_polling(self) -> None:
        if self.settings.swap_poll_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._poll(), name="prefloop-swap-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.swap_poll_seconds)
            try:
                await self.sync("poll")
            except Exception:
                log.exception("registry poll failed")

    def describe(self) -> dict[str, Any]:
        """The ``swap`` block of ``/healthz``."""
        return {
            "served": self.engine.version,
            "promoted": self.registry_version,
            "in_sync": self.engine.version == self.registry_version,
            "last": asdict(self.last) if self.last else None,
            "last_error": asdict(self.last_error) if self.last_error else None,
            "registry_error": self.registry_error,
            "poll_seconds": self.settings.swap_poll_seconds,
            **(self._describe_users() if self.per_user else {}),
        }

    def _describe_users(self) -> dict[str, Any]:
        served = self.engine.user_versions
        return {
            "users_served": len(served),
            "users_promoted": len(self.user_registry),
            "users_in_sync": served == self.user_registry,
            "last_user_swap": asdict(self.last_user_swap) if self.last_user_swap else None,
            "user_errors": dict(sorted(self.user_errors.items())[:HEALTH_USERS]),
        }


def _stamp(adapter_path: str) -> float:
    try:
        return Path(adapter_path, "adapter_config.json").stat().st_mtime
    except OSError:
        return -1.0
