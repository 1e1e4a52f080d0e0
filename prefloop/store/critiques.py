"""Critique rows: the judge's verdicts on suggestion candidates, and their queries.

The written convention of a critique row, relied on by the judge (writer side), the pair
builder and ``prefloop stats`` (reader side):

* ``judge`` names who judged. An LLM judge is named as the service configures it (for
  example ``llm:engine``). A verifiable check is ``check:<check>`` (:data:`CHECK_JUDGES`);
  :data:`CHECKS_JUDGE`, the check every candidate gets, marks a suggestion as checked.
  A pairwise verdict is ``pairwise:<judge>`` (:data:`PAIRWISE_PREFIX`), ``<judge>`` being
  the LLM judge that compared.
* ``scores`` is a JSON object of aspect (or check) to number, or NULL. Pairwise verdicts
  never have scores: they score no single candidate.
* ``findings`` of a check row is a JSON list of findings; of a pairwise verdict it is the
  JSON object :class:`PairwiseFindings` (``a``, ``b``, ``winner``, ``consistent``).
* ``id`` is ``<suggestion>:<candidate>:<judge>:<rubric version>``
  (:func:`critique_id`), or ``<suggestion>:<a>~<b>:<judge>:<rubric version>`` for a
  pairwise verdict (:func:`pairwise_critique_id`); writing the same critique again
  replaces it.
* ``status`` is ``ok`` or ``failed``; only ``ok`` rows count as evidence.

Texts (``rationale``, ``error``, ``answer`` and finding messages) are redacted when the
row is stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prefloop.redaction import redact

CHECK_PREFIX = "check:"
"""Judges of verifiable checks start with this."""
CHECK_JUDGES = ("check:syntax", "check:names", "check:security")
"""The verifiable checks whose rows the pair builder reads as candidate scores."""
CHECKS_JUDGE = "check:syntax"
"""The check every candidate gets; its rows mark a suggestion as checked."""
PAIRWISE_PREFIX = "pairwise:"
"""Judges of pairwise verdicts start with this; their rows hold no per-candidate scores."""

Winner = Literal["a", "b"]


def check_judge(check: str) -> str:
    """The judge name of the verifiable check ``check`` (``syntax`` → ``check:syntax``)."""
    return f"{CHECK_PREFIX}{check}"


def pairwise_judge(judge: str) -> str:
    """The judge name of pairwise verdicts given by the LLM judge ``judge``."""
    return f"{PAIRWISE_PREFIX}{judge}"


def is_check(judge: str) -> bool:
    """Is ``judge`` a verifiable check?"""
    return judge.startswith(CHECK_PREFIX)


def is_pairwise(judge: str) -> bool:
    """Is ``judge`` the judge of pairwise verdicts?"""
    return judge.startswith(PAIRWISE_PREFIX)


def critique_id(suggestion_id: str, index: int, judge: str, rubric_version: str) -> str:
    """The id of ``judge``'s critique of candidate ``index`` under ``rubric_version``."""
    return f"{suggestion_id}:{index}:{judge}:{rubric_version}"


def pairwise_critique_id(
    suggestion_id: str, a: int, b: int, judge: str, rubric_version: str
) -> str:
    """The id of the pairwise verdict of ``judge`` between candidates ``a`` and ``b``."""
    return f"{suggestion_id}:{a}~{b}:{judge}:{rubric_version}"


def score_values(scores: str | None) -> list[float] | None:
    """The numbers of a stored ``scores`` object (null aspects left out); None when it is
    missing or not an object of numbers."""
    try:
        return [float(v) for v in json.loads(scores or "").values() if v is not None]
    except (ValueError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class PairwiseFindings:
    """The ``findings`` of a pairwise verdict between candidates ``a`` and ``b``:
    ``winner`` is ``"a"``, ``"b"`` or None (a tie or a failure), ``consistent`` whether
    both presentation orders agreed."""

    a: int
    b: int
    winner: Winner | None
    consistent: bool

    def as_json(self) -> dict[str, Any]:
        """The object stored in ``findings``."""
        return {"a": self.a, "b": self.b, "winner": self.winner, "consistent": self.consistent}

    @classmethod
    def parse(cls, findings: str | None) -> PairwiseFindings | None:
        """The stored findings of a pairwise verdict; None when unreadable."""
        try:
            found = json.loads(findings or "")
            a, b, winner, consistent = found["a"], found["b"], found["winner"], found["consistent"]
        except (ValueError, TypeError, KeyError):
            return None
        if not (isinstance(a, int) and isinstance(b, int)):
            return None
        return cls(a, b, winner if winner in ("a", "b") else None, consistent is True)

    def decided(self) -> tuple[int, int] | None:
        """(winner, loser) when one candidate won in both orders; None for a tie, an
        inconsistent verdict or one that compares a candidate with itself."""
        if not self.consistent or self.a == self.b:
            return None
        if self.winner == "a":
            return self.a, self.b
        if self.winner == "b":
            return self.b, self.a
        return None


@dataclass(frozen=True)
class Critique:
    """One critique row as the judge writes it, before redaction and JSON encoding.
    ``findings`` is a list of finding objects (checks) or a :class:`PairwiseFindings`."""

    id: str
    suggestion_id: str
    candidate_index: int
    created_at: str
    user: str | None
    language: str | None
    model_version: str | None
    judge: str
    judge_model: str | None
    rubric_version: str
    status: str
    scores: dict[str, Any] | None
    rationale: str | None
    error: str | None
    attempts: int
    duration_ms: float
    findings: list[dict[str, Any]] | PairwiseFindings | None = None
    answer: str | None = None
    position: int | None = None


COLUMNS = (
    "id",
    "suggestion_id",
    "candidate_index",
    "created_at",
    "user",
    "language",
    "model_version",
    "judge",
    "judge_model",
    "rubric_version",
    "status",
    "scores",
    "rationale",
    "error",
    "attempts",
    "duration_ms",
    "findings",
    "answer",
    "position",
)
_INSERT = (
    f"INSERT OR REPLACE INTO critiques ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _redacted(text: str | None) -> str | None:
    return redact(text) if text else text


def _stored(c: Critique) -> tuple[Any, ...]:
    """The column values of ``c``: texts redacted, ``scores`` and ``findings`` as JSON."""
    findings: str | None
    if isinstance(c.findings, PairwiseFindings):
        findings = json.dumps(c.findings.as_json(), ensure_ascii=False)
    elif isinstance(c.findings, list):
        cleaned = [{**f, "message": redact(str(f.get("message", "")))} for f in c.findings]
        findings = json.dumps(cleaned, ensure_ascii=False)
    else:
        findings = None
    return (
        c.id,
        c.suggestion_id,
        c.candidate_index,
        c.created_at,
        c.user,
        c.language,
        c.model_version,
        c.judge,
        c.judge_model,
        c.rubric_version,
        c.status,
        json.dumps(c.scores) if c.scores is not None else None,
        _redacted(c.rationale),
        _redacted(c.error),
        c.attempts,
        c.duration_ms,
        findings,
        _redacted(c.answer),
        c.position,
    )


def insert_critiques(conn: sqlite3.Connection, critiques: Sequence[Critique]) -> int:
    """Store critiques (redacting their texts), replacing rows with the same id; runs in
    the caller's transaction (the service's writer)."""
    conn.executemany(_INSERT, [_stored(c) for c in critiques])
    return len(critiques)


def read_critiques(
    conn: sqlite3.Connection, suggestion_id: str | None = None
) -> list[dict[str, Any]]:
    """Critique rows (of one suggestion, or all) as dicts with ``scores`` and ``findings``
    decoded, ordered by suggestion, candidate and judge."""
    sql = "SELECT * FROM critiques"
    params: tuple[Any, ...] = ()
    if suggestion_id is not None:
        sql += " WHERE suggestion_id = ?"
        params = (suggestion_id,)
    cursor = conn.execute(sql + " ORDER BY suggestion_id, candidate_index, judge", params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in rows:
        for key in ("scores", "findings"):
            if row.get(key):
                row[key] = json.loads(row[key])
    return rows


_PENDING = """
SELECT s.id FROM suggestions s
WHERE json_valid(s.candidates) AND json_array_length(s.candidates) > 0
  AND NOT EXISTS (
    SELECT 1 FROM critiques c
    WHERE c.suggestion_id = s.id AND c.judge = ? AND c.rubric_version = ?
  )
ORDER BY s.created_at DESC, s.rowid DESC
LIMIT ?
"""


def pending_suggestions(
    conn: sqlite3.Connection,
    judge: str,
    rubric_version: str,
    *,
    limit: int,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Ids of suggestions with candidates that ``judge`` has not critiqued under
    ``rubric_version``, newest first; ``exclude`` (work in progress) left out."""
    skip = set(exclude)
    rows = conn.execute(_PENDING, (judge, rubric_version, limit + len(skip))).fetchall()
    return [r[0] for r in rows if r[0] not in skip][:limit]


def suggestion_to_judge(conn: sqlite3.Connection, suggestion_id: str) -> dict[str, Any] | None:
    """The ``suggestions`` row a judge critiques, as a dict; None when there is none."""
    cursor = conn.execute("SELECT * FROM suggestions WHERE id = ?", (suggestion_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    return dict(zip(names, row, strict=True))


# ---- what ``prefloop stats`` reads ---------------------------------------------------------


@dataclass(frozen=True)
class SignalEvent:
    """An event as judge agreement reads it (the user's signal on one candidate)."""

    suggestion_id: str
    candidate_index: int | None
    kind: str
    reason: str | None
    similarity: float | None


@dataclass(frozen=True)
class ScoredCritique:
    """A candidate-scoring critique as judge agreement reads it (``scores`` decoded)."""

    suggestion_id: str
    candidate_index: int
    judge: str
    judge_model: str | None
    rubric_version: str
    status: str
    scores: dict[str, Any] | None
    attempts: int | None


@dataclass(frozen=True)
class Reach:
    """How many suggestions were made, shown and accepted."""

    suggestions: int
    shown: int
    accepted: int


_SIGNAL_EVENTS = """
SELECT e.suggestion_id, e.candidate_index, e.kind, e.reason, e.similarity
FROM events e JOIN suggestions s ON s.id = e.suggestion_id
WHERE s.created_at >= ? ORDER BY e.created_at, e.rowid
"""
_SCORED = f"""
SELECT c.suggestion_id, c.candidate_index, c.judge, c.judge_model, c.rubric_version,
       c.status, c.scores, c.attempts
FROM critiques c JOIN suggestions s ON s.id = c.suggestion_id
WHERE s.created_at >= ? AND c.judge NOT LIKE '{PAIRWISE_PREFIX}%'
"""
_REACH = """
SELECT (SELECT count(*) FROM suggestions WHERE created_at >= ?),
       (SELECT count(DISTINCT e.suggestion_id) FROM events e JOIN suggestions s
          ON s.id = e.suggestion_id WHERE s.created_at >= ? AND e.kind = 'shown'),
       (SELECT count(DISTINCT e.suggestion_id) FROM events e JOIN suggestions s
          ON s.id = e.suggestion_id WHERE s.created_at >= ? AND e.kind = 'accepted')
"""


def signal_events(conn: sqlite3.Connection, since: str = "") -> Iterator[SignalEvent]:
    """Events of suggestions made since ``since``, in the order they happened."""
    for row in conn.execute(_SIGNAL_EVENTS, (since,)):
        yield SignalEvent(*row)


def scored_critiques(conn: sqlite3.Connection, since: str = "") -> list[ScoredCritique]:
    """Critiques of suggestions made since ``since``, pairwise verdicts left out."""
    out = []
    for sid, index, judge, model, version, status, scores, attempts in conn.execute(
        _SCORED, (since,)
    ):
        decoded = json.loads(scores) if scores else None
        out.append(ScoredCritique(sid, index, judge, model, version, status, decoded, attempts))
    return out


def reach(conn: sqlite3.Connection, since: str = "") -> Reach:
    """Suggestions made since ``since``, and how many of them were shown and accepted."""
    suggestions, shown, accepted = conn.execute(_REACH, (since, since, since)).fetchone()
    return Reach(int(suggestions), int(shown), int(accepted))
