"""The HTTP API of a real `prefloop serve` process on a tiny random model."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.waiting import wait_until

PLANTED = "planted_marker_7f3a9c"


def rows(server: ServerProcess, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.db_path) as conn:
        return conn.execute(sql, params).fetchall()


def suggest(client: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"prefix": "def add(a, b):\n    return ", "language": "python", "max_tokens": 8}
    payload.update(body)
    return client.post("/v1/suggestions", json=payload)


def new_suggestion(client: httpx.Client) -> str:
    response = suggest(client)
    assert response.status_code == 200, response.text
    sid: str = response.json()["suggestion_id"]
    return sid


def event(sid: str, kind: str = "shown", **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "suggestion_id": sid, "kind": kind, **extra}


# ---- health and metrics -------------------------------------------------------------


def test_healthz_reports_engine_version_and_db(tiny_server: ServerProcess) -> None:
    body = tiny_server.client().get("/healthz").json()
    assert body["status"] == "ok"
    assert body["model_version"] == "base"
    assert body["engine"]["engine"] == "transformers"
    assert body["engine"]["ok"] is True
    assert body["db"]["ok"] is True
    assert body["db"]["path"].endswith("prefloop.db")


def test_metrics_exposes_latency_events_and_versions(tiny_server: ServerProcess) -> None:
    with tiny_server.client() as client:
        sid = new_suggestion(client)
        assert client.post("/v1/events", json={"events": [event(sid)]}).status_code == 200
        text = client.get("/metrics").text
    assert 'prefloop_request_seconds_bucket{le="0.1",route="/v1/suggestions",status="200"}' in text
    assert 'prefloop_suggestions_total{language="python",model_version="base"}' in text
    assert 'prefloop_events_total{kind="shown"}' in text
    assert "prefloop_generate_seconds_count" in text


# ---- suggestions --------------------------------------------------------------------


def test_suggestion_contract_and_record(tiny_server: ServerProcess) -> None:
    with tiny_server.client() as client:
        response = suggest(
            client,
            suffix="\n\nprint(add(1, 2))\n",
            path="src/calc.py",
            cursor={"line": 1, "character": 11},
            mode="single_line",
            n=3,
            client_request_id="req-1",
            session_id="s-contract",
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["suggestion_id"]) == 32
    assert body["model_version"] == "base"
    assert body["client_request_id"] == "req-1"
    assert 0 <= len(body["candidates"]) <= 3
    assert [c["index"] for c in body["candidates"]] == list(range(len(body["candidates"])))
    for candidate in body["candidates"]:
        assert candidate["text"].strip()
        assert "\n" not in candidate["text"].lstrip("\n")
    assert body["timings"]["total_ms"] >= body["timings"]["generate_ms"] > 0
    stored = wait_until(
        lambda: rows(
            tiny_server,
            "SELECT language, path, mode, n, cursor_line, candidates, model_version, user "
            "FROM suggestions WHERE id = ?",
            (body["suggestion_id"],),
        ),
        what="the suggestion's row",
        timeout=15,
    )
    language, path, mode, n, line, candidates, version, user = stored[0]
    assert (language, path, mode, n, line, version) == (
        "python",
        "src/calc.py",
        "single_line",
        3,
        1,
        "base",
    )
    assert [c["text"] for c in json.loads(candidates)] == [c["text"] for c in body["candidates"]]
    assert user


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"suffix": "x"}, "prefix: Field required"),
        ({"prefix": 12}, "prefix: Input should be a valid string"),
        ({"prefix": "a", "n": 0}, "n: Input should be greater than or equal to 1"),
        ({"prefix": "a", "mode": "sideways"}, "mode: Input should be"),
        ({"prefix": "a", "max_tokens": 100000}, "max_tokens: Input should be less than"),
        ({"prefix": "a", "surprise": PLANTED}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_invalid_suggestion_requests_are_refused_without_echo(
    tiny_server: ServerProcess, payload: dict[str, Any], fragment: str
) -> None:
    payload = (
        {**payload, "suffix": payload.get("suffix", PLANTED)} if "prefix" in payload else payload
    )
    response = tiny_server.client().post("/v1/suggestions", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid request"
    assert any(fragment in d for d in body["detail"]), body
    assert PLANTED not in response.text


def test_broken_json_is_refused_without_echo(tiny_server: ServerProcess) -> None:
    raw = '{"prefix": "' + PLANTED + '", '
    response = tiny_server.client().post(
        "/v1/suggestions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert PLANTED not in response.text
    assert "JSON decode error" in " ".join(response.json()["detail"])


def test_oversized_body_is_refused_before_parsing(tiny_server: ServerProcess) -> None:
    big = "x" * (9 * 1024 * 1024)
    response = tiny_server.client().post("/v1/suggestions", json={"prefix": big})
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    # The service is still fine afterwards.
    assert tiny_server.client().get("/healthz").status_code == 200


def test_prompt_over_budget_is_cut_at_far_ends(tiny_server: ServerProcess) -> None:
    prefix = "".join(f"value_{i} = {i}\n" for i in range(20000)) + "def tail():\n    return "
    suffix = "\n" + "".join(f"other_{i} = {i}\n" for i in range(20000))
    with tiny_server.client() as client:
        response = suggest(client, prefix=prefix, suffix=suffix, max_tokens=4)
    assert response.status_code == 200, response.text
    sid = response.json()["suggestion_id"]
    stored = wait_until(
        lambda: rows(
            tiny_server,
            "SELECT prompt, prefix_truncated, suffix_truncated, length(prefix) FROM suggestions "
            "WHERE id = ?",
            (sid,),
        ),
        what="the suggestion's row",
        timeout=15,
    )
    prompt, prefix_cut, suffix_cut, stored_prefix_len = stored[0]
    assert prefix_cut == 1 and suffix_cut == 1
    assert "def tail():\n    return" in prompt
    assert "value_0 = 0\n" not in prompt
    assert "other_0 = 0" in prompt
    assert "other_19999" not in prompt
    assert stored_prefix_len == len(prefix)  # the full context is kept for training


# ---- cancellation -------------------------------------------------------------------


def _engine_health(client: httpx.Client) -> dict[str, Any]:
    engine: dict[str, Any] = client.get("/healthz").json()["engine"]
    return engine


def test_newer_request_from_same_session_cancels_older(tiny_server: ServerProcess) -> None:
    results: dict[str, httpx.Response] = {}

    def long_request() -> None:
        with tiny_server.client() as client:
            results["old"] = suggest(
                client, session_id="s-cancel", max_tokens=2000, n=4, prefix="import os\n"
            )

    with tiny_server.client() as client:
        before = _engine_health(client)["cancelled"]
        thread = threading.Thread(target=long_request)
        thread.start()
        wait_until(
            lambda: _engine_health(client),
            lambda engine: engine["busy"],
            what="the engine to be busy with the long request",
            timeout=15,
        )
        results["new"] = suggest(client, session_id="s-cancel", max_tokens=4)
        thread.join(30)
        assert results["old"].status_code == 409
        assert "superseded" in results["old"].json()["error"]
        assert results["new"].status_code == 200
        assert _engine_health(client)["cancelled"] == before + 1
        metrics = client.get("/metrics").text
    assert 'prefloop_generations_cancelled_total{reason="superseded"}' in metrics


def test_requests_from_other_sessions_are_not_cancelled(tiny_server: ServerProcess) -> None:
    out: list[int] = []

    def one(session: str) -> None:
        with tiny_server.client() as client:
            out.append(suggest(client, session_id=session, max_tokens=16).status_code)

    threads = [threading.Thread(target=one, args=(f"s-other-{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out == [200, 200, 200]


def test_client_disconnect_stops_the_generation(tiny_server: ServerProcess) -> None:
    with tiny_server.client() as client:
        before = _engine_health(client)["cancelled"]
        with (
            pytest.raises(httpx.ReadTimeout),
            httpx.Client(base_url=tiny_server.url, timeout=0.8) as impatient,
        ):
            suggest(impatient, max_tokens=2000, n=4, prefix="class Thing:\n")
        # The engine notices the closed connection and stops long before 2000 tokens.
        wait_until(
            lambda: _engine_health(client),
            lambda engine: engine["cancelled"] == before + 1,
            what="one more cancelled generation",
            timeout=10,
        )
        wait_until(
            lambda: _engine_health(client),
            lambda engine: not engine["busy"],
            what="the engine to be idle",
            timeout=10,
        )
        assert suggest(client, max_tokens=2).status_code == 200


# ---- events -------------------------------------------------------------------------


def test_event_batch_is_stored_with_suggestion_context(tiny_server: ServerProcess) -> None:
    with tiny_server.client() as client:
        sid = new_suggestion(client)
        batch = [
            event(sid, "shown"),
            event(sid, "accepted", text="a + b"),
            event(sid, "partially_accepted", accepted_chars=3, text="a +"),
            event(sid, "dismissed", reason="typed_over", shown_ms=812.5),
            event(sid, "retained", checkpoint="30s", similarity=0.75, text="a + b + 1"),
            event(sid, "rewritten", text="sum((a, b))"),
        ]
        response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == [e["id"] for e in batch]
    assert body["duplicates"] == [] and body["refused"] == []
    stored = rows(
        tiny_server,
        "SELECT kind, language, model_version, reason, accepted_chars, checkpoint, similarity, "
        "text FROM events WHERE suggestion_id = ? ORDER BY rowid",
        (sid,),
    )
    assert stored == [
        ("shown", "python", "base", None, None, None, None, None),
        ("accepted", "python", "base", None, None, None, None, "a + b"),
        ("partially_accepted", "python", "base", None, 3, None, None, "a +"),
        ("dismissed", "python", "base", "typed_over", None, None, None, None),
        ("retained", "python", "base", None, None, "30s", 0.75, "a + b + 1"),
        ("rewritten", "python", "base", None, None, None, None, "sum((a, b))"),
    ]


def test_resent_batch_stores_nothing_twice(tiny_server: ServerProcess) -> None:
    with tiny_server.client() as client:
        sid = new_suggestion(client)
        batch = [event(sid, "shown"), event(sid, "accepted", text="x")]
        first = client.post("/v1/events", json={"events": batch}).json()
        second = client.post("/v1/events", json={"events": batch}).json()
        doubled = client.post("/v1/events", json={"events": batch + batch}).json()
    assert first["stored"] == [e["id"] for e in batch]
    assert second["stored"] == [] and second["duplicates"] == [e["id"] for e in batch]
    assert doubled["stored"] == [] and len(doubled["duplicates"]) == 4
    count = rows(tiny_server, "SELECT count(*) FROM events WHERE suggestion_id = ?", (sid,))
    assert count == [(2,)]


def test_unknown_and_malformed_events_are_refused_valid_ones_stored(
    tiny_server: ServerProcess,
) -> None:
    with tiny_server.client() as client:
        sid = new_suggestion(client)
        good = event(sid, "accepted", text="fine")
        unknown = event("no-such-suggestion", "shown")
        bad_kind = event(sid, "exploded", text=PLANTED)
        bad_reason = event(sid, "dismissed", reason=PLANTED)
        missing = {"id": "e-missing", "kind": "rewritten", "text": PLANTED}
        response = client.post(
            "/v1/events", json={"events": [good, unknown, bad_kind, bad_reason, missing]}
        )
    assert response.status_code == 422
    assert PLANTED not in response.text
    body = response.json()
    assert body["stored"] == [good["id"]]
    refused = {r["index"]: r for r in body["refused"]}
    assert sorted(refused) == [1, 2, 3, 4]
    assert refused[1]["error"] == "unknown suggestion_id"
    assert refused[1]["id"] == unknown["id"]
    assert "kind" in refused[2]["error"]
    assert refused[3]["error"].startswith("dismissed.reason:")
    assert refused[4]["id"] == "e-missing" and "suggestion_id" in refused[4]["error"]
    assert rows(tiny_server, "SELECT kind FROM events WHERE suggestion_id = ?", (sid,)) == [
        ("accepted",)
    ]
    assert rows(tiny_server, "SELECT count(*) FROM events WHERE id = ?", (unknown["id"],)) == [(0,)]


@pytest.mark.parametrize(
    "payload",
    [{"events": "nope"}, {"events": [1, 2]}, {"wrong": []}, [], {"events": [None]}],
)
def test_malformed_batches(tiny_server: ServerProcess, payload: Any) -> None:
    response = tiny_server.client().post("/v1/events", json=payload)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
