"""The evidence of one suggestion, as the pair sources read it: its candidates, what the
user did with each (shown, accepted, kept, dismissed, rewritten) and how each was judged."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from prefloop.store import pairs as store
from prefloop.store.critiques import PairwiseFindings, is_check, score_values


@dataclass(frozen=True)
class Retention:
    """The last retention snapshot of an accepted candidate."""

    event_id: str
    similarity: float
    text: str


@dataclass(frozen=True)
class Rewrite:
    """What the user wrote where a dismissed candidate was."""

    event_id: str
    text: str


@dataclass(frozen=True)
class Score:
    """One critique's score of a candidate: an LLM critique's mean aspect score, or a
    check's lowest score."""

    critique_id: str
    value: float


@dataclass(frozen=True)
class Verdict:
    """A pairwise verdict in which ``winner`` beat ``loser`` in both orders."""

    critique_id: str
    winner: int
    loser: int


@dataclass(frozen=True)
class Judged:
    """How a candidate was judged: by LLM critiques (``kind="llm"``, their mean) or, without
    any, by verifiable checks (``kind="checks"``, their minimum)."""

    kind: str
    score: float
    critiques: tuple[str, ...]


@dataclass
class Evidence:
    """One suggestion and everything stored about its candidates, by candidate index."""

    id: str
    created_at: str
    user: str = ""
    language: str = ""
    model_version: str = ""
    path: str = ""
    prompt: str = ""
    candidates: list[str] = field(default_factory=list)
    # the blank end of the prefix the prompt left for the model to write
    prompt_lead: str = ""
    shown: set[int] = field(default_factory=set)
    # the first accept event of a candidate
    accepted: dict[int, str] = field(default_factory=dict)
    retained: dict[int, Retention] = field(default_factory=dict)
    # the last dismiss event of a candidate
    dismissed: dict[int, str] = field(default_factory=dict)
    rewritten: dict[int, Rewrite] = field(default_factory=dict)
    llm: dict[int, list[Score]] = field(default_factory=dict)
    checks: dict[int, list[Score]] = field(default_factory=dict)
    # consistent pairwise verdicts, by critique id
    verdicts: list[Verdict] = field(default_factory=list)

    def judged(self, index: int) -> Judged | None:
        """How candidate ``index`` was judged; None when it was not."""
        if index in self.llm:
            found = self.llm[index]
            return Judged(
                "llm", sum(s.value for s in found) / len(found), tuple(s.critique_id for s in found)
            )
        if index in self.checks:
            found = self.checks[index]
            return Judged(
                "checks", min(s.value for s in found), tuple(s.critique_id for s in found)
            )
        return None


def _candidate_texts(candidates: str | None) -> list[str]:
    """The texts of a stored candidates list, in index order; none when unreadable."""
    try:
        parsed = json.loads(candidates or "[]")
        return [str(c.get("text", "")) for c in sorted(parsed, key=lambda c: c["index"])]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def load_evidence(conn: sqlite3.Connection) -> dict[str, Evidence]:
    """The evidence of the suggestions marked by :func:`prefloop.store.pairs.mark_affected`,
    by suggestion id."""
    out: dict[str, Evidence] = {}
    for row in store.affected_suggestions(conn):
        out[row.id] = Evidence(
            row.id,
            row.created_at,
            row.user or "",
            row.language or "",
            row.model_version or "",
            row.path or "",
            row.prompt or "",
            _candidate_texts(row.candidates),
            row.prompt_lead or "",
        )
    for e in store.affected_events(conn):
        s = out.get(e.suggestion_id)
        if s is None:
            continue
        index = e.candidate_index or 0
        if e.kind == "shown":
            s.shown.add(index)
        elif e.kind == "accepted":
            s.shown.add(index)
            s.accepted.setdefault(index, e.id)
        elif e.kind == "retained":
            s.retained[index] = Retention(e.id, float(e.similarity or 0.0), e.text or "")
        elif e.kind == "dismissed":
            s.shown.add(index)
            s.dismissed[index] = e.id
        elif e.kind == "rewritten":
            s.rewritten[index] = Rewrite(e.id, e.text or "")
    for c in store.affected_scores(conn):
        s = out.get(c.suggestion_id)
        values = score_values(c.scores)
        if s is None or not values:
            continue
        index = c.candidate_index or 0
        if is_check(c.judge):
            s.checks.setdefault(index, []).append(Score(c.id, min(values)))
        else:
            s.llm.setdefault(index, []).append(Score(c.id, sum(values) / len(values)))
    for v in store.affected_verdicts(conn):
        s = out.get(v.suggestion_id)
        findings = PairwiseFindings.parse(v.findings)
        decided = findings.decided() if findings is not None else None
        if s is not None and decided is not None:
            s.verdicts.append(Verdict(v.id, *decided))
    return out
