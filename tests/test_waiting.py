"""The tests' waiting helper: what it returns, when it gives up, and what it says then."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import WaitTimeout, wait_until, wait_until_async


def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter), lambda n: n >= 3, what="3", interval=0) == 3
    assert wait_until(iter([0, "", "x"]).__next__, what="something truthy", interval=0) == "x"


def test_the_timeout_names_what_was_awaited_and_the_last_value_seen() -> None:
    counter = itertools.count()
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: next(counter), lambda n: n < 0, what="a negative number", timeout=0.05)
    message = str(failure.value)
    assert "a negative number" in message
    looks = int(message.split("(")[1].split(" looks")[0])
    assert looks >= 2 and f"last seen: {looks - 1}" in message
    assert isinstance(failure.value, AssertionError)


def test_listed_exceptions_mean_not_yet_and_others_end_the_wait() -> None:
    answers: list[int | Exception] = [ConnectionError("refused"), ConnectionError("refused"), 200]

    def status() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(status, what="an answer", interval=0, retry_on=(ConnectionError,)) == 200
    with pytest.raises(WaitTimeout, match=r"last seen: ConnectionError: refused"):
        wait_until(
            lambda: status_of(ConnectionError("refused")),
            what="an answer",
            timeout=0.02,
            retry_on=(ConnectionError,),
        )
    empty: dict[str, int] = {}
    with pytest.raises(KeyError):
        wait_until(lambda: empty["missing"], what="a key", retry_on=(ConnectionError,))


def status_of(exc: Exception) -> int:
    raise exc


def test_a_custom_error_type() -> None:
    class DriverError(RuntimeError):
        pass

    with pytest.raises(DriverError, match="the page"):
        wait_until(lambda: None, what="the page", timeout=0.01, error=DriverError)


def test_async_waits_take_plain_and_coroutine_observations() -> None:
    seen: list[int] = []

    async def look() -> int:
        seen.append(len(seen))
        return seen[-1]

    async def both() -> tuple[int, int]:
        first = await wait_until_async(look, lambda n: n == 2, what="2", interval=0)
        second = await wait_until_async(lambda: len(seen), lambda n: n == 3, what="3")
        return first, second

    assert asyncio.run(both()) == (2, 3)
    with pytest.raises(WaitTimeout, match="last seen: 3"):
        asyncio.run(wait_until_async(lambda: len(seen), lambda n: n > 3, what="4", timeout=0.02))
