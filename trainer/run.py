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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.protocol import GateResult, PairCounts
from prefloop.settings import Settings
from prefloop.store import migrate, utcnow
from prefloop.store import runs as stored_runs
from prefloop.train_config import TrainConfig, load_config
from prefloop.trainer.dpo import TrainResult, resolve_device, train_dpo
from prefloop.trainer.pairs.share import UserShareCap, cap_user_share
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


def shortfall(settings: Settings, train: int, heldout: int) -> str | None:
    """Why ``train`` + ``heldout`` pairs cannot make a run (None when they can): no
    training pairs, or too few held out (:func:`heldout_shortfall`)."""
    if train == 0:
        return "no training pairs"
    return heldout_shortfall(settings, train, heldout)


def share_caps(settings: Settings, config: TrainConfig) -> dict[str, UserShareCap | None]:
    """For the shared adapter: the cap on one user's share of each split ("train",
    "heldout") from the pairs each user has, None where it does not apply
    (:func:`~prefloop.trainer.pairs.share.cap_user_share`)."""
    by_user = stored_runs.pair_counts_by_user(settings.db_path)
    limits = {"train": config.max_train_pairs, "heldout": config.max_heldout_pairs}
    return {
        split: cap_user_share(
            {user: counts[split] for user, counts in by_user.items()},
            settings.train_max_user_share,
            limit,
        )
        for split, limit in limits.items()
    }


def describe_caps(caps: dict[str, UserShareCap | None]) -> str | None:
    """What the caps left out, in words (None: nothing)."""
    parts = [
        f"{count} {'held-out' if split == 'heldout' else 'train'} pair(s) of {user}"
        for split, cap in caps.items()
        if cap is not None
        for user, count in cap.left_out.items()
    ]
    if not parts:
        return None
    shares = sorted({f"{float(cap.share):g}" for cap in caps.values() if cap is not None})
    return (
        f"left out {', '.join(parts)}: no user's pairs may be more than "
        f"{' / '.join(shares)} of a split (train_max_user_share "
        f"{caps_setting(caps):g}; each user keeps their newest)"
    )


def caps_setting(caps: dict[str, UserShareCap | None]) -> float:
    """The ``train_max_user_share`` the caps were made with."""
    return next(cap.max_share for cap in caps.values() if cap is not None)


def capped_counts(
    counts: PairCounts, config: TrainConfig, caps: dict[str, UserShareCap | None]
) -> tuple[int, int]:
    """The train and held-out pairs a shared-adapter run uses: the split's limit, and
    under a cap the pairs it keeps."""
    train, heldout = caps["train"], caps["heldout"]
    return (
        train.total if train is not None else min(counts["train"], config.max_train_pairs),
        heldout.total if heldout is not None else min(counts["heldout"], config.max_heldout_pairs),
    )


def load_capped(
    settings: Settings, split: str, limit: int, cap: UserShareCap | None
) -> list[dict[str, Any]]:
    """The pairs of ``split`` a shared-adapter run uses: the newest ``limit``, or under a
    cap each user's newest up to their kept count (in the pairs table's order)."""
    if cap is None:
        return stored_runs.load_split(settings.db_path, split, limit)
    return stored_runs.load_split_quotas(settings.db_path, split, cap.kept)


def user_shortfalls(settings: Settings, config: TrainConfig) -> dict[str, str | None]:
    """For ``train_adapters = per_user``: each user with pairs, and why their pairs cannot
    make a candidate of their own (None: they can)."""
    return {
        user: shortfall(
            settings,
            min(counts["train"], config.max_train_pairs),
            min(counts["heldout"], config.max_heldout_pairs),
        )
        for user, counts in sorted(stored_runs.pair_counts_by_user(settings.db_path).items())
    }


def prepare_run(
    settings: Settings,
    run_id: str,
    config: TrainConfig,
    *,
    reason: str,
    force: bool,
    pid: int | None = None,
    requested_by: str | None = None,
) -> PairCounts:
    """Build the pairs, check there is enough to train on and record the run as ``queued``.

    The caller holds the training lock. Raises :class:`NotEnoughPairs` (recording nothing)
    when there are no training pairs, fewer held-out pairs than the gate's floor (see
    :func:`heldout_shortfall`, counting the pairs the cap on one user's share keeps,
    :func:`share_caps`; ``force`` does not lift it; with ``train_adapters = per_user``:
    no user whose own pairs reach it) or, unless ``force``, fewer than
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
    data: dict[str, Any] = {"pairs_available": counts, "build": build}
    if settings.train_adapters == "per_user":
        reasons = user_shortfalls(settings, config)
        if all(reasons.values()):
            raise NotEnoughPairs(
                "no user has enough pairs for an adapter of their own: "
                + "; ".join(f"{user}: {reason}" for user, reason in reasons.items())
            )
        data["users"] = {user: reason or "trainable" for user, reason in reasons.items()}
    else:
        caps = share_caps(settings, config)
        capped = describe_caps(caps)
        refusal = heldout_shortfall(settings, *capped_counts(counts, config, caps))
        if refusal:
            raise NotEnoughPairs(
                f"{refusal} (the cap on one user's share {capped})" if capped else refusal
            )
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
        data=data,
        reason=reason,
        log_path=run_log_path(settings, run_id),
        pid=pid,
        requested_by=requested_by,
    )
    return counts


def queue_run(
    settings: Settings,
    *,
    config: TrainConfig | None = None,
    reason: str = "manual",
    force: bool = False,
    requested_by: str | None = None,
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
        prepare_run(settings, run_id, cfg, reason=reason, force=force, requested_by=requested_by)
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


@dataclass
class Candidate:
    """What training, gating and registering one candidate came to."""

    status: str  # "succeeded" (gate passed) or "rejected"
    version: str
    served_before: str
    gate: GateResult
    metrics: dict[str, Any]
    promoted: bool


def train_candidate(
    settings: Settings,
    run_id: str,
    cfg: TrainConfig,
    *,
    train: list[dict[str, Any]],
    heldout: list[dict[str, Any]],
    runlog: logging.Logger,
    record: Callable[..., None],
    progress: bool = False,
    for_user: str | None = None,
) -> Candidate:
    """Train one candidate on ``train``, judge it on ``heldout`` against the version its
    scope serves now, register it (rejected when the gate fails) and, when it passed and
    auto-promotion is on (:func:`promotes_on_its_own`), promote it.

    ``for_user`` None: the shared adapter; else that user's own, judged against the
    version served to them. ``record`` receives the run's figures as they become known
    (the run row's columns: ``model_version``, ``gate``, ``metrics``, ...)."""
    from prefloop.models import model_label, resolve_model
    from prefloop.trainer.gate import evaluate, heldout_floor, thresholds_from_settings

    current = (
        registry.current(settings) if for_user is None else registry.served_to(settings, for_user)
    )
    parent = current.id if current is not None else registry.BASE
    parent_adapter = Path(current.adapter_path) if current is not None else None
    train_from = parent_adapter if cfg.reference == "previous" else None
    reference = (
        f"{parent} (frozen copy of the served adapter)"
        if train_from is not None
        else "base (adapter disabled)"
    )
    record(
        model_version=parent,
        parent_version=parent if train_from is not None else registry.BASE,
        reference_model=reference,
    )
    model_path = resolve_model(settings)
    scope = "" if for_user is None else f" for user {for_user}"
    runlog.info(
        "run %s%s: %d train and %d held-out pairs; parent %s; reference %s",
        run_id,
        scope,
        len(train),
        len(heldout),
        parent,
        reference,
    )
    refusal = shortfall(settings, len(train), len(heldout))
    if refusal:
        raise NotEnoughPairs(refusal)
    floor = heldout_floor(
        len(train) + len(heldout),
        settings.train_gate_min_heldout,
        settings.train_gate_heldout_share,
    )
    staged: Path | None = registry.staging_dir(settings)
    try:
        assert staged is not None
        device = resolve_device(cfg.device)
        result = _train_with_progress(
            settings, run_id, model_path, train, staged, cfg, train_from, runlog, progress
        )
        metrics = result.metrics()
        record(metrics=metrics)
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
        record(gate=gate.stored())
        _log_gate(runlog, gate)
        version_metrics = {
            "final_loss": result.final_loss,
            "steps": result.steps,
            "heldout_accuracy": gate.preferences.candidate.accuracy,
            "heldout_margin": gate.preferences.candidate.margin,
        }
        version = registry.register(
            settings,
            staged,
            run_id=run_id,
            parent=parent if train_from is not None else registry.BASE,
            base_model=model_label(settings),
            metrics=version_metrics,
            status="candidate" if gate.passed else "rejected",
            for_user=for_user,
        )
        staged = None
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    promoted = False
    if gate.passed:
        runlog.info("gate passed; registered %s%s", version.id, scope)
        if promotes_on_its_own(settings):
            asked = stored_runs.get_run(settings.db_path, run_id)
            registry.promote(
                settings,
                version.id,
                reason=f"training run {run_id}",
                requested_by=asked["requested_by"] if asked else None,
            )
            runlog.info("promoted %s%s", version.id, scope)
            promoted = True
        else:
            runlog.info("%s%s not promoted: %s", version.id, scope, promotion_note(settings))
    else:
        runlog.info(
            "gate failed (%s); %s kept as rejected%s", "; ".join(gate.reasons), version.id, scope
        )
    return Candidate(
        status="succeeded" if gate.passed else "rejected",
        version=version.id,
        served_before=parent,
        gate=gate,
        metrics=metrics,
        promoted=promoted,
    )


def team_home(settings: Settings) -> bool:
    """Whether the home has users with live tokens: a team's service keeps its data here."""
    from prefloop.store import tokens

    return any(user.active for user in tokens.list_users(settings.db_path))


def promotes_on_its_own(settings: Settings) -> bool:
    """Whether a candidate that passed the gate is promoted by the run: ``train_auto_promote``
    when set; unset, only in local mode (:attr:`Settings.auto_promote`) and in a home with
    no live user tokens, so that ``prefloop retrain`` on a team's host, in a shell that
    lacks the service's ``PREFLOOP_AUTH`` or host, promotes nothing either."""
    if settings.train_auto_promote is not None:
        return settings.train_auto_promote
    return settings.auto_promote and not team_home(settings)


def promotion_note(settings: Settings) -> str:
    """Why a candidate that passed the gate was left for an admin to promote."""
    if settings.train_auto_promote is False:
        return "train_auto_promote is off; it stays a candidate for an admin to promote"
    if settings.auth_mode == "local":
        return (
            "this home has users with tokens (a team's): a candidate that passed the gate "
            "stays a candidate for an admin to promote (train_auto_promote unset)"
        )
    return (
        "team mode: a candidate that passed the gate stays a candidate for an admin to "
        "promote (train_auto_promote unset), so no user's feedback reaches everyone "
        "without an admin's look"
    )


def promotion_record(settings: Settings, passed: bool, promoted: bool) -> dict[str, Any]:
    """What became of a run's candidate, for its data record: ``promoted``, and with
    ``awaits_admin`` why a passing candidate was not."""
    if promoted or not passed:
        return {"promoted": promoted}
    return {"promoted": False, "awaits_admin": promotion_note(settings)}


def _log_gate(runlog: logging.Logger, gate: GateResult) -> None:
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
    With ``train_adapters = per_user`` the run trains one candidate per user
    (:func:`_run_per_user`); otherwise one shared candidate on every user's pairs.
    """
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
    try:
        stored_runs.update_run(db, run_id, status="running", started_at=utcnow(), pid=os.getpid())
        cfg = load_config(overrides=run["config"] or {})
        if settings.train_adapters == "per_user":
            status, values = _run_per_user(
                settings, run_id, cfg, run["data"] or {}, runlog, progress
            )
        else:
            caps = share_caps(settings, cfg)
            train = load_capped(settings, "train", cfg.max_train_pairs, caps["train"])
            heldout = load_capped(settings, "heldout", cfg.max_heldout_pairs, caps["heldout"])
            data = {**(run["data"] or {}), **data_record(train, heldout)}
            data["by_user"] = {
                split: dict(sorted(Counter(p.get("user") or "" for p in pairs).items()))
                for split, pairs in (("train", train), ("heldout", heldout))
            }
            data["user_share_cap"] = {
                split: None if cap is None else cap.record() for split, cap in caps.items()
            }
            capped = describe_caps(caps)
            if capped:
                data["user_share_cap"]["why"] = capped
                runlog.info("cap on one user's share: %s", capped)
                log.info("run %s: %s", run_id, capped)
            stored_runs.update_run(db, run_id, data=data)
            outcome = train_candidate(
                settings,
                run_id,
                cfg,
                train=train,
                heldout=heldout,
                runlog=runlog,
                record=partial(stored_runs.update_run, db, run_id),
                progress=progress,
            )
            data["promotion"] = promotion_record(settings, outcome.gate.passed, outcome.promoted)
            status, values = outcome.status, {"candidate_version": outcome.version, "data": data}
        stored_runs.update_run(db, run_id, status=status, finished_at=utcnow(), **values)
        return status
    except BaseException as exc:
        error = error_summary(exc)
        runlog.error("run failed: %s", error)
        stored_runs.fail_run(db, run_id, error)
        if isinstance(exc, Exception):
            return "failed"
        raise
    finally:
        runlog.removeHandler(handler)
        handler.close()
        if lock_fd is None:
            release_lock(fd)


def _run_per_user(
    settings: Settings,
    run_id: str,
    cfg: TrainConfig,
    queued_data: dict[str, Any],
    runlog: logging.Logger,
    progress: bool,
) -> tuple[str, dict[str, Any]]:
    """One candidate per user with enough pairs, each on that user's own pairs; returns
    the run's status and its final columns.

    A user below the floor is skipped (the ``users`` record says why); a user whose
    training fails is recorded failed and the others go on. The run succeeds when some
    user's candidate passed its gate, is rejected when every trained candidate was, and
    fails when no user could be trained."""
    db = settings.db_path
    shared = registry.current(settings)
    stored_runs.update_run(
        db,
        run_id,
        model_version=shared.id if shared is not None else registry.BASE,
        parent_version=registry.BASE,
        reference_model="per user (see users)",
    )
    users: dict[str, dict[str, Any]] = {}
    used_train: list[dict[str, Any]] = []
    used_heldout: list[dict[str, Any]] = []

    def save() -> None:
        stored_runs.update_run(db, run_id, users=users)

    for user in sorted(stored_runs.pair_counts_by_user(db)):
        train = stored_runs.load_split(db, "train", cfg.max_train_pairs, user)
        heldout = stored_runs.load_split(db, "heldout", cfg.max_heldout_pairs, user)
        mine: dict[str, Any] = {"train": len(train), "heldout": len(heldout)}
        users[user] = mine
        refusal = shortfall(settings, len(train), len(heldout))
        if refusal:
            mine.update(status="skipped", reason=refusal)
            runlog.info("user %s skipped: %s", user, refusal)
            save()
            continue
        mine["status"] = "running"
        save()

        def record(mine: dict[str, Any] = mine, **values: Any) -> None:
            mine.update(values)
            save()

        try:
            outcome = train_candidate(
                settings,
                run_id,
                cfg,
                train=train,
                heldout=heldout,
                runlog=runlog,
                record=record,
                progress=progress,
                for_user=user,
            )
        except Exception as exc:
            error = error_summary(exc)
            runlog.error("user %s failed: %s", user, error)
            mine.update(status="failed", error=error)
            save()
            continue
        used_train += train
        used_heldout += heldout
        mine.update(
            status=outcome.status,
            candidate_version=outcome.version,
            served_before=outcome.served_before,
            gate_passed=outcome.gate.passed,
            reasons=list(outcome.gate.reasons),
            promoted=outcome.promoted,
        )
        save()
    data = {**queued_data, **data_record(used_train, used_heldout)}
    passed = [u for u, m in users.items() if m.get("status") == "succeeded"]
    waiting = [u for u in passed if not users[u].get("promoted")]
    data["promotion"] = {"promoted": any(users[u].get("promoted") for u in passed)}
    if waiting:
        data["promotion"]["awaits_admin"] = f"{', '.join(waiting)}: {promotion_note(settings)}"
    rejected = [u for u, m in users.items() if m.get("status") == "rejected"]
    if not passed and not rejected:
        stored_runs.update_run(db, run_id, data=data)
        why = "; ".join(
            f"{u}: {m.get('reason') or m.get('error') or m.get('status')}" for u, m in users.items()
        )
        raise NotEnoughPairs(f"no user could be trained ({why or 'no pairs'})")
    chosen = passed or rejected
    gate = {
        "passed": bool(passed),
        "reasons": [f"{u}: {reason}" for u in rejected for reason in users[u].get("reasons") or []],
        "users": {u: users[u].get("gate_passed") for u in [*passed, *rejected]},
    }
    return ("succeeded" if passed else "rejected"), {
        "data": data,
        "gate": gate,
        "candidate_version": ", ".join(str(users[u]["candidate_version"]) for u in chosen),
    }


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
