"""Waiting in tests: look at an observable state again and again until a condition on it
holds, or fail with what was awaited and the last value seen.

``wait_until`` blocks the calling thread between looks; ``wait_until_async`` yields to the
event loop between looks (so a client on that loop keeps reading), and takes an
observation that is either a plain function or a coroutine function.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.05
_SHOWN_CHARS = 2000


class WaitTimeout(AssertionError):
    """The awaited condition did not hold before the deadline."""


class _Watch:
    """The deadline of one wait and the last thing it saw."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.looks = 0
        self.last: str = "nothing (no look finished)"

    def saw(self, value: object) -> None:
        self.looks += 1
        self.last = _shown(repr(value))

    def failed_look(self, exc: BaseException) -> None:
        self.looks += 1
        self.last = _shown(f"{type(exc).__name__}: {exc}")

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def message(self) -> str:
        return (
            f"timed out after {self.timeout:g} s ({self.looks} looks) waiting for "
            f"{self.what}; last seen: {self.last}"
        )


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_CHARS:
        return text
    return text[:_SHOWN_CHARS] + f"... ({len(text)} chars)"


def wait_until(
    observe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    retry_on: tuple[type[Exception], ...] = (),
    error: Callable[[str], Exception] = WaitTimeout,
) -> T:
    """The first value of ``observe()`` for which ``until(value)`` is true (by default:
    the first truthy value).

    Looks once more after the deadline has passed, so a state reached during the last
    interval counts. An exception of a type in ``retry_on`` counts as "not yet" and is
    reported as the last thing seen; any other exception ends the wait. On timeout,
    raises ``error(message)`` (a :class:`WaitTimeout` unless told otherwise), the message
    naming ``what`` and the last value seen.
    """
    watch = _Watch(what, timeout)
    while True:
        expired = watch.expired()
        try:
            value = observe()
        except retry_on as exc:
            watch.failed_look(exc)
        else:
            if until(value):
                return value
            watch.saw(value)
        if expired:
            raise error(watch.message())
        time.sleep(interval)


@overload
async def wait_until_async(
    observe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
    error: Callable[[str], Exception] = ...,
) -> T: ...


@overload
async def wait_until_async(
    observe: Callable[[], T],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
    error: Callable[[str], Exception] = ...,
) -> T: ...


async def wait_until_async(
    observe: Callable[[], Any],
    until: Callable[[Any], object] = bool,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    retry_on: tuple[type[Exception], ...] = (),
    error: Callable[[str], Exception] = WaitTimeout,
) -> Any:
    """:func:`wait_until` for a test running on an event loop: the loop runs between
    looks, and ``observe`` may be a coroutine function."""
    watch = _Watch(what, timeout)
    while True:
        expired = watch.expired()
        try:
            seen = observe()
            value = await seen if inspect.isawaitable(seen) else seen
        except retry_on as exc:
            watch.failed_look(exc)
        else:
            if until(value):
                return value
            watch.saw(value)
        if expired:
            raise error(watch.message())
        await asyncio.sleep(interval)
