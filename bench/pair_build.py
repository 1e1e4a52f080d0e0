"""Preference-pair build time on a store with a million feedback events.

Synthesises suggestions and events the way `prefloop lsp` reports them (one shown event
per seen suggestion, then an accept with four retention snapshots, a dismissal with or
without a rewrite, or a partial accept), plus the judge's check and LLM critiques for a
share of the suggestions, straight into a migrated store. Then times a full build, a
build with nothing new, and an incremental build after 10,000 more events.

    python -m bench.pair_build [--events 1000000] [--new-events 10000] [--keep DB]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note
from prefloop.settings import Settings
from prefloop.store import connect, migrate
from prefloop.trainer.pairs import BuildReport, build_pairs

FUNCTIONS = [
    "def load_{n}(path):\n    with open(path) as handle:\n        return json.load(handle)\n",
    "def total_{n}(items):\n    result = 0\n    for item in items:\n        result += item.price\n"
    "    return result\n",
    "class Cache{n}:\n    def __init__(self, size):\n        self.size = size\n"
    "        self.data = {{}}\n\n"
    "    def get(self, key, default=None):\n        return self.data.get(key, default)\n",
    "def parse_{n}(line):\n    name, _, value = line.partition('=')\n"
    "    return name.strip(), value.strip()\n",
    "async def fetch_{n}(client, url):\n    response = await client.get(url)\n"
    "    response.raise_for_status()\n    return response.json()\n",
    "def chunks_{n}(seq, size):\n    for start in range(0, len(seq), size):\n"
    "        yield seq[start : start + size]\n",
]
# (code before the cursor, what the model suggests, what users write instead)
SCENARIOS = [
    (
        "def summarize_{n}(records, key):\n    counts = {{}}\n    for record in records:\n        ",
        [
            "counts[record[key]] = counts.get(record[key], 0) + 1",
            "counts.setdefault(record[key], 0)",
            "print(record)",
        ],
        [
            "counts[record[key]] = counts.get(record[key], 0) + 2",
            "value = record.get(key)\n        counts[value] = counts.get(value, 0) + 1",
            "counts[record[key]] += 1",
            "counts[record.get(key)] = helper_{n}(record)",  # an undefined name
            "counts[record[key] = (",  # unfinished: breaks parsing
            "c",  # trivial
        ],
    ),
    (
        "def normalize_{n}(values):\n    total = sum(values)\n    ",
        ["return [value / total for value in values]", "return values", "total = 0"],
        [
            "return [v / total for v in values] if total else values",
            "return [round(value / total, 3) for value in values]",
            "if not total:\n        return values\n    return [v / total for v in values]",
            "return scale_{n}(values, total)",  # an undefined name
            "return [value / total for",  # unfinished
        ],
    ),
    (
        "def find_{n}(items, target):\n    for index, item in enumerate(items):\n        ",
        ["if item == target:\n            return index", "print(item)", "pass"],
        [
            "if item == target:\n            return index\n    return -1",
            "if item is target:\n            return index",
            "if matches_{n}(item, target):\n            return index",  # an undefined name
            "if item == target",  # unfinished
            "ok",
        ],
    ),
]
REASONS = ["typed_over", "escaped", "moved_away", "replaced_by_newer"]
CHECKPOINTS = ["30s", "2m", "5m", "10m"]

_SUGGESTION_SQL = (
    "INSERT INTO suggestions (id, created_at, user, session_id, client_request_id, language, "
    "path, model_version, engine, mode, n, max_tokens, cursor_line, cursor_character, prefix, "
    "suffix, prompt, template, prefix_truncated, suffix_truncated, candidates, timings) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_EVENT_SQL = (
    "INSERT INTO events (id, suggestion_id, kind, candidate_index, created_at, client_ts, user, "
    "language, model_version, reason, accepted_chars, checkpoint, similarity, shown_ms, text) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_CRITIQUE_SQL = (
    "INSERT INTO critiques (id, suggestion_id, candidate_index, created_at, user, language, "
    "model_version, judge, judge_model, rubric_version, status, scores, attempts, duration_ms) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class Synth:
    """Deterministic feedback for ``count`` suggestions at a time."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.serial = 0
        self.clock = 1_700_000_000.0
        self.rewrites: dict[str, list[str]] = {}

    def _ts(self) -> str:
        self.clock += 0.05
        t = time.gmtime(self.clock)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(self.clock % 1 * 1e6):06d}Z"

    def suggestion(self) -> tuple[tuple[Any, ...], list[str]]:
        rng = self.rng
        self.serial += 1
        n = self.serial
        body = "".join(rng.choice(FUNCTIONS).format(n=n * 10 + i) + "\n\n" for i in range(12))
        opening, pool, rewrites = rng.choice(SCENARIOS)
        prefix = "import json\nimport os\n\n\n" + body + opening.format(n=n)
        suffix = "\n\n\ndef main():\n    pass\n"
        prompt = f"# File: src/mod_{n % 500}.py\n# Language: python\n\n" + prefix[-1800:]
        count = 3 if rng.random() < 0.2 else 1
        sid = uuid.UUID(int=rng.getrandbits(128)).hex
        texts = rng.sample(pool, count)
        self.rewrites[sid] = rewrites
        candidates = json.dumps([{"index": i, "text": t} for i, t in enumerate(texts)])
        row = (
            sid,
            self._ts(),
            f"user{n % 7}",
            None,
            None,
            "python",
            f"src/mod_{n % 500}.py",
            "base",
            "transformers",
            "multi_line",
            count,
            48,
            prefix.count("\n"),
            8,
            prefix,
            suffix,
            prompt,
            "prefix-only",
            1,
            0,
            candidates,
            "{}",
        )
        return row, texts

    def _event(self, sid: str, kind: str, index: int = 0, **f: Any) -> tuple[Any, ...]:
        return (
            uuid.UUID(int=self.rng.getrandbits(128)).hex,
            sid,
            kind,
            index,
            self._ts(),
            self.clock,
            "user",
            "python",
            "base",
            f.get("reason"),
            f.get("accepted_chars"),
            f.get("checkpoint"),
            f.get("similarity"),
            f.get("shown_ms"),
            f.get("text"),
        )

    def events(self, sid: str, texts: list[str]) -> list[tuple[Any, ...]]:
        """The events one suggestion gets (none when it was superseded unseen)."""
        rng = self.rng
        if rng.random() < 0.2:
            return []
        out = [self._event(sid, "shown")]
        r = rng.random()
        text = texts[0]
        if r < 0.27:
            out.append(self._event(sid, "accepted", text=text))
            edited = rng.random() < 0.2
            kept = text
            for checkpoint in CHECKPOINTS:
                if edited and checkpoint in ("2m", "10m"):
                    kept = rng.choice(self.rewrites[sid]).format(n=self.serial)
                similarity = 1.0 if kept == text else round(rng.uniform(0.2, 0.9), 2)
                out.append(
                    self._event(
                        sid, "retained", checkpoint=checkpoint, similarity=similarity, text=kept
                    )
                )
        elif r < 0.85:
            reason = rng.choice(REASONS)
            out.append(self._event(sid, "dismissed", reason=reason, shown_ms=800.0))
            if reason in ("typed_over", "escaped") and rng.random() < 0.5:
                written = rng.choice(self.rewrites[sid]).format(n=self.serial)
                out.append(self._event(sid, "rewritten", text=written))
        else:
            out.append(self._event(sid, "partially_accepted", accepted_chars=4, text=text[:4]))
            out.append(self._event(sid, "dismissed", reason="typed_over", shown_ms=1500.0))
        return out

    def critiques(self, sid: str, texts: list[str]) -> list[tuple[Any, ...]]:
        rng = self.rng
        rows = []
        if rng.random() < 0.3:
            for i, _ in enumerate(texts):
                for check in ("syntax", "names", "security"):
                    score = 5 if rng.random() < 0.9 else 1
                    rows.append(self._critique(sid, i, f"check:{check}", {check: score}))
        if len(texts) > 1 and rng.random() < 0.5:
            for i, _ in enumerate(texts):
                score = rng.randint(1, 5)
                rows.append(self._critique(sid, i, "engine", {"fit": score, "correctness": score}))
        return rows

    def _critique(
        self, sid: str, index: int, judge: str, scores: dict[str, int]
    ) -> tuple[Any, ...]:
        version = "checks-v1" if judge.startswith("check:") else "inline-v1"
        return (
            f"{sid}:{index}:{judge}:{version}",
            sid,
            index,
            self._ts(),
            "user",
            "python",
            "base",
            judge,
            "m",
            version,
            "ok",
            json.dumps(scores),
            1,
            1.0,
        )


def self_rewrite(synth: Synth, sid: str) -> str:
    return synth.rewrites[sid][0]


def fill(db: Path, synth: Synth, events: int, known: list[tuple[str, list[str]]]) -> dict[str, int]:
    """Add ``events`` events: new suggestions with their feedback, and (one in ten) late
    retention snapshots and critiques for earlier suggestions."""
    made = {"suggestions": 0, "events": 0, "critiques": 0}
    with closing(connect(db)) as conn:
        conn.execute("BEGIN")
        s_rows: list[tuple[Any, ...]] = []
        e_rows: list[tuple[Any, ...]] = []
        c_rows: list[tuple[Any, ...]] = []
        while made["events"] < events:
            if known and synth.rng.random() < 0.1:
                sid, texts = synth.rng.choice(known)
                new = [
                    synth._event(
                        sid,
                        "retained",
                        checkpoint="close",
                        similarity=0.5,
                        text=self_rewrite(synth, sid),
                    )
                ]
            else:
                row, texts = synth.suggestion()
                sid = row[0]
                s_rows.append(row)
                known.append((sid, texts))
                made["suggestions"] += 1
                new = synth.events(sid, texts)
                c_rows.extend(synth.critiques(sid, texts))
            new = new[: events - made["events"]]
            e_rows.extend(new)
            made["events"] += len(new)
            if len(e_rows) >= 50_000:
                conn.executemany(_SUGGESTION_SQL, s_rows)
                conn.executemany(_EVENT_SQL, e_rows)
                conn.executemany(_CRITIQUE_SQL, c_rows)
                made["critiques"] += len(c_rows)
                s_rows, e_rows, c_rows = [], [], []
        conn.executemany(_SUGGESTION_SQL, s_rows)
        conn.executemany(_EVENT_SQL, e_rows)
        conn.executemany(_CRITIQUE_SQL, c_rows)
        made["critiques"] += len(c_rows)
        conn.execute("COMMIT")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new-events", type=int, default=10_000)
    parser.add_argument("--keep", help="write the store here instead of a temporary directory")
    args = parser.parse_args()

    home = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prefloop-bench-pairs-"))
    home.mkdir(parents=True, exist_ok=True)
    db = home / "prefloop.db"
    migrate(db)
    settings = Settings(home=home)
    synth = Synth()
    known: list[tuple[str, list[str]]] = []
    started = time.perf_counter()
    made = fill(db, synth, args.events, known)
    fill_s = time.perf_counter() - started
    print(f"synthesised {made} in {fill_s:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")

    cpu: dict[str, float] = {}

    def timed(name: str, full: bool = False) -> BuildReport:
        before = os.times()
        report = build_pairs(db, settings, full=full)
        after = os.times()
        # this process and the check workers it waited for
        cpu[name] = sum(after[:4]) - sum(before[:4])
        print(f"{name}: {report.seconds:.2f} s wall, {cpu[name]:.2f} s CPU, {report.as_dict()}")
        return report

    full = timed("full")
    idle = timed("nothing_new")
    more = fill(db, synth, args.new_events, known)
    print(f"added {more}")
    incremental = timed("incremental")
    rebuild = timed("full_rebuild_cached_checks", full=True)
    with closing(sqlite3.connect(db)) as conn:
        by_source = dict(conn.execute("SELECT source, COUNT(*) FROM pairs GROUP BY source"))
    result = {
        "machine": cpu_note(),
        "events": args.events,
        "synthesised": made,
        "full": full.as_dict(),
        "nothing_new_s": idle.seconds,
        "incremental": {"added": more, **incremental.as_dict()},
        "full_rebuild_cached_checks_s": rebuild.seconds,
        "cpu_s": cpu,
        "pairs_by_source": by_source,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pair_build.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
