"""Admin routes of training runs: start one, list them, show one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from prefloop.protocol import (
    ErrorBody,
    RetrainAccepted,
    RetrainRequest,
    RunList,
    TrainingRefusal,
    TrainingRun,
)
from prefloop.server.access import AdminDep, require_admin
from prefloop.train_config import ConfigError, load_config
from prefloop.training import RunError, get_run, list_runs, start_run

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

REFUSAL_STATUS: dict[TrainingRefusal, int] = {
    "run_in_progress": 409,
    "not_enough_pairs": 422,
    "invalid_config": 422,
    "unknown_run": 404,
}
"""The HTTP status of each refusal of the training routes."""


def _refuse(refusal: TrainingRefusal | None, message: str) -> JSONResponse:
    status = REFUSAL_STATUS[refusal] if refusal is not None else 500
    return JSONResponse(ErrorBody(error=message).model_dump(), status_code=status)


@router.post(
    "/retrain",
    status_code=202,
    response_model=RetrainAccepted,
    responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def retrain(request: Request, caller: AdminDep, body: RetrainRequest | None = None) -> Any:
    """Start a training run; 202 with its id, 409 while another run is running, 422 when
    there is not enough data or the configuration is invalid."""
    settings = request.app.state.prefloop.settings
    body = body or RetrainRequest()
    try:
        config = load_config(overrides=body.config)
    except ConfigError as exc:
        return _refuse("invalid_config", str(exc))
    try:
        run_id = await run_in_threadpool(
            start_run,
            settings,
            config=config,
            reason="admin",
            force=body.force,
            requested_by=caller.user,
        )
    except RunError as exc:
        return _refuse(exc.refusal, str(exc))
    return JSONResponse(RetrainAccepted(run_id=run_id).model_dump(), status_code=202)


@router.get("/runs", response_model=RunList)
async def runs(request: Request, limit: int = 50) -> Any:
    """Training runs, newest first."""
    settings = request.app.state.prefloop.settings
    found = await run_in_threadpool(list_runs, settings, limit=max(1, min(limit, 500)))
    return RunList(runs=found)


@router.get("/runs/{run_id}", response_model=TrainingRun, responses={404: {"model": ErrorBody}})
async def run_detail(run_id: str, request: Request) -> Any:
    """One training run; 404 when there is none with this id."""
    settings = request.app.state.prefloop.settings
    try:
        run: TrainingRun = await run_in_threadpool(get_run, settings, run_id)
    except RunError as exc:
        return _refuse(exc.refusal, str(exc))
    return run
