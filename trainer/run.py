"""A training run carried out: the body of the training process.

``python -m prefloop.trainer`` (started by :func:`prefloop.training.start_run`) first
calls :func:`prepare_run`: it brings the pairs table up to date and records the run as
``queued``, or refuses when there is too little to train on. Then :func:`run_in_process`
trains the adapter into a staging directory of the registry, runs the evaluation gate and
registers (and may promote) the candidate. :func:`queue_run` does the first step in this
process, for a run carried out here rather than in a process of its own.

Heavy libraries (torch, transformers, trl) are imported only once training begins, so a
refusal is quick.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.protocol import PairCounts
from prefloop.settings import Settings
from prefloop.store import migrate, utcnow
from prefloop.store import runs as stored_runs
from prefloop.train_config import TrainConfig, load_config
from prefloop.trainer.dpo import TrainResult, resolve_device, train_dpo
from prefloop.training import (
    NotEnoughPairs,
    RunError,
    RunInProgress,
    UnknownRun,
    new_run_id,
    recover_stale,
    release_lock,
    run_log_path,
    try_lock,
)

log = logging.getLogger(__name__)


# ---- data -----------------------------------------------------------------------------


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


def heldout_shortfall(settings: Settings, train: int, heldout: int) -> str | None:
    """Why a run with ``train`` + ``heldout`` pairs cannot be judged (None when it can):
    the gate decides on no fewer held-out pairs than
    ``max(train_gate_min_heldout, ceil(train_gate_heldout_share × pairs))``."""
    from prefloop.trainer.gate import heldout_floor

    floor = heldout_floor(
        train + heldout, settings.train_gate_min_heldout, settings.train_gate_heldout_share
    )
    if heldout >= floor:
        return None
    return (
        f"only {heldout} held-out pair(s) for {train + heldout} pairs; the gate decides on no "
        f"fewer than {floor} (max(train_gate_min_heldout {settings.train_gate_min_heldout}, "
        f"train_gate_heldout_share {settings.train_gate_heldout_share:g} of the pairs)), "
        f"{floor - heldout} short: more feedback is needed"
    )


def prepare_run(
    settings: Settings,
    run_id: str,
    config: TrainConfig,
    *,
    reason: str,
    force: bool,
    pid: int | None = None,
) -> PairCounts:
    """Build the pairs, check there is enough to train on and record the run as ``queued``.

    The caller holds the training lock. Raises :class:`NotEnoughPairs` (recording nothing)
    when there are no training pairs, fewer held-out pairs than the gate's floor (see
    :func:`heldout_shortfall`; ``force`` does not lift it) or, unless ``force``, fewer than
    ``train_min_new_pairs`` new ones. Returns the pairs available.
    """
    from prefloop.trainer.pairs import build_pairs

    report = build_pairs(settings.db_path, settings)
    build = {
        "events_seen": report.events_seen,
        "pairs_added": report.pairs_added,
        "train": report.train,
        "heldout": report.heldout,
    }
    counts = stored_runs.pair_counts(settings.db_path)
    if counts["train"] == 0:
        raise NotEnoughPairs("no training pairs yet: the feedback log has none to offer")
    refusal = heldout_shortfall(
        settings,
        min(counts["train"], config.max_train_pairs),
        min(counts["heldout"], config.max_heldout_pairs),
    )
    if refusal:
        raise NotEnoughPairs(refusal)
    if not force and counts["new"] < settings.train_min_new_pairs:
        raise NotEnoughPairs(
            f"only {counts['new']} new pair(s) since the last run; "
            f"train_min_new_pairs is {settings.train_min_new_pairs} (--force trains anyway)"
        )
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    stored_runs.insert_run(
        settings.db_path,
        run_id,
        user=settings.user,
        config=config.as_dict(),
        data={"pairs_available": counts, "build": build},
        reason=reason,
        log_path=run_log_path(settings, run_id),
        pid=pid,
    )
    return counts


def queue_run(
    settings: Settings,
    *,
    config: TrainConfig | None = None,
    reason: str = "manual",
    force: bool = False,
) -> str:
    """Queue a run without starting a process (for :func:`run_in_process` in this process).

    The same checks and refusals as :func:`prefloop.training.start_run`.
    """
    migrate(settings.db_path)
    cfg = config or load_config()
    fd = try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    try:
        recover_stale(settings, lock_is_mine=True)
        run_id = new_run_id()
        prepare_run(settings, run_id, cfg, reason=reason, force=force)
        return run_id
    finally:
        release_lock(fd)


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


def error_summary(exc: BaseException) -> str:
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

    ``lock_fd`` is the training lock handed down by :func:`prefloop.training.start_run`;
    without it the lock is taken here (:class:`RunInProgress` if another run holds it).
    """
    from prefloop.models import model_label, resolve_model
    from prefloop.trainer.gate import evaluate, heldout_floor, thresholds_from_settings

    fd = lock_fd if lock_fd is not None else try_lock(settings)
    if fd is None:
        raise RunInProgress("a training run is already running")
    db = settings.db_path
    run = stored_runs.get_run(db, run_id)
    if run is None:
        release_lock(fd)
        raise UnknownRun(f"no training run {run_id}")
    if run["status"] != "queued":
        release_lock(fd)
        raise RunError(f"run {run_id} is {run['status']}, not queued")
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    runlog, handler = _file_logger(run_log_path(settings, run_id))
    _quiet_libraries()
    staged: Path | None = None
    status = "failed"
    try:
        stored_runs.update_run(db, run_id, status="running", started_at=utcnow(), pid=os.getpid())
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
        stored_runs.update_run(
            db,
            run_id,
            model_version=parent,
            parent_version=parent if train_from is not None else registry.BASE,
            reference_model=reference,
        )
        model_path = resolve_model(settings)
        train = stored_runs.load_split(db, "train", cfg.max_train_pairs)
        heldout = stored_runs.load_split(db, "heldout", cfg.max_heldout_pairs)
        data = {**(run["data"] or {}), **data_record(train, heldout)}
        stored_runs.update_run(db, run_id, data=data)
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
        refusal = heldout_shortfall(settings, len(train), len(heldout))
        if refusal:
            raise NotEnoughPairs(refusal)
        floor = heldout_floor(
            len(train) + len(heldout),
            settings.train_gate_min_heldout,
            settings.train_gate_heldout_share,
        )
        staged = registry.staging_dir(settings)
        device = resolve_device(cfg.device)
        result = _train_with_progress(
            settings, run_id, model_path, train, staged, cfg, train_from, runlog, progress
        )
        metrics = result.metrics()
        stored_runs.update_run(db, run_id, metrics=metrics)
        runlog.info(
            "trained %d steps in %.1fs (%.2fs/step), final loss %s",
            result.steps,
            result.seconds,
            result.step_seconds,
            result.final_loss,
        )
        runlog.info(
            "evaluation gate: %d held-out pairs (floor %d), probes %s",
            len(heldout),
            floor,
            cfg.probes,
        )
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
            thresholds=thresholds_from_settings(settings),
            floor=floor,
            seed=cfg.seed,
        )
        stored_runs.update_run(db, run_id, gate=gate.stored())
        prefs = gate.preferences
        runlog.info(
            "held-out accuracy %.3f (current %.3f), margin %.4f (current %.4f); "
            "probe syntax-valid %.2f (current %.2f)",
            prefs.candidate.accuracy,
            prefs.current.accuracy,
            prefs.candidate.margin,
            prefs.current.margin,
            gate.probes.candidate.syntax_valid_rate,
            gate.probes.current.syntax_valid_rate,
        )
        for mine in prefs.by_user or []:
            runlog.info(
                "held-out pairs of user %s: %d, accuracy %.3f (current %.3f), "
                "margin %.4f (current %.4f)",
                mine.user or "(unknown)",
                mine.candidate.pairs,
                mine.candidate.accuracy,
                mine.current.accuracy,
                mine.candidate.margin,
                mine.current.margin,
            )
        for finding in gate.findings:
            runlog.info(
                "gate %s %s: %.4g (required %.4g, short by %.4g); %s%s",
                "pass" if finding.passed else "FAIL",
                finding.figure,
                finding.value,
                finding.required,
                finding.shortfall,
                finding.noise,
                f"; {finding.detail}" if finding.detail else "",
            )
        version_metrics = {
            "final_loss": result.final_loss,
            "steps": result.steps,
            "heldout_accuracy": prefs.candidate.accuracy,
            "heldout_margin": prefs.candidate.margin,
        }
        base_model = model_label(settings)
        version_parent = parent if train_from is not None else registry.BASE
        if gate.passed:
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
                "gate failed (%s); %s kept as rejected", "; ".join(gate.reasons), version.id
            )
            status = "rejected"
        stored_runs.update_run(
            db,
            run_id,
            status=status,
            candidate_version=version.id,
            finished_at=utcnow(),
        )
        return status
    except BaseException as exc:
        error = error_summary(exc)
        runlog.error("run failed: %s", error)
        stored_runs.fail_run(db, run_id, error)
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
) -> TrainResult:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

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
        stored_runs.update_run(
            settings.db_path,
            run_id,
            metrics={"step": info["step"], "total_steps": info["total"], "loss": info["loss"]},
        )

    with bar:
        return train_dpo(model_path, train, staged, cfg, parent_adapter=train_from, on_step=on_step)
