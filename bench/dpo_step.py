"""DPO step time: prefloop's trainer against a plain TRL script, same data, same model.

Both train a LoRA adapter (r=8 on q/v) with DPO on the same synthetic pairs, batch 8, on the
embedded SmolLM2-135M (``--tiny``: the tiny random model, for a quick look). The plain
script is written the way TRL's documentation shows it (``DPOConfig`` + ``DPOTrainer`` with
a ``peft_config``); prefloop's side is :func:`prefloop.trainer.dpo.train_dpo`. Each side
runs ``--rounds`` times, alternating, and the figure is the median step time after the
first step (which pays for warm-up). Goal: prefloop ≤ 1.1× the plain script.

    python -m bench.dpo_step [--steps 6] [--rounds 2] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note, shared_home
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from prefloop.train_config import load_config
from prefloop.trainer.dpo import cpu_threads, train_dpo


def make_pairs(n: int) -> list[dict[str, Any]]:
    pairs = []
    for i in range(n):
        prompt = (
            f"# path: util_{i}.py\n# language: python\n"
            f'def scale_{i}(values, factor):\n    """Multiply every value."""\n    return'
        )
        pairs.append(
            {
                "prompt": prompt,
                "chosen": " [v * factor for v in values]\n",
                "rejected": " values  # TODO scale\n",
            }
        )
    return pairs


def plain_trl(model_dir: str, pairs: list[dict[str, Any]], steps: int, work: Path) -> list[float]:
    """The baseline: TRL used directly, timing each optimizer step."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(cpu_threads(0))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    times: list[float] = []

    class Timer(TrainerCallback):
        started = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            times.append(time.perf_counter() - self.started)

    args = DPOConfig(
        output_dir=str(work),
        per_device_train_batch_size=8,
        max_steps=steps,
        learning_rate=1e-4,
        beta=0.1,
        max_length=512,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.05,
            target_modules=["q_proj", "v_proj"],
            task_type="CAUSAL_LM",
        ),
        callbacks=[Timer()],
    )
    trainer.train()
    return times


def prefloop_trl(
    model_dir: str, pairs: list[dict[str, Any]], steps: int, work: Path
) -> list[float]:
    times: list[float] = []
    # The same work as the plain TRL run beside it: its rate, DPO alone.
    overrides = {
        "max_steps": steps,
        "batch_size": 8,
        "device": "cpu",
        "learning_rate": 1e-4,
        "sft_weight": 0.0,
    }
    config = load_config(env={}, overrides=overrides)
    train_dpo(
        model_dir,
        pairs,
        work / "adapter",
        config,
        on_step=lambda info: times.append(float(info["step_seconds"] or 0.0)),
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="the tiny random model instead")
    args = parser.parse_args()

    home = shared_home()
    embedded = prepare_embedded(Settings(home=home))
    tmp = Path(tempfile.mkdtemp(prefix="prefloop-bench-dpo-"))
    if args.tiny:
        from tests.conftest import build_tiny_model

        model_dir = str(build_tiny_model(tmp / "tiny", embedded))
    else:
        model_dir = str(embedded)
    pairs = make_pairs(8 * args.steps)
    per_side: dict[str, list[float]] = {"plain TRL": [], "prefloop": []}
    for round_no in range(args.rounds):
        for name, fn in (("plain TRL", plain_trl), ("prefloop", prefloop_trl)):
            times = fn(model_dir, pairs, args.steps, tmp / f"{name.replace(' ', '-')}-{round_no}")
            steady = times[1:] or times
            per_side[name].append(statistics.median(steady))
            print(f"round {round_no + 1} {name}: {statistics.median(steady):.2f} s/step")
    plain = statistics.median(per_side["plain TRL"])
    ours = statistics.median(per_side["prefloop"])
    result = {
        "model": "tiny random" if args.tiny else "SmolLM2-135M (embedded)",
        "batch_size": 8,
        "steps": args.steps,
        "rounds": args.rounds,
        "plain_trl_s_per_step": round(plain, 3),
        "prefloop_s_per_step": round(ours, 3),
        "ratio": round(ours / plain, 3),
        "machine": cpu_note(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dpo_step.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"| plain TRL | {plain:.2f} s |\n| prefloop | {ours:.2f} s |\n"
        f"| ratio | **{ours / plain:.2f}×** |"
    )


if __name__ == "__main__":
    main()
