"""A real DPO run on the tiny random model."""

from __future__ import annotations

from pathlib import Path

from prefloop.train_config import load_config
from prefloop.trainer.dpo import train_dpo
from tests.trainer.training_data import FAST, pair


def test_dpo_trains_a_lora_adapter_that_peft_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    pairs = [pair(i, "train") for i in range(8)]
    steps: list[dict[str, object]] = []
    out = tmp_path / "adapter"
    result = train_dpo(
        str(tiny_model_dir), pairs, out, load_config(env={}, overrides=FAST), on_step=steps.append
    )
    assert result.steps == FAST["max_steps"]
    assert [s["step"] for s in steps] == list(range(1, result.steps + 1))
    assert len(result.losses) == result.steps and result.step_seconds > 0
    assert result.reference == "base"
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out.parent / f".{out.name}.work").exists()

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    model = PeftModel.from_pretrained(base, str(out))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # LoRA moved from zero
    for name, value in model.get_base_model().state_dict().items():
        plain = name.replace(".base_layer", "")
        if "lora_" not in name and plain in reference:
            assert torch.equal(value, reference[plain]), name  # base weights untouched


def test_dpo_continues_from_a_previous_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = load_config(env={}, overrides={**FAST, "max_steps": 2, "reference": "previous"})
    pairs = [pair(i, "train") for i in range(4)]
    first = train_dpo(str(tiny_model_dir), pairs, tmp_path / "a", config)
    second = train_dpo(
        str(tiny_model_dir), pairs, tmp_path / "b", config, parent_adapter=first.adapter_dir
    )
    assert second.reference == "previous"
    assert (tmp_path / "b" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "b" / "ref").exists()  # only the trained adapter is saved


def test_completions_are_trained_without_end_of_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    """TRL appends end-of-text to every completion; a suggestion is not the end of a file,
    so the trainer's prepared data holds each completion's own tokens and nothing after."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefloop.trainer.dpo import _trainer_class, dpo_arguments, without_end_of_text

    assert without_end_of_text({"chosen_ids": [5, 6, 0], "rejected_ids": [7, 0]}, 0) == {
        "chosen_ids": [5, 6],
        "rejected_ids": [7],
    }
    # Only the last token, only when it is end-of-text, and never the whole completion.
    assert without_end_of_text({"chosen_ids": [0, 5], "rejected_ids": [0]}, 0) == {
        "chosen_ids": [0, 5],
        "rejected_ids": [0],
    }
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = load_config(env={}, overrides=FAST)
    pairs = [pair(i, "train") for i in range(2)]
    trainer = _trainer_class()(
        model=model,
        args=dpo_arguments(config, tmp_path / "work", "cpu", config.plan(len(pairs))),
        train_dataset=Dataset.from_list(
            [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
        ),
        processing_class=tokenizer,
    )
    for row, p in zip(trainer.train_dataset, pairs, strict=True):
        for key in ("chosen", "rejected"):
            ids = row[f"{key}_ids"]
            assert ids[-1] != tokenizer.eos_token_id
            text = tokenizer.decode(row["prompt_ids"] + ids)
            assert text == p["prompt"] + p[key]
