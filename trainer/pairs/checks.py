"""The verifiable checks of a pair's chosen text (:mod:`prefloop.checks`): syntax, names
and security of the text inserted into its file, read in a window around the insertion.

A chosen candidate with stored check critiques is judged by those; every other text is
checked once per content and context, and the verdict is cached in the store
(``pair_checks``) under a key that names the checks' version and settings.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import keyword
import multiprocessing
import os
import re
import sqlite3
import sys
from dataclasses import dataclass

from prefloop.checks.base import Insertion, language_of
from prefloop.checks.names import check_names
from prefloop.checks.security import check_security
from prefloop.checks.syntax import check_syntax
from prefloop.settings import Settings
from prefloop.store import pairs as store
from prefloop.store import utcnow
from prefloop.trainer.pairs.keys import content_hash
from prefloop.trainer.pairs.sources import Pair

PAIR_CHECKS_VERSION = "pair-checks-v1"
"""Part of every cached verdict's key: a new version checks every text again."""


def check_key(
    language: str, prefix: str, completion: str, suffix: str, bandit: bool, lines: int
) -> str:
    """The cache key of the checks of ``completion`` between ``prefix`` and ``suffix``."""
    return content_hash(
        PAIR_CHECKS_VERSION, f"{bandit}:{lines}", language, prefix, completion, suffix
    )


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


def _run_jobs(
    jobs: list[_CheckJob], workers: int, pool_min_jobs: int
) -> list[list[tuple[str, int]]]:
    """Every job's results, spread over ``workers`` processes when there are at least
    ``pool_min_jobs``."""
    if workers <= 1 or len(jobs) < pool_min_jobs:
        return [_run_job(job) for job in jobs]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_run_job, jobs, chunksize=max(16, len(jobs) // (workers * 8))))


def apply_checks(
    conn: sqlite3.Connection, pairs: list[Pair], settings: Settings, *, pool_min_jobs: int
) -> tuple[list[Pair], list[store.CheckVerdict]]:
    """The pairs whose chosen text passes, and the verdicts on texts checked now (to
    cache). Stored check critiques of a chosen candidate are used as they are; other texts
    are checked once per content, in worker processes when there are ``pool_min_jobs`` or
    more."""
    limit = settings.pairs_check_fail_score
    bandit = settings.pairs_check_bandit
    lines = settings.pairs_check_context_lines
    passed: dict[int, bool] = {}
    todo: list[int] = []
    for i, p in enumerate(pairs):
        index = p.chosen_candidate
        if index is not None and index in p.suggestion.checks:
            passed[i] = min(v.value for v in p.suggestion.checks[index]) > limit
        else:
            todo.append(i)
    fresh: list[store.CheckVerdict] = []
    if not todo:
        return [p for i, p in enumerate(pairs) if passed[i]], fresh
    contexts = store.suggestion_contexts(conn, list({pairs[i].suggestion.id for i in todo}))
    keys: dict[int, str] = {}
    langs: dict[int, str] = {}
    for i in todo:
        p = pairs[i]
        prefix, suffix = contexts.get(p.suggestion.id, ("", ""))
        langs[i] = language_of(p.suggestion.language, p.suggestion.path)
        keys[i] = check_key(langs[i], prefix, p.chosen, suffix, bandit, lines)
    cached = store.cached_checks(conn, list(set(keys.values())))
    jobs: dict[str, _CheckJob] = {}
    for i, key in keys.items():
        if key not in cached and key not in jobs:
            p = pairs[i]
            prefix, suffix = contexts.get(p.suggestion.id, ("", ""))
            jobs[key] = _prepare(prefix, p.chosen, suffix, langs[i], bandit, lines)
    workers = settings.pairs_check_workers or min(4, os.cpu_count() or 1)
    now = utcnow()
    results = _run_jobs(list(jobs.values()), workers, pool_min_jobs)
    for key, scores in zip(jobs, results, strict=True):
        failing = [f"{c}:{s}" for c, s in scores if s <= limit]
        cached[key] = not failing
        fresh.append(store.CheckVerdict(key, not failing, ",".join(failing), now))
    for i, key in keys.items():
        passed[i] = cached[key]
    return [p for i, p in enumerate(pairs) if passed[i]], fresh
