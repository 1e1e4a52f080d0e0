"""Admin routes of training runs: start one, list them, show one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from prefloop.server.admin import require_admin
from prefloop.train_config import ConfigError, load_config
from prefloop.trainer.run import (
    NotEnoughPairs,
    RunInProgress,
    UnknownRun,
    get_run,
    list_runs,
    start_run,
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class RetrainRequest(BaseModel):
    """Body of ``POST /admin/retrain`` (optional)."""

    force: bool = Field(default=False, description="Train even with few new pairs.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Training settings overriding the defaults."
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": []}, status_code=status)


@router.post("/retrain", status_code=202)
async def retrain(request: Request, body: RetrainRequest | None = None) -> Any:
    """Start a training run; 202 with its id, 409 while another run is running, 422 when
    there is not enough data or the configuration is invalid."""
    settings = request.app.state.prefloop.settings
    body = body or RetrainRequest()
    try:
        config = load_config(overrides=body.config)
        run_id = await run_in_threadpool(
            start_run, settings, config=config, reason="admin", force=body.force
        )
    except RunInProgress as exc:
        return _error(409, str(exc))
    except (NotEnoughPairs, ConfigError) as exc:
        return _error(422, str(exc))
    return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202)


@router.get("/runs")
async def runs(request: Request, limit: int = 50) -> Any:
    """Training runs, newest first."""
    settings = request.app.state.prefloop.settings
    return {"runs": await run_in_threadpool(list_runs, settings, limit=max(1, min(limit, 500)))}


@router.get("/runs/{run_id}")
async def run_detail(run_id: str, request: Request) -> Any:
    """One training run; 404 when there is none with this id."""
    settings = request.app.state.prefloop.settings
    try:
        return await run_in_threadpool(get_run, settings, run_id)
    except UnknownRun as exc:
        return _error(404, str(exc))
