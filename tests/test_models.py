"""Preparing the embedded model and resolving configured models."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefloop.models import (
    MARKER,
    ModelError,
    embedded_dir,
    find_embedded_gguf,
    is_prepared,
    resolve_model,
)
from prefloop.settings import Settings
from tests.conftest import shared_home


def test_prepared_directory_is_a_plain_hf_model(embedded_model_dir: Path) -> None:
    assert is_prepared(embedded_model_dir)
    config = (embedded_model_dir / "config.json").read_text()
    assert "quantization_config" not in config
    assert (embedded_model_dir / "model.safetensors").stat().st_size > 100_000_000
    assert (embedded_model_dir / "tokenizer.json").is_file()


def test_prepare_is_idempotent_and_fast_once_done(embedded_model_dir: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "prefloop", "model", "prepare", "--home", str(shared_home())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(embedded_model_dir)
    assert "already prepared" in result.stderr
    assert time.perf_counter() - started < 30


def test_half_written_conversion_does_not_count(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    target = embedded_dir(settings)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert not is_prepared(target)
    (target / MARKER).write_text("{}")
    assert is_prepared(target)


def test_resolve_model_forms(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert resolve_model(Settings(home=tmp_path, model=str(tiny_model_dir))) == str(tiny_model_dir)
    assert resolve_model(Settings(home=tmp_path, model="org/some-model")) == "org/some-model"
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(Settings(home=tmp_path, model=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(Settings(home=tmp_path, model=str(tmp_path / "empty")))


@pytest.mark.slow
def test_converted_weights_match_the_gguf(embedded_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_embedded_gguf(install=False)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    ids = tokenizer("def fibonacci(n):", return_tensors="pt").input_ids
    converted = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    original = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    with torch.inference_mode():
        a = converted(ids).logits
        b = original(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
