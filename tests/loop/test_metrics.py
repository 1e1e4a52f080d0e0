"""Golden tests of the benchmark's text distances, held-out figures and report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.loop.corpus import corpus
from bench.loop.metrics import mean_and_spread, score, summarise
from bench.loop.report import BEGIN, END, write_section
from bench.loop.tastes import TASTES, Context
from bench.loop.textdistance import levenshtein, normalised_distance, retained_chars, similarity
from tests.loop.base_style import plain_forms


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "abc", 0), ("kitten", "sitting", 3), ("", "abc", 3), ("ab", "ba", 2)],
)
def test_levenshtein(a: str, b: str, distance: int) -> None:
    assert levenshtein(a, b) == distance == levenshtein(b, a)


def test_normalised_distance_and_retained_chars() -> None:
    assert normalised_distance("", "") == 0.0
    assert normalised_distance("", "abc") == 1.0
    assert normalised_distance("kitten", "sitting") == 3 / 7
    assert similarity("abcd", "abcd") == 1.0
    assert retained_chars('"%s items" % n', 'f"{n} items"') == len('" items"')
    assert retained_chars("abc", "") == 0


CONTEXT = Context("fstrings", "c", "src/m.py", "return", "\n", ' f"{n} items"')


def test_score_each_reaction() -> None:
    taste = TASTES["fstrings"]
    accepted = score(taste, CONTEXT, ' f"{n} things"')
    assert (accepted.reaction, accepted.distance, accepted.satisfied) == ("accept", 0.0, True)
    assert accepted.retained_chars == len(' f"{n} things"')
    edited = score(taste, CONTEXT, ' "%s things" % n')
    assert edited.reaction == "edit_after_accept" and not edited.satisfied
    assert edited.distance == normalised_distance(' "%s things" % n', ' f"{n} things"')
    assert edited.retained_chars == retained_chars(' "%s things" % n', ' f"{n} things"')
    rewritten = score(taste, CONTEXT, " None")
    assert (rewritten.reaction, rewritten.retained_chars) == ("dismiss_and_rewrite", 0)
    empty = score(taste, CONTEXT, "")
    assert (empty.distance, empty.satisfied) == (1.0, False)


@pytest.mark.parametrize("taste", sorted(TASTES))
def test_every_context_scores_its_wanted_line_and_its_plain_style(taste: str) -> None:
    """On every context: the wanted line is kept as is (distance 0, all of it retained, the
    taste satisfied); a plain-style line is edited into the wanted one (distance above 0,
    not satisfied); no suggestion costs the whole line."""
    split = corpus(taste)
    for context in split.train + split.heldout:
        wanted = score(TASTES[taste], context, context.wanted)
        assert (wanted.reaction, wanted.distance, wanted.satisfied) == ("accept", 0.0, True)
        assert wanted.retained_chars == len(context.wanted)
        for line in plain_forms(context):
            plain = score(TASTES[taste], context, line)
            assert plain.reaction == "edit_after_accept" and not plain.satisfied, line
            assert plain.distance == normalised_distance(line, context.wanted) > 0, line
        nothing = score(TASTES[taste], context, "")
        assert (nothing.distance, nothing.retained_chars) == (1.0, 0)


def test_summarise_a_round() -> None:
    taste = TASTES["fstrings"]
    scored = [score(taste, CONTEXT, s) for s in (' f"{n} things"', ' "%s things" % n', " None", "")]
    figures = summarise(2, "v2", scored)
    assert figures.round == 2 and figures.version == "v2" and figures.contexts == 4
    assert figures.acceptance == 2 / 4
    assert figures.taste_share == 1 / 4
    assert figures.no_suggestion == 1
    assert figures.retained_chars == scored[0].retained_chars + scored[1].retained_chars
    assert figures.edit_distance == pytest.approx(sum(s.distance for s in scored) / 4)


def test_mean_and_spread() -> None:
    assert mean_and_spread([0.5]) == (0.5, 0.0)
    assert mean_and_spread([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert all(math.isnan(v) for v in mean_and_spread([]))


def test_the_section_is_replaced_in_place(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Before\n")
    write_section(results, f"{BEGIN}\nfirst\n{END}\n")
    results.write_text(results.read_text() + "\n## After\n")
    write_section(results, f"{BEGIN}\nsecond\n{END}\n")
    text = results.read_text()
    assert "first" not in text and text.count("second") == 1
    assert text.index("## Before") < text.index("second") < text.index("## After")
