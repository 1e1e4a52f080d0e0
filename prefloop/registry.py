"""The model registry: every adapter version, which one is served, and how it got there.

Versions live in the ``model_versions`` table and their LoRA adapters under
``$PREFLOOP_HOME/adapters/<id>``. A trainer saves into :func:`staging_dir`, then
:func:`register` renames the directory into place and inserts the row inside one SQLite
write transaction, so a version is either complete (files and row) or absent; a crash
between the rename and the commit leaves only an unlisted directory that a later
:func:`prune` removes. :func:`promote` and :func:`rollback` change statuses and append to
the ``promotions`` history in one transaction: they succeed whole or change nothing.

The service serves :func:`current` (``None`` means the bare base model) and is told about
changes by a best-effort ``POST /admin/reload``; it also polls.

A version may be trained for one user (``for_user``, with ``train_adapters = per_user``).
Each user then has a scope of their own: promoting such a version retires only that
user's previous one, a rollback with ``user`` moves back only in that user's history, and
the version served to a user (:func:`served_to`) is their newest promoted version, else
the shared one (:func:`current`).

The rows and their SQL live in :mod:`prefloop.store.versions`; this module holds the
rules and the adapter files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prefloop.protocol import ServingAnswer
from prefloop.settings import Settings
from prefloop.store import versions as records
from prefloop.store.timestamps import utcnow
from prefloop.store.versions import BASE as BASE
from prefloop.store.versions import SHARED as SHARED
from prefloop.store.versions import Promotion as Promotion
from prefloop.store.versions import Version as Version

log = logging.getLogger(__name__)

STATUSES = ("candidate", "promoted", "retired", "rejected")
STAGING = ".staging"
TRASH = ".trash"
ORPHAN_GRACE_SECONDS = 600.0
STAGING_MAX_AGE_SECONDS = 86400.0
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class RegistryError(Exception):
    """A registry operation was refused; nothing was changed."""


class UnknownVersion(RegistryError, LookupError):
    """No version of that name is registered."""


class NotPromotable(RegistryError, ValueError):
    """The version exists but cannot be served (rejected, files missing, already served)."""


@dataclass(frozen=True)
class NotifyResult:
    """What a running service said to ``POST /admin/reload`` (``ok`` False: none answered)."""

    ok: bool
    message: str
    served: str | None = None


# ---- rules over the stored versions --------------------------------------------------


def _get(conn: sqlite3.Connection, version_id: str) -> Version:
    version = records.find(conn, version_id)
    if version is None:
        raise UnknownVersion(f"no model version {version_id!r}")
    return version


def _newest(promoted: list[Version]) -> Version | None:
    # Exactly one row per scope is promoted; should a hand edit leave several, the newest wins.
    return max(promoted, key=lambda v: (v.promoted_at or "", v.number), default=None)


def _current(conn: sqlite3.Connection, for_user: str | None = None) -> Version | None:
    """The promoted version of one scope: the shared one, or ``for_user``'s own."""
    return _newest(records.promoted(conn, for_user))


def _user_versions(conn: sqlite3.Connection) -> dict[str, Version]:
    by_user: dict[str, list[Version]] = {}
    for version in records.promoted_for_users(conn):
        by_user.setdefault(str(version.for_user), []).append(version)
    return {user: v for user, versions in by_user.items() if (v := _newest(versions))}


def _served_stack(conn: sqlite3.Connection, for_user: str | None = None) -> list[str]:
    """Versions a rollback of one scope can return to, oldest first, the served one last.

    Replays that scope's history: a promotion pushes, a rollback pops back to its target."""
    stack: list[str] = []
    for event in records.promotions(conn):
        if event.for_user != for_user:
            continue
        if event.action == "promote":
            stack.append(event.to_version)
        elif event.action == "rollback":
            while stack and stack[-1] != event.to_version:
                stack.pop()
    return stack


def _rollback_target(
    conn: sqlite3.Connection, served: Version | None, for_user: str | None = None
) -> str:
    """The version a rollback of the scope would serve; when none is left, ``base`` for
    the shared scope and :data:`SHARED` for a user's."""
    bottom = BASE if for_user is None else SHARED
    if served is None:
        return bottom
    stack = _served_stack(conn, for_user)
    while stack and stack[-1] == served.id:
        stack.pop()
    for version_id in reversed(stack):
        if version_id == served.id:
            continue
        try:
            candidate = _get(conn, version_id)
        except UnknownVersion:
            continue
        if candidate.status != "rejected" and candidate.files_present:
            return version_id
    return bottom


# ---- adapter files -------------------------------------------------------------------


def check_adapter_dir(path: Path) -> None:
    """Raise :class:`RegistryError` unless ``path`` holds a readable LoRA adapter."""
    config_path = path / "adapter_config.json"
    if not path.is_dir():
        raise RegistryError(f"{path} is not a directory")
    if not config_path.is_file():
        raise RegistryError(f"{path} has no adapter_config.json: not a LoRA adapter")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{config_path} cannot be read: {exc}") from None
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise RegistryError(f"{config_path} does not describe a LoRA adapter")
    weights = [path / name for name in _WEIGHTS if (path / name).is_file()]
    if not weights:
        raise RegistryError(f"{path} has no adapter weights ({' or '.join(_WEIGHTS)})")
    if weights[0].name.endswith(".safetensors"):
        _check_safetensors(weights[0])
    elif weights[0].stat().st_size == 0:
        raise RegistryError(f"{weights[0]} is empty")


def _check_safetensors(path: Path) -> None:
    """The header must parse and the file must be as long as the header says."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("file too short")
            (length,) = struct.unpack("<Q", head)
            if length <= 0 or 8 + length > size:
                raise ValueError("bad header length")
            header = json.loads(f.read(length))
        end = max(
            (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"),
            default=0,
        )
        if 8 + length + end > size:
            raise ValueError("truncated tensor data")
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise RegistryError(f"{path} is not a valid safetensors file: {exc}") from None


def staging_dir(settings: Settings) -> Path:
    """A fresh empty directory for a trainer to save an adapter into."""
    path = settings.adapters_dir / STAGING / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def _next_id(conn: sqlite3.Connection, adapters_dir: Path) -> int:
    """One past the highest version number in the table or among the adapter directories."""
    highest = records.highest_number(conn)
    if adapters_dir.is_dir():
        highest = max([highest, *(records.version_number(p.name) for p in adapters_dir.iterdir())])
    return max(highest, 0) + 1


# ---- public API ----------------------------------------------------------------------


def register(
    settings: Settings,
    staged: Path,
    *,
    run_id: str | None,
    parent: str,
    base_model: str,
    metrics: dict[str, Any],
    status: str = "candidate",
    for_user: str | None = None,
) -> Version:
    """Move a saved adapter into the registry as the next version.

    ``status`` is ``candidate`` or ``rejected``; ``promoted`` registers and then
    promotes (without notifying the service). ``for_user``: the version is that user's
    own (None: shared by everyone)."""
    if status not in ("candidate", "rejected", "promoted"):
        raise RegistryError(f"cannot register a version as {status!r}")
    staged = Path(staged).resolve()
    check_adapter_dir(staged)
    adapters_dir = settings.adapters_dir.resolve()
    adapters_dir.mkdir(parents=True, exist_ok=True)
    if parent != BASE:
        get(settings, parent)  # UnknownVersion before anything is copied or moved
    if (adapters_dir / STAGING) not in staged.parents:
        # Saved elsewhere (maybe another file system, where a rename cannot work): copy
        # into a staging directory first; the original stays where it was.
        copy = staging_dir(settings).resolve()
        shutil.copytree(staged, copy, dirs_exist_ok=True)
        staged = copy
    with records.opened(settings.db_path) as conn:
        with records.write(conn):
            number = _next_id(conn, adapters_dir)
            version_id = f"v{number}"
            target = adapters_dir / version_id
            records.insert_version(
                conn,
                version_id=version_id,
                created_at=utcnow(),
                user=settings.user,
                base_model=base_model,
                parent=parent,
                adapter_path=str(target),
                status="rejected" if status == "rejected" else "candidate",
                run_id=run_id,
                metrics=metrics,
                for_user=for_user,
            )
            # The write lock is held: no other register can take this id meanwhile.
            os.rename(staged, target)
            try:
                _fsync_dir(adapters_dir)
            except BaseException:
                os.rename(target, staged)
                raise
        version = _get(conn, version_id)
    log.info("registered %s (parent %s, run %s)", version.id, parent, run_id)
    if status == "promoted":
        return promote(settings, version.id, notify=False)
    prune(settings)
    return version


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reject(settings: Settings, version_id: str, reason: str) -> None:
    """Mark a version rejected (it stays listed for audit and can never be promoted)."""
    with records.opened(settings.db_path) as conn, records.write(conn):
        version = _get(conn, version_id)
        if version.status == "promoted":
            raise NotPromotable(f"{version_id} is being served; roll back before rejecting it")
        metrics = dict(version.metrics)
        metrics["rejected_reason"] = reason
        records.set_rejected(conn, version_id, metrics)
    log.info("rejected %s: %s", version_id, reason)


def _switch(
    conn: sqlite3.Connection,
    settings: Settings,
    *,
    action: str,
    served: Version | None,
    target: str,
    reason: str | None,
    for_user: str | None = None,
    requested_by: str | None = None,
) -> None:
    now = utcnow()
    if served is not None:
        records.retire_promoted(conn, for_user)
    if target not in (BASE, SHARED):
        records.set_promoted(conn, target, now)
    records.add_promotion(
        conn,
        created_at=now,
        user=settings.user,
        action=action,
        from_version=served.id if served else (BASE if for_user is None else SHARED),
        to_version=target,
        reason=reason,
        for_user=for_user,
        requested_by=requested_by,
    )


def promote(
    settings: Settings,
    version_id: str,
    *,
    notify: bool = True,
    reason: str | None = None,
    requested_by: str | None = None,
) -> Version:
    """Make ``version_id`` the served version of its scope (shared, or its user's); the
    one that scope served before is retired. ``requested_by``: who asked (recorded)."""
    if version_id == BASE:
        raise NotPromotable(
            "base is not a registered version: `rollback` returns to it when no earlier "
            "version is left"
        )
    with records.opened(settings.db_path) as conn:
        with records.write(conn):
            version = _get(conn, version_id)
            if version.status == "rejected":
                raise NotPromotable(f"{version_id} was rejected and cannot be promoted")
            if version.status == "promoted":
                raise NotPromotable(f"{version_id} is already the promoted version")
            if version.pruned_at is not None:
                raise NotPromotable(f"{version_id}'s adapter files were pruned")
            try:
                check_adapter_dir(Path(version.adapter_path))
            except RegistryError as exc:
                raise NotPromotable(f"{version_id} cannot be served: {exc}") from None
            served = _current(conn, version.for_user)
            _switch(
                conn,
                settings,
                action="promote",
                served=served,
                target=version_id,
                reason=reason,
                for_user=version.for_user,
                requested_by=requested_by,
            )
        version = _get(conn, version_id)
    log.info("promoted %s", version_id)
    if notify:
        _notify_logged(settings)
    prune(settings)
    return version


def rollback(
    settings: Settings,
    *,
    notify: bool = True,
    reason: str | None = None,
    user: str | None = None,
    requested_by: str | None = None,
) -> str:
    """Serve the version promoted before the current one (or the base model); returns it.
    ``requested_by``: who asked (recorded).

    With ``user``: only that user's own versions are concerned; when none of them is left
    the user is served the shared version again and :data:`SHARED` is returned."""
    with records.opened(settings.db_path) as conn, records.write(conn):
        served = _current(conn, user)
        if served is None:
            if user is not None:
                raise NotPromotable(
                    f"nothing to roll back for user {user!r}: they are served the shared version"
                )
            raise NotPromotable("nothing to roll back: the base model is served")
        target = _rollback_target(conn, served, user)
        _switch(
            conn,
            settings,
            action="rollback",
            served=served,
            target=target,
            reason=reason,
            for_user=user,
            requested_by=requested_by,
        )
    log.info(
        "rolled back %s from %s to %s",
        "the shared version" if user is None else f"user {user}",
        served.id,
        target,
    )
    if notify:
        _notify_logged(settings)
    return target


def current(settings: Settings) -> Version | None:
    """The promoted shared version, or ``None`` when the base model is served."""
    with records.opened(settings.db_path) as conn:
        return _current(conn)


def user_versions(settings: Settings) -> dict[str, Version]:
    """Each user's own promoted version, for the users who have one."""
    with records.opened(settings.db_path) as conn:
        return _user_versions(conn)


def served_to(settings: Settings, user: str) -> Version | None:
    """The version served to ``user``: their own promoted version, else the shared one
    (``None``: the base model)."""
    with records.opened(settings.db_path) as conn:
        return _current(conn, user) or _current(conn)


def rollback_target(settings: Settings, user: str | None = None) -> str:
    """The version :func:`rollback` would serve now (``base`` when none is left; for a
    ``user``, :data:`SHARED` when none of their own is left)."""
    with records.opened(settings.db_path) as conn:
        return _rollback_target(conn, _current(conn, user), user)


def get(settings: Settings, version_id: str) -> Version:
    with records.opened(settings.db_path) as conn:
        return _get(conn, version_id)


def list_versions(settings: Settings) -> list[Version]:
    """Every registered version, newest first."""
    with records.opened(settings.db_path) as conn:
        return records.all_versions(conn)


def history(settings: Settings) -> list[Promotion]:
    """Every promotion and rollback, oldest first."""
    with records.opened(settings.db_path) as conn:
        return records.promotions(conn)


def prune(settings: Settings) -> list[str]:
    """Delete the adapter files of versions beyond the newest ``registry_keep``.

    The served version and the one a rollback would return to are never pruned; rows
    stay (with ``pruned_at`` set). Also removes directories a crash left behind: an
    adapter directory no row names, and abandoned staging directories."""
    adapters_dir = settings.adapters_dir
    pruned: list[str] = []
    with records.opened(settings.db_path) as conn:
        with records.write(conn):
            versions = records.all_versions(conn)
            protected = {v.id for v in versions[: settings.registry_keep]}
            scopes: list[str | None] = [None, *_user_versions(conn)]
            for scope in scopes:
                served = _current(conn, scope)
                protected.add(_rollback_target(conn, served, scope))
                if served is not None:
                    protected.add(served.id)
            doomed = [v for v in versions if v.id not in protected and v.pruned_at is None]
            records.set_pruned(conn, [v.id for v in doomed], utcnow())
        # Files go after the commit: a crash in between leaves files that a later prune
        # deletes, never a listed version without files.
        for version in doomed:
            _remove(Path(version.adapter_path), adapters_dir)
            pruned.append(version.id)
        known = {v.id for v in versions}
        cutoff = time.time() - ORPHAN_GRACE_SECONDS
        if adapters_dir.is_dir():
            for path in adapters_dir.iterdir():
                if records.version_number(path.name) >= 0 and path.name not in known:
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < cutoff:
                            log.info("removing %s: no registered version names it", path)
                            _remove(path, adapters_dir)
        staging = adapters_dir / STAGING
        if staging.is_dir():
            stale = time.time() - STAGING_MAX_AGE_SECONDS
            for path in staging.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < stale:
                        _remove(path, adapters_dir)
    if pruned:
        log.info("pruned adapter files of %s", ", ".join(pruned))
    return pruned


def _remove(path: Path, adapters_dir: Path) -> None:
    """Rename out of the way first, so a half-deleted directory never looks like an adapter."""
    if not path.exists():
        return
    trash = adapters_dir / TRASH
    trash.mkdir(parents=True, exist_ok=True)
    moved = trash / f"{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, moved)
    except OSError:
        moved = path
    shutil.rmtree(moved, ignore_errors=True)


# ---- telling the service -------------------------------------------------------------


def notify_service(settings: Settings, *, timeout: float = 60.0) -> NotifyResult:
    """Ask a running service to serve :func:`current` now (``POST /admin/reload``)."""
    import httpx

    from prefloop.admin import bearer

    url = settings.server_url.rstrip("/") + "/admin/reload"
    try:
        response = httpx.post(url, headers=bearer(settings), timeout=timeout)
    except httpx.HTTPError as exc:
        return NotifyResult(False, f"no service answered at {settings.server_url} ({exc})")
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("error") if isinstance(body, dict) else None
        return NotifyResult(
            False,
            f"the service at {settings.server_url} answered {response.status_code}: "
            f"{detail or response.text[:200]}",
        )
    try:
        answer = ServingAnswer.model_validate_json(response.content)
    except ValidationError:
        return NotifyResult(
            False, f"the service at {settings.server_url} answered with no serving state"
        )
    if answer.error:
        return NotifyResult(
            False, f"the service refused the new version: {answer.error}", answer.model_version
        )
    return NotifyResult(
        True, f"the service now serves {answer.model_version}", answer.model_version
    )


def _notify_logged(settings: Settings) -> None:
    result = notify_service(settings)
    if result.ok:
        log.info("%s", result.message)
    else:
        log.warning("%s", result.message)
