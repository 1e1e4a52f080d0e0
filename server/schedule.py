"""Scheduled retraining inside ``prefloop serve`` (APScheduler).

``train_schedule`` is ``off``, ``interval:<n><s|m|h|d>`` or a five-field cron expression
(``cron:0 3 * * *`` or ``0 3 * * *``). At each tick a run starts only when at least
``train_min_new_pairs`` pairs arrived since the last finished run and no run holds the lock;
missed ticks are coalesced into one and may start ``train_misfire_grace`` seconds late.
This module only wires the scheduler: the run itself is :func:`prefloop.training.start_run`.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from prefloop.settings import Settings
from prefloop.store import utcnow
from prefloop.training import (
    ACTIVE,
    NotEnoughPairs,
    RunInProgress,
    last_run,
    recover_stale,
    start_run,
)

log = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^interval:\s*(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Schedule:
    """A parsed ``train_schedule``: off, every ``seconds``, or a five-field ``cron``."""

    kind: str  # "off" | "interval" | "cron"
    seconds: float = 0.0
    cron: str = ""

    def describe(self) -> str:
        if self.kind == "interval":
            return f"every {self.seconds:g}s"
        if self.kind == "cron":
            return f"cron {self.cron}"
        return "off"


def parse_schedule(value: str) -> Schedule:
    """Read ``train_schedule``; ValueError with a readable message when it cannot be."""
    text = value.strip()
    if text.lower() in ("", "off", "none", "false"):
        return Schedule("off")
    match = _INTERVAL.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds <= 0:
            raise ValueError("train_schedule interval must be positive")
        return Schedule("interval", seconds=seconds)
    expr = text[len("cron:") :].strip() if text.startswith("cron:") else text
    if len(expr.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(expr)
        except ValueError as exc:
            raise ValueError(f"train_schedule {value!r}: {exc}") from exc
        return Schedule("cron", cron=expr)
    raise ValueError(
        f"train_schedule {value!r}: use off, interval:<n><s|m|h|d> (e.g. interval:6h) "
        "or a five-field cron expression (e.g. cron:0 3 * * *)"
    )


class TrainingSchedule:
    """The background scheduler of a service; :meth:`describe` feeds ``/healthz``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schedule = parse_schedule(settings.train_schedule)
        self._scheduler: Any = None
        self._lock = threading.Lock()
        self.last_check: dict[str, Any] | None = None

    def start(self) -> None:
        if self.settings.db_path.exists():
            stale = recover_stale(self.settings)
            if stale:
                log.warning("marked %d unfinished training run(s) failed", len(stale))
        if self.schedule.kind == "off":
            return
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        trigger: Any
        if self.schedule.kind == "interval":
            trigger = IntervalTrigger(seconds=self.schedule.seconds)
        else:
            trigger = CronTrigger.from_crontab(self.schedule.cron)
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self.tick,
            trigger,
            id="retrain",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self.settings.train_misfire_grace),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("training schedule: %s", self.schedule.describe())

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def tick(self) -> str | None:
        """One scheduled look: start a run when there is enough new data. Returns its id."""
        with self._lock:
            at = utcnow()
            try:
                run_id = start_run(self.settings, reason="schedule")
            except (NotEnoughPairs, RunInProgress) as exc:
                self.last_check = {"at": at, "started": None, "why_not": str(exc)}
                log.info("scheduled retrain skipped: %s", exc)
                return None
            except Exception as exc:
                self.last_check = {"at": at, "started": None, "why_not": f"error: {exc}"}
                log.exception("scheduled retrain could not start")
                return None
            self.last_check = {"at": at, "started": run_id, "why_not": None}
            return run_id

    def next_run_time(self) -> str | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job("retrain")
        if job is None or job.next_run_time is None:
            return None
        return str(job.next_run_time.isoformat())

    def describe(self) -> dict[str, Any]:
        last = None
        try:
            run = last_run(self.settings)
        except Exception:
            run = None
        if run is not None:
            last = {
                "id": run["id"],
                "status": run["status"],
                "created_at": run["created_at"],
                "finished_at": run["finished_at"],
                "candidate_version": run["candidate_version"],
            }
        return {
            "schedule": self.schedule.describe(),
            "next_run": self.next_run_time(),
            "running": bool(run is not None and run["status"] in ACTIVE),
            "last_run": last,
            "last_check": self.last_check,
        }
