"""Real LoRA adapters for tests: peft on the tiny model, saved with save_pretrained.

peft initialises ``lora_B`` to zeros (an adapter that changes nothing); these helpers fill
it with seeded random values so an adapter really changes what the model writes.
"""

from __future__ import annotations

from pathlib import Path

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def make_lora_adapter(
    model_dir: Path,
    out: Path,
    *,
    seed: int = 1,
    scale: float = 0.5,
    rank: int = 4,
    targets: tuple[str, ...] = TARGETS,
) -> Path:
    """Save a LoRA adapter for the model in ``model_dir`` to ``out``; returns ``out``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(targets), task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    peft_model.save_pretrained(out)
    return out


def make_wrong_shape_adapter(tokenizer_dir: Path, out: Path, work: Path) -> Path:
    """A well-formed LoRA adapter for a model of another width (refused by the tiny model)."""
    other = work / "other-width-model"
    if not (other / "config.json").is_file():
        from tests.conftest import build_tiny_model

        build_tiny_model(other, tokenizer_dir, hidden_size=32)
    return make_lora_adapter(other, out, seed=9)
