"""Training runs: start one in its own process, record it, wait for it.

A run is a row of ``training_runs`` (status ``queued`` → ``running`` → ``succeeded`` |
``rejected`` | ``failed``) and a process, ``python -m prefloop.trainer --run-id ID``, that
builds nothing but the adapter: it trains into a staging directory of the registry, runs the
evaluation gate, and only then registers (and, when the gate passes and
``train_auto_promote`` is on, promotes) the candidate. A crash at any point before that leaves
the registry and the served model as they were.

At most one run at a time: :func:`start_run` takes an exclusive ``flock`` on
``$PREFLOOP_HOME/train.lock`` and hands the locked descriptor to the child, which holds it
until it exits. The kernel drops the lock with the last holder, so a killed run frees it;
a run row still ``queued``/``running`` while nobody holds the lock is stale and is marked
failed (:func:`recover_stale`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from prefloop.settings import Settings
from prefloop.store import connect, migrate, utcnow
from prefloop.train_config import TrainConfig, load_config

log = logging.getLogger(__name__)

FINAL = frozenset({"succeeded", "failed", "rejected"})
ACTIVE = frozenset({"queued", "running"})
EXIT_CODES = {"succeeded": 0, "failed": 1, "rejected": 3}

JSON_COLUMNS = ("config", "data", "metrics", "gate")


class RunError(RuntimeError):
    """A run cannot be started or found."""


class RunInProgress(RunError):
    """Another training run holds the lock."""


class NotEnoughPairs(RunError):
    """Too few (new) preference pairs to train on."""


class UnknownRun(RunError, LookupError):
    """No run has this id."""


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
    with contextlib.suppress(OSError):
        os.close(fd)


def lock_held(settings: Settings) -> bool:
    fd = try_lock(settings)
    if fd is None:
        return True
    release_lock(fd)
    return False


# ---- rows -----------------------------------------------------------------------------

_migrated: set[Path] = set()


def _ensure_schema(settings: Settings) -> None:
    """Migrate the database once per process (``/healthz`` reads runs often)."""
    path = settings.db_path.resolve()
    if path not in _migrated:
        migrate(path)
        _migrated.add(path)


@contextlib.contextmanager
def _db(settings: Settings) -> Iterator[sqlite3.Connection]:
    conn = connect(settings.db_path)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for column in JSON_COLUMNS:
        value = out.get(column)
        out[column] = json.loads(value) if value else None
    return out


def _update(settings: Settings, run_id: str, **values: Any) -> None:
    for column in JSON_COLUMNS:
        if column in values and not isinstance(values[column], str | type(None)):
            values[column] = json.dumps(values[column])
    sets = ", ".join(f"{k} = ?" for k in values)
    with _db(settings) as conn, conn:
        conn.execute(f"UPDATE training_runs SET {sets} WHERE id = ?", [*values.values(), run_id])


def get_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """The run's row with its JSON columns decoded; :class:`UnknownRun` if there is none."""
    if not settings.db_path.exists():
        raise UnknownRun(f"no training run {run_id}")
    _ensure_schema(settings)
    with _db(settings) as conn:
        row = conn.execute("SELECT * FROM training_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise UnknownRun(f"no training run {run_id}")
    return _decode(row)


def list_runs(settings: Settings, *, limit: int = 50) -> list[dict[str, Any]]:
    """Runs, newest first."""
    if not settings.db_path.exists():
        return []
    _ensure_schema(settings)
    with _db(settings) as conn:
        rows = conn.execute(
            "SELECT * FROM training_runs ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [_decode(r) for r in rows]


def last_run(settings: Settings) -> dict[str, Any] | None:
    runs = list_runs(settings, limit=1)
    return runs[0] if runs else None


def _fail(settings: Settings, run_id: str, error: str) -> None:
    with _db(settings) as conn, conn:
        conn.execute(
            "UPDATE training_runs SET status = 'failed', error = ?, finished_at = ? "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (error, utcnow(), run_id),
        )


def recover_stale(settings: Settings, *, lock_is_mine: bool = False) -> list[str]:
    """Mark runs left ``queued``/``running`` by a process that is gone as failed.

    Only when nobody holds the training lock (or the caller holds it: ``lock_is_mine``).
    Returns the ids marked.
    """
    if not settings.db_path.exists():
        return []
    _ensure_schema(settings)
    fd = None
    if not lock_is_mine:
        fd = try_lock(settings)
        if fd is None:
            return []
    try:
        with _db(settings) as conn:
            stale = [
                r["id"]
                for r in conn.execute(
                    "SELECT id FROM training_runs WHERE status IN ('queued', 'running')"
                )
            ]
        for run_id in stale:
            _fail(settings, run_id, "the training process ended without finishing its run")
            log.warning("training run %s was left unfinished; marked failed", run_id)
        return stale
    finally:
        if fd is not None:
            release_lock(fd)


# ---- data -----------------------------------------------------------------------------


def _build_pairs(settings: Settings) -> dict[str, Any] | None:
    """Bring the pairs table up to date when the pair builder is installed."""
    try:
        from prefloop.trainer.pairs import build_pairs
    except ImportError:
        return None
    report = build_pairs(settings.db_path, settings)
    return {
        "events_seen": report.events_seen,
        "pairs_added": report.pairs_added,
        "train": report.train,
        "heldout": report.heldout,
    }


def _newest_used(conn: sqlite3.Connection) -> str | None:
    """``created_at`` of the newest pair a finished (succeeded/rejected) run trained on."""
    for row in conn.execute(
        "SELECT data FROM training_runs WHERE status IN ('succeeded', 'rejected') "
        "ORDER BY created_at DESC"
    ):
        data = json.loads(row["data"] or "{}")
        if data.get("newest_pair_at"):
            return str(data["newest_pair_at"])
    return None


def pair_counts(settings: Settings) -> dict[str, int]:
    """Train/held-out pairs in the table and pairs newer than the last finished run's data."""
    _ensure_schema(settings)
    with _db(settings) as conn:
        counts = {
            row["split"]: row["n"]
            for row in conn.execute("SELECT split, count(*) AS n FROM pairs GROUP BY split")
        }
        since = _newest_used(conn)
        new = conn.execute(
            "SELECT count(*) FROM pairs WHERE created_at > ?", (since or "",)
        ).fetchone()[0]
    return {
        "train": int(counts.get("train", 0)),
        "heldout": int(counts.get("heldout", 0)),
        "new": int(new),
    }


def load_split(settings: Settings, split: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` pairs of a split, returned oldest first."""
    with _db(settings) as conn:
        rows = conn.execute(
            "SELECT id, created_at, prompt, chosen, rejected, weight, source FROM pairs "
            "WHERE split = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (split, limit),
        ).fetchall()
    return [dict(r) for r in reversed(rows)]


def data_record(train: list[dict[str, Any]], heldout: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run trained and was judged on: counts, a hash of the pair ids, time range."""
    digest = hashlib.sha256()
    for pair in [*train, *heldout]:
        digest.update(pair["id"].encode())
        digest.update(b"\n")
    stamps = [p["created_at"] for p in [*train, *heldout] if p.get("created_at")]
    return {
        "train": len(train),
        "heldout": len(heldout),
        "pair_ids_sha256": digest.hexdigest(),
        "oldest_pair_at": min(stamps) if stamps else None,
        "newest_pair_at": max(stamps) if stamps else None,
    }


# ---- starting and waiting -------------------------------------------------------------

_children: dict[str, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def _settings_payload(settings: Settings) -> str:
    """The settings for the child, secrets included (sent over a pipe, never stored)."""
    data = settings.model_dump(mode="python")
    for name, value in list(data.items()):
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return json.dumps(data, default=str)


def settings_from_payload(payload: str) -> Settings:
    return Settings(**json.loads(payload))


def new_run_id() -> str:
    return time.strftime("r%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def _queue(settings: Settings, cfg: TrainConfig, reason: str, force: bool) -> str:
    """Check the data and insert the ``queued`` row; the caller holds the lock."""
    recover_stale(settings, lock_is_mine=True)
    build = _build_pairs(settings)
    counts = pair_counts(settings)
    if counts["train"] == 0:
        raise NotEnoughPairs("no training pairs yet: the feedback log has none to offer")
    if not force and counts["new"] < settings.train_min_new_pairs:
        raise NotEnoughPairs(
            f"only {counts['new']} new pair(s) since the last run; "
            f"train_min_new_pairs is {settings.train_min_new_pairs} (--force trains anyway)"
        )
    run_id = new_run_id()
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.runs_dir / f"{run_id}.log"
    with _db(settings) as conn, conn:
        conn.execute(
            "INSERT INTO training_runs (id, created_at, user, language, model_version, "
            "status, config, data, reason, log_path) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, "
            "?, ?)",
            (
                run_id,
                utcnow(),
                settings.user,
                "all",
                "",
                json.dumps(cfg.as_dict()),
                json.dumps({"pairs_available": counts, "build": build}),
                reason,
                str(log_file),
            ),
        )
    return run_id


def queue_run(
    settings: Settings,
    *,
    config: TrainConfig | None = None,
    reason: str = "manual",
    force: bool = False,
) -> str:
    """Queue a run without starting a process (for :func:`run_in_process` in this process).

    The same checks and refusals as :func:`start_run`.
    """
    _ensure_schema(settings)
    cfg = config or load_config()
    fd = try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    try:
        return _queue(settings, cfg, reason, force)
    finally:
        release_lock(fd)


def start_run(
    settings: Settings,
    *,
    config: TrainConfig | None = None,
    config_file: Path | None = None,
    reason: str = "manual",
    force: bool = False,
    attach: bool = False,
) -> str:
    """Start a training run in its own process and return its id.

    Builds pairs first (when the pair builder is installed). Refuses with
    :class:`RunInProgress` while another run holds the lock and with
    :class:`NotEnoughPairs` when there are no training pairs or, unless ``force``, fewer
    than ``train_min_new_pairs`` new ones. ``attach`` shares this process's terminal with
    the run (progress display); otherwise its output goes to its log file.
    """
    _ensure_schema(settings)
    cfg = config or load_config(config_file)
    fd = try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    try:
        run_id = _queue(settings, cfg, reason, force)
        log_file = settings.runs_dir / f"{run_id}.log"
        cmd = [sys.executable, "-m", "prefloop.trainer", "--run-id", run_id, "--lock-fd", str(fd)]
        with log_file.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=None if attach else out,
                stderr=None if attach else out,
                pass_fds=(fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"},
                start_new_session=not attach,
            )
        assert proc.stdin is not None
        proc.stdin.write(_settings_payload(settings).encode())
        proc.stdin.close()
        _update(settings, run_id, pid=proc.pid)
        with _children_lock:
            _children[run_id] = proc
        threading.Thread(
            target=_watch, args=(settings, run_id, proc), name=f"run-{run_id}", daemon=True
        ).start()
        log.info("training run %s started (pid %d, %s)", run_id, proc.pid, reason)
        return run_id
    finally:
        release_lock(fd)


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
        _fail(settings, run_id, _exit_description(code))
    with _children_lock:
        _children.pop(run_id, None)


def wait_run(settings: Settings, run_id: str, timeout: float) -> dict[str, Any]:
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
                _fail(settings, run_id, _exit_description(code))
                continue
        elif not lock_held(settings):
            # Not our child and nobody holds the lock: re-read first (it may have just ended).
            run = get_run(settings, run_id)
            if run["status"] in ACTIVE:
                _fail(settings, run_id, "the training process ended without finishing its run")
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


def run_exit_code(run: dict[str, Any]) -> int:
    return EXIT_CODES.get(str(run["status"]), 1)


# ---- the run itself (in the child process) --------------------------------------------


def _file_logger(path: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"prefloop.trainer.runlog.{path.stem}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def _quiet_libraries() -> None:
    """Library warnings can quote pieces of the training text; the run log keeps only
    prefloop's own lines (and errors)."""
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def _error_text(exc: BaseException) -> str:
    """A one-line error for the run record: the exception type and message only."""
    from prefloop.redaction import redact

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return str(redact(text))[:500]


def run_in_process(
    settings: Settings,
    run_id: str,
    *,
    lock_fd: int | None = None,
    progress: bool = False,
) -> str:
    """Carry out a queued run in this process; returns its final status.

    ``lock_fd`` is the training lock handed down by :func:`start_run`; without it the lock
    is taken here (:class:`RunInProgress` if another run holds it).
    """
    from prefloop import registry
    from prefloop.models import model_label, resolve_model
    from prefloop.trainer.dpo import resolve_device
    from prefloop.trainer.gate import Thresholds, evaluate

    fd = lock_fd if lock_fd is not None else try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    run = get_run(settings, run_id)
    if run["status"] != "queued":
        release_lock(fd)
        raise RunError(f"run {run_id} is {run['status']}, not queued")
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.runs_dir / f"{run_id}.log"
    runlog, handler = _file_logger(log_file)
    _quiet_libraries()
    staged: Path | None = None
    status = "failed"
    try:
        _update(settings, run_id, status="running", started_at=utcnow(), pid=os.getpid())
        cfg = load_config(overrides=run["config"] or {})
        current = registry.current(settings)
        parent = current.id if current is not None else registry.BASE
        parent_adapter = Path(current.adapter_path) if current is not None else None
        train_from = parent_adapter if cfg.reference == "previous" else None
        reference = (
            f"{parent} (frozen copy of the served adapter)"
            if train_from is not None
            else "base (adapter disabled)"
        )
        _update(
            settings,
            run_id,
            model_version=parent,
            parent_version=parent if train_from is not None else registry.BASE,
            reference_model=reference,
        )
        model_path = resolve_model(settings)
        train = load_split(settings, "train", cfg.max_train_pairs)
        heldout = load_split(settings, "heldout", cfg.max_heldout_pairs)
        data = {**(run["data"] or {}), **data_record(train, heldout)}
        _update(settings, run_id, data=data)
        runlog.info(
            "run %s: %d train and %d held-out pairs; parent %s; reference %s",
            run_id,
            len(train),
            len(heldout),
            parent,
            reference,
        )
        if not train:
            raise NotEnoughPairs("no training pairs")
        staged = registry.staging_dir(settings)
        device = resolve_device(cfg.device)
        result = _train_with_progress(
            settings, run_id, model_path, train, staged, cfg, train_from, runlog, progress
        )
        metrics = result.metrics()
        _update(settings, run_id, metrics=metrics)
        runlog.info(
            "trained %d steps in %.1fs (%.2fs/step), final loss %s",
            result.steps,
            result.seconds,
            result.step_seconds,
            result.final_loss,
        )
        runlog.info("evaluation gate: %d held-out pairs, probes %s", len(heldout), cfg.probes)
        gate = evaluate(
            settings,
            model_path,
            candidate_adapter=staged,
            current_adapter=parent_adapter,
            heldout=heldout,
            probe_set=cfg.probes,
            max_length=cfg.max_length,
            probe_max_tokens=cfg.probe_max_tokens,
            device=device,
            thresholds=Thresholds.from_settings(settings),
        )
        _update(settings, run_id, gate=gate)
        prefs = gate["preferences"]
        runlog.info(
            "held-out accuracy %.3f (current %.3f), margin %.4f (current %.4f); "
            "probe syntax-valid %.2f (current %.2f)",
            prefs["candidate"]["accuracy"],
            prefs["current"]["accuracy"],
            prefs["candidate"]["margin"],
            prefs["current"]["margin"],
            gate["probes"]["candidate"]["syntax_valid_rate"],
            gate["probes"]["current"]["syntax_valid_rate"],
        )
        version_metrics = {
            "final_loss": result.final_loss,
            "steps": result.steps,
            "heldout_accuracy": gate["preferences"]["candidate"]["accuracy"],
            "heldout_margin": gate["preferences"]["candidate"]["margin"],
        }
        base_model = model_label(settings)
        version_parent = parent if train_from is not None else registry.BASE
        if gate["passed"]:
            version = registry.register(
                settings,
                staged,
                run_id=run_id,
                parent=version_parent,
                base_model=base_model,
                metrics=version_metrics,
            )
            staged = None
            runlog.info("gate passed; registered %s", version.id)
            if settings.train_auto_promote:
                registry.promote(settings, version.id, reason=f"training run {run_id}")
                runlog.info("promoted %s", version.id)
            status = "succeeded"
        else:
            version = registry.register(
                settings,
                staged,
                run_id=run_id,
                parent=version_parent,
                base_model=base_model,
                metrics=version_metrics,
                status="rejected",
            )
            staged = None
            runlog.info(
                "gate failed (%s); %s kept as rejected", "; ".join(gate["reasons"]), version.id
            )
            status = "rejected"
        _update(
            settings,
            run_id,
            status=status,
            candidate_version=version.id,
            finished_at=utcnow(),
        )
        return status
    except BaseException as exc:
        error = _error_text(exc)
        runlog.error("run failed: %s", error)
        _fail(settings, run_id, error)
        if isinstance(exc, Exception):
            return "failed"
        raise
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        runlog.removeHandler(handler)
        handler.close()
        if lock_fd is None:
            release_lock(fd)


def _train_with_progress(
    settings: Settings,
    run_id: str,
    model_path: str,
    train: list[dict[str, Any]],
    staged: Path,
    cfg: TrainConfig,
    train_from: Path | None,
    runlog: logging.Logger,
    progress: bool,
) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from prefloop.trainer.dpo import train_dpo

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold cyan]training[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    )
    task = bar.add_task(run_id, total=None, loss="-")

    def on_step(info: dict[str, Any]) -> None:
        bar.update(task, completed=info["step"], total=info["total"], loss=f"{info['loss']:.4f}")
        runlog.info(
            "step %d/%d loss %.4f accuracy %s margin %s (%.2fs)",
            info["step"],
            info["total"],
            info["loss"],
            info.get("accuracy"),
            info.get("margin"),
            info.get("step_seconds") or 0.0,
        )
        _update(
            settings,
            run_id,
            metrics={"step": info["step"], "total_steps": info["total"], "loss": info["loss"]},
        )

    with bar:
        return train_dpo(model_path, train, staged, cfg, parent_adapter=train_from, on_step=on_step)
