"""Validating judge answers: good, partial and garbage."""

from __future__ import annotations

import json

import pytest

from prefloop.server.judge.answers import (
    extract_json,
    parse_single,
    parse_together,
    salvage_prefix,
)
from prefloop.server.judge.rubric import load_rubric

RUBRIC = load_rubric("inline-v1")
GOOD_SCORES = {
    "fit": 5,
    "correctness": 4,
    "efficiency": 4,
    "readability": 5,
    "style": 3,
    "safety": 5,
}


def answer(**overrides: object) -> str:
    body: dict[str, object] = {"scores": dict(GOOD_SCORES), "rationale": "Uses math.pi."}
    body.update(overrides)
    return json.dumps(body)


@pytest.mark.parametrize(
    "text",
    [
        answer(),
        "```json\n" + answer() + "\n```",
        "Here is my review:\n" + answer() + "\nHope this helps!",
        answer(scores={k: str(v) for k, v in GOOD_SCORES.items()}),
        answer(scores={k.upper(): float(v) for k, v in GOOD_SCORES.items()}),
        json.dumps({**GOOD_SCORES, "rationale": "Uses math.pi."}),
        json.dumps({"critiques": [{"candidate": "A", "scores": GOOD_SCORES, "rationale": "ok"}]}),
    ],
    ids=["plain", "fenced", "prose-around", "string-scores", "float-scores", "flat", "list"],
)
def test_good_single_answers(text: str) -> None:
    result = parse_single(text, RUBRIC)
    assert result.error is None, result.error
    critique = result.critiques["A"]
    assert critique.scores == GOOD_SCORES
    assert critique.rationale


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (answer(scores={k: v for k, v in GOOD_SCORES.items() if k != "safety"}), "scores.safety"),
        (answer(scores={**GOOD_SCORES, "fit": 6}), "scores.fit"),
        (answer(scores={**GOOD_SCORES, "fit": 0}), "scores.fit"),
        (answer(scores={**GOOD_SCORES, "style": 3.5}), "scores.style"),
        (answer(scores={**GOOD_SCORES, "style": "good"}), "scores.style"),
        (answer(rationale=""), "rationale"),
        (json.dumps({"scores": GOOD_SCORES}), "rationale: Field required"),
    ],
    ids=[
        "missing-aspect",
        "above-5",
        "below-1",
        "fraction",
        "word",
        "empty-rationale",
        "no-rationale",
    ],
)
def test_partial_single_answers_are_rejected_with_the_reason(text: str, expected: str) -> None:
    result = parse_single(text, RUBRIC)
    assert not result.critiques
    assert result.error is not None and expected in result.error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty answer"),
        ("The completion looks fine to me, 5/5.", "no JSON object"),
        ("I'm sorry, but I can't help with reviewing this code.", "refused"),
        ("{{{{ ]]] not json at all", "no JSON object"),
        ("scores: fit=5 correctness=4", "no JSON object"),
    ],
    ids=["empty", "prose", "refusal", "brackets", "yaml-ish"],
)
def test_garbage_answers(text: str, expected: str) -> None:
    result = parse_single(text, RUBRIC)
    assert not result.critiques
    assert result.error is not None and expected in result.error


def test_a_truncated_answer_is_repaired_when_what_remains_is_complete() -> None:
    cut = answer(rationale="Correct and idiomatic, but the name shadows")[:-10]
    result = parse_single(cut, RUBRIC)
    assert result.error is None and result.repaired
    assert result.critiques["A"].rationale.startswith("Correct and idiomatic")


def test_a_looping_answer_keeps_the_first_of_repeated_keys() -> None:
    looping = '{"scores": {"fit": 2, "correctness": 3, "fit": 5, "fit": 1, "correc'
    obj, repaired = extract_json(looping)
    assert repaired and obj == {"scores": {"fit": 2, "correctness": 3}}


def test_salvage_keeps_the_valid_start_of_a_failed_answer() -> None:
    no_rationale = json.dumps({"scores": GOOD_SCORES})
    prefix = salvage_prefix(no_rationale, RUBRIC)
    assert prefix is not None and prefix.endswith('"rationale": "')
    completed = prefix + 'Fine."}'
    assert parse_single(completed, RUBRIC).critiques["A"].scores == GOOD_SCORES
    partial = '{"scores": {"fit": 4, "correctness": 9, "efficiency": 2'
    assert salvage_prefix(partial, RUBRIC) == '{"scores": {"fit": 4, "'
    assert salvage_prefix("nothing here", RUBRIC) is None


def critiques(*labels: str) -> list[dict[str, object]]:
    return [{"candidate": lb, "scores": GOOD_SCORES, "rationale": f"about {lb}"} for lb in labels]


def test_together_good_answer() -> None:
    text = json.dumps({"critiques": critiques("B", "A", "C")})
    result = parse_together(text, RUBRIC, ["A", "B", "C"])
    assert result.error is None
    assert set(result.critiques) == {"A", "B", "C"}
    assert result.critiques["B"].rationale == "about B"


def test_together_partial_answer_keeps_the_valid_entries() -> None:
    items = critiques("A", "C")
    items.append({"candidate": "B", "scores": {"fit": 3}, "rationale": "short"})
    items.append({"candidate": "Z", "scores": GOOD_SCORES, "rationale": "who?"})
    result = parse_together(json.dumps({"critiques": items}), RUBRIC, ["A", "B", "C", "D"])
    assert set(result.critiques) == {"A", "C"}
    assert result.error is not None
    assert "candidate B: scores.correctness" in result.error
    assert "unknown candidate 'Z'" in result.error
    assert "no valid critique for candidate(s) B, D" in result.error


def test_together_answers_keyed_by_label_are_understood() -> None:
    text = json.dumps({"A": {"scores": GOOD_SCORES, "rationale": "a"}, "B": {"oops": 1}})
    result = parse_together(text, RUBRIC, ["A", "B"])
    assert set(result.critiques) == {"A"}
    assert result.error is not None and "candidate B" in result.error


def test_together_garbage() -> None:
    assert (
        parse_together("no idea", RUBRIC, ["A", "B"]).error
        == "no JSON object in the answer: 'no idea'"
    )
    result = parse_together('{"verdict": "all good"}', RUBRIC, ["A", "B"])
    assert result.error == "answer has no `critiques` list"
