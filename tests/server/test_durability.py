"""kill -9 in the middle of ingest loses nothing that was acknowledged."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import uuid
from pathlib import Path

import httpx

from tests.conftest import start_server
from tests.waiting import wait_until


def test_kill_9_mid_ingest_keeps_every_acknowledged_event(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    server = start_server(tmp_path / "home", tiny_model_dir)
    try:
        with server.client() as client:
            sids = []
            for _ in range(3):
                response = client.post("/v1/suggestions", json={"prefix": "x = ", "max_tokens": 2})
                assert response.status_code == 200
                sids.append(response.json()["suggestion_id"])
        acknowledged: list[str] = []
        stop = threading.Event()

        def post_batches() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    batch = [
                        {
                            "id": uuid.uuid4().hex,
                            "suggestion_id": sids[i % 3],
                            "kind": "retained",
                            "checkpoint": "30s",
                            "similarity": 0.5,
                            "text": "y = x * 2\n" * 20,
                        }
                        for i in range(200)
                    ]
                    try:
                        response = client.post("/v1/events", json={"events": batch})
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        acknowledged.extend(response.json()["stored"])

        posters = [threading.Thread(target=post_batches) for _ in range(2)]
        for t in posters:
            t.start()
        try:
            wait_until(
                lambda: len(acknowledged),
                lambda count: count >= 4000,
                what="4000 acknowledged events before the kill",
                timeout=30,
                interval=0.01,
            )
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(10)
        finally:
            stop.set()
            for t in posters:
                t.join(15)
        assert len(acknowledged) >= 4000
    finally:
        server.stop()
    with sqlite3.connect(server.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
        assert conn.execute("SELECT count(*) FROM suggestions").fetchone() == (3,)
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"
