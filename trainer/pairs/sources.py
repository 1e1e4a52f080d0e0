"""The four sources of preference pairs, one pure function each: evidence of one
suggestion in, pairs (and the near misses counted as drops) out. No I/O, no settings
object: each takes the numbers it uses.

* :func:`edit_after_accept`: chosen is what the user kept after editing an accepted
  candidate (the last retention snapshot), rejected the candidate as shown;
* :func:`rewrite_after_dismiss`: chosen is what the user wrote where a dismissed candidate
  was, rejected the dismissed candidate;
* :func:`accept_vs_alternative`: chosen is a candidate the user accepted and kept
  (similarity at least ``retained_similarity``), rejected another candidate of the same
  request that was never shown and was judged lower by the same kind of judge (a tie is
  dropped);
* :func:`judge_ranking`: the best- and worst-judged candidates of a request, when their
  scores differ by at least ``min_score_gap``; when they are closer (a tie included), a
  consistent pairwise verdict between two of its LLM-judged candidates makes the winner
  chosen and the loser rejected.

A pair's id is ``<suggestion>:<source>:<candidate(s)>``, so a rebuild from more evidence
replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefloop.settings import Settings
from prefloop.trainer.pairs.evidence import Evidence, Judged

SOURCES = ("edit_after_accept", "rewrite_after_dismiss", "accept_vs_alternative", "judge_ranking")


@dataclass(frozen=True)
class Pair:
    """A derived preference pair with its evidence: the events and critiques it rests on,
    the candidates it compares, and the chosen candidate's index when chosen is a
    candidate (its stored checks then apply)."""

    id: str
    source: str
    suggestion: Evidence
    chosen: str
    rejected: str
    weight: float
    events: tuple[str, ...] = ()
    critiques: tuple[str, ...] = ()
    candidates: tuple[int, ...] = ()
    chosen_candidate: int | None = None


@dataclass
class Derived:
    """Pairs derived from some evidence, and the candidate pairs left out as a tie, a
    score gap below the minimum, or decided by a pairwise verdict."""

    pairs: list[Pair] = field(default_factory=list)
    ties: int = 0
    small_gaps: int = 0
    pairwise_breaks: int = 0

    def add(self, other: Derived) -> None:
        """Take in ``other``'s pairs and counts."""
        self.pairs.extend(other.pairs)
        self.ties += other.ties
        self.small_gaps += other.small_gaps
        self.pairwise_breaks += other.pairwise_breaks


def _pair_id(s: Evidence, source: str, *indexes: int) -> str:
    return f"{s.id}:{source}:{':'.join(str(i) for i in indexes)}"


def edit_after_accept(s: Evidence, *, weight: float) -> Derived:
    """A pair for each accepted candidate whose last snapshot differs from it."""
    out = Derived()
    for index, accept_id in s.accepted.items():
        kept = s.retained.get(index)
        if index >= len(s.candidates) or kept is None:
            continue
        shown = s.candidates[index]
        if kept.text != shown:
            out.pairs.append(
                Pair(
                    _pair_id(s, "edit_after_accept", index),
                    "edit_after_accept",
                    s,
                    kept.text,
                    shown,
                    weight,
                    events=(accept_id, kept.event_id),
                    candidates=(index,),
                )
            )
    return out


def rewrite_after_dismiss(s: Evidence, *, weight: float) -> Derived:
    """A pair for each candidate the user rewrote after dismissing it."""
    out = Derived()
    for index, rewrite in s.rewritten.items():
        if index >= len(s.candidates):
            continue
        dismissed = s.dismissed.get(index)
        out.pairs.append(
            Pair(
                _pair_id(s, "rewrite_after_dismiss", index),
                "rewrite_after_dismiss",
                s,
                rewrite.text,
                s.candidates[index],
                weight,
                events=(dismissed, rewrite.event_id) if dismissed else (rewrite.event_id,),
                candidates=(index,),
            )
        )
    return out


def accept_vs_alternative(s: Evidence, *, retained_similarity: float, weight: float) -> Derived:
    """A pair for each accepted, kept candidate and each unshown candidate judged lower by
    the same kind of judge; equal scores count as ties."""
    out = Derived()
    n = len(s.candidates)
    for index, accept_id in s.accepted.items():
        kept = s.retained.get(index)
        if index >= n or kept is None or kept.similarity < retained_similarity:
            continue
        mine = s.judged(index)
        if mine is None:
            continue
        for other in range(n):
            if other == index or other in s.shown:
                continue
            theirs = s.judged(other)
            if theirs is None or theirs.kind != mine.kind or theirs.score > mine.score:
                continue
            if theirs.score == mine.score:
                out.ties += 1
                continue
            out.pairs.append(
                Pair(
                    _pair_id(s, "accept_vs_alternative", index, other),
                    "accept_vs_alternative",
                    s,
                    s.candidates[index],
                    s.candidates[other],
                    weight,
                    events=(accept_id, kept.event_id),
                    critiques=mine.critiques + theirs.critiques,
                    candidates=(index, other),
                    chosen_candidate=index,
                )
            )
    return out


def _ranking_pair(
    s: Evidence, winner: int, loser: int, weight: float, critiques: tuple[str, ...]
) -> Pair:
    return Pair(
        _pair_id(s, "judge_ranking", winner, loser),
        "judge_ranking",
        s,
        s.candidates[winner],
        s.candidates[loser],
        weight,
        critiques=critiques,
        candidates=(winner, loser),
        chosen_candidate=winner,
    )


def judge_ranking(s: Evidence, *, min_score_gap: float, weight: float) -> Derived:
    """The best- against the worst-judged candidate. Candidates are ranked by LLM
    critiques when at least two have them, else by checks; the ranking breaks ties by
    the lower index. A gap below ``min_score_gap`` is dropped (as a tie or a small gap)
    unless a consistent pairwise verdict between two LLM-ranked candidates decides it
    (the first such verdict by critique id)."""
    out = Derived()
    n = len(s.candidates)
    if n < 2:
        return out
    scored: dict[int, Judged] = {i: j for i in range(n) if (j := s.judged(i)) is not None}
    kind = "llm" if sum(1 for j in scored.values() if j.kind == "llm") >= 2 else "checks"
    ranked = sorted(
        ((j.score, i) for i, j in scored.items() if j.kind == kind), key=lambda t: (-t[0], t[1])
    )
    if len(ranked) < 2:
        return out
    (best, bi), (worst, wi) = ranked[0], ranked[-1]
    close = best - worst < min_score_gap
    judged = {i for _, i in ranked}
    verdict = next(
        (v for v in s.verdicts if kind == "llm" and v.winner in judged and v.loser in judged),
        None,
    )
    if close and verdict is not None:
        w, lo = verdict.winner, verdict.loser
        critiques = scored[w].critiques + scored[lo].critiques + (verdict.critique_id,)
        out.pairs.append(_ranking_pair(s, w, lo, weight, critiques))
        out.pairwise_breaks += 1
    elif best == worst:
        out.ties += 1
    elif close:
        out.small_gaps += 1
    else:
        out.pairs.append(
            _ranking_pair(s, bi, wi, weight, scored[bi].critiques + scored[wi].critiques)
        )
    return out


def derive(s: Evidence, settings: Settings) -> Derived:
    """Every pair of every source from the evidence of one suggestion."""
    out = edit_after_accept(s, weight=settings.pairs_weight_edit)
    out.add(
        accept_vs_alternative(
            s,
            retained_similarity=settings.pairs_retained_similarity,
            weight=settings.pairs_weight_alternative,
        )
    )
    out.add(rewrite_after_dismiss(s, weight=settings.pairs_weight_rewrite))
    out.add(
        judge_ranking(
            s, min_score_gap=settings.pairs_min_score_gap, weight=settings.pairs_weight_judge
        )
    )
    return out
