"""DPO training of a LoRA adapter with TRL, on the CPU or a GPU (through accelerate).

Heavy libraries (torch, transformers, peft, trl, datasets) are imported inside the
functions, so importing this module is cheap. A pair's ``prompt`` is the exact prompt text
the engine saw; ``chosen`` and ``rejected`` are completions of it.

A completion is trained as it is, without the end-of-text token TRL appends to every
completion: a suggestion is a piece of a file, not its end. Trained with end-of-text after
each one-line suggestion, an adapter learns that files end after a line, and stops writing
function bodies (after one round of a taste's pairs, the HumanEval problems it solved fell
from 6 of 16 to 0). The gate's held-out margins score completions without it too.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefloop.train_config import TrainConfig, TrainPlan

StepReport = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a finished training produced: the adapter directory and its measurements."""

    adapter_dir: Path
    steps: int
    seconds: float
    step_seconds: float
    losses: list[float] = field(default_factory=list)
    final_loss: float | None = None
    reference: str = "base"
    device: str = "cpu"
    learning_rate: float = 0.0
    epochs: float = 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "step_seconds": round(self.step_seconds, 4),
            "losses": [round(v, 6) for v in self.losses],
            "final_loss": self.final_loss,
            "device": self.device,
            "learning_rate": self.learning_rate,
            "epochs": round(self.epochs, 3),
        }


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda was asked for but no GPU is visible")
    return setting


def cpu_threads(setting: int) -> int:
    return setting or max(1, (os.cpu_count() or 2) - 1)


def without_end_of_text(example: dict[str, Any], eos_token_id: int) -> dict[str, Any]:
    """A tokenized DPO example's ``chosen_ids`` and ``rejected_ids`` without the end-of-text
    token the trainer appended (a completion that is nothing else keeps it)."""
    out = {}
    for key in ("chosen_ids", "rejected_ids"):
        ids = list(example[key])
        out[key] = ids[:-1] if len(ids) > 1 and ids[-1] == eos_token_id else ids
    return out


def _trainer_class() -> Any:
    """TRL's ``DPOTrainer``, preparing its datasets without end-of-text after completions."""
    from trl import DPOTrainer

    class Trainer(DPOTrainer):
        def _prepare_dataset(
            self, dataset: Any, processing_class: Any, args: Any, dataset_name: str
        ) -> Any:
            prepared = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            return prepared.map(
                without_end_of_text, fn_kwargs={"eos_token_id": self._tokenizer.eos_token_id}
            )

    return Trainer


def dpo_arguments(config: TrainConfig, output_dir: Path, device: str, plan: TrainPlan) -> Any:
    """The TRL ``DPOConfig`` of a run on the data ``plan`` was made for (also used by the
    benchmark). With ``sft_weight`` the loss is DPO's plus that weight times the negative
    log-likelihood of the chosen text."""
    import torch
    from trl import DPOConfig

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    losses = ["sigmoid", "sft"] if config.sft_weight > 0 else ["sigmoid"]
    weights = [1.0, config.sft_weight] if config.sft_weight > 0 else [1.0]
    return DPOConfig(
        output_dir=str(output_dir),
        learning_rate=plan.learning_rate,
        beta=config.beta,
        loss_type=losses,
        loss_weights=weights,
        max_steps=plan.steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        max_length=config.max_length,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )


def train_dpo(
    model_path: str,
    pairs: Sequence[dict[str, Any]],
    out_dir: Path,
    config: TrainConfig,
    *,
    parent_adapter: Path | None = None,
    on_step: StepReport | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``pairs`` and save it (adapter files only) into ``out_dir``.

    With ``parent_adapter`` and ``config.reference == "previous"`` the adapter continues
    from the parent and a frozen copy of the parent is the DPO reference; otherwise a fresh
    adapter is trained against the base model (adapter disabled).
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    if not pairs:
        raise ValueError("no training pairs")
    device = resolve_device(config.device)
    if device == "cpu":
        torch.set_num_threads(cpu_threads(config.threads))
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    peft_config = None
    reference = "base"
    if parent_adapter is not None and config.reference == "previous":
        model = PeftModel.from_pretrained(model, str(parent_adapter), is_trainable=True)
        reference = "previous"
    else:
        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_target_modules),
            task_type="CAUSAL_LM",
        )
    dataset = Dataset.from_list(
        [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    )
    work = out_dir.parent / f".{out_dir.name}.work"
    losses: list[float] = []
    step_times: list[float] = []

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.perf_counter()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step_times.append(time.perf_counter() - self.started)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if not logs or "loss" not in logs:
                return
            losses.append(float(logs["loss"]))
            if on_step is not None:
                on_step(
                    {
                        "step": int(state.global_step),
                        "total": int(state.max_steps),
                        "loss": float(logs["loss"]),
                        "accuracy": logs.get("rewards/accuracies"),
                        "margin": logs.get("rewards/margins"),
                        "step_seconds": step_times[-1] if step_times else None,
                    }
                )

    plan = config.plan(len(pairs))
    trainer = _trainer_class()(
        model=model,
        args=dpo_arguments(config, work, device, plan),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_Progress()],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    trained: Any = trainer.model
    trained.save_pretrained(str(out_dir), selected_adapters=["default"])
    shutil.rmtree(work, ignore_errors=True)
    steps = int(output.global_step)
    # The first step pays for warm-up allocations; the median is the steady-state figure.
    ordered = sorted(step_times)
    median = ordered[len(ordered) // 2] if ordered else 0.0
    return TrainResult(
        adapter_dir=out_dir,
        steps=steps,
        seconds=seconds,
        step_seconds=median,
        losses=losses,
        final_loss=losses[-1] if losses else None,
        reference=reference,
        device=device,
        learning_rate=plan.learning_rate,
        epochs=plan.epochs,
    )
