"""``python -m prefloop.trainer --run-id ID``: prepare and carry out one training run.

Started by :func:`prefloop.training.start_run`, which sends a
:class:`~prefloop.training.RunOrder` as JSON on standard input, hands down the training
lock as ``--lock-fd`` and reads the :class:`~prefloop.training.RunAnswer` from
``--answer-fd``: the process builds the pairs, answers whether the run is queued or
refused, and then trains. Exit status: 0 succeeded (promoted or registered), 3 rejected by
the gate, 1 failed or refused.
"""

from __future__ import annotations

import argparse
import os
import sys

from prefloop.trainer.run import error_summary, prepare_run, run_in_process
from prefloop.training import EXIT_CODES, RunAnswer, RunError, RunOrder, send_answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefloop.trainer")
    parser.add_argument("--run-id", required=True, help="the id of the run to carry out")
    parser.add_argument("--lock-fd", type=int, help="inherited descriptor holding train.lock")
    parser.add_argument(
        "--answer-fd", type=int, help="inherited pipe descriptor for the queued/refused answer"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    order = RunOrder.model_validate_json(sys.stdin.read())

    settings = order.run_settings()
    try:
        prepare_run(
            settings,
            args.run_id,
            order.run_config(),
            reason=order.reason,
            force=order.force,
            pid=os.getpid(),
            requested_by=order.requested_by,
        )
    except Exception as exc:
        refusal = exc.refusal if isinstance(exc, RunError) else None
        error = str(exc) if isinstance(exc, RunError) else error_summary(exc)
        if args.answer_fd is None or refusal is None:
            print(f"error: {error}", file=sys.stderr)
        if args.answer_fd is not None:
            send_answer(args.answer_fd, RunAnswer(queued=False, refusal=refusal, error=error))
        return 1
    if args.answer_fd is not None:
        send_answer(args.answer_fd, RunAnswer(queued=True))
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
