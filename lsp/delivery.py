"""Getting events to the service without ever making the editor wait.

:meth:`EventDelivery.submit` only appends to a list. A background task writes what was
submitted to the durable :class:`~prefloop.lsp.spool.Spool` (in a worker thread; event
texts pass secret redaction on the way), then posts the spool's oldest events in
batches to ``POST /v1/events`` and forgets those the service acknowledged. When the
service cannot be reached, the task backs off (up to ``retry_max`` seconds) and tries
again; events keep accumulating in the spool meanwhile, and a language server started
later sends what an earlier one left behind.

A batch refused for its token (401: missing, wrong or revoked; 403: not allowed) stays in
the spool whole: the task backs off further (doubling up to ``auth_retry_max`` seconds,
five minutes by default), the service client's ``auth_error`` says why for the status,
and the events go once the service takes the token (a language server started with the
right one sends them at once).

Refusals: an event refused as malformed is logged (by id) and dropped, never retried;
one refused because the service does not know its suggestion (yet) is retried a few
times, then dropped; the rest of the batch is kept either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence

from prefloop.protocol import Event
from prefloop.redaction import redact

from .service import PostOutcome, ServiceClient
from .spool import Spool, Spooled

log = logging.getLogger(__name__)

UNKNOWN_SUGGESTION = "unknown suggestion_id"


def serialize(event: Event) -> tuple[str, str]:
    """(id, JSON body) of an event, its text redacted."""
    data = event.model_dump(exclude_none=True)
    text = data.get("text")
    if isinstance(text, str) and text:
        data["text"] = redact(text)
    return event.id, json.dumps(data, ensure_ascii=False)


class EventDelivery:
    """Spool-first, batched, retried delivery of feedback events."""

    def __init__(
        self,
        spool: Spool,
        service: ServiceClient,
        *,
        batch_size: int = 200,
        retry_base: float = 0.25,
        retry_max: float = 5.0,
        lease_seconds: float = 30.0,
        max_refusals: int = 5,
        idle_poll: float = 30.0,
        auth_retry_max: float = 300.0,
    ) -> None:
        self.spool = spool
        self.service = service
        self.batch_size = batch_size
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lease_seconds = lease_seconds
        self.max_refusals = max_refusals
        self.idle_poll = idle_poll
        self.auth_retry_max = auth_retry_max
        self.owner = uuid.uuid4().hex
        self.delivered = 0
        self.dropped = 0
        self._buffer: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._send_size = batch_size

    # ---- producer side -----------------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for delivery; returns at once."""
        if events:
            self._buffer.extend(events)
            self._wake.set()

    def persist_now(self) -> None:
        """Write queued events to the spool on this thread (for shutdown paths)."""
        events, self._buffer = self._buffer, []
        if events:
            self.spool.add([serialize(e) for e in events])

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="delivery")
            self._wake.set()

    async def close(self, timeout: float = 2.0) -> None:
        """Stop after the current send round, spool what is queued, and try one last send,
        all within about ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(self.persist_now)
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self._send_all(), max(0.1, deadline - loop.time()))

    # ---- the background task -----------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0
        next_try = 0.0
        while not self._stopping:
            timeout = self.idle_poll if delay == 0 else max(0.0, next_try - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._persist()
                if loop.time() < next_try:
                    continue
                if await self._send_all():
                    delay, next_try = 0.0, 0.0
                else:
                    delay = self._next_delay(delay)
                    next_try = loop.time() + delay
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("event delivery failed: %s", type(exc).__name__)
                delay = self.retry_max
                next_try = loop.time() + delay

    def _next_delay(self, delay: float) -> float:
        """The wait before the next attempt after ``delay``: doubling up to ``retry_max``,
        or while the service refuses the token, from ``retry_max`` up to ``auth_retry_max``."""
        if self.service.auth_error is not None:
            return min(max(delay * 2, self.retry_max), max(self.auth_retry_max, self.retry_max))
        return min(max(delay * 2, self.retry_base), self.retry_max)

    async def _persist(self) -> None:
        events, self._buffer = self._buffer, []
        if events:
            await asyncio.to_thread(self.spool.add, [serialize(e) for e in events])

    async def _send_all(self) -> bool:
        """Send spooled events until none are left (True) or sending must wait (False)."""
        while True:
            batch = await asyncio.to_thread(
                self.spool.claim, self.owner, self._send_size, self.lease_seconds
            )
            if not batch:
                return True
            try:
                outcome = await self.service.post_events([item.body for item in batch])
            except asyncio.CancelledError:
                self.spool.release([item.id for item in batch])
                raise
            if not await self._settle(batch, outcome):
                return False

    async def _settle(self, batch: list[Spooled], outcome: PostOutcome) -> bool:
        """Apply the service's verdict to a claimed batch; False when the rest must wait."""
        ids = [item.id for item in batch]
        if outcome.status == 413 and len(batch) > 1:
            self._send_size = max(1, len(batch) // 2)
            await asyncio.to_thread(self.spool.release, ids)
            return True
        if outcome.status in (413, 422) and not outcome.parsed and len(batch) > 1:
            self._send_size = 1  # find the culprit: one event per batch until things pass
            await asyncio.to_thread(self.spool.release, ids)
            return True
        if outcome.status in (413, 422) and not outcome.parsed:
            log.warning("dropping event %s: refused by the service (%d)", ids[0], outcome.status)
            self.dropped += 1
            await asyncio.to_thread(self.spool.delete, ids)
            return True
        if not outcome.parsed:
            await asyncio.to_thread(self.spool.release, ids)
            if outcome.status in (401, 403):
                log.info("event batch refused for its token (%d); kept", outcome.status)
            elif outcome.status is not None:
                log.warning("event batch answered %d; will retry", outcome.status)
            return False
        by_id = {item.id: item for item in batch}
        finished = [i for i in outcome.done if i in by_id]
        retry: list[str] = []
        for event_id, index, reason in outcome.refused:
            if event_id is None or event_id not in by_id:
                event_id = ids[index] if 0 <= index < len(ids) else None
            if event_id is None:
                continue
            attempts = by_id[event_id].attempts + 1
            if reason == UNKNOWN_SUGGESTION and attempts < self.max_refusals:
                retry.append(event_id)
                continue
            log.warning("dropping event %s refused by the service: %s", event_id, reason)
            self.dropped += 1
            finished.append(event_id)
        accounted = set(finished) | set(retry)
        unaccounted = [i for i in ids if i not in accounted]
        await asyncio.to_thread(self.spool.delete, finished)
        await asyncio.to_thread(self.spool.release, retry, refused=True)
        await asyncio.to_thread(self.spool.release, unaccounted)
        self.delivered += len(outcome.done)
        if outcome.status == 200:
            self._send_size = self.batch_size
        return not retry and not unaccounted
