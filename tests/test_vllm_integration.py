"""`prefloop serve --engine vllm` in front of a real CPU vLLM server."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ServerProcess, start_server
from tests.vllm_fixture import VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def served_through_vllm(
    tmp_path_factory: pytest.TempPathFactory, vllm_server: VllmServer
) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("vllm-home"),
        vllm_server.model_dir,
        extra_env={
            "PREFLOOP_ENGINE": "vllm",
            "PREFLOOP_VLLM_URL": vllm_server.url,
            "PREFLOOP_VLLM_MODEL": vllm_server.served_name,
        },
    )
    yield server
    server.stop()


def test_suggestion_comes_back_through_prefloop(served_through_vllm: ServerProcess) -> None:
    with served_through_vllm.client(timeout=120) as client:
        health = client.get("/healthz").json()
        assert health["engine"]["engine"] == "vllm" and health["engine"]["ok"] is True
        response = client.post(
            "/v1/suggestions",
            json={"prefix": "def fibonacci(n):", "language": "python", "n": 2},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        text = body["candidates"][0]["text"]
        assert text.strip()
        ast.parse("def fibonacci(n):" + text)
        assert body["model_version"] == "base"
        event = {"id": uuid.uuid4().hex, "suggestion_id": body["suggestion_id"], "kind": "shown"}
        stored = client.post("/v1/events", json={"events": [event]}).json()
        assert stored["stored"] == [event["id"]]


def test_vllm_down_gives_a_clear_503(
    tmp_path_factory: pytest.TempPathFactory, vllm_server: VllmServer
) -> None:
    server = start_server(
        tmp_path_factory.mktemp("vllm-down-home"),
        vllm_server.model_dir,
        extra_env={"PREFLOOP_ENGINE": "vllm", "PREFLOOP_VLLM_URL": "http://127.0.0.1:9"},
        ready_status=503,
    )
    try:
        with server.client() as client:
            assert client.get("/healthz").json()["engine"]["ok"] is False
            response = client.post("/v1/suggestions", json={"prefix": "x = "})
            assert response.status_code == 503
            assert response.json()["error"] == "the model engine is unavailable"
    finally:
        server.stop()
