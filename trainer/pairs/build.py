"""One pair build: read the new evidence in one snapshot, derive, filter, check and split
the pairs, then replace the affected suggestions' pairs in one short write."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefloop.settings import Settings
from prefloop.store import migrate, utcnow
from prefloop.store import pairs as store
from prefloop.store.connection import immediate
from prefloop.trainer.pairs.checks import apply_checks
from prefloop.trainer.pairs.evidence import load_evidence
from prefloop.trainer.pairs.filtering import (
    DROP_REASONS,
    Keyed,
    oldest_first,
    screen,
    unique,
    without_secrets,
)
from prefloop.trainer.pairs.sources import SOURCES, Derived, derive
from prefloop.trainer.pairs.split import assign_user_splits, group_users, newest_per_group

log = logging.getLogger("prefloop.trainer.pairs")


class PairBuildError(RuntimeError):
    """A build could not run (another build committed in between, a missing database)."""


@dataclass
class BuildReport:
    """What one build did. ``train``/``heldout`` count every pair in the store after it."""

    events_seen: int
    pairs_added: int
    dropped: dict[str, int]
    train: int
    heldout: int
    seconds: float
    full: bool
    suggestions: int = 0
    pairs_updated: int = 0
    pairs_removed: int = 0
    build_id: int | None = None
    by_source: dict[str, int] = field(default_factory=dict)
    # judge_ranking pairs derived from a pairwise verdict (near ties broken)
    pairwise_breaks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _evidence_json(k: Keyed) -> str:
    p = k.pair
    return json.dumps(
        {
            "suggestion": p.suggestion.id,
            "candidates": list(p.candidates),
            "events": list(p.events),
            "critiques": list(p.critiques),
        },
        separators=(",", ":"),
    )


def _settings_used(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump().items() if k.startswith("pairs_")}


def run_build(
    db_path: Path, settings: Settings, *, full: bool = False, pool_min_jobs: int
) -> BuildReport:
    """Turn the evidence stored since the last build (all of it with ``full``) into
    preference pairs; checks run in worker processes when there are ``pool_min_jobs`` or
    more texts to check. Raises FileNotFoundError without a database and PairBuildError
    when another build committed while this one ran."""
    started = time.perf_counter()
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    migrate(db_path)
    dropped = dict.fromkeys(DROP_REASONS, 0)
    with store.open_build(db_path) as conn:
        # Read phase: one snapshot, no write lock (the service keeps writing meanwhile).
        with store.snapshot(conn):
            mark = store.high_water(conn)
            ev_from, cr_from = (0, 0) if full else (mark.event_rowid, mark.critique_rowid)
            ev_to, cr_to = store.newest_rowids(conn)
            events_seen = store.count_events(conn, ev_from, ev_to)
            store.mark_affected(conn, (ev_from, ev_to), (cr_from, cr_to))
            suggestions = load_evidence(conn)
            derived = Derived()
            for s in sorted(suggestions.values(), key=lambda s: (s.created_at, s.id)):
                derived.add(derive(s, settings))
            dropped["tie"] += derived.ties
            dropped["small_gap"] += derived.small_gaps
            keyed = screen(
                derived.pairs,
                min_chars=settings.pairs_min_chars,
                near_duplicate=settings.pairs_near_duplicate,
                dropped=dropped,
            )
            taken = store.taken_pair_keys(conn, [k.pair_key for k in keyed])
            clean = without_secrets(unique(oldest_first(keyed), taken, dropped), dropped)
            passed, checked = apply_checks(
                conn, [k.pair for k in clean], settings, pool_min_jobs=pool_min_jobs
            )
            dropped["check_failed"] += len(clean) - len(passed)
            passing = {id(p) for p in passed}
            kept = [k for k in clean if id(k.pair) in passing]
            existing = store.affected_pairs(conn)
            newest = newest_per_group((k.group_key, k.pair.suggestion.created_at) for k in kept)
            users = group_users(
                (k.group_key, k.pair.suggestion.created_at, k.pair.suggestion.user or "")
                for k in kept
            )
            splits, new_splits = assign_user_splits(
                newest,
                users,
                store.known_splits(conn, list(newest)),
                store.split_totals_by_user(conn),
                settings.pairs_heldout_fraction,
                utcnow(),
                minimum=settings.pairs_heldout_min,
            )

        # Write phase: one short transaction.
        now = utcnow()
        with immediate(conn):
            if store.high_water(conn).build_id != mark.build_id:
                raise PairBuildError("another pair build finished while this one ran; run again")
            build_id = store.start_build(
                conn, started_at=now, full=full, event_rowid=ev_to, critique_rowid=cr_to
            )
            store.save_splits(conn, new_splits)
            store.save_checks(conn, checked)
            rows = []
            added = updated = 0
            by_source = dict.fromkeys(SOURCES, 0)
            for k in kept:
                p, s = k.pair, k.pair.suggestion
                before = existing.pop(p.id, None)
                if before is None:
                    added += 1
                    by_source[p.source] += 1
                    created, split = now, splits[k.group_key]
                else:
                    created, split = before.created_at, before.split
                    if before.pair_key != k.pair_key:
                        updated += 1
                rows.append(
                    store.PairRow(
                        id=p.id,
                        created_at=created,
                        user=s.user,
                        language=s.language,
                        model_version=s.model_version,
                        source=p.source,
                        prompt=s.prompt,
                        # Both texts continue the prompt: the whitespace it left out first.
                        chosen=s.prompt_lead + p.chosen,
                        rejected=s.prompt_lead + p.rejected,
                        weight=p.weight,
                        evidence=_evidence_json(k),
                        split=split,
                        suggestion_id=s.id,
                        suggestion_at=s.created_at,
                        group_key=k.group_key,
                        pair_key=k.pair_key,
                        build_id=build_id,
                    )
                )
            store.replace_affected_pairs(conn, rows)
            counts = store.split_counts(conn)
            seconds = time.perf_counter() - started
            report = BuildReport(
                events_seen=events_seen,
                pairs_added=added,
                dropped=dropped,
                train=counts["train"],
                heldout=counts["heldout"],
                seconds=seconds,
                full=full,
                suggestions=len(suggestions),
                pairs_updated=updated,
                pairs_removed=len(existing),
                build_id=build_id,
                by_source=by_source,
                pairwise_breaks=derived.pairwise_breaks,
            )
            store.finish_build(
                conn,
                build_id,
                store.BuildSummary(
                    finished_at=utcnow(),
                    events_seen=events_seen,
                    suggestions=len(suggestions),
                    pairs_added=added,
                    pairs_updated=updated,
                    pairs_removed=len(existing),
                    dropped=dropped,
                    train=counts["train"],
                    heldout=counts["heldout"],
                    seconds=seconds,
                    settings=_settings_used(settings),
                ),
            )
    log.info(
        "pair build %s: %d events, %d suggestions, %d pairs added, %.2f s",
        build_id,
        events_seen,
        len(suggestions),
        added,
        report.seconds,
    )
    return report
