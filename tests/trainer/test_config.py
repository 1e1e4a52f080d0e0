"""The training configuration: defaults, environment, files, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefloop.train_config import FIELDS, ConfigError, TrainConfig, load_config


def test_defaults_suit_small_data() -> None:
    config = load_config(env={})
    assert config.learning_rate is None
    assert config.beta == 0.1
    assert config.epochs == 2
    assert config.max_length == 512
    assert config.lora_r == 8
    assert config.lora_target_modules == ("q_proj", "v_proj")
    assert config.reference == "base"
    assert config.sft_weight == 1


@pytest.mark.parametrize(
    ("pairs", "steps", "rate"),
    [
        # Few pairs: the step floor, the small-data rate.
        (1, 24, 1e-3),
        (11, 24, 1e-3),
        (64, 24, 1e-3),
        # More pairs: two epochs of batches of 8; the rate falls with the square root.
        (256, 64, 5e-4),
        (1600, 400, 2e-4),
        # Never below a tenth of the small-data rate.
        (100_000, 25_000, 1e-4),
    ],
)
def test_the_plan_adapts_to_the_data(pairs: int, steps: int, rate: float) -> None:
    plan = load_config(env={}).plan(pairs)
    assert plan.steps == steps
    assert plan.learning_rate == pytest.approx(rate)
    assert plan.epochs == pytest.approx(steps / -(-pairs // 8))


def test_a_set_rate_or_step_count_is_used_as_is() -> None:
    config = load_config(env={}, overrides={"learning_rate": 3e-4, "max_steps": 5})
    plan = config.plan(1000)
    assert (plan.learning_rate, plan.steps) == (3e-4, 5)
    assert load_config(env={}, overrides={"min_steps": 0}).plan(8).steps == 2


def test_environment_then_file_then_overrides(tmp_path: Path) -> None:
    env = {"PREFLOOP_TRAIN_BETA": "0.3", "PREFLOOP_TRAIN_EPOCHS": "3"}
    env["PREFLOOP_TRAIN_LORA_TARGET_MODULES"] = "q_proj, k_proj,v_proj"
    assert load_config(env=env).lora_target_modules == ("q_proj", "k_proj", "v_proj")
    toml = tmp_path / "train.toml"
    toml.write_text("beta = 0.5\nlearning_rate = 2e-4\n")
    config = load_config(toml, env=env, overrides={"learning_rate": 3e-4})
    assert (config.beta, config.epochs, config.learning_rate) == (0.5, 3.0, 3e-4)


def test_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLOOP_TRAIN_BATCH_SIZE", "2")
    monkeypatch.setenv("PREFLOOP_TRAIN_LORA_TARGET_MODULES", "q_proj,o_proj")
    config = load_config()
    assert config.batch_size == 2
    assert config.lora_target_modules == ("q_proj", "o_proj")


def test_json_file_and_train_table(tmp_path: Path) -> None:
    js = tmp_path / "train.json"
    js.write_text(json.dumps({"lora_r": 16, "lora_alpha": 32, "reference": "base"}))
    config = load_config(js, env={})
    assert (config.lora_r, config.lora_alpha, config.reference) == (16, 32, "base")
    toml = tmp_path / "t.toml"
    toml.write_text("[train]\nmax_steps = 7\n")
    assert load_config(toml, env={}).max_steps == 7


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("bta = 0.1\n", ".toml", "unknown training setting(s) bta"),
        ("beta = -1\n", ".toml", "beta: Input should be greater than 0"),
        ("learning_rate = 'fast'\n", ".toml", "learning_rate"),
        ("reference = 'other'\n", ".toml", "reference"),
        ("lora_r = 64\nlora_alpha = 4\n", ".toml", "lora_alpha"),
        ("beta = = 1\n", ".toml", "cannot read"),
        ("[1, 2]", ".json", "must hold a table"),
        ("{bad json", ".json", "cannot read"),
    ],
)
def test_bad_files_name_the_problem(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, env={})


def test_missing_file_and_bad_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml", env={})
    with pytest.raises(ConfigError, match="epochs"):
        load_config(env={"PREFLOOP_TRAIN_EPOCHS": "zero"})


def test_recorded_form_round_trips() -> None:
    config = load_config(env={}, overrides={"beta": 0.25})
    recorded = json.loads(json.dumps(config.as_dict()))
    assert set(recorded) == set(FIELDS)
    assert load_config(env={}, overrides=recorded) == config
    assert isinstance(config, TrainConfig)
