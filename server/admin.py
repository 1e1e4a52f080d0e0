"""The ``/admin`` API: model versions, promotion, rollback and reload.

Every route needs an admin caller (:func:`~prefloop.server.access.require_admin`: an
admin's token in team mode, the admin token in local mode). Routes are thin: the registry
does the bookkeeping, the swapper the serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from prefloop import registry
from prefloop.protocol import (
    ADMIN_REFUSAL_STATUS,
    ErrorBody,
    ModelsAnswer,
    PromotionEntry,
    PromotionList,
    ServingAnswer,
    SwapAnswer,
    VersionEntry,
)
from prefloop.registry import NotPromotable, RegistryError, UnknownVersion
from prefloop.server.access import AdminDep, require_admin

log = logging.getLogger(__name__)


def _state(request: Request) -> Any:
    return request.app.state.prefloop


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    **{status: {"model": ErrorBody} for status in sorted(ADMIN_REFUSAL_STATUS.values())},
}

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=ERRORS
)


class PromoteRequest(BaseModel):
    version: str = Field(min_length=1, max_length=64, description="A registered version, `vN`.")


class RollbackRequest(BaseModel):
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Roll back only this user's own version (None: the shared one).",
    )


def _version_entry(
    version: registry.Version, served: str, user_versions: dict[str, str]
) -> VersionEntry:
    return VersionEntry(
        id=version.id,
        status=version.status,
        parent=version.parent,
        created_at=version.created_at,
        promoted_at=version.promoted_at,
        base_model=version.base_model,
        run_id=version.run_id,
        metrics=version.metrics,
        files=version.files_present,
        served=(
            version.id == served
            if version.for_user is None
            else user_versions.get(version.for_user) == version.id
        ),
        user=version.for_user,
    )


def _serving(state: Any, record: Any, user: str | None = None) -> ServingAnswer:
    error = record.error if record is not None else None
    if user is not None and error is None:
        error = state.swapper.user_errors.get(user)
    return ServingAnswer(
        model_version=state.engine.version,
        promoted=state.swapper.registry_version,
        swap=SwapAnswer.model_validate(asdict(record)) if record is not None else None,
        error=error,
        user=user,
        user_version=state.engine.version_for(user) if user is not None else None,
    )


async def _serve(state: Any, trigger: str, version: str) -> Any:
    """Sync the engine with the registry; the swap to ``version``, even when the poller
    made it (or refused it) a moment earlier."""
    record = await state.swapper.sync(trigger, retry=True)
    if record is None:
        last = state.swapper.last
        if last is not None and last.to_version == version:
            record = last
    return record


def _refuse(exc: RegistryError) -> HTTPException:
    if isinstance(exc, UnknownVersion):
        return HTTPException(ADMIN_REFUSAL_STATUS["unknown_version"], detail=str(exc))
    if isinstance(exc, NotPromotable):
        return HTTPException(ADMIN_REFUSAL_STATUS["not_promotable"], detail=str(exc))
    return HTTPException(ADMIN_REFUSAL_STATUS["invalid"], detail=str(exc))


@router.post("/reload")
async def reload(request: Request) -> ServingAnswer:
    """Serve the registry's promoted version now (also retries a version refused before)."""
    state = _state(request)
    record = await state.swapper.sync("reload", retry=True)
    return _serving(state, record)


@router.get("/models")
async def models(request: Request) -> ModelsAnswer:
    """Every registered version, newest first, and which one is served."""
    state = _state(request)
    settings = state.settings
    versions = await asyncio.to_thread(registry.list_versions, settings)
    target = await asyncio.to_thread(registry.rollback_target, settings)
    served = state.engine.version
    user_versions = state.engine.user_versions
    return ModelsAnswer(
        served=served,
        promoted=state.swapper.registry_version,
        rollback_to=target if state.swapper.registry_version != registry.BASE else None,
        versions=[_version_entry(v, served, user_versions) for v in versions],
        user_versions=user_versions,
    )


@router.get("/promotions")
async def promotions(request: Request, limit: int = 100) -> PromotionList:
    """The registry's promotions and rollbacks, newest first, with who asked for each."""
    history = await asyncio.to_thread(registry.history, _state(request).settings)
    newest = list(reversed(history))[: max(1, min(limit, 1000))]
    return PromotionList(
        promotions=[
            PromotionEntry(
                id=p.id,
                created_at=p.created_at,
                action=p.action,
                from_version=p.from_version,
                to_version=p.to_version,
                reason=p.reason,
                for_user=p.for_user,
                requested_by=p.requested_by,
            )
            for p in newest
        ]
    )


@router.post("/promote")
async def promote(body: PromoteRequest, request: Request, caller: AdminDep) -> ServingAnswer:
    """Promote a version and serve it. Unknown: 404; rejected, pruned or already
    promoted: 409; refused by the engine: 422 and the registry is rolled back."""
    state = _state(request)
    settings = state.settings
    try:
        version = await asyncio.to_thread(
            registry.promote, settings, body.version, notify=False, requested_by=caller.user
        )
    except RegistryError as exc:
        raise _refuse(exc) from None
    if version.for_user is not None:
        return await _promoted_for_user(state, version.id, version.for_user, caller.user)
    record = await _serve(state, "promote", body.version)
    if record is not None and record.error:
        await asyncio.to_thread(
            registry.rollback,
            settings,
            notify=False,
            reason=f"refused by the service: {record.error}"[:500],
            requested_by=caller.user,
        )
        await state.swapper.sync("rollback")
        raise HTTPException(
            status_code=ADMIN_REFUSAL_STATUS["refused_by_engine"],
            detail=f"{body.version} was refused and not promoted; still serving "
            f"{state.engine.version}: {record.error}",
        )
    return _serving(state, record)


async def _promoted_for_user(
    state: Any, version: str, user: str, requested_by: str
) -> ServingAnswer:
    """Serve a user's newly promoted version; refused by the engine: 422 and that user's
    promotion is rolled back."""
    await state.swapper.sync("promote", retry=True)
    error = state.swapper.user_errors.get(user)
    if not state.swapper.per_user:
        error = (
            "this service serves no user's own version (train_adapters is "
            f"{state.settings.train_adapters}, engine {state.engine.name})"
        )
    if state.engine.version_for(user) != version:
        error = error or f"the service does not serve {version} to {user}"
        await asyncio.to_thread(
            registry.rollback,
            state.settings,
            notify=False,
            reason=f"refused by the service: {error}"[:500],
            user=user,
            requested_by=requested_by,
        )
        await state.swapper.sync("rollback")
        raise HTTPException(
            status_code=ADMIN_REFUSAL_STATUS["refused_by_engine"],
            detail=f"{version} was refused and not promoted for {user}; they are still served "
            f"{state.engine.version_for(user)}: {error}",
        )
    return _serving(state, None, user)


@router.post("/rollback")
async def rollback(
    request: Request, caller: AdminDep, body: RollbackRequest | None = None
) -> ServingAnswer:
    """Serve the version promoted before the current one (or the base model). With a
    ``user``: only that user's own versions move back; with none left they are served the
    shared version."""
    state = _state(request)
    user = body.user if body is not None else None
    try:
        target = await asyncio.to_thread(
            registry.rollback, state.settings, notify=False, user=user, requested_by=caller.user
        )
    except RegistryError as exc:
        raise _refuse(exc) from None
    if user is not None:
        await state.swapper.sync("rollback", retry=True)
        if user in state.swapper.user_errors:
            raise HTTPException(
                status_code=ADMIN_REFUSAL_STATUS["refused_by_engine"],
                detail=f"rolled back {user} to {target} in the registry but the engine refused "
                f"it; they are still served {state.engine.version_for(user)}: "
                f"{state.swapper.user_errors[user]}",
            )
        return _serving(state, None, user)
    record = await _serve(state, "rollback", target)
    if record is not None and record.error:
        raise HTTPException(
            status_code=ADMIN_REFUSAL_STATUS["refused_by_engine"],
            detail=f"rolled back to {record.to_version} in the registry but the engine "
            f"refused it; still serving {state.engine.version}: {record.error}",
        )
    return _serving(state, record)
