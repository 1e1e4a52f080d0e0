"""Admin routes of users and their tokens: list, add, rotate, revoke.

``GET /admin/users`` lists them (never a token), ``POST /admin/users`` adds one and answers
201 with their token, ``POST /admin/users/{name}/rotate`` replaces it (the old one dies at
once), ``DELETE /admin/users/{name}`` revokes it. A token is shown once, in that answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from prefloop import users
from prefloop.protocol import ErrorBody, IssuedToken, NewUser, RevokedUser, UserInfo, UserList
from prefloop.server.access import AdminDep, require_admin

router = APIRouter(
    prefix="/admin/users",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)


def _info(entry: users.UserEntry) -> UserInfo:
    return UserInfo(
        name=entry.name,
        role="admin" if entry.role == "admin" else "developer",
        active=entry.active,
        created_at=entry.created_at,
        token_created_at=entry.token_created_at,
        last_used_at=entry.last_used_at,
        revoked_at=entry.revoked_at,
        tokens=entry.tokens,
    )


def _settings(request: Request) -> Any:
    return request.app.state.prefloop.settings


async def _entry(request: Request, name: str) -> UserInfo:
    found = await run_in_threadpool(users.list_users, _settings(request))
    return next(_info(e) for e in found if e.name == name)


def _refuse(exc: users.UserError) -> HTTPException:
    if isinstance(exc, users.UnknownUser):
        return HTTPException(404, str(exc))
    if isinstance(exc, users.UserExists):
        return HTTPException(409, str(exc))
    return HTTPException(422, str(exc))


@router.get("", response_model=UserList)
async def list_users(request: Request) -> Any:
    """Every user ever issued a token, by name: role, whether active, created, last used."""
    found = await run_in_threadpool(users.list_users, _settings(request))
    return UserList(users=[_info(e) for e in found])


@router.post("", status_code=201, response_model=IssuedToken)
async def add_user(body: NewUser, request: Request, caller: AdminDep) -> Any:
    """Add a user: 201 with their token (shown this once); 409 when they already have one,
    422 for an invalid name."""
    try:
        _, token = await run_in_threadpool(
            lambda: users.add_user(
                _settings(request), body.name, role=body.role, created_by=caller.user
            )
        )
    except users.UserError as exc:
        raise _refuse(exc) from None
    answer = IssuedToken(user=await _entry(request, body.name), token=token)
    return JSONResponse(answer.model_dump(), status_code=201)


@router.post("/{name}/rotate", response_model=IssuedToken)
async def rotate_user(name: str, request: Request, caller: AdminDep) -> Any:
    """Replace a user's token: the old one stops working at once; the new one is in the
    answer (shown this once). 404 when they have no live token."""
    try:
        _, token = await run_in_threadpool(
            lambda: users.rotate_user(_settings(request), name, created_by=caller.user)
        )
    except users.UserError as exc:
        raise _refuse(exc) from None
    return IssuedToken(user=await _entry(request, name), token=token)


@router.delete("/{name}", response_model=RevokedUser)
async def revoke_user(name: str, request: Request) -> Any:
    """Revoke a user's token (at once); 404 when they have no live token."""
    try:
        count = await run_in_threadpool(users.revoke_user, _settings(request), name)
    except users.UserError as exc:
        raise _refuse(exc) from None
    return RevokedUser(user=await _entry(request, name), revoked=count)
