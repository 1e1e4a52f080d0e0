"""Preference pairs from the store, in TRL's format (prompt, chosen, rejected).

Four sources (:mod:`~prefloop.trainer.pairs.sources`, one pure function each), each pair
keeping its source, a weight and the ids of its evidence:

* ``edit_after_accept``: chosen is what the user kept after editing an accepted
  suggestion (the last retention snapshot), rejected the suggestion as shown;
* ``rewrite_after_dismiss``: chosen is what the user wrote where a dismissed suggestion
  was, rejected the dismissed suggestion;
* ``accept_vs_alternative``: chosen is a candidate the user accepted and kept, rejected
  another candidate of the same request that was never shown and was judged lower;
* ``judge_ranking``: the best- and worst-judged candidates of a request, when their scores
  differ by at least ``pairs_min_score_gap``; when they are closer (a tie included), a
  stored pairwise verdict (a ``pairwise:`` critique, see :mod:`prefloop.store.critiques`)
  between two of its judged candidates in which one won in both orders makes the winner
  chosen and the loser rejected.

The prompt of every pair is the stored prompt of its suggestion: the text the engine saw,
with the same template and truncation. Chosen and rejected continue that prompt: when the
prompt left out the blank end of the cursor's line for the model to write (the stored
``prompt_lead``, :func:`prefloop.prompting.cursor_lead`), both start with it.

Pairs are dropped (and counted by reason, :mod:`~prefloop.trainer.pairs.filtering`) for
ties, small score gaps, trivial lengths, identical or near-identical chosen/rejected
texts, a remaining secret, duplicates, and a chosen text that fails the verifiable checks
(:mod:`~prefloop.trainer.pairs.checks`).

Builds are incremental (:mod:`~prefloop.trainer.pairs.build`): a build reads the events
and critiques stored since the previous build's high-water marks (row ids), re-derives the
pairs of the suggestions they concern (only those), and replaces those suggestions' pairs.
The train/held-out split is decided per prompt group (all pairs with the same prompt
text) the first time the group yields a pair and never changes afterwards; each build
holds out the newest groups it adds (:mod:`~prefloop.trainer.pairs.split`). Every query
lives in :mod:`prefloop.store.pairs`. Pair building imports no torch.

How many of each user's pairs a shared-adapter run uses, so that no user's pairs dominate
it, is decided by :mod:`~prefloop.trainer.pairs.share`.
"""

from __future__ import annotations

from pathlib import Path

from prefloop.settings import Settings
from prefloop.store.critiques import CHECK_JUDGES
from prefloop.store.pairs import EVIDENCE_KINDS, SPLITS
from prefloop.trainer.pairs.build import BuildReport, PairBuildError, run_build
from prefloop.trainer.pairs.checks import PAIR_CHECKS_VERSION, run_checks
from prefloop.trainer.pairs.export import export_pairs, load_pairs
from prefloop.trainer.pairs.filtering import DROP_REASONS
from prefloop.trainer.pairs.sources import SOURCES

__all__ = [
    "CHECK_JUDGES",
    "DROP_REASONS",
    "EVIDENCE_KINDS",
    "PAIR_CHECKS_VERSION",
    "POOL_MIN_JOBS",
    "SOURCES",
    "SPLITS",
    "BuildReport",
    "PairBuildError",
    "build_pairs",
    "export_pairs",
    "load_pairs",
    "run_checks",
]

POOL_MIN_JOBS = 1000
"""Fewer checks than this run in the build's own process."""


def build_pairs(db_path: Path, settings: Settings, *, full: bool = False) -> BuildReport:
    """Turn the evidence stored since the last build (all of it with ``full``) into
    preference pairs; see the package docstring. Raises FileNotFoundError without a
    database and PairBuildError when another build committed while this one ran."""
    return run_build(db_path, settings, full=full, pool_min_jobs=POOL_MIN_JOBS)
