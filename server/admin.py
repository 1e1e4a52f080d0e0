"""Authentication of the ``/admin`` API: a bearer token (see :mod:`prefloop.admin`)."""

from __future__ import annotations

from fastapi import HTTPException, Request

from prefloop.admin import admin_token, token_matches


def require_admin(request: Request) -> None:
    """Dependency: 401 unless the request carries ``Authorization: Bearer <admin token>``."""
    settings = request.app.state.prefloop.settings
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not token_matches(given.strip(), admin_token(settings)):
        raise HTTPException(status_code=401, detail="admin token required")
