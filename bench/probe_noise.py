"""Probe noise: how many probes flip between two base-model runs that should be equivalent.

The gate's probe tolerances are stated in probes and derived from this figure (see
``probe_tolerance`` in ``trainer/probing.py``). The embedded SmolLM2-135M, no adapter, runs
the probe set greedily, with the gate's own code (``run_probes``) and token budget, in
settings that should not change what it writes:

* ``fp32-2t``: float32 weights, 2 torch threads (the gate's setting on this machine);
* ``fp32-1t``: the same with 1 thread (another summation order in the matrix products);
* ``bf16``: the weights rounded to bfloat16 and back to float32 (a perturbation of the
  weights of the size a rounding makes, far smaller than a training step's).

A probe flips when its syntax-valid or its degenerate verdict differs from ``fp32-2t``'s.
The largest count of each kind over the comparisons is the noise written into the probe
set's ``noise`` block (``--write``).

    python -m bench.probe_noise [--probes probes-v2] [--write]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note, shared_home
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from prefloop.train_config import TrainConfig
from prefloop.trainer.probing import load_probes, run_probes

PROBES_DIR = Path(__file__).resolve().parent.parent / "trainer" / "probes"


def _run(model: Any, tokenizer: Any, probes: list[dict[str, Any]], max_tokens: int) -> list[Any]:
    settings = Settings(home=shared_home())
    return run_probes(model, tokenizer, probes, settings=settings, max_tokens=max_tokens)


def flips(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, int]:
    """Probes whose verdicts differ between two runs of the same probe set."""
    syntax = sum(
        1 for x, y in zip(a, b, strict=True) if x.get("syntax_valid") != y.get("syntax_valid")
    )
    degenerate = sum(1 for x, y in zip(a, b, strict=True) if x["degenerate"] != y["degenerate"])
    text = sum(1 for x, y in zip(a, b, strict=True) if x["completion"] != y["completion"])
    return {"syntax_flips": syntax, "degenerate_flips": degenerate, "text_changes": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", default=TrainConfig().probes)
    parser.add_argument("--max-tokens", type=int, default=TrainConfig().probe_max_tokens)
    parser.add_argument("--write", action="store_true", help="record the noise in the probe set")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = prepare_embedded(Settings(home=shared_home()))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    probe_set = load_probes(args.probes)
    probes = probe_set["probes"]
    runs: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    for name, threads in (("fp32-2t", 2), ("fp32-1t", 1)):
        torch.set_num_threads(threads)
        started = time.perf_counter()
        runs[name] = _run(model, tokenizer, probes, args.max_tokens)
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    torch.set_num_threads(2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).to(torch.float32))
    started = time.perf_counter()
    runs["bf16"] = _run(model, tokenizer, probes, args.max_tokens)
    seconds["bf16"] = time.perf_counter() - started

    reference = runs["fp32-2t"]
    comparisons = {name: flips(reference, runs[name]) for name in ("fp32-1t", "bf16")}
    checked = sum(1 for r in reference if "syntax_valid" in r)
    totals = {
        name: {
            "syntax_valid": sum(1 for r in run if r.get("syntax_valid")),
            "degenerate": sum(1 for r in run if r["degenerate"]),
        }
        for name, run in runs.items()
    }
    noise = {
        "probes": len(probes),
        "syntax_checked": checked,
        "syntax_flips": max(c["syntax_flips"] for c in comparisons.values()),
        "degenerate_flips": max(c["degenerate_flips"] for c in comparisons.values()),
        "how": (
            f"bench/probe_noise.py: base SmolLM2-135M greedy, {args.max_tokens} tokens, fp32 "
            "on 2 threads against 1 thread and against bf16-rounded weights; the larger "
            "count of each kind"
        ),
    }
    result = {
        "machine": cpu_note(),
        "probe_set": args.probes,
        "max_tokens": args.max_tokens,
        "totals": totals,
        "comparisons": comparisons,
        "seconds": seconds,
        "noise": noise,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "probe_noise.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if args.write:
        path = PROBES_DIR / f"{args.probes}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["noise"] = noise
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
