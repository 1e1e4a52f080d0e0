"""The evaluation gate's arithmetic on known numbers, and its log-probabilities on a model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from prefloop.protocol import (
    GateResult,
    GateThresholds,
    PreferenceFigures,
    ProbeSample,
    ProbeSamples,
)
from prefloop.trainer.gate import (
    compare_preferences,
    completion_logprob,
    decide,
    preference_summary,
)
from prefloop.trainer.probing import (
    compare_probes,
    function_body,
    is_degenerate,
    load_probes,
    probe_quality,
    python_valid,
)


def test_accuracy_is_share_of_positive_deltas_and_margin_their_mean() -> None:
    summary = preference_summary([2.0, -1.0, 0.5, 0.0])
    assert (summary.pairs, summary.accuracy, summary.margin) == (4, 0.5, 0.375)
    assert summary.accuracy_interval is not None
    assert summary.accuracy_interval.estimate == 0.5  # Wilson, 2 of 4
    assert preference_summary([]) == PreferenceFigures(pairs=0, accuracy=0.0, margin=0.0)


def test_candidate_must_beat_current_on_both() -> None:
    current = [1.0, -1.0, 0.5, -0.5]  # accuracy 0.5, margin 0
    better = [2.0, 0.5, 0.5, -0.2]  # accuracy 0.75, margin 0.7
    result = compare_preferences(better, current, GateThresholds())
    assert result.passed, result.reasons
    assert result.accuracy_gain == pytest.approx(0.25)
    assert result.margin_gain == pytest.approx(0.7)

    same_accuracy_lower_margin = [0.1, -1.0, 0.1, -0.5]
    result = compare_preferences(same_accuracy_lower_margin, current, GateThresholds())
    assert not result.passed
    assert any("margin" in r for r in result.reasons)

    higher_margin_worse_accuracy = [9.0, -1.0, -0.1, -0.1]
    result = compare_preferences(higher_margin_worse_accuracy, current, GateThresholds())
    assert not result.passed
    assert any("accuracy" in r for r in result.reasons)

    # Equal is not better: the margin must exceed the current's.
    assert not compare_preferences(current, current, GateThresholds()).passed


def test_thresholds_raise_the_bar() -> None:
    current = [1.0, -1.0]
    candidate = [1.5, 0.5]  # accuracy +0.5, margin +1.0
    assert compare_preferences(candidate, current, GateThresholds()).passed
    assert not compare_preferences(candidate, current, GateThresholds(min_margin_gain=1.0)).passed
    assert not compare_preferences(candidate, current, GateThresholds(min_accuracy_gain=0.6)).passed
    few = compare_preferences(candidate, current, GateThresholds(min_heldout=3))
    assert not few.passed and "held-out pair" in few.reasons[0]
    with pytest.raises(ValueError):
        compare_preferences([1.0], current, GateThresholds())


def test_degenerate_and_python_validity() -> None:
    assert is_degenerate("") and is_degenerate("  \n ")
    assert is_degenerate("x = 1\nx = 1\nx = 1\n")
    assert is_degenerate("foo foo foo foo foo foo foo bar")
    assert not is_degenerate("max(low, min(value, high))")
    assert python_valid("def f(x):\n    return ", "x + 1", "\n")
    assert python_valid("def f(x):\n    return ", "x + 1\nthis is (not", "\n")  # first line
    assert not python_valid("def f(x):\n    return ", "x +", "\n")
    # Cut by the token budget: the unfinished last line is left out, as the service would.
    cut = "x + 1\n\nprint(f(2))\nprint(f("
    assert python_valid("def f(x):\n    return ", cut, "\n", cut=True)
    assert not python_valid("def f(x):\n    return ", "x +\ny = (", "\n", cut=True)


def _probe(pid: str, valid: bool | None, degenerate: bool, seconds: float) -> dict[str, object]:
    out: dict[str, object] = {"id": pid, "degenerate": degenerate, "seconds": seconds}
    if valid is not None:
        out["syntax_valid"] = valid
    return out


def test_probes_must_not_regress() -> None:
    current = [_probe("a", True, False, 1.0), _probe("b", False, False, 1.0)]
    assert compare_probes(current, current, GateThresholds()).passed
    less_valid = [_probe("a", False, False, 1.0), _probe("b", False, False, 1.0)]
    result = compare_probes(less_valid, current, GateThresholds())
    assert not result.passed and "syntax-valid" in result.reasons[0]
    assert compare_probes(less_valid, current, GateThresholds(max_syntax_drop=0.5)).passed
    degenerate = [_probe("a", True, True, 1.0), _probe("b", False, False, 1.0)]
    assert "repetitive" in compare_probes(degenerate, current, GateThresholds()).reasons[0]
    slow = [_probe("a", True, False, 3.0), _probe("b", False, False, 2.0)]
    result = compare_probes(slow, current, GateThresholds(latency_factor=2.0))
    assert not result.passed and "latency" in result.reasons[0]
    assert compare_probes(slow, current, GateThresholds(latency_factor=3.0)).passed


def test_gate_result_is_stored_with_its_keys() -> None:
    probes = [_probe("a", True, False, 1.0)]
    verdict = decide(
        compare_preferences([1.0, 2.0], [0.5, -1.0], GateThresholds()),
        compare_probes(probes, probes, GateThresholds()),
    )
    assert verdict.passed and verdict.reasons == []
    sample = [ProbeSample(id="a", completion="x + 1")]
    result = GateResult(
        **verdict.model_dump(exclude={"probes"}),
        probes=verdict.probes.model_copy(
            update={"samples": ProbeSamples(candidate=sample, current=sample)}
        ),
        probe_set="probes-v1",
        thresholds=GateThresholds(),
        current="base",
        seconds=1.5,
    )
    stored = result.stored()
    # The keys older runs stored come first and keep their meaning; new ones follow.
    assert list(stored) == [
        "passed",
        "reasons",
        "preferences",
        "probes",
        "probe_set",
        "thresholds",
        "current",
        "seconds",
    ]
    candidate = stored["preferences"]["candidate"]
    assert {k: candidate[k] for k in ("pairs", "accuracy", "margin")} == {
        "pairs": 2,
        "accuracy": 1.0,
        "margin": 1.5,
    }
    assert set(candidate["accuracy_interval"]) == {"estimate", "low", "high", "confidence"}
    assert list(stored["preferences"])[:6] == [
        "passed",
        "reasons",
        "candidate",
        "current",
        "margin_gain",
        "accuracy_gain",
    ]
    assert {"floor", "margin_gain_interval", "accuracy_gain_interval", "findings"} <= set(
        stored["preferences"]
    )
    assert list(stored["probes"])[:5] == ["passed", "reasons", "candidate", "current", "samples"]
    assert stored["probes"]["samples"]["current"] == [{"id": "a", "completion": "x + 1"}]
    thresholds = stored["thresholds"]
    assert {k: thresholds[k] for k in list(thresholds)[:6]} == {
        "min_accuracy_gain": 0.0,
        "min_margin_gain": 0.0,
        "min_heldout": 1,
        "max_syntax_drop": 0.0,
        "max_degenerate_increase": 0,
        "latency_factor": 2.0,
    }
    assert GateResult.model_validate(stored) == result
    assert "samples" not in verdict.probes.model_dump(exclude_none=True)


def test_a_gate_stored_by_an_older_version_still_reads() -> None:
    old = {
        "passed": False,
        "reasons": ["held-out margin -1.0 does not exceed 0.0 (current 0.0)"],
        "preferences": {
            "passed": False,
            "reasons": ["held-out margin -1.0 does not exceed 0.0 (current 0.0)"],
            "candidate": {"pairs": 2, "accuracy": 0.5, "margin": -1.0},
            "current": {"pairs": 2, "accuracy": 0.5, "margin": 0.0},
            "margin_gain": -1.0,
            "accuracy_gain": 0.0,
        },
        "probes": {
            "passed": True,
            "reasons": [],
            "candidate": {"probes": 8, "syntax_valid_rate": 1.0, "degenerate": 0, "seconds": 1.0},
            "current": {"probes": 8, "syntax_valid_rate": 1.0, "degenerate": 0, "seconds": 1.0},
        },
        "probe_set": "probes-v1",
        "thresholds": {
            "min_accuracy_gain": 0.0,
            "min_margin_gain": 0.0,
            "min_heldout": 1,
            "max_syntax_drop": 0.0,
            "max_degenerate_increase": 0,
            "latency_factor": 2.0,
        },
        "current": "base",
        "seconds": 3.0,
    }
    result = GateResult.model_validate(old)
    assert result.behaviour is None and result.findings == []
    assert result.preferences.margin_gain_interval is None


def test_a_drop_of_one_in_five_probes_is_exactly_at_a_fifth() -> None:
    """0.8 - 0.2 is not 0.6 in floating point; the gate still lets one of five flip."""

    def probes(valid: int) -> list[dict[str, object]]:
        return [_probe(f"p{i}", i < valid, False, 1.0) for i in range(5)]

    one_fifth = GateThresholds(max_syntax_drop=0.2)
    assert compare_probes(probes(3), probes(4), one_fifth).passed
    assert compare_probes(probes(4), probes(5), one_fifth).passed
    assert not compare_probes(probes(2), probes(4), one_fifth).passed
    assert not compare_probes(probes(3), probes(4), GateThresholds()).passed


def test_shipped_probe_set_is_well_formed() -> None:
    probes = load_probes("probes-v1")
    assert probes["version"] == "probes-v1"
    assert len(probes["probes"]) >= 8
    languages = {p["language"] for p in probes["probes"]}
    assert "python" in languages and len(languages) >= 3
    with pytest.raises(ValueError, match="unknown probe set"):
        load_probes("probes-v0")


def test_probe_set_v2_is_large_and_carries_its_noise() -> None:
    probes = load_probes("probes-v2")
    assert probes["version"] == "probes-v2"
    assert len(probes["probes"]) >= 36
    assert len({p["id"] for p in probes["probes"]}) == len(probes["probes"])
    languages = {p["language"] for p in probes["probes"]}
    assert {"python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"} <= languages
    noise = probes["noise"]
    assert noise["probes"] == len(probes["probes"])
    assert noise["syntax_flips"] >= 0 and noise["degenerate_flips"] >= 0
    assert "bench/probe_noise.py" in noise["how"]


def test_probe_set_v3_adds_functions_with_tests_that_a_right_body_passes() -> None:
    v2, v3 = load_probes("probes-v2"), load_probes("probes-v3")
    assert v3["probes"][: len(v2["probes"])] == v2["probes"]
    functions = [p for p in v3["probes"] if p.get("tests")]
    assert len(functions) >= 20
    by_id = {p["id"]: p for p in functions}
    right = {"py-fn-sum-pair": "return a + b", "py-fn-reverse": "return text[::-1]"}
    for probe_id, body in right.items():
        assert probe_quality(by_id[probe_id], body) | {"id": probe_id} == {
            "id": probe_id,
            "degenerate": False,
            "passes": True,
            "syntax_valid": True,
        }
        # Nothing, or a wrong body, fails the tests.
        assert probe_quality(by_id[probe_id], "")["passes"] is False
        assert probe_quality(by_id[probe_id], "return None")["passes"] is False
    # The function ends at the first line back at column 0, as the service shows it.
    assert function_body("return a + b\n\nprint(add(1, 2))") == "return a + b"
    assert function_body("x = 1\n    return x\n\n\nclass A:") == "x = 1\n    return x"
    loop = probe_quality(by_id["py-fn-sum-pair"], "while True:\n        pass")
    assert loop["passes"] is False  # the tests' time limit


def test_functions_that_lose_their_tests_refuse_only_beyond_the_noise() -> None:
    def run(passing: int, total: int = 24) -> list[dict[str, object]]:
        return [
            {"id": f"f{i}", "degenerate": False, "passes": i < passing, "seconds": 1.0}
            for i in range(total)
        ]

    thresholds = GateThresholds(probe_alpha=0.05)
    noise = {"probes": 41, "functional_flips": 0, "how": "measured"}
    same = compare_probes(run(19), run(19), thresholds, noise)
    assert same.passed and same.candidate.functional_passed == 19
    one_lost = compare_probes(run(18), run(19), thresholds, noise)
    assert one_lost.passed  # within the tolerance
    harmed = compare_probes(run(5), run(19), thresholds, noise)
    assert not harmed.passed
    (finding,) = [f for f in harmed.findings if f.figure == "probe_functional_drop"]
    assert finding.value == 14 and not finding.passed
    assert "pass fewer tests: 5 of 24, current 19" in harmed.reasons[0]
    # Probe sets without tests judge nothing of the kind.
    plain = compare_probes(run(0, 0), run(0, 0), thresholds, noise)
    assert all(f.figure != "probe_functional_drop" for f in plain.findings)


def test_every_parsed_probe_parses_with_a_fitting_completion() -> None:
    """The probe contexts are sound: a plain completion written for each parses, so a
    syntax-invalid verdict is the model's, not the probe's."""
    fitting = {
        "py-return": "max(low, min(value, high))",
        "js-function": "total += v;",
        "ts-function": "return Math.max(...values);",
        "go-error": "return",
        "rs-fn": "a + b",
        "java-method": "return x * x;",
        "c-max": "return a > b ? a : b;",
        "cpp-vector": "total += v;",
    }
    by_id = {p["id"]: p for p in load_probes("probes-v2")["probes"]}
    for probe_id, completion in fitting.items():
        quality = probe_quality(by_id[probe_id], completion)
        assert quality["syntax_valid"] is True, probe_id
        assert probe_quality(by_id[probe_id], "(((")["syntax_valid"] is False, probe_id


def test_completion_logprob_sums_token_logprobs(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    prompt, completion = "def add(a, b):\n    return", " a + b"
    got = completion_logprob(model, tok, prompt, completion, max_length=128)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(prompt + completion, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    expected = 0.0
    with torch.inference_mode():
        for pos in range(len(prompt_ids), len(ids)):
            logits = model(input_ids=torch.tensor([ids[:pos]])).logits[0, -1]
            expected += float(torch.log_softmax(logits, -1)[ids[pos]])
    assert got == pytest.approx(expected, abs=1e-3)
    assert got < 0 and math.isfinite(got)
