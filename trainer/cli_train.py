"""``prefloop retrain`` and ``prefloop runs``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefloop.commands import CommandError, existing_db, render_table, settings_from_args

if TYPE_CHECKING:
    from prefloop.commands import Subcommands

from prefloop.protocol import TrainingRun

RETRAIN_EXIT = "exit status: 0 promoted (or registered), 3 rejected by the gate, 1 error"


def cmd_retrain(args: argparse.Namespace) -> int:
    from prefloop.train_config import ConfigError, load_config
    from prefloop.training import (
        RunError,
        run_exit_code,
        start_run,
        wait_run,
    )

    settings = settings_from_args(args)
    existing_db(settings)
    try:
        config = load_config(Path(args.config) if args.config else None)
    except ConfigError as exc:
        raise CommandError(str(exc), code=2) from exc
    try:
        run_id = start_run(
            settings,
            config=config,
            reason="cli",
            force=args.force,
            attach=args.wait,
            requested_by=settings.user,
        )
    except RunError as exc:  # not enough pairs, another run active, the process died
        raise CommandError(str(exc)) from exc
    print(f"training run {run_id} started (log: {settings.runs_dir / (run_id + '.log')})")
    if not args.wait:
        return 0
    try:
        run = wait_run(settings, run_id, timeout=settings.train_timeout)
    except TimeoutError as exc:
        raise CommandError(f"{exc}; it goes on in the background") from exc
    print(_summary(run))
    return run_exit_code(run)


def _summary(run: TrainingRun) -> str:
    status = run["status"]
    version = run.get("candidate_version")
    if status == "succeeded":
        waits = ((run.get("data") or {}).get("promotion") or {}).get("awaits_admin")
        if waits:
            return f"run {run['id']} succeeded: {version} passed the gate, not promoted: {waits}"
        return f"run {run['id']} succeeded: {version} passed the gate"
    if status == "rejected":
        reasons = "; ".join((run.get("gate") or {}).get("reasons") or [])
        return f"run {run['id']} rejected by the gate ({reasons}); {version} not promoted"
    return f"run {run['id']} {status}: {run.get('error') or ''}".rstrip(": ")


RUN_COLUMNS = (
    "id",
    "status",
    "reason",
    "requested_by",
    "created_at",
    "finished_at",
    "model_version",
    "candidate_version",
    "promoted",
    "pairs",
    "steps",
    "loss",
    "gate",
)


def _row(run: TrainingRun) -> dict[str, Any]:
    data = run.get("data") or {}
    metrics = run.get("metrics") or {}
    gate = run.get("gate") or {}
    loss = metrics.get("final_loss", metrics.get("loss"))
    return {
        "id": run["id"],
        "status": run["status"],
        "reason": run.get("reason"),
        "requested_by": run.get("requested_by"),
        "created_at": run["created_at"],
        "finished_at": run.get("finished_at"),
        "model_version": run.get("model_version"),
        "candidate_version": run.get("candidate_version"),
        "promoted": _promoted_cell(data.get("promotion")),
        "pairs": (f"{data['train']}/{data['heldout']}" if "train" in data else None),
        "steps": metrics.get("steps", metrics.get("step")),
        "loss": None if loss is None else f"{float(loss):.4f}",
        "gate": _gate_cell(gate),
    }


def _promoted_cell(promotion: dict[str, Any] | None) -> str | None:
    """``yes``, ``no: awaits an admin`` for a passing candidate left for an admin, ``no``;
    blank for runs recorded before runs said so."""
    if not promotion:
        return None
    if promotion.get("promoted"):
        return "yes"
    return "no: awaits an admin" if promotion.get("awaits_admin") else "no"


def _gate_cell(gate: dict[str, Any]) -> str | None:
    """``pass``, or ``fail`` with each failed figure and how far it missed (older runs,
    stored before the gate kept its findings, show just ``fail``)."""
    if not gate:
        return None
    if gate.get("passed"):
        return "pass"
    failed = [
        f"{finding['figure']} short {float(finding['shortfall']):.3g}"
        for half in ("preferences", "probes", "behaviour")
        for finding in (gate.get(half) or {}).get("findings") or []
        if not finding.get("passed")
    ]
    return "fail" + (f": {', '.join(failed)}" if failed else "")


def cmd_runs(args: argparse.Namespace) -> int:
    from prefloop.training import UnknownRun, get_run, list_runs, recover_stale

    settings = settings_from_args(args)
    existing_db(settings)
    recover_stale(settings)
    if getattr(args, "run_id", None):
        try:
            run = get_run(settings, args.run_id)
        except UnknownRun as exc:
            raise CommandError(str(exc)) from exc
        print(json.dumps(run, indent=2, ensure_ascii=False))
        return 0
    runs = list_runs(settings, limit=args.limit)
    if args.format == "json":
        print(json.dumps(runs, indent=2, ensure_ascii=False))
        return 0
    rows = (_row(run) for run in runs)
    cells = (["" if row[c] is None else str(row[c]) for c in RUN_COLUMNS] for row in rows)
    print(render_table(RUN_COLUMNS, cells, fold=False))
    print(f"{len(runs)} run(s)")
    return 0


def add_parsers(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """``retrain`` and ``runs`` (with ``runs show``) on the ``prefloop`` parser."""
    retrain = sub.add_parser(
        "retrain",
        parents=[common],
        help="build pairs, train a candidate adapter, gate it, promote it (local mode)",
        epilog=RETRAIN_EXIT,
    )
    retrain.add_argument("--config", help="training settings file (TOML or JSON)")
    retrain.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the run and show its progress (default), or return at once",
    )
    retrain.add_argument(
        "--force", action="store_true", help="train even with fewer than train_min_new_pairs"
    )
    retrain.set_defaults(func=cmd_retrain)

    runs = sub.add_parser("runs", parents=[common], help="list training runs; `runs show ID`")
    runs.add_argument("--limit", type=int, default=50, help="at most this many runs")
    runs.add_argument("--format", choices=["table", "json"], default="table")
    runs.set_defaults(func=cmd_runs)
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    show = runs_sub.add_parser("show", parents=[common], help="one run in full (JSON)")
    show.add_argument("run_id", help="the run's id")
    show.set_defaults(func=cmd_runs)
