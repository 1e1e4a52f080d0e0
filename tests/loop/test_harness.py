"""The many-tastes benchmark's harness end to end on the tiny random model: a simulated
developer in a real ``prefloop lsp`` against a real ``prefloop serve``, one round, a forced
retrain, figures and the report. It checks the harness, not that the tiny model learns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.loop.corpus import TasteCorpus
from bench.loop.developer import Timing, work_session
from bench.loop.report import BEGIN, END, as_json, from_json, section, write_section
from bench.loop.run import LoopSettings, run_service
from bench.loop.tastes import FSTRINGS, Context, Taste
from tests.conftest import ServerProcess
from tests.lsp.editor import count, event_rows

pytestmark = pytest.mark.e2e

# The tiny random model repeats the last word before the cursor: contexts that end on a
# word get a suggestion, which the f-string developer types over.
TRAIN = tuple(
    Context(
        "fstrings",
        f"label_{word}",
        "src/app/labels.py",
        f"def label_{word}({word}: int) -> str:\n    text = {word}",
        "\n    return text\n",
        f'_label = f"{{{word}}} items"',
    )
    for word in ("count", "total", "size", "width")
)
HELDOUT = tuple(
    Context(
        "fstrings",
        f"name_{word}",
        "src/app/names.py",
        f"def name_{word}({word}: str) -> str:\n    shown = {word}",
        "\n    return shown\n",
        f'_text = f"<{{{word}}}>"',
    )
    for word in ("user", "host")
)
FAST = Timing(typing=0.0, reading=0.0)


ALWAYS = Taste("always", "keeps every suggestion", lambda _c, _l: True, lambda _c, _l: None)
ONLY_X = Taste(
    "only_x", "edits every suggestion to x", lambda _c, line: line == "x", lambda *_: "x"
)


@pytest.mark.parametrize(
    ("taste", "expected"),
    [
        (ALWAYS, ["shown", "accepted", "retained"]),
        (ONLY_X, ["shown", "accepted", "retained"]),
        (FSTRINGS, ["shown", "dismissed", "rewritten"]),
    ],
    ids=["accept", "edit_after_accept", "dismiss_and_rewrite"],
)
async def test_each_reaction_reaches_the_service(
    tiny_server: ServerProcess, tmp_path: Path, taste: Taste, expected: list[str]
) -> None:
    [worked] = await work_session(
        tiny_server.url,
        tmp_path,
        taste,
        [TRAIN[0]],
        user="harness",
        max_tokens=6,
        timing=FAST,
        mode="multi_line",
    )
    assert worked.suggestion, "the tiny model answers a context ending on a word"
    assert worked.suggestion_id is not None
    sid = worked.suggestion_id
    kinds = [row[0] for row in event_rows(tiny_server.db_path, sid)]
    assert [k for k in expected if k in kinds] == expected, kinds
    rows = event_rows(tiny_server.db_path, sid)
    if taste is ONLY_X:
        assert worked.reaction == "edit_after_accept"
        assert rows[-1][0] == "retained" and rows[-1][-1] == "x"
    if taste is FSTRINGS:
        assert worked.reaction == "dismiss_and_rewrite"
        assert ("rewritten", TRAIN[0].wanted) in rows


def test_one_round_end_to_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = LoopSettings(
        rounds=1,
        max_tokens=6,
        mode="multi_line",
        humaneval_problems=2,
        humaneval_tokens=8,
        timing=FAST,
        run_timeout=600,
        corpora={"fstrings": TasteCorpus("fstrings", TRAIN, HELDOUT)},
        # A handful of contexts makes 2 held-out pairs, below the default gate's floor of
        # 8: this test checks the harness, so the gate may decide on what there is.
        service_env={"PREFLOOP_TRAIN_GATE_MIN_HELDOUT": "1"},
    )
    home = tmp_path / "home"
    result = run_service(
        tiny_model_dir, home, [("dev-fstrings", "fstrings")], seed=0, settings=settings
    )
    [dev] = result.developers
    # Every training context was worked through the language server; its events arrived.
    assert [w["reaction"] for w in dev.worked[0]] == ["dismiss_and_rewrite"] * len(TRAIN)
    db = home / "prefloop.db"
    assert count(db, "SELECT count(*) FROM events WHERE kind = 'rewritten'") == len(TRAIN)
    # Held-out contexts were only evaluated: no events about them.
    assert count(db, "SELECT count(*) FROM events WHERE user LIKE '%heldout%'") == 0
    # A run was started on the feedback and finished one way or the other.
    [run] = result.runs
    assert run["id"] and run["status"] in ("succeeded", "rejected"), run
    # Figures before and after the round, for the held-out contexts and HumanEval.
    assert [r["round"] for r in dev.rounds] == [0, 1]
    assert all(r["contexts"] == len(HELDOUT) for r in dev.rounds)
    assert len(result.humaneval) == 2 and len(result.syntax_valid()) == 2
    # The raw results read back as they were.
    [again] = from_json(json.loads(json.dumps(as_json([result]))))
    assert again.developers[0].rounds == dev.rounds and again.runs == result.runs
    # The report: a section with the taste's table, its retrains and its plot.
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmark results\n\n## Other\n\ntext\n")
    text = section(
        {"fstrings": [result]}, [], plots_dir=tmp_path / "plots", link_base=tmp_path, setup="s"
    )
    write_section(results_md, text)
    write_section(results_md, text)
    written = results_md.read_text()
    assert written.count(BEGIN) == 1 and written.count(END) == 1 and "## Other" in written
    assert "### fstrings" in written and "| 1 |" in written
    assert f"- seed 0, round 1: {run['status']}" in written
    assert (tmp_path / "plots" / "fstrings.png").stat().st_size > 0


def test_two_developers_share_one_service_and_every_round_brings_new_contexts(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    paths = tuple(
        Context(
            "pathlib",
            f"where_{word}",
            "src/app/where.py",
            f"def where_{word}({word}: str) -> str:\n    place = {word}",
            "\n    return place\n",
            f'_path = Path({word}) / "data"',
        )
        for word in ("root", "home", "base")
    )
    settings = LoopSettings(
        rounds=2,
        max_tokens=6,
        mode="multi_line",
        humaneval_problems=0,
        timing=FAST,
        run_timeout=600,
        corpora={
            "fstrings": TasteCorpus("fstrings", TRAIN, HELDOUT),
            "pathlib": TasteCorpus("pathlib", paths[:2], paths[2:]),
        },
    )
    home = tmp_path / "home"
    result = run_service(
        tiny_model_dir,
        home,
        [("dev-a", "fstrings"), ("dev-b", "pathlib")],
        seed=1,
        settings=settings,
    )
    db = home / "prefloop.db"
    for dev, train in zip(result.developers, (TRAIN, paths[:2]), strict=True):
        # Each round works through its own half of the training contexts: none twice.
        names = [[w["context"] for w in worked] for worked in dev.worked]
        assert [len(n) for n in names] == [len(train) // 2] * 2
        assert sorted(names[0] + names[1]) == sorted(c.name for c in train)
        asked = count(db, "SELECT count(*) FROM suggestions WHERE user = ?", (dev.user,))
        assert asked == len(train)
        assert [r["round"] for r in dev.rounds] == [0, 1, 2]
    assert len(result.runs) == 2 and result.humaneval == []
    text = section({}, [result], plots_dir=tmp_path, link_base=tmp_path, setup="s")
    assert "dev-a" in text and "dev-b" in text and "Two developers" in text


def test_two_developers_with_an_adapter_each(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``adapters = per_user``: the retrain trains one adapter per developer on their own
    pairs, the held-out figures are asked for as each developer, and the report says whose
    adapter learnt. (The pathlib contexts import ``Path``: the pair checks drop a chosen
    text with an undefined name.)"""
    paths = tuple(
        Context(
            "pathlib",
            f"where_{word}",
            "src/app/where.py",
            f"from pathlib import Path\n\n\ndef where_{word}({word}: str) -> str:\n"
            f"    place = {word}",
            "\n    return place\n",
            f'_path = Path({word}) / "data"',
        )
        for word in ("root", "home", "base", "top", "left", "right")
    )
    settings = LoopSettings(
        rounds=1,
        max_tokens=6,
        mode="multi_line",
        humaneval_problems=0,
        timing=FAST,
        run_timeout=600,
        corpora={
            "fstrings": TasteCorpus("fstrings", TRAIN, HELDOUT),
            "pathlib": TasteCorpus("pathlib", paths[:4], paths[4:]),
        },
        service_env={"PREFLOOP_TRAIN_GATE_MIN_HELDOUT": "1"},
        adapters="per_user",
    )
    home = tmp_path / "home"
    developers = [("dev-a", "fstrings"), ("dev-b", "pathlib")]
    result = run_service(tiny_model_dir, home, developers, seed=0, settings=settings)
    [run] = result.runs
    assert run["status"] in ("succeeded", "rejected"), run
    db = home / "prefloop.db"
    for dev in result.developers:
        # One version of the developer's own, trained on their pairs.
        own = "SELECT count(*) FROM model_versions WHERE for_user = ?"
        assert count(db, own, (dev.user,)) == 1
        # Worked and held-out suggestions were all asked for as the developer.
        asked = count(db, "SELECT count(*) FROM suggestions WHERE user = ?", (dev.user,))
        assert asked == 4 + 2 * 2
        promoted = run["promoted_per_user"].get(dev.user)
        assert dev.rounds[-1]["version"] == (promoted or "base")
    assert count(db, "SELECT count(*) FROM model_versions WHERE for_user IS NULL") == 0
    text = section(
        {}, [result], plots_dir=tmp_path, link_base=tmp_path, setup="s", adapters="per_user"
    )
    assert "an adapter of their own" in text


def test_a_home_that_holds_an_earlier_run_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "adapters" / "v1").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not empty"):
        run_service("no-model", home, [("dev", "fstrings")], seed=0, settings=LoopSettings())
