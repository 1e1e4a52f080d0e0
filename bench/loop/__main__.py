"""``python -m bench.loop``: the many-tastes benchmark of the learning loop.

Each taste gets a fresh service per seed (one developer with that taste); a pair of tastes
also shares one service (two developers, one adapter). Results: a section of
``bench/RESULTS.md``, a PNG per taste in ``bench/loop/plots/``, raw JSON in
``bench/results/loop.json``. The section is rewritten after every service, so a long run
shows what it has so far.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import REPO, RESULTS, shared_home
from bench.loop.developer import Timing
from bench.loop.report import as_json, from_json, section, write_section
from bench.loop.run import LoopSettings, ServiceResult, run_service
from bench.loop.tastes import TASTES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__)
    parser.add_argument("--tastes", default=",".join(TASTES), help="comma-separated tastes")
    parser.add_argument("--seeds", type=int, default=2, help="services per taste")
    parser.add_argument("--rounds", type=int, default=3, help="work-then-retrain rounds")
    parser.add_argument(
        "--pair",
        default="annotations,docstring",
        help="two tastes for two developers on one service ('' for none)",
    )
    parser.add_argument(
        "--adapters",
        default="shared",
        choices=["shared", "per_user"],
        help="the services' PREFLOOP_TRAIN_ADAPTERS: one shared adapter or one per developer",
    )
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--max-tokens", type=int, default=24, help="tokens per suggestion")
    parser.add_argument(
        "--mode", default="single_line", choices=["single_line", "multi_line"], help="suggestions"
    )
    parser.add_argument("--humaneval", type=int, default=16, help="HumanEval problems (0: none)")
    parser.add_argument(
        "--humaneval-tokens", type=int, default=96, help="tokens per HumanEval completion"
    )
    parser.add_argument(
        "--train-contexts",
        type=int,
        help="new training contexts per round (default: a taste's training contexts over "
        "--rounds; a slice wraps around only once they are used up)",
    )
    parser.add_argument("--heldout-contexts", type=int, help="at most this many held out")
    parser.add_argument("--typing", type=float, default=0.03, help="seconds per typed character")
    parser.add_argument("--work-dir", help="homes of the services (default: a temp dir)")
    parser.add_argument(
        "--from-json",
        action="append",
        default=[],
        help="earlier raw results to report along with this run's (repeatable)",
    )
    parser.add_argument("--results-md", default=str(REPO / "bench" / "RESULTS.md"))
    parser.add_argument("--plots", default=str(REPO / "bench" / "loop" / "plots"))
    parser.add_argument("--json", default=str(RESULTS / "loop.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tastes = [t for t in args.tastes.split(",") if t]
    pair = [t for t in args.pair.split(",") if t]
    unknown = [t for t in [*tastes, *pair] if t not in TASTES]
    if unknown or len(pair) not in (0, 2):
        raise SystemExit(f"unknown tastes {unknown} or a pair that is not two tastes: {pair}")
    if args.model:
        model: str | Path = args.model
    else:
        from prefloop.models import prepare_embedded
        from prefloop.settings import Settings

        model = prepare_embedded(Settings(home=shared_home()))
    settings = LoopSettings(
        rounds=args.rounds,
        max_tokens=args.max_tokens,
        mode=args.mode,
        humaneval_problems=args.humaneval,
        humaneval_tokens=args.humaneval_tokens,
        train_contexts=args.train_contexts,
        heldout_contexts=args.heldout_contexts,
        timing=Timing(typing=args.typing),
        adapters=args.adapters,
    )
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="prefloop-bench-loop-"))
    results_md, plots, json_path = Path(args.results_md), Path(args.plots), Path(args.json)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    single: dict[str, list[ServiceResult]] = {}
    paired: list[ServiceResult] = []
    for earlier in args.from_json:
        raw = json.loads(Path(earlier).read_text())
        for key, rows in raw.items():
            if key == "pair":
                paired.extend(from_json(rows))
            else:
                single.setdefault(key, []).extend(from_json(rows))

    def save() -> None:
        rounds = max((len(r.runs) for rs in [*single.values(), paired] for r in rs), default=0)
        setup = (
            f"{Path(str(model)).name}, transformers engine on this machine's CPU (2 cores, "
            f"shared); default training settings; adapters: {args.adapters} "
            f"(PREFLOOP_TRAIN_ADAPTERS); {rounds} round(s); "
            f"{args.max_tokens} tokens per single-line suggestion; HumanEval: the "
            f"{args.humaneval} problems with the shortest prompts, {args.humaneval_tokens} "
            f"tokens. Mean ± standard deviation over seeds where there are several. "
            f"Written {stamp}."
        )
        text = section(
            single,
            paired,
            plots_dir=plots,
            link_base=results_md.parent,
            setup=setup,
            adapters=args.adapters,
            humaneval_problems=args.humaneval,
        )
        write_section(results_md, text)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        raw = {t: as_json(r) for t, r in single.items()} | {"pair": as_json(paired)}
        json_path.write_text(json.dumps(raw, indent=1))

    started = time.monotonic()
    for seed in range(args.seeds):
        for taste in tastes:
            print(f"{taste}, seed {seed}")
            home = work_dir / f"{taste}-{seed}"
            result = run_service(
                model, home, [(f"dev-{taste}", taste)], seed=seed, settings=settings
            )
            single.setdefault(taste, []).append(result)
            save()
        if pair:
            print(f"pair {pair}, seed {seed}")
            home = work_dir / f"pair-{seed}"
            developers = [(f"dev-{t}", t) for t in pair]
            paired.append(run_service(model, home, developers, seed=seed, settings=settings))
            save()
    if args.from_json:
        save()
    print(f"done in {time.monotonic() - started:.0f} s; {results_md}, {plots}, {json_path}")
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
