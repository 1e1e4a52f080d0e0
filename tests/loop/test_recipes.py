"""The recipe sweep end to end on the tiny random model: pairs from the simulated
developer's reactions, a training per recipe, held-out figures and the report. It checks
the harness, not which recipe the tiny model prefers."""

from __future__ import annotations

from pathlib import Path

from bench.loop.recipes import BEGIN, DEMO, END, run_taste, section, taste_corpus
from prefloop.trainer.simulate import HELDOUT_TASKS, TRAINING_TASKS


def test_every_recipe_is_trained_on_the_same_pairs_and_scored(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    results = run_taste(
        str(tiny_model_dir),
        "annotations",
        ["adaptive-dpo", "adaptive-dpo+sft"],
        contexts=4,
        seed=0,
        max_tokens=4,
        probes=False,
        work=tmp_path,
        report=lines.append,
    )
    assert [r.recipe for r in results] == ["base", "adaptive-dpo", "adaptive-dpo+sft"]
    base, dpo, sft = results
    # The tiny model never writes an annotated signature: every non-empty suggestion is
    # typed over, so the four contexts make up to four pairs, the same for every recipe.
    assert 0 < base.pairs <= 4
    assert dpo.pairs == sft.pairs == base.pairs
    # A handful of pairs still gets the step floor (24) at the small-data rate.
    assert (dpo.steps, dpo.learning_rate) == (sft.steps, sft.learning_rate) == (24, 1e-3)
    assert base.steps == 0 and base.taste_share == 0.0
    for r in results:
        assert 0.0 <= r.edit_distance <= 1.0 and r.syntax_valid is None
    assert len(lines) == 3
    text = section(results, "setup")
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "| annotations | adaptive-dpo+sft | " in text


def test_the_demo_taste_is_the_demo_functions() -> None:
    demo = taste_corpus(DEMO)
    assert [c.name for c in demo.train] == [t.name for t in TRAINING_TASKS]
    assert [c.wanted for c in demo.heldout] == [t.wanted for t in HELDOUT_TASKS]
    assert {c.taste for c in (*demo.train, *demo.heldout)} == {"annotations"}
