"""The judge inside `prefloop serve`: suggestions made through the API get critiqued in the
background, and suggestion requests keep being answered while it works."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server
from tests.waiting import wait_until

PREFIXES = (
    "def add(a, b):\n    return ",
    "import os\n\ndef home():\n    return ",
    "def greet(name):\n    print(",
)


@pytest.fixture(scope="module")
def judged_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Any:
    server = start_server(
        tmp_path_factory.mktemp("judged"),
        tiny_model_dir,
        extra_env={
            "PREFLOOP_JUDGE_BACKEND": "engine",
            "PREFLOOP_JUDGE_CHECKS": "true",
            "PREFLOOP_JUDGE_IDLE_SECONDS": "0.2",
            "PREFLOOP_JUDGE_POLL_INTERVAL": "0.2",
            "PREFLOOP_JUDGE_MAX_ATTEMPTS": "2",
            "PREFLOOP_JUDGE_MAX_TOKENS": "24",
        },
    )
    yield server
    server.stop()


def critiques(server: ServerProcess) -> list[tuple[str, int, str, str, str]]:
    with closing(sqlite3.connect(server.home / "prefloop.db")) as conn:
        return conn.execute(
            "SELECT suggestion_id, candidate_index, judge, status, rubric_version FROM critiques"
        ).fetchall()


def test_every_candidate_of_served_suggestions_is_critiqued(judged_server: ServerProcess) -> None:
    made: dict[str, int] = {}
    with judged_server.client() as client:
        for prefix in PREFIXES:
            response = client.post(
                "/v1/suggestions",
                json={"prefix": prefix, "language": "python", "max_tokens": 8, "n": 2},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            made[body["suggestion_id"]] = len(body["candidates"])

    def judged() -> bool:
        rows = critiques(judged_server)
        by_judge: dict[str, set[tuple[str, int]]] = {}
        for sid, index, judge, _status, _rubric in rows:
            by_judge.setdefault(judge, set()).add((sid, index))
        wanted = {(sid, i) for sid, n in made.items() for i in range(n)}
        return bool(by_judge.get("llm:engine", set()) >= wanted) and all(
            {(sid, 0) for sid in made} <= found
            for judge, found in by_judge.items()
            if judge.startswith("check:")
        )

    wait_until(
        judged,
        what="every candidate critiqued by the engine, every first candidate by the checks",
        timeout=120,
        interval=0.1,
    )
    rows = [r for r in critiques(judged_server) if r[0] in made]
    engine_rows = [r for r in rows if r[2] == "llm:engine"]
    # A random model cannot answer the rubric: every critique is recorded, as failed.
    assert {r[3] for r in engine_rows} <= {"ok", "failed"}
    assert {r[4] for r in engine_rows} == {"inline-v1"}
    assert {r[2] for r in rows} >= {"llm:engine", "check:syntax", "check:names", "check:security"}

    health = judged_server.client().get("/healthz").json()
    judge = health["judge"]
    assert judge["backend"] == "engine"
    assert judge["rubric"] == "inline-v1"
    assert judge["critiques_ok"] + judge["critiques_failed"] >= sum(made.values())


def test_suggestions_are_answered_while_the_judge_works(judged_server: ServerProcess) -> None:
    with judged_server.client() as client:
        # Give the judge a backlog, then ask again while it is critiquing it.
        for prefix in PREFIXES:
            response = client.post(
                "/v1/suggestions",
                json={"prefix": prefix, "language": "python", "max_tokens": 8, "n": 3},
                timeout=60,
            )
            assert response.status_code == 200, response.text

        def judged() -> int:
            judge = client.get("/healthz").json()["judge"]
            return int(judge["critiques_ok"] + judge["critiques_failed"])

        before = judged()
        wait_until(
            judged,
            lambda count: count > before,
            what=f"more than {before} critiques",
            timeout=120,
            interval=0.1,
        )
        for prefix in PREFIXES:
            response = client.post(
                "/v1/suggestions",
                json={"prefix": prefix, "language": "python", "max_tokens": 8},
                timeout=60,
            )
            assert response.status_code == 200, response.text
    assert httpx.get(judged_server.url + "/healthz").json()["status"] == "ok"
