"""``prefloop lsp``: the pygls language server.

Thin handlers over plain parts: :class:`~prefloop.lsp.documents.Document` keeps the text,
:class:`~prefloop.lsp.signals.SignalTracker` infers feedback events,
:class:`~prefloop.lsp.service.ServiceClient` talks to ``prefloop serve`` and
:class:`~prefloop.lsp.delivery.EventDelivery` gets events there in the background.

Features: ``textDocument/inlineCompletion`` (debounced, cancelled eagerly by a newer
request or ``$/cancelRequest``, served from the offer's cache while the user types
through it), incremental text sync, ``didSave``/``didClose``, and the commands
``prefloop.accept`` (attached to every item), ``prefloop.dismiss`` (Escape),
``prefloop.toggle``, ``prefloop.retrain`` and ``prefloop.status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sqlite3
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from prefloop import __version__
from prefloop.protocol import (
    MAX_TEXT_CHARS,
    Event,
    Position,
    ServiceState,
    StatusAnswer,
    SuggestionRequest,
    SuggestionResponse,
    TodayCounts,
)
from prefloop.settings import Settings

from .commands import ACCEPT
from .config import LspConfig
from .delivery import EventDelivery
from .documents import Document
from .events import EventFactory
from .offers import CachedItem
from .rpc import PrefloopProtocol
from .service import CONNECTED, ServiceClient
from .signals import SignalTracker
from .spool import Spool
from .stats import DailyStats
from .stdio import serve_stdio

log = logging.getLogger(__name__)


def _empty() -> types.InlineCompletionList:
    return types.InlineCompletionList(items=[])


class PrefloopLanguageServer(LanguageServer):
    """The language server's state and behaviour; its handlers are registered by
    :func:`prefloop.lsp.features.create_server`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            "prefloop",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=PrefloopProtocol,
        )
        self.config = LspConfig(settings)
        self.documents: dict[str, Document] = {}
        self.stats = DailyStats()
        self.signals = SignalTracker(self.documents, self.config.timings, EventFactory())
        self.service: ServiceClient | None = None
        self.delivery: EventDelivery | None = None
        self.session_id = uuid.uuid4().hex
        self.root: Path | None = None
        self._early: list[Event] = []
        self._inflight: asyncio.Future[SuggestionResponse | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._finished = False

    # ---- lifecycle ---------------------------------------------------------------------

    def setup(self, params: types.InitializeParams) -> None:
        """Apply ``initializationOptions`` and start the background parts."""
        self.config, warnings = self.config.with_options(params.initialization_options)
        for warning in warnings:
            log.warning("%s", warning)
        self.signals.timings = self.config.timings
        self.root = _workspace_root(params)
        settings = self.config.settings
        self.service = ServiceClient(
            settings.server_url,
            connect_timeout=settings.lsp_connect_timeout,
            request_timeout=settings.lsp_request_timeout,
            token=self.config.user_token,
            admin_token=self.config.admin_bearer,
            on_auth_error=self._show_auth_error,
        )
        self.delivery = EventDelivery(_open_spool(settings.spool_dir), self.service)
        self.delivery.start()
        self.delivery.submit(self._early)
        self._early = []
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, self._terminate)
        log.info("prefloop lsp %s talking to %s", __version__, settings.server_url)

    async def finish(self) -> None:
        """``shutdown``: every open document counts as closed; events are spooled and a
        last delivery is attempted."""
        if self._finished:
            return
        self._emit(self.signals.shutdown(self._now()))
        self._finished = True
        self._cancel_inflight()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.delivery is not None:
            await self.delivery.close(timeout=2.0)
        if self.service is not None:
            await self.service.aclose()

    def persist_leftovers(self) -> None:
        """After the event loop is gone (exit without shutdown, lost client): spool what
        is left, synchronously."""
        if not self._finished:
            self._finished = True
            self._store(self.signals.shutdown(time.monotonic()))
        if self.delivery is not None:
            self.delivery.persist_now()
            self.delivery.spool.close()

    def _show_auth_error(self, message: str) -> None:
        """Tell the editor, once per new reason, that the service refuses the token."""
        with contextlib.suppress(Exception):
            warning = types.MessageType.Warning
            self.window_show_message(
                types.ShowMessageParams(type=warning, message=f"prefloop: {message}")
            )

    def _terminate(self) -> None:
        self.persist_leftovers()
        os._exit(0)

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve over stdio, reading stdin on the event loop (see :mod:`.stdio`)."""
        if stdin is not None or stdout is not None:
            super().start_io(stdin, stdout)
            return
        serve_stdio(self)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Protocol errors are logged (by type only), not shown to the user."""
        log.warning(
            "protocol error (%s): %s", getattr(source, "__name__", source), type(error).__name__
        )

    # ---- events and time ---------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _emit(self, events: list[Event]) -> None:
        if events:
            self._store(events)
        if not self._finished:
            self._reschedule()

    def _store(self, events: list[Event]) -> None:
        if not events:
            return
        self.stats.record(events)
        if self.delivery is None:
            self._early.extend(events)
            return
        self.delivery.submit(events)
        if self._finished:
            self.delivery.persist_now()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.signals.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._emit(self.signals.tick(self._now()))

    # ---- documents ---------------------------------------------------------------------

    def open_document(self, item: types.TextDocumentItem) -> None:
        if item.uri in self.documents:
            self._emit(self.signals.close(item.uri, self._now()))
        negotiated = self.protocol.workspace.position_encoding
        encoding = negotiated.value if isinstance(negotiated, enum.Enum) else str(negotiated)
        self.documents[item.uri] = Document(
            item.uri,
            item.text,
            language_id=item.language_id,
            version=item.version,
            encoding=encoding,
        )

    def change_document(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = self.documents.get(uri)
        if doc is None:
            log.warning("change for a document that is not open; ignored")
            return
        now = self._now()
        events: list[Event] = []
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                bounds = (r.start.line, r.start.character, r.end.line, r.end.character)
                edit = doc.apply(change.text, bounds)
            else:
                edit = doc.apply(change.text)
            events.extend(self.signals.edit(uri, edit, now))
        doc.version = params.text_document.version
        self._emit(events)

    def save_document(self, uri: str) -> None:
        if uri in self.documents:
            self._emit(self.signals.save(uri, self._now()))

    def close_document(self, uri: str) -> None:
        if uri not in self.documents:
            return
        self._emit(self.signals.close(uri, self._now()))
        del self.documents[uri]

    # ---- inline completion -------------------------------------------------------------

    async def complete(self, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        uri = params.text_document.uri
        doc = self.documents.get(uri)
        if doc is None or self._finished:
            return _empty()
        now = self._now()
        offset = doc.offset_at(params.position.line, params.position.character)
        explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        outcome, events = self.signals.request(uri, offset, now, explicit=explicit)
        self._emit(events)
        self._cancel_inflight()
        position = types.Position(*doc.position_at(offset))
        if outcome.suggestion_id is not None:
            return _items(outcome.suggestion_id, outcome.items, position)
        if not self.config.enabled or doc.is_binary() or self.service is None:
            self._emit(self.signals.no_suggestion(outcome.ticket, now))
            return _empty()
        request = self._suggestion_request(doc, offset)
        revision = doc.revision
        task = asyncio.ensure_future(self._fetch(request, explicit))
        self._inflight = task
        try:
            response = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                self._emit(self.signals.no_suggestion(outcome.ticket, self._now(), cancelled=True))
                raise
            return _empty()
        except Exception as exc:
            log.error("suggestion request failed: %s", type(exc).__name__)
            response = None
        finally:
            if self._inflight is task:
                self._inflight = None
        now = self._now()
        candidates = tuple(c.text for c in response.candidates) if response else ()
        unchanged = self.documents.get(uri) is doc and doc.revision == revision
        if (
            response is None
            or not any(candidates)
            or not unchanged
            or not self.signals.is_current(outcome.ticket)
        ):
            self._emit(self.signals.no_suggestion(outcome.ticket, now))
            return _empty()
        self._emit(
            self.signals.delivered(
                outcome.ticket, uri, response.suggestion_id, candidates, offset, now
            )
        )
        items = tuple(CachedItem(i, text) for i, text in enumerate(candidates) if text)
        return _items(response.suggestion_id, items, position)

    def _cancel_inflight(self) -> None:
        """Eager cancellation: the older request's HTTP call is dropped (the service sees
        the connection close and stops generating)."""
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
        self._inflight = None

    async def _fetch(self, request: SuggestionRequest, explicit: bool) -> SuggestionResponse | None:
        debounce = self.config.settings.lsp_debounce
        if debounce > 0 and not explicit:
            await asyncio.sleep(debounce)
        assert self.service is not None
        return await self.service.suggest(request)

    def _suggestion_request(self, doc: Document, offset: int) -> SuggestionRequest:
        settings = self.config.settings
        prefix, suffix = doc.window(
            offset,
            min(settings.lsp_max_prefix_chars, MAX_TEXT_CHARS),
            min(settings.lsp_max_suffix_chars, MAX_TEXT_CHARS),
        )
        line, character = doc.position_at(offset)
        return SuggestionRequest(
            prefix=prefix,
            suffix=suffix,
            language=(doc.language_id or "plaintext")[:64],
            path=self._relative_path(doc.uri)[-1024:],
            cursor=Position(line=line, character=character),
            mode=settings.lsp_mode,
            max_tokens=settings.lsp_max_tokens,
            n=settings.lsp_candidates,
            client_request_id=uuid.uuid4().hex,
            session_id=self.session_id,
            # With a token the service takes the user from it; the body names none.
            user=None if self.config.user_token else settings.user[:128] or None,
        )

    def _relative_path(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return PurePosixPath(unquote(parsed.path)).name or parsed.scheme
        path = Path(to_fs_path(uri) or unquote(parsed.path))
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name

    # ---- commands ----------------------------------------------------------------------

    def accept(self, arguments: tuple[Any, ...]) -> dict[str, Any]:
        if (
            len(arguments) < 3
            or not isinstance(arguments[0], str)
            or not arguments[0]
            or isinstance(arguments[1], bool)
            or not isinstance(arguments[1], int)
            or not isinstance(arguments[2], str)
        ):
            raise JsonRpcInvalidParams(
                message=f"{ACCEPT} takes a suggestion id, a candidate index and the inserted text"
            )
        suggestion_id, index, inserted = arguments[0][:128], arguments[1], arguments[2]
        self._emit(self.signals.accept(suggestion_id, index, inserted, self._now()))
        return {"accepted": True}

    def dismiss(self, arguments: tuple[Any, ...]) -> dict[str, Any]:
        target = arguments[0] if arguments and isinstance(arguments[0], str) else None
        done, events = self.signals.dismiss(target, self._now())
        self._emit(events)
        return {"dismissed": done}

    def toggle(self, arguments: tuple[Any, ...]) -> dict[str, Any]:
        wanted = arguments[0] if arguments and isinstance(arguments[0], bool) else None
        enabled = not self.config.enabled if wanted is None else wanted
        self.config = replace(self.config, enabled=enabled)
        if not enabled:
            self._cancel_inflight()
        return {"enabled": enabled}

    async def retrain(self) -> dict[str, Any]:
        if self.service is None:
            return {"ok": False, "available": None, "message": "not initialized"}
        return await self.service.retrain()

    async def status_answer(self) -> StatusAnswer:
        """The answer to ``prefloop.status``; asks the service's /healthz on the way."""
        health = await self.service.health() if self.service is not None else None
        spooled = None
        if self.delivery is not None:
            spooled = await asyncio.to_thread(self.delivery.spool.count)
        state = self.service.state if self.service is not None else "unknown"
        return StatusAnswer(
            connected=state == CONNECTED,
            state=cast(ServiceState, state),
            server_url=self.config.settings.server_url,
            model_version=self.service.model_version if self.service is not None else None,
            service_status=health.get("status") if health else None,
            last_error=self.service.last_error if self.service is not None else None,
            auth_error=self.service.auth_error if self.service is not None else None,
            enabled=self.config.enabled,
            today=TodayCounts.model_validate(self.stats.summary()),
            spooled_events=spooled,
            version=__version__,
        )

    async def status(self) -> dict[str, Any]:
        """:meth:`status_answer` as JSON, with the protocol's camelCase keys."""
        return (await self.status_answer()).model_dump(mode="json", by_alias=True)


def _items(
    suggestion_id: str, items: tuple[CachedItem, ...], position: types.Position
) -> types.InlineCompletionList:
    return types.InlineCompletionList(
        items=[
            types.InlineCompletionItem(
                insert_text=item.text,
                range=types.Range(start=position, end=position),
                command=types.Command(
                    title="Accept suggestion",
                    command=ACCEPT,
                    arguments=[suggestion_id, item.candidate_index, item.text],
                ),
            )
            for item in items
        ]
    )


def _workspace_root(params: types.InitializeParams) -> Path | None:
    uri = params.root_uri
    if uri is None and params.workspace_folders:
        uri = params.workspace_folders[0].uri
    if uri is not None:
        path = to_fs_path(uri)
        return Path(path) if path else None
    return Path(params.root_path) if params.root_path else None


def _open_spool(directory: Path) -> Spool:
    try:
        return Spool(directory)
    except (OSError, sqlite3.Error) as exc:
        fallback = Path(tempfile.mkdtemp(prefix="prefloop-spool-"))
        log.error(
            "cannot open the event spool in %s (%s); using %s for this session",
            directory,
            type(exc).__name__,
            fallback,
        )
        return Spool(fallback)
