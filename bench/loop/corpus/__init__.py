"""The benchmark's coding contexts, written for it: for every taste, short Python files cut
at a place where the taste shows in the rest of the line, split once and for all into
training contexts (the developer works through them and the service learns from the
feedback) and held-out contexts (only ever evaluated, never reacted to).

Every taste has 36 training contexts, enough for three rounds of 12 new ones
(:func:`round_contexts`), and 12 held-out ones; ``signatures_by_file`` has as many library
functions as tests in both parts. One module per taste holds its tables.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.loop.corpus import (
    docstring,
    file_signatures,
    fstrings,
    guards,
    paths,
    predicates,
    signatures,
)
from bench.loop.tastes import Context


@dataclass(frozen=True)
class TasteCorpus:
    """One taste's contexts: ``train`` to work through, ``heldout`` to evaluate."""

    taste: str
    train: tuple[Context, ...]
    heldout: tuple[Context, ...]


_MODULES = {
    "annotations": signatures,
    "docstring": docstring,
    "fstrings": fstrings,
    "pathlib": paths,
    "early_return": guards,
    "predicate_names": predicates,
    "signatures_by_file": file_signatures,
}


def corpus(taste: str) -> TasteCorpus:
    """The fixed training and held-out contexts of ``taste``."""
    module = _MODULES[taste]
    return TasteCorpus(taste, module.TRAIN, module.HELDOUT)


def training_order(contexts: tuple[Context, ...], seed: int) -> list[Context]:
    """The order a developer works through ``contexts`` in, fixed by ``seed``."""
    order = list(contexts)
    random.Random(seed).shuffle(order)
    return order


def round_contexts(
    contexts: tuple[Context, ...],
    seed: int,
    round_no: int,
    rounds: int,
    per_round: int | None = None,
) -> list[Context]:
    """The training contexts of round ``round_no`` (counted from 1) of ``rounds``: the
    ``seed``'s :func:`training_order` cut into consecutive slices of ``per_round`` contexts
    (by default ``len(contexts) // rounds``, at least 1; never more than the corpus), so
    every round brings contexts the developer has not written yet. Only once the corpus is
    exhausted does a slice wrap around to its start."""
    order = training_order(contexts, seed)
    if not order:
        return []
    size = per_round if per_round is not None else max(1, len(order) // rounds)
    size = max(0, min(size, len(order)))
    start = (round_no - 1) * size
    return [order[i % len(order)] for i in range(start, start + size)]
