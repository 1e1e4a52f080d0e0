"""The training configuration: every knob of a DPO run, in one documented place.

Defaults suit small preference sets (tens to a few thousand pairs) on a CPU: a fresh LoRA
adapter of rank 8 on the attention query/value projections, trained on all the train pairs
against the base model, with a recipe that adapts to the amount of data (see
:meth:`TrainConfig.plan`): a learning rate that shrinks as the pairs grow, a floor on the
optimizer steps so a few dozen pairs still move the adapter, and a supervised loss on the
chosen text beside DPO's (``sft_weight``; see the README's "Which recipe").
Each field can be set in the environment as ``PREFLOOP_TRAIN_<FIELD>`` (for example
``PREFLOOP_TRAIN_BETA=0.2``) and overridden by a TOML or JSON file given to
``prefloop retrain --config FILE``; the file wins over the environment. Unknown keys and
out-of-range values are errors that name the key.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "PREFLOOP_TRAIN_"


@dataclass(frozen=True)
class TrainPlan:
    """What a configuration means for one data size: the rate, the steps, the passes."""

    learning_rate: float
    steps: int
    epochs: float


class ConfigError(ValueError):
    """A training configuration that cannot be used; the message names the bad key."""


class TrainConfig(BaseSettings):
    """Hyper-parameters and data limits of one training run."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    learning_rate: float | None = Field(
        default=None,
        gt=0,
        le=1e-2,
        description=(
            "Peak learning rate of the LoRA weights (unset: `auto_learning_rate` up to "
            "`auto_rate_pairs` train pairs, then scaled by the square root of "
            "`auto_rate_pairs`/pairs, never below a tenth of it)."
        ),
    )
    auto_learning_rate: float = Field(
        default=1e-3, gt=0, le=1e-2, description="The learning rate chosen for small data."
    )
    auto_rate_pairs: int = Field(
        default=64, ge=1, description="Train pairs up to which `auto_learning_rate` is used."
    )
    beta: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="DPO temperature: how far the policy may move from the reference.",
    )
    epochs: float = Field(default=2.0, gt=0, le=100, description="Passes over the training pairs.")
    max_steps: int = Field(
        default=0,
        ge=0,
        description="Exactly this many optimizer steps (0: the epochs, at least `min_steps`).",
    )
    min_steps: int = Field(
        default=24,
        ge=0,
        description=(
            "Run at least this many optimizer steps: with few pairs, more passes over them "
            "(ignored when `max_steps` is set)."
        ),
    )
    sft_weight: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description=(
            "Weight of a supervised loss on the chosen text added to the DPO loss (0: DPO "
            "alone); it makes the model produce what developers kept, not only rank it higher."
        ),
    )
    batch_size: int = Field(default=8, ge=1, le=1024, description="Pairs per optimizer step.")
    gradient_accumulation: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches accumulated per optimizer step."
    )
    max_length: int = Field(
        default=512,
        ge=16,
        le=32768,
        description="Longest prompt + completion in tokens; longer pairs are truncated.",
    )
    warmup_ratio: float = Field(
        default=0.1, ge=0, lt=1, description="Share of the steps spent warming up the rate."
    )
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="AdamW weight decay.")
    lora_r: int = Field(default=8, ge=1, le=256, description="LoRA rank.")
    lora_alpha: int = Field(default=16, ge=1, le=1024, description="LoRA scaling numerator.")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_target_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("q_proj", "v_proj"), min_length=1, description="Module names LoRA adapts."
    )
    reference: Literal["previous", "base"] = Field(
        default="base",
        description=(
            "`previous`: continue from the served adapter and keep a frozen copy of it as the "
            "DPO reference; `base`: a fresh adapter against the base model (adapter "
            "disabled). With no adapter served yet both mean the base model."
        ),
    )
    max_train_pairs: int = Field(
        default=2000, ge=1, description="Train on at most this many of the newest train pairs."
    )
    max_heldout_pairs: int = Field(
        default=200, ge=1, description="Judge the gate on at most this many held-out pairs."
    )
    seed: int = Field(default=0, ge=0, description="Seed of data order and adapter init.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="`auto` trains on a GPU when one is visible, else the CPU."
    )
    threads: int = Field(
        default=0, ge=0, description="CPU threads for training (0: all cores but one)."
    )
    probe_max_tokens: int = Field(
        default=32, ge=1, le=512, description="Tokens generated per probe by the gate."
    )
    probes: str = Field(
        default="probes-v3",
        description="Probe set of the gate: a file name in trainer/probes or a JSON path.",
    )

    @field_validator("lora_target_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.lora_alpha < self.lora_r // 4:
            raise ValueError("lora_alpha below lora_r / 4 leaves the adapter with no effect")
        return self

    def plan(self, pairs: int) -> TrainPlan:
        """The learning rate and optimizer steps of a run on ``pairs`` train pairs."""
        per_step = self.batch_size * self.gradient_accumulation
        epoch_steps = max(1, math.ceil(pairs / per_step))
        steps = self.max_steps or max(math.ceil(self.epochs * epoch_steps), self.min_steps)
        rate = self.learning_rate
        if rate is None:
            scale = math.sqrt(self.auto_rate_pairs / max(pairs, 1))
            rate = self.auto_learning_rate * min(1.0, max(0.1, scale))
        return TrainPlan(learning_rate=rate, steps=steps, epochs=steps / epoch_steps)

    def as_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values (recorded with the run)."""
        data = self.model_dump()
        data["lora_target_modules"] = list(self.lora_target_modules)
        return data


FIELDS = tuple(TrainConfig.model_fields)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "config"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys of a TOML (``.toml``) or JSON file; a ``[train]`` table is accepted in TOML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data: Any = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table/object of settings")
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return dict(data)


def load_config(
    file: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> TrainConfig:
    """Build the configuration: defaults, then ``PREFLOOP_TRAIN_*``, then the file, then
    ``overrides``. ``env`` replaces the process environment (tests)."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(read_config_file(file))
    if overrides:
        values.update(overrides)
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    try:
        if env is None:
            return TrainConfig(**values)
        # Only what ``env`` names, read the same way as the process environment.
        from_env = {
            name: env[ENV_PREFIX + name.upper()]
            for name in FIELDS
            if ENV_PREFIX + name.upper() in env
        }
        return TrainConfig.model_validate({**from_env, **values})
    except ValidationError as exc:
        raise ConfigError(f"invalid training configuration: {_describe(exc)}") from exc
