"""A client that keeps asking a running service for suggestions, for swap tests and the
hot swap benchmark. Each answer is kept with the version that made it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.waiting import wait_until


@dataclass(frozen=True)
class Answer:
    status: int
    version: str
    text: str
    suggestion_id: str
    sent: float  # time.monotonic() when sent
    done: float  # time.monotonic() when answered


class ContinuousLoad:
    """``clients`` threads sending ``payload`` back to back until :meth:`stop`."""

    def __init__(self, url: str, payload: dict[str, Any], *, clients: int = 1) -> None:
        self.url = url
        self.payload = payload
        self.clients = clients
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ContinuousLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for index in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post("/v1/suggestions", json=self.payload)
                except httpx.HTTPError as exc:
                    answer = Answer(0, "", repr(exc), "", sent, time.monotonic())
                else:
                    answer = self._answer(response, sent)
                with self._lock:
                    self.answers.append(answer)

    @staticmethod
    def _answer(response: httpx.Response, sent: float) -> Answer:
        done = time.monotonic()
        if response.status_code != 200:
            return Answer(response.status_code, "", response.text[:300], "", sent, done)
        body = response.json()
        text = body["candidates"][0]["text"] if body["candidates"] else ""
        return Answer(200, body["model_version"], text, body["suggestion_id"], sent, done)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def failed(self) -> list[Answer]:
        return [a for a in self.snapshot() if a.status != 200]

    def seen(self, version: str) -> int:
        return sum(1 for a in self.snapshot() if a.version == version)

    def wait_seen(self, version: str, count: int, timeout: float = 60) -> None:
        """Return once ``count`` answers came from ``version``."""
        wait_until(
            lambda: self.seen(version),
            lambda seen: seen >= count,
            what=f"{count} answers from {version}",
            timeout=timeout,
            interval=0.02,
        )

    def first_from(self, version: str, after: float) -> Answer | None:
        """The first answer from ``version`` sent at or after ``after``... or answered
        after it (a request queued behind the swap)."""
        candidates = [a for a in self.snapshot() if a.version == version and a.done >= after]
        return min(candidates, key=lambda a: a.done) if candidates else None
