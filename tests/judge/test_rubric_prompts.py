"""Rubric files and the prompts built from them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from prefloop.server.judge.answers import answer_schema
from prefloop.server.judge.context import JudgeContext
from prefloop.server.judge.prompts import (
    COMPLETION_CLOSE,
    COMPLETION_OPEN,
    CURSOR,
    critique_prompt,
    pairwise_prompt,
    retry_prompt,
)
from prefloop.server.judge.rubric import RUBRICS_DIR, RubricError, load_rubric, load_templates

PREFIX = "import math\n\n\ndef area(radius: float) -> float:\n"
SUFFIX = "\n\ndef perimeter(radius: float) -> float:\n    return 2 * math.pi * radius\n"
CANDIDATES = (
    "    return math.pi * radius**2",
    "    return 3.14 * radius * radius",
    "    pass",
    "    return eval(input())",
)


def make_context(**overrides: object) -> JudgeContext:
    values: dict[str, object] = {
        "suggestion_id": "sug-1",
        "language": "python",
        "path": "geometry.py",
        "prefix": PREFIX,
        "suffix": SUFFIX,
        "candidates": CANDIDATES,
    }
    values.update(overrides)
    return JudgeContext(**values)


def test_inline_rubric_has_six_aspects_with_five_named_levels() -> None:
    rubric = load_rubric("inline-v1")
    assert rubric.version == "inline-v1"
    assert rubric.aspect_ids == (
        "fit",
        "correctness",
        "efficiency",
        "readability",
        "style",
        "safety",
    )
    for aspect in rubric.aspects:
        assert [lv.score for lv in aspect.levels] == [1, 2, 3, 4, 5]
        assert all(lv.name and lv.description for lv in aspect.levels)
    rendered = rubric.render_aspects()
    assert "1 = broken" in rendered and "5 = exact" in rendered


def test_single_prompt_marks_the_completion_inside_the_code() -> None:
    rubric = load_rubric()
    prompt = critique_prompt(rubric, make_context(), [1], rng=random.Random(0))
    system, user = prompt.messages
    assert system["role"] == "system" and "5 = verified" in system["content"]
    marked = f"{PREFIX}{COMPLETION_OPEN}{CANDIDATES[1]}{COMPLETION_CLOSE}{SUFFIX}"
    assert marked.strip("\n") in user["content"]
    assert "Language: python" in user["content"] and "File: geometry.py" in user["content"]
    assert '"fit": <1-5>' in user["content"] and '"rationale"' in user["content"]
    assert prompt.labels == {"A": 1} and not prompt.together
    assert prompt.answer_prefix == '{"scores": {"'
    assert prompt.schema == answer_schema(rubric)
    assert set(prompt.schema["$defs"]["Scores"]["required"]) == set(rubric.aspect_ids)


def test_together_prompt_shuffles_candidates_under_labels() -> None:
    rubric = load_rubric()
    ctx = make_context()
    orders = set()
    for seed in range(8):
        prompt = critique_prompt(rubric, ctx, [0, 1, 2, 3], rng=random.Random(seed))
        assert prompt.together
        assert list(prompt.labels) == ["A", "B", "C", "D"]
        assert sorted(prompt.labels.values()) == [0, 1, 2, 3]
        user = prompt.messages[1]["content"]
        assert f"{PREFIX}{CURSOR}" in user
        for label, index in prompt.labels.items():
            block = f"Candidate {label}:\n```\n{CANDIDATES[index]}\n```"
            assert block in user
            assert prompt.position(label) == "ABCD".index(label)
        assert prompt.schema["properties"]["critiques"]["minItems"] == 4
        item = prompt.schema["$defs"]["CandidateCritique"]
        assert item["properties"]["candidate"]["enum"] == ["A", "B", "C", "D"]
        orders.add(tuple(prompt.labels.values()))
    assert len(orders) > 1, "the order must vary with the seed"
    same = critique_prompt(rubric, ctx, [0, 1, 2, 3], rng=random.Random(3))
    again = critique_prompt(rubric, ctx, [0, 1, 2, 3], rng=random.Random(3))
    assert same.labels == again.labels


def test_long_context_is_windowed_at_line_boundaries() -> None:
    prefix = "".join(f"line_{i} = {i}\n" for i in range(2000))
    suffix = "".join(f"after_{i} = {i}\n" for i in range(2000))
    ctx = make_context(prefix=prefix, suffix=suffix, candidates=("x = 1",))
    head, tail = ctx.window(1000)
    assert len(head) + len(tail) <= 1000
    assert prefix.endswith(head) and head.startswith("line_")
    assert suffix.startswith(tail) and tail.endswith("\n")
    prompt = critique_prompt(load_rubric(), ctx, [0], rng=random.Random(0), context_chars=1000)
    assert "line_1999 = 1999" in prompt.messages[1]["content"]
    assert "line_0 = 0\n" not in prompt.messages[1]["content"]


def test_fences_inside_the_code_cannot_end_the_block() -> None:
    ctx = make_context(candidates=('    """Example:\n    ```\n    area(1)\n    ```\n    """',))
    user = critique_prompt(load_rubric(), ctx, [0], rng=random.Random(0)).messages[1]["content"]
    assert user.count("```") == 2


def test_retry_prompt_shows_the_bad_answer_and_keeps_its_valid_start() -> None:
    rubric = load_rubric()
    prompt = critique_prompt(rubric, make_context(), [0], rng=random.Random(0))
    retry = retry_prompt(rubric, prompt, '{"scores": {"fit": 4', "rationale: Field required", None)
    assert [m["role"] for m in retry.messages] == ["system", "user", "assistant", "user"]
    assert "rationale: Field required" in retry.messages[-1]["content"]
    assert retry.answer_prefix == prompt.answer_prefix
    keep = '{"scores": {"fit": 4, "'
    assert retry_prompt(rubric, prompt, "x", "bad", keep).answer_prefix == keep


def test_pairwise_prompt_shows_both_completions() -> None:
    prompt = pairwise_prompt(
        load_templates("pairwise-v1"), load_rubric(), make_context(), "AAA", "BBB"
    )
    system, user = prompt.messages
    assert "- correctness:" in system["content"]
    assert "Suggestion A:\n```\nAAA\n```" in user["content"]
    assert "Suggestion B:\n```\nBBB\n```" in user["content"]
    assert prompt.answer_prefix == '{"winner": "'


def test_rubric_from_a_path_and_broken_rubrics(tmp_path: Path) -> None:
    spec = json.loads((RUBRICS_DIR / "inline-v1.json").read_text())
    spec["version"] = "team-v7"
    spec["aspects"] = spec["aspects"][:2]
    (tmp_path / "team-v7.json").write_text(json.dumps(spec))
    (tmp_path / "team-v7.md").write_text((RUBRICS_DIR / "inline-v1.md").read_text())
    custom = load_rubric(str(tmp_path / "team-v7.json"))
    assert custom.version == "team-v7" and custom.aspect_ids == ("fit", "correctness")
    spec["aspects"][0]["levels"].pop("3")
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    (tmp_path / "bad.md").write_text("<!-- section: system -->\nx\n")
    with pytest.raises(RubricError, match="levels 1 to 5"):
        load_rubric(str(tmp_path / "bad.json"))
    with pytest.raises(RubricError, match="no rubric file"):
        load_rubric("inline-v999")
