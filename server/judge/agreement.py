"""Does the judge prefer what users kept? Judge scores set against user signals.

A candidate is *kept* when it was accepted and its last retention snapshot (if any) still
holds at least half of it; *rejected* when it was dismissed by typing over it or by Escape,
rewritten after a dismissal, or accepted and then mostly rewritten. Other candidates (never
shown, moved away from, replaced) carry no user signal.

For each judge: ``agreement`` is the chance that a kept candidate scores higher than a
rejected one (ties count half; 0.5 is chance, 1.0 full agreement), ``top1`` the share of
suggestions with a kept candidate among several critiqued ones where the kept candidate
scores highest (ties split). Pairwise verdicts (``pairwise:`` judges) score no single
candidate and are left out. The rows are read through :mod:`prefloop.store.critiques`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prefloop.store.critiques import (
    ScoredCritique,
    SignalEvent,
    is_pairwise,
    reach,
    scored_critiques,
    signal_events,
)

Signal = Literal["kept", "rejected"]
KEEP_SIMILARITY = 0.5
REJECTING_DISMISSALS = frozenset({"typed_over", "escaped"})
Key = tuple[str, int]


@dataclass
class _Trace:
    accepted: bool = False
    dismissed: bool = False
    rewritten: bool = False
    similarity: float | None = None


def user_signals(events: Iterable[SignalEvent]) -> dict[Key, Signal]:
    """Kept/rejected per (suggestion id, candidate index), from events in time order."""
    traces: dict[Key, _Trace] = defaultdict(_Trace)
    for e in events:
        trace = traces[(str(e.suggestion_id), int(e.candidate_index or 0))]
        kind = e.kind
        if kind == "accepted":
            trace.accepted = True
        elif kind == "dismissed" and e.reason in REJECTING_DISMISSALS:
            trace.dismissed = True
        elif kind == "rewritten":
            trace.rewritten = True
        elif kind == "retained" and e.similarity is not None:
            trace.similarity = float(e.similarity)
    out: dict[Key, Signal] = {}
    for key, t in traces.items():
        if t.accepted:
            kept = t.similarity is None or t.similarity >= KEEP_SIMILARITY
            out[key] = "kept" if kept else "rejected"
        elif t.dismissed or t.rewritten:
            out[key] = "rejected"
    return out


def overall(scores: dict[str, Any]) -> float | None:
    """The mean of a critique's numeric scores; None without any."""
    values = [float(v) for v in scores.values() if isinstance(v, int | float)]
    return sum(values) / len(values) if values else None


def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(positive > negative) + P(equal) / 2, by ranks (Mann-Whitney U)."""
    if not positive or not negative:
        return None
    pooled = sorted([(v, 1) for v in positive] + [(v, 0) for v in negative])
    rank_sum = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2
        rank_sum += mid_rank * sum(1 for k in range(i, j) if pooled[k][1] == 1)
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass
class JudgeAgreement:
    judge: str
    rubric_version: str
    models: list[str] = field(default_factory=list)
    critiques: int = 0
    ok: int = 0
    failed: int = 0
    first_try: int = 0
    kept: int = 0
    rejected: int = 0
    mean_kept: float | None = None
    mean_rejected: float | None = None
    agreement: float | None = None
    top1: float | None = None
    top1_suggestions: int = 0


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _top1(by_suggestion: dict[str, dict[int, float]], signals: dict[Key, Signal]) -> list[float]:
    hits = []
    for sid, scores in by_suggestion.items():
        kept = [i for i in scores if signals.get((sid, i)) == "kept"]
        if len(scores) < 2 or not kept:
            continue
        best = max(scores.values())
        leaders = [i for i, s in scores.items() if s == best]
        hits.append(sum(1 for i in kept if i in leaders) / (len(leaders) * len(kept)))
    return hits


def agreement_by_judge(
    critiques: Iterable[ScoredCritique], signals: dict[Key, Signal]
) -> list[JudgeAgreement]:
    """Agreement of each judge (and rubric version) with the users' signals."""
    groups: dict[tuple[str, str], list[ScoredCritique]] = defaultdict(list)
    for row in critiques:
        if is_pairwise(row.judge):
            continue
        groups[(row.judge, row.rubric_version)].append(row)
    report = []
    for (judge, version), rows in sorted(groups.items()):
        item = JudgeAgreement(judge, version, sorted({str(r.judge_model) for r in rows}))
        kept: list[float] = []
        rejected: list[float] = []
        by_suggestion: dict[str, dict[int, float]] = defaultdict(dict)
        for r in rows:
            item.critiques += 1
            score = overall(r.scores) if r.status == "ok" and r.scores else None
            if r.status == "failed":
                item.failed += 1
            if score is None:
                continue
            item.ok += 1
            item.first_try += int(r.attempts == 1)
            key = (str(r.suggestion_id), int(r.candidate_index))
            by_suggestion[key[0]][key[1]] = score
            signal = signals.get(key)
            if signal == "kept":
                kept.append(score)
            elif signal == "rejected":
                rejected.append(score)
        item.kept, item.rejected = len(kept), len(rejected)
        item.mean_kept, item.mean_rejected = _mean(kept), _mean(rejected)
        value = auc(kept, rejected)
        item.agreement = None if value is None else round(value, 3)
        hits = _top1(by_suggestion, signals)
        item.top1, item.top1_suggestions = _mean(hits), len(hits)
        report.append(item)
    return report


def collect(conn: sqlite3.Connection, *, since: str | None = None) -> dict[str, Any]:
    """The ``prefloop stats`` report for suggestions made since ``since`` (all if None)."""
    start = since or ""
    made = reach(conn, start)
    signals = user_signals(signal_events(conn, start))
    judges = agreement_by_judge(scored_critiques(conn, start), signals)
    return {
        "since": since,
        "suggestions": made.suggestions,
        "shown": made.shown,
        "accepted": made.accepted,
        "acceptance_rate": round(made.accepted / made.shown, 3) if made.shown else None,
        "kept_candidates": sum(1 for s in signals.values() if s == "kept"),
        "rejected_candidates": sum(1 for s in signals.values() if s == "rejected"),
        "judges": [asdict(j) for j in judges],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_table(report: dict[str, Any]) -> str:
    """The ``prefloop stats`` report as text: a summary line and a table per judge."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    console = Console(file=StringIO(), width=160)
    rate = _cell(report["acceptance_rate"])
    console.print(
        f"suggestions {report['suggestions']}, shown {report['shown']}, accepted "
        f"{report['accepted']} (acceptance {rate}); candidates kept "
        f"{report['kept_candidates']}, rejected {report['rejected_candidates']}"
    )
    table = Table(title="judge agreement with user signals")
    columns = (
        "judge",
        "rubric_version",
        "ok",
        "failed",
        "first_try",
        "kept",
        "rejected",
        "mean_kept",
        "mean_rejected",
        "agreement",
        "top1",
    )
    for column in columns:
        table.add_column(column)
    for judge in report["judges"]:
        table.add_row(*(_cell(judge[c]) for c in columns))
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out).rstrip("\n")
