"""``python -m prefloop.trainer --run-id ID``: carry out one queued training run.

Started by :func:`prefloop.trainer.run.start_run`, which sends the settings as JSON on
standard input and hands down the training lock as ``--lock-fd``. Exit status: 0 succeeded
(promoted or registered), 3 rejected by the gate, 1 failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from prefloop.settings import Settings
from prefloop.trainer.run import EXIT_CODES, RunError, run_in_process, settings_from_payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefloop.trainer")
    parser.add_argument("--run-id", required=True, help="the queued run to carry out")
    parser.add_argument("--lock-fd", type=int, help="inherited descriptor holding train.lock")
    args = parser.parse_args(argv)
    settings = Settings()
    if not sys.stdin.isatty():
        payload = sys.stdin.read()
        if payload.strip():
            settings = settings_from_payload(payload)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        status = run_in_process(
            settings, args.run_id, lock_fd=args.lock_fd, progress=sys.stderr.isatty()
        )
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return EXIT_CODES.get(status, 1)


if __name__ == "__main__":
    raise SystemExit(main())
