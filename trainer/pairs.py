"""Preference pairs from the store, in TRL's format (prompt, chosen, rejected).

Four sources, each pair keeping its source, a weight and the ids of its evidence:

* ``edit_after_accept``: chosen is what the user kept after editing an accepted
  suggestion (the last retention snapshot), rejected the suggestion as shown;
* ``rewrite_after_dismiss``: chosen is what the user wrote where a dismissed suggestion
  was, rejected the dismissed suggestion;
* ``accept_vs_alternative``: chosen is a candidate the user accepted and kept, rejected
  another candidate of the same request that was never shown and was judged lower;
* ``judge_ranking``: the best- and worst-judged candidates of a request, when their scores
  differ by at least ``pairs_min_score_gap``; when they are closer (a tie included), a
  stored pairwise verdict (a ``pairwise:`` critique) between two of its judged candidates
  in which one won in both orders makes the winner chosen and the loser rejected.

The prompt of every pair is the stored prompt of its suggestion: the text the engine saw,
with the same template and truncation.

Pairs are dropped (and counted by reason) for ties, small score gaps, trivial lengths,
identical or near-identical chosen/rejected texts, a remaining secret, duplicates, and a
chosen text that fails the verifiable checks (:mod:`prefloop.checks`).

Builds are incremental: a build reads the events and critiques stored since the previous
build's high-water marks (row ids), re-derives the pairs of the suggestions they concern
(only those), and replaces those suggestions' pairs. The train/held-out split is decided
per prompt group (all pairs with the same prompt text) the first time the group yields a
pair and never changes afterwards; each build holds out the newest groups it adds.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import difflib
import hashlib
import json
import keyword
import logging
import multiprocessing
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from prefloop.checks.base import Insertion, language_of
from prefloop.checks.names import check_names
from prefloop.checks.security import check_security
from prefloop.checks.syntax import check_syntax
from prefloop.redaction import contains_secret
from prefloop.settings import Settings
from prefloop.store import connect, migrate, parse_since, utcnow

log = logging.getLogger(__name__)

SOURCES = ("edit_after_accept", "rewrite_after_dismiss", "accept_vs_alternative", "judge_ranking")
SPLITS = ("train", "heldout")
DROP_REASONS = (
    "no_prompt",
    "tie",
    "small_gap",
    "too_short",
    "identical",
    "near_duplicate",
    "duplicate",
    "secret",
    "check_failed",
)
EVIDENCE_KINDS = ("shown", "accepted", "retained", "dismissed", "rewritten")
CHECK_JUDGES = ("check:syntax", "check:names", "check:security")
PAIR_CHECKS_VERSION = "pair-checks-v1"
_PLACEHOLDER = "<SECRET:"
_CHUNK = 500


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


@dataclass
class _Suggestion:
    id: str
    created_at: str
    user: str
    language: str
    model_version: str
    path: str
    prompt: str
    candidates: list[str]
    shown: set[int] = field(default_factory=set)
    accepted: dict[int, str] = field(default_factory=dict)
    retained: dict[int, tuple[str, float, str]] = field(default_factory=dict)
    dismissed: dict[int, str] = field(default_factory=dict)
    rewritten: dict[int, tuple[str, str]] = field(default_factory=dict)
    llm: dict[int, list[tuple[str, float]]] = field(default_factory=dict)
    checks: dict[int, list[tuple[str, float]]] = field(default_factory=dict)
    # consistent pairwise verdicts: (critique id, winner index, loser index)
    pairwise: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class _Pair:
    id: str
    source: str
    suggestion: _Suggestion
    chosen: str
    rejected: str
    weight: float
    events: list[str]
    critiques: list[str]
    candidates: tuple[int, ...]
    # the chosen candidate's index when chosen is a candidate (its stored checks apply)
    chosen_candidate: int | None = None
    group_key: str = ""
    pair_key: str = ""


def _hash(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def _normal(text: str) -> str:
    return " ".join(text.split())


def _similar(a: str, b: str, threshold: float) -> bool:
    """Is the difflib ratio of ``a`` and ``b`` at least ``threshold``? The cheap upper
    bounds (length ratio, character multiset) rule most pairs out before the full match."""
    la, lb = len(a), len(b)
    if la + lb == 0:
        return True
    if 2.0 * min(la, lb) / (la + lb) < threshold:
        return False
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return False
    return matcher.ratio() >= threshold


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---- reading the evidence ------------------------------------------------------------


def _high_water(conn: sqlite3.Connection) -> tuple[int, int, int | None]:
    row = conn.execute(
        "SELECT event_rowid, critique_rowid, id FROM pair_builds ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return (0, 0, None) if row is None else (int(row[0]), int(row[1]), int(row[2]))


_AFFECTED_BY_EVENTS = """
INSERT OR IGNORE INTO _pb_affected
SELECT e.suggestion_id FROM events e
WHERE e.rowid > ? AND e.rowid <= ? AND +e.kind IN ('accepted', 'retained', 'rewritten') AND (
  +e.kind = 'rewritten'
  OR (+e.kind = 'retained' AND (e.similarity IS NULL OR e.similarity < 1.0))
  OR EXISTS (SELECT 1 FROM suggestions s WHERE s.id = e.suggestion_id
             AND s.n >= 2 AND json_valid(s.candidates)
             AND json_array_length(s.candidates) >= 2)
  OR EXISTS (SELECT 1 FROM pairs p WHERE p.suggestion_id = e.suggestion_id)
)
"""
_AFFECTED_BY_CRITIQUES = """
INSERT OR IGNORE INTO _pb_affected
SELECT c.suggestion_id FROM critiques c
WHERE c.rowid > ? AND c.rowid <= ? AND c.status = 'ok'
  AND (c.scores IS NOT NULL OR c.judge LIKE 'pairwise:%')
  AND EXISTS (SELECT 1 FROM suggestions s WHERE s.id = c.suggestion_id
              AND s.n >= 2 AND json_valid(s.candidates)
            AND json_array_length(s.candidates) >= 2)
"""


def _mark_affected(conn: sqlite3.Connection, ev: tuple[int, int], cr: tuple[int, int]) -> None:
    """The suggestions whose pairs new evidence can change: a rewrite, a retention snapshot
    that differs from the suggestion, an accept or snapshot of a request with several
    candidates or with pairs already, a critique (a pairwise verdict included) of a
    request with several candidates."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pb_affected (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _pb_affected")
    conn.execute(_AFFECTED_BY_EVENTS, ev)
    conn.execute(_AFFECTED_BY_CRITIQUES, cr)


def _load(conn: sqlite3.Connection) -> dict[str, _Suggestion]:
    out: dict[str, _Suggestion] = {}
    for sid, created, user, language, version, path, prompt, cands in conn.execute(
        "SELECT s.id, s.created_at, s.user, s.language, s.model_version, s.path, s.prompt, "
        "s.candidates FROM _pb_affected a CROSS JOIN suggestions s ON s.id = a.id"
    ):
        try:
            parsed = json.loads(cands or "[]")
            texts = [str(c.get("text", "")) for c in sorted(parsed, key=lambda c: c["index"])]
        except (ValueError, TypeError, KeyError, AttributeError):
            texts = []
        out[sid] = _Suggestion(
            sid, created, user or "", language or "", version or "", path or "", prompt or "", texts
        )
    kinds = ",".join(f"'{k}'" for k in EVIDENCE_KINDS)
    for sid, eid, kind, index, similarity, text in conn.execute(
        "SELECT e.suggestion_id, e.id, e.kind, e.candidate_index, e.similarity, e.text "
        "FROM _pb_affected a CROSS JOIN events e ON e.suggestion_id = a.id "
        f"WHERE e.kind IN ({kinds}) ORDER BY e.suggestion_id, e.rowid"
    ):
        s = out.get(sid)
        if s is None:
            continue
        index = index or 0
        if kind == "shown":
            s.shown.add(index)
        elif kind == "accepted":
            s.shown.add(index)
            s.accepted.setdefault(index, eid)
        elif kind == "retained":
            s.retained[index] = (eid, float(similarity or 0.0), text or "")
        elif kind == "dismissed":
            s.shown.add(index)
            s.dismissed[index] = eid
        elif kind == "rewritten":
            s.rewritten[index] = (eid, text or "")
    for sid, cid, index, judge, scores in conn.execute(
        "SELECT c.suggestion_id, c.id, c.candidate_index, c.judge, c.scores "
        "FROM _pb_affected a CROSS JOIN critiques c ON c.suggestion_id = a.id "
        "WHERE c.status = 'ok' AND c.scores IS NOT NULL AND c.judge NOT LIKE 'pairwise:%'"
    ):
        s = out.get(sid)
        if s is None:
            continue
        try:
            values = [float(v) for v in json.loads(scores).values() if v is not None]
        except (ValueError, TypeError, AttributeError):
            continue
        if not values:
            continue
        if judge.startswith("check:"):
            s.checks.setdefault(index or 0, []).append((cid, min(values)))
        else:
            s.llm.setdefault(index or 0, []).append((cid, sum(values) / len(values)))
    for sid, cid, findings in conn.execute(
        "SELECT c.suggestion_id, c.id, c.findings "
        "FROM _pb_affected a CROSS JOIN critiques c ON c.suggestion_id = a.id "
        "WHERE c.status = 'ok' AND c.judge LIKE 'pairwise:%' ORDER BY c.id"
    ):
        s = out.get(sid)
        verdict = _pairwise_verdict(findings)
        if s is not None and verdict is not None:
            s.pairwise.append((cid, *verdict))
    return out


def _pairwise_verdict(findings: str | None) -> tuple[int, int] | None:
    """(winner, loser) of a stored pairwise verdict in which one candidate won in both
    orders; None for a tie, an inconsistent or unreadable verdict."""
    try:
        found = json.loads(findings or "")
        a, b, winner = found["a"], found["b"], found["winner"]
        consistent = found["consistent"] is True
    except (ValueError, TypeError, KeyError):
        return None
    if not (consistent and isinstance(a, int) and isinstance(b, int) and a != b):
        return None
    if winner == "a":
        return a, b
    if winner == "b":
        return b, a
    return None


# ---- deriving the pairs --------------------------------------------------------------


def _judged(s: _Suggestion, index: int) -> tuple[str, float, list[str]] | None:
    """(kind, score, critique ids) of a candidate: the mean of its LLM critiques' aspect
    scores, or without any, the lowest verifiable-check score."""
    if index in s.llm:
        found = s.llm[index]
        return "llm", sum(v for _, v in found) / len(found), [c for c, _ in found]
    if index in s.checks:
        found = s.checks[index]
        return "checks", min(v for _, v in found), [c for c, _ in found]
    return None


def _derive(
    s: _Suggestion,
    settings: Settings,
    dropped: dict[str, int],
    breaks: dict[str, int] | None = None,
) -> list[_Pair]:
    pairs: list[_Pair] = []
    n = len(s.candidates)

    def add(
        source: str,
        tail: str,
        chosen: str,
        rejected: str,
        weight: float,
        events: list[str],
        critiques: list[str],
        cands: tuple[int, ...],
        chosen_candidate: int | None,
    ) -> None:
        pairs.append(
            _Pair(
                f"{s.id}:{source}:{tail}",
                source,
                s,
                chosen,
                rejected,
                weight,
                events,
                critiques,
                cands,
                chosen_candidate,
            )
        )

    for index, accept_id in s.accepted.items():
        if index >= n or index not in s.retained:
            continue
        rid, similarity, kept = s.retained[index]
        shown = s.candidates[index]
        if kept != shown:
            add(
                "edit_after_accept",
                str(index),
                kept,
                shown,
                settings.pairs_weight_edit,
                [accept_id, rid],
                [],
                (index,),
                None,
            )
        if similarity < settings.pairs_retained_similarity:
            continue
        mine = _judged(s, index)
        if mine is None:
            continue
        for other in range(n):
            if other == index or other in s.shown:
                continue
            theirs = _judged(s, other)
            if theirs is None or theirs[0] != mine[0] or theirs[1] > mine[1]:
                continue
            if theirs[1] == mine[1]:
                dropped["tie"] += 1
                continue
            add(
                "accept_vs_alternative",
                f"{index}:{other}",
                shown,
                s.candidates[other],
                settings.pairs_weight_alternative,
                [accept_id, rid],
                mine[2] + theirs[2],
                (index, other),
                index,
            )
    for index, (rid, text) in s.rewritten.items():
        if index >= n:
            continue
        events = [e for e in (s.dismissed.get(index), rid) if e]
        add(
            "rewrite_after_dismiss",
            str(index),
            text,
            s.candidates[index],
            settings.pairs_weight_rewrite,
            events,
            [],
            (index,),
            None,
        )
    if n >= 2:
        scored = {i: j for i in range(n) if (j := _judged(s, i)) is not None}
        kind = "llm" if sum(1 for j in scored.values() if j[0] == "llm") >= 2 else "checks"
        ranked = sorted(
            ((j[1], i) for i, j in scored.items() if j[0] == kind), key=lambda t: (-t[0], t[1])
        )
        if len(ranked) >= 2:
            (best, bi), (worst, wi) = ranked[0], ranked[-1]
            close = best - worst < settings.pairs_min_score_gap
            judged = {i for _, i in ranked}
            broken = next(
                (v for v in s.pairwise if kind == "llm" and v[1] in judged and v[2] in judged),
                None,
            )
            if close and broken is not None:
                cid, winner, loser = broken
                add(
                    "judge_ranking",
                    f"{winner}:{loser}",
                    s.candidates[winner],
                    s.candidates[loser],
                    settings.pairs_weight_judge,
                    [],
                    scored[winner][2] + scored[loser][2] + [cid],
                    (winner, loser),
                    winner,
                )
                if breaks is not None:
                    breaks["pairwise"] = breaks.get("pairwise", 0) + 1
            elif best == worst:
                dropped["tie"] += 1
            elif close:
                dropped["small_gap"] += 1
            else:
                add(
                    "judge_ranking",
                    f"{bi}:{wi}",
                    s.candidates[bi],
                    s.candidates[wi],
                    settings.pairs_weight_judge,
                    [],
                    scored[bi][2] + scored[wi][2],
                    (bi, wi),
                    bi,
                )
    return pairs


# ---- verifiable checks of chosen texts -------------------------------------------------


def _check_key(
    language: str, prefix: str, completion: str, suffix: str, bandit: bool, lines: int
) -> str:
    return _hash(PAIR_CHECKS_VERSION, f"{bandit}:{lines}", language, prefix, completion, suffix)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNDEFINED = re.compile(r"undefined name '(.+)'")
# Names a completion binds itself: assignment targets, loop and comprehension variables,
# ``as`` names, definitions, lambda and function parameters (a rough, generous reading).
_BINDS = re.compile(
    r"\bfor\s+([\w\s,()]+?)\s+in\b|\bas\s+(\w+)|\b(?:def|class)\s+(\w+)"
    r"|\blambda\b([^:]*):|^\s*([\w\s,]+?)\s*(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)",
    re.MULTILINE,
)
_KNOWN = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def _window(prefix: str, suffix: str, lines: int) -> tuple[str, str]:
    """About the last ``lines`` lines of ``prefix`` and the first ``lines // 2`` lines of
    ``suffix``. The prefix part starts at a top-level line (no indentation) when one lies
    within another ``lines`` lines, so that it parses on its own more often."""
    head = prefix.rsplit("\n", 2 * lines)
    if len(head) > lines:
        start = len(head) - lines
        for i in range(start, 0, -1):
            first = head[i][:1]
            if first and not first.isspace() and first not in ")]}":
                start = i
                break
        head = head[start:]
    tail = suffix.split("\n", max(1, lines // 2))
    return "\n".join(head), "\n".join(tail[: max(1, lines // 2)])


@dataclass(frozen=True)
class _CheckJob:
    """What the checks of one text need: the window around it, and for the names check,
    which of the names the completion uses the file mentions somewhere."""

    before: str
    completion: str
    after: str
    language: str
    bandit: bool
    names: bool
    known: frozenset[str]


def _prepare(
    prefix: str, completion: str, suffix: str, language: str, bandit: bool, context_lines: int
) -> _CheckJob:
    before, after = _window(prefix, suffix, context_lines)
    names = False
    known: frozenset[str] = frozenset()
    if language == "python":
        used = set(_IDENT.findall(completion)) - _KNOWN
        for match in _BINDS.finditer(completion):
            for part in match.groups():
                if part:
                    used.difference_update(_IDENT.findall(part))
        if used:
            mentioned = set(_IDENT.findall(prefix)) | set(_IDENT.findall(suffix))
            names = not used <= mentioned
            known = frozenset(set(_IDENT.findall(completion)) & mentioned)
    return _CheckJob(before, completion, after, language, bandit, names, known)


def _run_job(job: _CheckJob) -> list[tuple[str, int]]:
    ins = Insertion(job.before, job.completion, job.after)
    out: list[tuple[str, int]] = []
    syntax = check_syntax(ins, job.language)
    if syntax.status == "ok" and syntax.score is not None:
        out.append(("syntax", syntax.score))
    if job.names and syntax.score == 5:
        names = check_names(ins)
        if names.status == "ok":
            errors = [
                f
                for f in names.findings
                if f.severity == "error"
                and not ((m := _UNDEFINED.match(f.message)) is not None and m.group(1) in job.known)
            ]
            out.append(("names", 1 if errors else 5))
    security = check_security(ins, job.language, bandit=job.bandit)
    if security.status == "ok" and security.score is not None:
        out.append(("security", security.score))
    return out


def run_checks(
    prefix: str,
    completion: str,
    suffix: str,
    language: str,
    *,
    bandit: bool = False,
    context_lines: int = 30,
) -> list[tuple[str, int]]:
    """(check, score) of the verifiable checks of ``completion`` inserted between ``prefix``
    and ``suffix`` (skipped checks are left out).

    The checks read the ``context_lines`` lines around the insertion, not the whole stored
    file: a pair build checks tens of thousands of texts. Parsing compares the window before
    and after the insertion (as the judge does for the whole file). The names check runs
    only on completions that use a name found nowhere in the file and is not a builtin, and
    an undefined name counts only when the file never mentions it (a name defined above the
    window is not the completion's fault).
    """
    return _run_job(_prepare(prefix, completion, suffix, language, bandit, context_lines))


POOL_MIN_JOBS = 1000
"""Fewer checks than this run in the build's own process."""


def _run_jobs(jobs: list[_CheckJob], workers: int) -> list[list[tuple[str, int]]]:
    """Every job's results, spread over ``workers`` processes when there are many."""
    if workers <= 1 or len(jobs) < POOL_MIN_JOBS:
        return [_run_job(job) for job in jobs]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_run_job, jobs, chunksize=max(16, len(jobs) // (workers * 8))))


def _apply_checks(
    conn: sqlite3.Connection,
    pairs: list[_Pair],
    settings: Settings,
    new_cache: list[tuple[str, int, str, str]],
) -> list[_Pair]:
    """The pairs whose chosen text passes; stored check critiques of a chosen candidate are
    used as they are, other texts are checked once per content (cached in ``pair_checks``)."""
    limit = settings.pairs_check_fail_score
    bandit = settings.pairs_check_bandit
    lines = settings.pairs_check_context_lines
    verdict: dict[int, bool] = {}
    todo: list[_Pair] = []
    for i, p in enumerate(pairs):
        index = p.chosen_candidate
        if index is not None and index in p.suggestion.checks:
            verdict[i] = min(v for _, v in p.suggestion.checks[index]) > limit
        else:
            todo.append(p)
    if todo:
        contexts: dict[str, tuple[str, str]] = {}
        ids = list({p.suggestion.id for p in todo})
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for sid, prefix, suffix in conn.execute(
                f"SELECT id, prefix, suffix FROM suggestions WHERE id IN ({marks})", list(chunk)
            ):
                contexts[sid] = (prefix or "", suffix or "")
        keys: dict[int, str] = {}
        langs: dict[int, str] = {}
        for i, p in enumerate(pairs):
            if i in verdict:
                continue
            prefix, suffix = contexts.get(p.suggestion.id, ("", ""))
            lang = language_of(p.suggestion.language, p.suggestion.path)
            langs[i] = lang
            keys[i] = _check_key(lang, prefix, p.chosen, suffix, bandit, lines)
        cached: dict[str, bool] = {}
        wanted = list(set(keys.values()))
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            for key, passed in conn.execute(
                f"SELECT key, passed FROM pair_checks WHERE key IN ({marks})", list(chunk)
            ):
                cached[key] = bool(passed)
        jobs: dict[str, _CheckJob] = {}
        for i, key in keys.items():
            if key not in cached and key not in jobs:
                p = pairs[i]
                prefix, suffix = contexts.get(p.suggestion.id, ("", ""))
                jobs[key] = _prepare(prefix, p.chosen, suffix, langs[i], bandit, lines)
        workers = settings.pairs_check_workers or min(4, os.cpu_count() or 1)
        now = utcnow()
        for key, scores in zip(jobs, _run_jobs(list(jobs.values()), workers), strict=True):
            failing = [f"{c}:{s}" for c, s in scores if s <= limit]
            cached[key] = not failing
            new_cache.append((key, int(not failing), ",".join(failing), now))
        for i, key in keys.items():
            verdict[i] = cached[key]
    return [p for i, p in enumerate(pairs) if verdict[i]]


# ---- filtering -------------------------------------------------------------------------


def _filter(
    conn: sqlite3.Connection,
    raw: list[_Pair],
    settings: Settings,
    dropped: dict[str, int],
    new_cache: list[tuple[str, int, str, str]],
) -> list[_Pair]:
    min_chars = settings.pairs_min_chars
    threshold = settings.pairs_near_duplicate
    stage: list[_Pair] = []
    for p in raw:
        if not p.suggestion.prompt:
            dropped["no_prompt"] += 1
            continue
        if len(p.chosen.strip()) < min_chars or len(p.rejected.strip()) < min_chars:
            dropped["too_short"] += 1
            continue
        a, b = _normal(p.chosen), _normal(p.rejected)
        if a == b:
            dropped["identical"] += 1
            continue
        if threshold < 1.0 and _similar(a, b, threshold):
            dropped["near_duplicate"] += 1
            continue
        p.group_key = _hash("prompt", p.suggestion.prompt)
        p.pair_key = _hash("pair", p.suggestion.prompt, a, b)
        stage.append(p)
    # Duplicates: within this build (the oldest suggestion wins) and against pairs of
    # suggestions this build does not touch.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pb_keys (key TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _pb_keys")
    conn.executemany("INSERT OR IGNORE INTO _pb_keys VALUES (?)", [(p.pair_key,) for p in stage])
    taken = {
        r[0]
        for r in conn.execute(
            "SELECT p.pair_key FROM _pb_keys k CROSS JOIN pairs p ON p.pair_key = k.key "
            "WHERE p.suggestion_id IS NULL OR p.suggestion_id NOT IN (SELECT id FROM _pb_affected)"
        )
    }
    stage.sort(key=lambda p: (p.suggestion.created_at, p.suggestion.id, p.id))
    unique: list[_Pair] = []
    for p in stage:
        if p.pair_key in taken:
            dropped["duplicate"] += 1
            continue
        taken.add(p.pair_key)
        unique.append(p)
    clean: list[_Pair] = []
    secret: dict[str, bool] = {}

    def holds_secret(text: str) -> bool:
        found = secret.get(text)
        if found is None:
            found = secret[text] = _PLACEHOLDER in text or contains_secret(text)
        return found

    for p in unique:
        if holds_secret(p.chosen) or holds_secret(p.rejected) or holds_secret(p.suggestion.prompt):
            dropped["secret"] += 1
            continue
        clean.append(p)
    passed = _apply_checks(conn, clean, settings, new_cache)
    dropped["check_failed"] += len(clean) - len(passed)
    return passed


# ---- the split ---------------------------------------------------------------------------


def _assign_splits(
    conn: sqlite3.Connection, pairs: list[_Pair], fraction: float
) -> tuple[dict[str, str], list[tuple[str, str, str, str]]]:
    """The split of every prompt group of ``pairs`` and the rows of newly assigned groups."""
    newest: dict[str, str] = {}
    for p in pairs:
        at = p.suggestion.created_at
        if at > newest.get(p.group_key, ""):
            newest[p.group_key] = at
    known: dict[str, str] = {}
    groups = list(newest)
    for chunk in _chunks(groups):
        marks = ",".join("?" * len(chunk))
        for key, split in conn.execute(
            f"SELECT group_key, split FROM pair_splits WHERE group_key IN ({marks})", list(chunk)
        ):
            known[key] = split
    fresh = [g for g in groups if g not in known]
    if not fresh:
        return known, []
    total, held, boundary = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(split = 'heldout'), 0), "
        "MAX(CASE WHEN split = 'train' THEN suggestion_at END) FROM pair_splits"
    ).fetchone()
    want = max(0, round(fraction * (total + len(fresh))) - held)
    eligible = sorted(
        (g for g in fresh if boundary is None or newest[g] > boundary),
        key=lambda g: (newest[g], g),
        reverse=True,
    )
    heldout = set(eligible[:want])
    now = utcnow()
    rows = []
    for g in fresh:
        split = "heldout" if g in heldout else "train"
        known[g] = split
        rows.append((g, split, newest[g], now))
    return known, rows


# ---- the build ---------------------------------------------------------------------------


_PAIR_COLUMNS = (
    "id",
    "created_at",
    "user",
    "language",
    "model_version",
    "source",
    "prompt",
    "chosen",
    "rejected",
    "weight",
    "evidence",
    "split",
    "suggestion_id",
    "suggestion_at",
    "group_key",
    "pair_key",
    "build_id",
)
_INSERT_PAIR = (
    f"INSERT INTO pairs ({', '.join(_PAIR_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _PAIR_COLUMNS)})"
)


def _evidence(p: _Pair) -> str:
    return json.dumps(
        {
            "suggestion": p.suggestion.id,
            "candidates": list(p.candidates),
            "events": p.events,
            "critiques": p.critiques,
        },
        separators=(",", ":"),
    )


def build_pairs(db_path: Path, settings: Settings, *, full: bool = False) -> BuildReport:
    """Turn the evidence stored since the last build (all of it with ``full``) into
    preference pairs; see the module docstring. Raises FileNotFoundError without a
    database and PairBuildError when another build committed while this one ran."""
    started = time.perf_counter()
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    migrate(db_path)
    dropped = dict.fromkeys(DROP_REASONS, 0)
    breaks = {"pairwise": 0}
    with contextlib.closing(connect(db_path)) as conn:
        conn.isolation_level = None
        # Read phase: one snapshot, no write lock (the service keeps writing meanwhile).
        conn.execute("BEGIN")
        ev_from, cr_from, last_build = _high_water(conn)
        if full:
            ev_from = cr_from = 0
        ev_to = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
        cr_to = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM critiques").fetchone()[0]
        events_seen = conn.execute(
            "SELECT COUNT(*) FROM events WHERE rowid > ? AND rowid <= ?", (ev_from, ev_to)
        ).fetchone()[0]
        _mark_affected(conn, (ev_from, ev_to), (cr_from, cr_to))
        suggestions = _load(conn)
        raw: list[_Pair] = []
        for s in sorted(suggestions.values(), key=lambda s: (s.created_at, s.id)):
            raw.extend(_derive(s, settings, dropped, breaks))
        new_cache: list[tuple[str, int, str, str]] = []
        kept = _filter(conn, raw, settings, dropped, new_cache)
        existing = {
            pid: (created, split, pkey)
            for pid, created, split, pkey in conn.execute(
                "SELECT p.id, p.created_at, p.split, p.pair_key FROM _pb_affected a "
                "CROSS JOIN pairs p ON p.suggestion_id = a.id"
            )
        }
        splits, split_rows = _assign_splits(conn, kept, settings.pairs_heldout_fraction)
        conn.execute("COMMIT")

        # Write phase: one short transaction.
        now = utcnow()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _high_water(conn)[2] != last_build:
                raise PairBuildError("another pair build finished while this one ran; run again")
            build_id = conn.execute(
                "INSERT INTO pair_builds (started_at, full, event_rowid, critique_rowid) "
                "VALUES (?, ?, ?, ?)",
                (now, int(full), ev_to, cr_to),
            ).lastrowid
            conn.executemany(
                "INSERT OR IGNORE INTO pair_splits (group_key, split, suggestion_at, assigned_at) "
                "VALUES (?, ?, ?, ?)",
                split_rows,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO pair_checks (key, passed, worst, checked_at) "
                "VALUES (?, ?, ?, ?)",
                new_cache,
            )
            conn.execute(
                "DELETE FROM pairs WHERE rowid IN (SELECT p.rowid FROM _pb_affected a CROSS "
                "JOIN pairs p ON p.suggestion_id = a.id)"
            )
            rows = []
            added = updated = 0
            by_source = dict.fromkeys(SOURCES, 0)
            for p in kept:
                s = p.suggestion
                before = existing.pop(p.id, None)
                if before is None:
                    added += 1
                    by_source[p.source] += 1
                    created, split = now, splits[p.group_key]
                else:
                    created, split = before[0], before[1]
                    if before[2] != p.pair_key:
                        updated += 1
                rows.append(
                    (
                        p.id,
                        created,
                        s.user,
                        s.language,
                        s.model_version,
                        p.source,
                        s.prompt,
                        p.chosen,
                        p.rejected,
                        p.weight,
                        _evidence(p),
                        split,
                        s.id,
                        s.created_at,
                        p.group_key,
                        p.pair_key,
                        build_id,
                    )
                )
            conn.executemany(_INSERT_PAIR, rows)
            counts = dict.fromkeys(SPLITS, 0)
            for split, count in conn.execute("SELECT split, COUNT(*) FROM pairs GROUP BY split"):
                counts[split] = count
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
                pairwise_breaks=breaks["pairwise"],
            )
            conn.execute(
                "UPDATE pair_builds SET finished_at = ?, events_seen = ?, suggestions = ?, "
                "pairs_added = ?, pairs_updated = ?, pairs_removed = ?, dropped = ?, train = ?, "
                "heldout = ?, seconds = ?, settings = ? WHERE id = ?",
                (
                    utcnow(),
                    events_seen,
                    len(suggestions),
                    added,
                    updated,
                    len(existing),
                    json.dumps(dropped),
                    counts["train"],
                    counts["heldout"],
                    round(seconds, 3),
                    json.dumps(_settings_used(settings)),
                    build_id,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    log.info(
        "pair build %s: %d events, %d suggestions, %d pairs added, %.2f s",
        build_id,
        events_seen,
        len(suggestions),
        added,
        report.seconds,
    )
    return report


def _settings_used(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump().items() if k.startswith("pairs_")}


# ---- reading and exporting ---------------------------------------------------------------


def load_pairs(conn: sqlite3.Connection, split: str) -> list[dict[str, Any]]:
    """The pairs of ``split`` ("train" or "heldout"), oldest first, as dicts with id,
    prompt, chosen, rejected, weight, source, created_at (and suggestion_id, evidence)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose train or heldout")
    cursor = conn.execute(
        "SELECT id, prompt, chosen, rejected, weight, source, created_at, suggestion_id, "
        "evidence FROM pairs WHERE split = ? ORDER BY created_at, suggestion_at, id",
        (split,),
    )
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        item["evidence"] = json.loads(item["evidence"] or "{}")
        out.append(item)
    return out


def _export_rows(
    conn: sqlite3.Connection, split: str | None, since: str | None
) -> Iterable[dict[str, Any]]:
    where, params = [], []
    if split is not None:
        where.append("split = ?")
        params.append(split)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    sql = (
        "SELECT prompt, chosen, rejected, id, source, weight, split, created_at, user, "
        "language, model_version, evidence FROM pairs"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = conn.execute(sql + " ORDER BY created_at, suggestion_at, id", params)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        item["evidence"] = json.loads(item["evidence"] or "{}")
        yield item


def export_pairs(
    db_path: Path,
    out: Path | None,
    *,
    split: str | None = None,
    since: str | None = None,
) -> int:
    """Write pairs as JSON lines in TRL's preference format (prompt, chosen, rejected, plus
    id, source, weight, split, created_at, user, language, model_version and evidence) to
    ``out`` (atomically) or to stdout; returns how many were written. ``since`` takes
    ``7d``/``2h``/an ISO time and selects pairs made since then. A pair that holds a secret
    by the current redaction rules is never written."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose train or heldout")
    after = parse_since(since) if since else None
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    migrate(db_path)
    with contextlib.closing(connect(db_path, readonly=True)) as conn:
        if out is None:
            return _write_jsonl(_export_rows(conn, split, after), sys.stdout)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                count = _write_jsonl(_export_rows(conn, split, after), handle)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return count


def _write_jsonl(rows: Iterable[dict[str, Any]], handle: IO[str]) -> int:
    count = 0
    for row in rows:
        texts = (row["prompt"], row["chosen"], row["rejected"])
        if any(_PLACEHOLDER in t or contains_secret(t) for t in texts):
            log.warning("pair %s holds a secret by the current rules; not exported", row["id"])
            continue
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    handle.flush()
    return count
