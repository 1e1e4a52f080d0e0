"""The FastAPI application: thin routes over the suggestion service and the writer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from prefloop import __version__
from prefloop.protocol import (
    EVENT_ADAPTER,
    ErrorBody,
    Event,
    EventBatch,
    EventsResult,
    RefusedEvent,
    SuggestionRequest,
    SuggestionResponse,
)
from prefloop.server.access import (
    Access,
    Authenticator,
    CallerDep,
    OptionalCallerDep,
    is_team,
    request_user,
    require_admin,
)
from prefloop.server.admin import router as admin_router
from prefloop.server.engines import Engine, EngineError, create_engine
from prefloop.server.judge.worker import JudgeWorker
from prefloop.server.metrics import Metrics
from prefloop.server.schedule import TrainingSchedule
from prefloop.server.suggestions import ClientGone, SuggestionService, Superseded
from prefloop.server.swap import Swapper
from prefloop.server.training_api import router as training_router
from prefloop.server.users_api import router as users_router
from prefloop.settings import Settings
from prefloop.store.writer import Writer

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ROUTES = ("/v1/suggestions", "/v1/events", "/healthz", "/metrics")


def _error(status: int, error: str, detail: list[str] | None = None) -> JSONResponse:
    body = ErrorBody(error=error, detail=detail or [])
    return JSONResponse(body.model_dump(), status_code=status)


def describe_errors(exc: ValidationError | RequestValidationError) -> list[str]:
    """Validation errors as short sentences, without the offending input."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        out.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return out


class _Guard:
    """Outermost ASGI layer: refuses oversized bodies before they are read and records
    request latency by route."""

    def __init__(self, app: Any, *, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                headers = dict(scope.get("headers") or [])
                length = headers.get(b"content-length")
                refusal: JSONResponse | None = None
                if length is None:
                    if headers.get(b"transfer-encoding"):
                        refusal = _error(411, "a Content-Length header is required")
                elif not length.isdigit():
                    refusal = _error(400, "invalid Content-Length header")
                elif int(length) > self.limit:
                    refusal = _error(
                        413, f"request body too large: the limit is {self.limit} bytes"
                    )
                if refusal is not None:
                    await refusal(scope, receive, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.request_seconds.labels(route, str(status["code"])).observe(
                time.perf_counter() - started
            )


class State:
    """What the routes need, built by the lifespan."""

    def __init__(self, settings: Settings, engine: Engine, writer: Writer, metrics: Metrics):
        self.settings = settings
        self.engine = engine
        self.writer = writer
        self.metrics = metrics
        self.judge = JudgeWorker(settings, engine, writer)
        self.swapper = Swapper(settings, engine)
        self.suggestions = SuggestionService(
            settings, engine, writer, metrics, on_request=self.judge.on_request
        )
        self.training = TrainingSchedule(settings)


def get_state(request: Request) -> State:
    state: State = request.app.state.prefloop
    return state


StateDep = Annotated[State, Depends(get_state)]


def create_app(settings: Settings, *, engine: Engine | None = None) -> Any:
    """The ASGI application. ``engine`` defaults to the one the settings configure."""
    metrics = Metrics()
    authenticator = Authenticator(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = Writer(settings.db_path, batch_size=settings.writer_batch_size, user=settings.user)
        writer.start()
        the_engine = engine or create_engine(settings)
        await the_engine.start()
        state = State(settings, the_engine, writer, metrics)
        state.suggestions.start()
        authenticator.admin_token()  # generated into the home on first start
        authenticator.writer = writer
        await state.swapper.sync("start-up")
        state.swapper.start_polling()
        await state.judge.start()
        state.training.start()  # scheduled retraining (train_schedule; off by default)
        app.state.prefloop = state
        log.info(
            "serving %s (%s, template %s) on the %s engine",
            settings.model,
            the_engine.version,
            state.suggestions.template_name,
            the_engine.name,
        )
        try:
            yield
        finally:
            state.training.stop()
            await state.swapper.stop()
            await state.judge.stop()
            await the_engine.close()
            authenticator.writer = None
            authenticator.close()
            writer.stop()

    app = FastAPI(
        title="prefloop",
        version=__version__,
        summary="Inline code suggestions that learn from feedback.",
        lifespan=lifespan,
    )
    app.state.authenticator = authenticator

    app.include_router(training_router)
    app.include_router(users_router)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid request", describe_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.post(
        "/v1/suggestions",
        response_model=SuggestionResponse,
        responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    )
    async def suggestions(
        body: SuggestionRequest, request: Request, state: StateDep, caller: CallerDep
    ) -> Any:
        """Inline suggestions at the cursor. A newer request with the same `session_id`
        cancels this one (answered 409). In team mode the suggestion is the token's user's
        (a body naming another user is refused with 403)."""
        user = request_user(request, caller, body.user)
        if user != body.user:
            body = body.model_copy(update={"user": user})
        try:
            return await state.suggestions.suggest(body, request.is_disconnected)
        except Superseded:
            return _error(409, "superseded by a newer request from the same session")
        except ClientGone:
            return Response(status_code=499)
        except EngineError as exc:
            log.warning("engine error: %s", exc)
            return _error(503, "the model engine is unavailable", [str(exc)])

    @app.post(
        "/v1/events",
        response_model=EventsResult,
        responses={
            422: {"model": EventsResult},
            413: {"model": ErrorBody},
            403: {"model": ErrorBody},
        },
    )
    async def events(body: EventBatch, request: Request, state: StateDep, caller: CallerDep) -> Any:
        """Store a batch of feedback events. Resending a batch stores nothing twice.
        Malformed events and events about unknown suggestions are refused (422) while
        the valid events of the batch are stored. In team mode an event about another
        user's suggestion is refused like an unknown one, and a batch with an event naming
        another user than the token's is refused whole (403)."""
        if len(body.events) > state.settings.max_events_per_batch:
            return _error(
                413,
                f"too many events in one batch: the limit is {state.settings.max_events_per_batch}",
            )
        team = is_team(request)
        if team:
            for raw in body.events:
                claimed = raw.get("user")
                request_user(request, caller, claimed if isinstance(claimed, str) else None)
        valid: list[Event] = []
        positions: list[int] = []
        refused: list[RefusedEvent] = []
        for index, raw in enumerate(body.events):
            try:
                valid.append(EVENT_ADAPTER.validate_python(raw))
                positions.append(index)
            except ValidationError as exc:
                raw_id = raw.get("id")
                usable = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 128 else None
                refused.append(
                    RefusedEvent(index=index, id=usable, error="; ".join(describe_errors(exc)))
                )
                state.metrics.events_refused.labels("malformed").inc()
        owner = caller.user if team else None
        result = await state.writer.ingest_events(valid, owner=owner) if valid else None
        stored = result.stored if result else []
        duplicates = result.duplicates if result else []
        if result and result.unknown:
            unknown = set(result.unknown)
            for index, event in zip(positions, valid, strict=True):
                if event.id in unknown:
                    refused.append(
                        RefusedEvent(index=index, id=event.id, error="unknown suggestion_id")
                    )
            state.metrics.events_refused.labels("unknown_suggestion").inc(len(result.unknown))
        if stored:
            kinds: dict[str, int] = {}
            stored_set = set(stored)
            for event in valid:
                if event.id in stored_set:
                    kinds[event.kind] = kinds.get(event.kind, 0) + 1
            for kind, count in kinds.items():
                state.metrics.events.labels(kind).inc(count)
        state.metrics.events_duplicate.inc(len(duplicates))
        refused.sort(key=lambda r: r.index)
        out = EventsResult(stored=stored, duplicates=duplicates, refused=refused)
        return JSONResponse(out.model_dump(), status_code=422 if refused else 200)

    @app.get("/healthz")
    async def healthz(request: Request, state: StateDep, caller: OptionalCallerDep) -> JSONResponse:
        """Engine, model version and database status; 503 when not ready to serve. In team
        mode only an admin sees more than the status."""
        engine = await state.engine.health()
        db_ok = state.writer.alive
        status = "ok" if engine.get("ok") and db_ok else "degraded"
        code = 200 if status == "ok" else 503
        if is_team(request) and (caller is None or not caller.is_admin):
            return JSONResponse({"status": status}, status_code=code)
        body = {
            "status": status,
            "version": __version__,
            "model_version": state.engine.version,
            "template": state.suggestions.template_name,
            "engine": engine,
            "db": {
                "ok": db_ok,
                "path": str(state.settings.db_path),
                "pending_writes": state.writer.pending(),
                "commits": state.writer.commits,
            },
            "judge": state.judge.describe(),
            "trainer": state.training.describe(),
            "swap": state.swapper.describe(),
        }
        if state.swapper.per_user:
            # Users served a version of their own (the first few by name) and how many.
            body["user_versions"] = state.swapper.served_users()
            body["user_versions_total"] = len(state.engine.user_versions)
        return JSONResponse(body, status_code=code)

    @app.get("/metrics")
    async def metrics_endpoint(request: Request, state: StateDep) -> Response:
        """Prometheus metrics (team mode: admins only)."""
        if is_team(request):
            await require_admin(request)
        state.metrics.writer_queue.set(state.writer.pending())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(admin_router)

    return _Guard(Access(app, authenticator), limit=settings.max_request_bytes, metrics=metrics)
