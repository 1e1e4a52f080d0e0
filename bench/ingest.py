"""Event ingest rate through `POST /v1/events` vs raw sqlite3 inserts of the same rows.

Both sides write the same rows into the same schema with the same pragmas (WAL,
synchronous=NORMAL) and commit once per batch; the API side adds HTTP, JSON, validation,
the duplicate and suggestion checks, and redaction.

    python -m bench.ingest [--events 100000] [--batch 1000] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.common import RESULTS, shared_home, start_server
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from prefloop.store import connect, migrate, utcnow
from tests.conftest import build_tiny_model

TEXTS = [
    "return a + b",
    "for item in items:\n    total += item.price",
    "const user = await db.users.find({ id });",
    "",
]


def make_events(sids: list[str], count: int) -> list[dict[str, object]]:
    kinds = ["shown", "accepted", "dismissed", "retained"]
    out: list[dict[str, object]] = []
    for i in range(count):
        kind = kinds[i % 4]
        e: dict[str, object] = {
            "id": uuid.uuid4().hex,
            "suggestion_id": sids[i % len(sids)],
            "kind": kind,
        }
        if kind == "accepted":
            e["text"] = TEXTS[i % 3]
        elif kind == "dismissed":
            e["reason"] = "typed_over"
            e["shown_ms"] = 420.0
        elif kind == "retained":
            e.update(checkpoint="30s", similarity=0.9, text=TEXTS[(i + 1) % 3])
        out.append(e)
    return out


def bench_api(model_dir: Path, events: int, batch: int, clients: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-ingest-"))
    server = start_server(home, model_dir)
    try:
        with server.client() as client:
            sids = [
                client.post("/v1/suggestions", json={"prefix": "x = ", "max_tokens": 2}).json()[
                    "suggestion_id"
                ]
                for _ in range(8)
            ]
        all_events = make_events(sids, events)
        batches = [all_events[i : i + batch] for i in range(0, len(all_events), batch)]
        bodies = [json.dumps({"events": b}).encode() for b in batches]
        # Warm-up on separate events.
        with server.client() as client:
            warm = make_events(sids, batch)
            client.post("/v1/events", json={"events": warm})
        stored = [0]
        lock = threading.Lock()

        def worker(part: list[bytes]) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for body in part:
                    r = client.post(
                        "/v1/events", content=body, headers={"content-type": "application/json"}
                    )
                    r.raise_for_status()
                    with lock:
                        stored[0] += len(r.json()["stored"])

        parts = [bodies[i::clients] for i in range(clients)]
        threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        assert stored[0] == events, (stored[0], events)
        return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}
    finally:
        server.stop()


def bench_raw(events: int, batch: int) -> dict[str, float]:
    db = Path(tempfile.mkdtemp(prefix="prefloop-bench-raw-")) / "raw.db"
    migrate(db)
    conn = connect(db)
    conn.isolation_level = None
    sids = [uuid.uuid4().hex for _ in range(8)]
    conn.execute("BEGIN")
    for sid in sids:
        conn.execute(
            "INSERT INTO suggestions (id, created_at, user, language, model_version) "
            "VALUES (?, ?, 'bench', 'python', 'base')",
            (sid, utcnow()),
        )
    conn.execute("COMMIT")
    all_events = make_events(sids, events)
    rows = [
        (
            e["id"],
            e["suggestion_id"],
            e["kind"],
            0,
            utcnow(),
            None,
            "bench",
            "python",
            "base",
            e.get("reason"),
            None,
            e.get("checkpoint"),
            e.get("similarity"),
            e.get("shown_ms"),
            e.get("text"),
        )
        for e in all_events
    ]
    sql = (
        "INSERT INTO events (id, suggestion_id, kind, candidate_index, created_at, client_ts, "
        "user, language, model_version, reason, accepted_chars, checkpoint, similarity, "
        "shown_ms, text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert count == events
    conn.close()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--model", type=Path, help="model directory (default: a tiny one)")
    args = parser.parse_args()
    model = args.model or tiny_model()
    api = bench_api(model, args.events, args.batch, args.clients)
    raw = bench_raw(args.events, args.batch)
    result = {
        "api": api,
        "raw_sqlite3": raw,
        "ratio_api_to_raw": api["events_per_s"] / raw["events_per_s"],
        "batch": args.batch,
        "clients": args.clients,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def tiny_model() -> Path:
    """A tiny random model with the embedded tokenizer (the engine is idle in this bench)."""
    tokenizer_dir = prepare_embedded(Settings(home=shared_home()))
    return build_tiny_model(Path(tempfile.mkdtemp(prefix="prefloop-bench-tiny-")), tokenizer_dir)


if __name__ == "__main__":
    main()
