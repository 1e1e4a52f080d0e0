"""The learning loop end to end: how far one pass of feedback moves the served model.

Runs :func:`prefloop.trainer.demo.run_demo` (what ``prefloop demo`` runs) ``--repeats``
times on the embedded SmolLM2-135M and reports, per repeat, the share of held-out
signatures the served model annotates before and after, the training time, the time
from promotion to the new version being served, and the failed requests of an editor
asking for suggestions throughout.

    python -m bench.learning_loop [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench.common import cpu_note, shared_home
from prefloop.settings import Settings
from prefloop.trainer.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        result = run_demo(Settings(home=shared_home()), report=lambda _line: None)
        rows.append(
            {
                "before": result.before,
                "after": result.after,
                "train_s": round(result.timings["train"], 1),
                "swap_s": round(result.timings["swap"], 2),
                "total_s": round(result.timings["total"], 1),
                "steps": (result.run.get("metrics") or {}).get("steps"),
                "failed_requests": len(result.failed_requests),
                "requests": sum(result.versions_served.values()),
            }
        )
        print(json.dumps(rows[-1]))
    print(
        f"annotated share before {statistics.mean(r['before'] for r in rows):.0%}, after "
        f"{statistics.mean(r['after'] for r in rows):.0%}; total "
        f"{statistics.median(r['total_s'] for r in rows):.0f} s (median); {cpu_note()}"
    )


if __name__ == "__main__":
    main()
