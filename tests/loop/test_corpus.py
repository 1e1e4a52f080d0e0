"""The benchmark's corpus: its split, its sizes, what sets its contexts apart, and the new
training contexts every round brings."""

from __future__ import annotations

import ast

import pytest

from bench.loop.corpus import corpus, round_contexts, training_order
from bench.loop.tastes import TASTES
from tests.loop.base_style import plain_forms

ROUNDS = 3
PER_ROUND = 12


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_each_taste_has_three_rounds_of_training_and_ten_held_out(taste: str) -> None:
    split = corpus(taste)
    assert split == corpus(taste)
    assert len(split.train) >= ROUNDS * PER_ROUND
    assert len(split.heldout) >= 10
    assert {c.taste for c in split.train + split.heldout} == {taste}


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_no_two_contexts_of_a_taste_share_a_name(taste: str) -> None:
    split = corpus(taste)
    names = [c.name for c in split.train + split.heldout]
    assert len(set(names)) == len(names)


def test_no_two_contexts_share_a_prompt() -> None:
    contexts = [c for t in TASTES for c in corpus(t).train + corpus(t).heldout]
    prompts = [c.prefix for c in contexts]
    assert len(set(prompts)) == len(prompts)
    documents = [(c.path, c.prefix + c.suffix) for c in contexts]
    assert len(set(documents)) == len(documents)


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_every_context_completed_as_wanted_is_python(taste: str) -> None:
    """The file with the wanted line written in parses (a signature left without a body
    gets ``...``)."""
    split = corpus(taste)
    for context in split.train + split.heldout:
        document = context.prefix + context.wanted + context.suffix
        if document.rstrip().endswith(":"):
            document = document.rstrip() + "\n    ...\n"
        ast.parse(document, context.path)


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_the_fix_covers_at_least_three_quarters_of_each_part(taste: str) -> None:
    """Most contexts leave a near miss to edit; the rest (``Path(p).stem``, ``key not in
    table:``) have no plain counterpart the fix knows and are typed over."""
    split = corpus(taste)
    for part in (split.train, split.heldout):
        fixable = [c for c in part if plain_forms(c)]
        assert 4 * len(fixable) >= 3 * len(part), [c.name for c in part if c not in fixable]


def test_the_context_dependent_corpus_balances_library_and_tests() -> None:
    split = corpus("signatures_by_file")
    for part in (split.train, split.heldout):
        tests = [c for c in part if c.is_test]
        assert 2 * len(tests) == len(part)
        assert {c.name for c in tests} == {f"test_{c.name}" for c in part if not c.is_test}


def test_training_order_is_a_seeded_permutation() -> None:
    contexts = corpus("pathlib").train
    assert training_order(contexts, 1) == training_order(contexts, 1)
    assert training_order(contexts, 1) != training_order(contexts, 2)
    assert sorted(c.name for c in training_order(contexts, 3)) == sorted(c.name for c in contexts)


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_every_round_brings_new_contexts(taste: str) -> None:
    contexts = corpus(taste).train
    rounds = [round_contexts(contexts, 7, r, ROUNDS) for r in range(1, ROUNDS + 1)]
    assert [len(r) for r in rounds] == [len(contexts) // ROUNDS] * ROUNDS
    names = [c.name for r in rounds for c in r]
    assert len(set(names)) == len(names)
    assert [c for r in rounds for c in r] == training_order(contexts, 7)[: len(names)]
    assert round_contexts(contexts, 7, 1, ROUNDS) == rounds[0]
    assert round_contexts(contexts, 8, 1, ROUNDS) != rounds[0]


def test_rounds_wrap_around_only_once_the_corpus_is_exhausted() -> None:
    contexts = corpus("fstrings").train
    order = training_order(contexts, 0)
    n = len(contexts)
    per_round = 5
    worked = [c for r in range(1, n // per_round + 1) for c in round_contexts(contexts, 0, r, 3, 5)]
    assert worked == order[: n // per_round * per_round]
    after = round_contexts(contexts, 0, n // per_round + 1, 3, per_round)
    assert after == [
        order[i % n] for i in range(n // per_round * per_round, (n // per_round + 1) * per_round)
    ]
    assert round_contexts(contexts, 0, 4, 3) == round_contexts(contexts, 0, 1, 3)


def test_a_round_never_repeats_a_context() -> None:
    contexts = corpus("docstring").train[:4]
    assert round_contexts(contexts, 0, 1, 1, per_round=10) == training_order(contexts, 0)
    assert round_contexts(contexts, 0, 2, 10) == [training_order(contexts, 0)[1]]
    assert round_contexts((), 0, 1, 3) == []
