"""Training runs as the service and the CLI see them: start one, follow it, wait for it.

A run is a row of ``training_runs`` (status ``queued`` → ``running`` → ``succeeded`` |
``rejected`` | ``failed``) and a process, ``python -m prefloop.trainer --run-id ID``. That
process first brings the preference pairs up to date and decides whether there is enough
to train on; it answers :func:`start_run` on a pipe (queued, or refused and why) and then
carries the run out: it trains into a staging directory of the registry, runs the
evaluation gate, and only then registers (and, when the gate passes and
``train_auto_promote`` is on, promotes) the candidate. A crash at any point before that
leaves the registry and the served model as they were.

At most one run at a time: :func:`start_run` takes an exclusive ``flock`` on
``$PREFLOOP_HOME/train.lock`` and hands the locked descriptor to the child, which holds it
until it exits. The kernel drops the lock with the last holder, so a killed run frees it;
a run row still ``queued``/``running`` while nobody holds the lock is stale and is marked
failed (:func:`recover_stale`).

This module imports no machine-learning library: the service and the CLI use it, the
training process (``prefloop.trainer``) does the work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from prefloop.protocol import PairCounts, TrainingRefusal, TrainingRun
from prefloop.settings import Settings
from prefloop.store import migrate
from prefloop.store import runs as stored_runs
from prefloop.train_config import TrainConfig, load_config

log = logging.getLogger(__name__)

FINAL = frozenset({"succeeded", "failed", "rejected"})
ACTIVE = frozenset({"queued", "running"})
EXIT_CODES = {"succeeded": 0, "failed": 1, "rejected": 3}
"""Exit status of the training process (and of ``prefloop retrain``) by the run's outcome."""

UNFINISHED_ERROR = "the training process ended without finishing its run"


class RunError(RuntimeError):
    """A run cannot be started or found."""

    refusal: ClassVar[TrainingRefusal | None] = None


class RunInProgress(RunError):
    """Another training run holds the lock."""

    refusal = "run_in_progress"


class NotEnoughPairs(RunError):
    """Too few (new) preference pairs to train on."""

    refusal = "not_enough_pairs"


class UnknownRun(RunError, LookupError):
    """No run has this id."""

    refusal = "unknown_run"


# ---- the lock -------------------------------------------------------------------------


def lock_path(settings: Settings) -> Path:
    return settings.home / "train.lock"


def try_lock(settings: Settings) -> int | None:
    """An fd holding the exclusive training lock, or None when someone else holds it."""
    settings.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(settings), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release_lock(fd: int) -> None:
    _close(fd)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def lock_held(settings: Settings) -> bool:
    fd = try_lock(settings)
    if fd is None:
        return True
    release_lock(fd)
    return False


# ---- reading runs ---------------------------------------------------------------------


def run_log_path(settings: Settings, run_id: str) -> Path:
    """The run's log file (progress and figures, no pair text)."""
    return settings.runs_dir / f"{run_id}.log"


def get_run(settings: Settings, run_id: str) -> TrainingRun:
    """The run's row with its JSON columns decoded; :class:`UnknownRun` if there is none."""
    if not settings.db_path.exists():
        raise UnknownRun(f"no training run {run_id}")
    migrate(settings.db_path)
    run = stored_runs.get_run(settings.db_path, run_id)
    if run is None:
        raise UnknownRun(f"no training run {run_id}")
    return run


def list_runs(settings: Settings, *, limit: int = 50) -> list[TrainingRun]:
    """Runs, newest first."""
    if not settings.db_path.exists():
        return []
    migrate(settings.db_path)
    return stored_runs.list_runs(settings.db_path, limit=limit)


def last_run(settings: Settings) -> TrainingRun | None:
    runs = list_runs(settings, limit=1)
    return runs[0] if runs else None


def pair_counts(settings: Settings) -> PairCounts:
    """Train/held-out pairs in the store and pairs newer than the last finished run's data."""
    migrate(settings.db_path)
    return stored_runs.pair_counts(settings.db_path)


def run_exit_code(run: TrainingRun) -> int:
    return EXIT_CODES.get(str(run["status"]), 1)


def recover_stale(settings: Settings, *, lock_is_mine: bool = False) -> list[str]:
    """Mark runs left ``queued``/``running`` by a process that is gone as failed.

    Only when nobody holds the training lock (or the caller holds it: ``lock_is_mine``).
    Returns the ids marked.
    """
    if not settings.db_path.exists():
        return []
    migrate(settings.db_path)
    fd = None
    if not lock_is_mine:
        fd = try_lock(settings)
        if fd is None:
            return []
    try:
        stale = stored_runs.unfinished_run_ids(settings.db_path)
        for run_id in stale:
            stored_runs.fail_run(settings.db_path, run_id, UNFINISHED_ERROR)
            log.warning("training run %s was left unfinished; marked failed", run_id)
        return stale
    finally:
        if fd is not None:
            release_lock(fd)


# ---- what passes between this process and the training process ------------------------


class RunOrder(BaseModel):
    """What the training process is asked to do; sent as JSON on its standard input.

    ``settings`` carries the secrets too: the pipe is the only place they travel, and the
    training process stores none of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: dict[str, Any]
    config: dict[str, Any]
    reason: str
    force: bool
    requested_by: str | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        config: TrainConfig,
        *,
        reason: str,
        force: bool,
        requested_by: str | None = None,
    ) -> RunOrder:
        data = settings.model_dump(mode="python")
        for name, value in list(data.items()):
            if isinstance(value, SecretStr):
                data[name] = value.get_secret_value()
        plain = json.loads(json.dumps(data, default=str))
        return cls(
            settings=plain,
            config=config.as_dict(),
            reason=reason,
            force=force,
            requested_by=requested_by,
        )

    def run_settings(self) -> Settings:
        return Settings(**self.settings)

    def run_config(self) -> TrainConfig:
        return load_config(overrides=self.config)


class RunAnswer(BaseModel):
    """The training process's first answer, on the pipe :func:`start_run` reads: the run
    is queued, or it was refused (``refusal``, ``error``) and the process ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queued: bool
    refusal: TrainingRefusal | None = None
    error: str | None = None


def send_answer(fd: int, answer: RunAnswer) -> None:
    """Write the answer to the pipe descriptor ``fd`` and close it."""
    try:
        os.write(fd, answer.model_dump_json().encode() + b"\n")
    finally:
        _close(fd)


def _read_answer(fd: int) -> RunAnswer | None:
    """The child's answer, or None when it ended without one."""
    with os.fdopen(fd, "rb") as pipe:
        line = pipe.readline()
    if not line.strip():
        return None
    return RunAnswer.model_validate_json(line)


# ---- starting and waiting -------------------------------------------------------------

_children: dict[str, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def new_run_id() -> str:
    return time.strftime("r%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def start_run(
    settings: Settings,
    *,
    config: TrainConfig | None = None,
    config_file: Path | None = None,
    reason: str = "manual",
    force: bool = False,
    attach: bool = False,
    requested_by: str | None = None,
) -> str:
    """Start a training run in its own process and return its id once it is queued.
    ``requested_by``: who asked for it (recorded with the run and its promotion).

    The training process builds the preference pairs first. Refuses with
    :class:`RunInProgress` while another run holds the lock and with
    :class:`NotEnoughPairs` when there are no training pairs, fewer held-out pairs than
    the gate's floor, or, unless ``force``, fewer than ``train_min_new_pairs`` new ones; a
    refused run leaves no record. ``attach``
    shares this process's terminal with the run (progress display); otherwise its output
    goes to its log file.
    """
    migrate(settings.db_path)
    cfg = config or load_config(config_file)
    fd = try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    try:
        recover_stale(settings, lock_is_mine=True)
        run_id = new_run_id()
        settings.runs_dir.mkdir(parents=True, exist_ok=True)
        log_file = run_log_path(settings, run_id)
        answer_read, answer_write = os.pipe()
        try:
            cmd = [
                sys.executable,
                "-m",
                "prefloop.trainer",
                "--run-id",
                run_id,
                "--lock-fd",
                str(fd),
                "--answer-fd",
                str(answer_write),
            ]
            with log_file.open("ab") as out:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=None if attach else out,
                    stderr=None if attach else out,
                    pass_fds=(fd, answer_write),
                    env={
                        **os.environ,
                        "PYTHONUNBUFFERED": "1",
                        "TOKENIZERS_PARALLELISM": "false",
                    },
                    start_new_session=not attach,
                )
        except BaseException:
            _close(answer_read)
            raise
        finally:
            _close(answer_write)
        assert proc.stdin is not None
        order = RunOrder.create(
            settings, cfg, reason=reason, force=force, requested_by=requested_by
        )
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(order.model_dump_json().encode())
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        answer = _read_answer(answer_read)
    finally:
        release_lock(fd)
    if answer is None or not answer.queued:
        code = proc.wait()
        if answer is not None and answer.refusal == "not_enough_pairs":
            log_file.unlink(missing_ok=True)
            raise NotEnoughPairs(answer.error or "not enough preference pairs")
        if answer is not None and answer.error:
            raise RunError(f"training run could not start: {answer.error} (log: {log_file})")
        raise RunError(f"training run could not start: {_exit_description(code)} (log: {log_file})")
    with _children_lock:
        _children[run_id] = proc
    threading.Thread(
        target=_watch, args=(settings, run_id, proc), name=f"run-{run_id}", daemon=True
    ).start()
    log.info("training run %s started (pid %d, %s)", run_id, proc.pid, reason)
    return run_id


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the training process was killed by signal {-code} ({name})"
    return f"the training process exited with code {code} without finishing its run"


def _watch(settings: Settings, run_id: str, proc: subprocess.Popen[bytes]) -> None:
    """Reap the child; a run it left unfinished is marked failed with how it ended."""
    code = proc.wait()
    with contextlib.suppress(Exception):
        stored_runs.fail_run(settings.db_path, run_id, _exit_description(code))
    with _children_lock:
        _children.pop(run_id, None)


def wait_run(settings: Settings, run_id: str, timeout: float) -> TrainingRun:
    """Wait until the run is finished and return its row; TimeoutError after ``timeout``.

    A run whose process is gone (killed, crashed) is marked failed and returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(settings, run_id)
        if run["status"] in FINAL:
            _wait_exit(settings, run_id, deadline)
            return run
        with _children_lock:
            proc = _children.get(run_id)
        if proc is not None:
            code = proc.poll()
            if code is not None:
                stored_runs.fail_run(settings.db_path, run_id, _exit_description(code))
                continue
        elif not lock_held(settings):
            # Not our child and nobody holds the lock: re-read first (it may have just ended).
            run = get_run(settings, run_id)
            if run["status"] in ACTIVE:
                stored_runs.fail_run(settings.db_path, run_id, UNFINISHED_ERROR)
            continue
        if time.monotonic() >= deadline:
            raise TimeoutError(f"training run {run_id} still {run['status']} after {timeout}s")
        time.sleep(0.25)


def _wait_exit(settings: Settings, run_id: str, deadline: float) -> None:
    """After a run's row is final, wait (until ``deadline``) for its process to let go of
    the lock, so that the next run can start as soon as this returns."""
    with _children_lock:
        proc = _children.get(run_id)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        return
    while lock_held(settings) and time.monotonic() < deadline:
        time.sleep(0.1)
