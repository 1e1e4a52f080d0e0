"""Does a LoRA adapter fit the served model? Checked from file headers, before loading.

Both engines refuse an adapter whose LoRA matrices do not match the shapes of the layers
they target: the transformers engine reads the shapes from the loaded model, the vLLM
engine from the safetensors headers of the model directory (vLLM itself may accept
smaller matrices and serve garbage).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

from prefloop.server.engines.base import EngineError

# (in_features, out_features) of a layer, or None when it is not known
LayerShape = Callable[[str], tuple[int, int] | None]

_PARTS = (".lora_A.", ".lora_B.")


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header (the data is not read)."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise EngineError(f"{path.name} cannot be read: {exc}") from None
    return {
        name: tuple(int(d) for d in info["shape"])
        for name, info in header.items()
        if name != "__metadata__" and isinstance(info, dict) and "shape" in info
    }


def check_adapter_fits(adapter_dir: Path, version: str, layer_shape: LayerShape) -> None:
    """Raise :class:`EngineError` when a LoRA matrix does not fit the layer it targets."""
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return  # a .bin adapter: the engine's own load finds a mismatch
    for key, shape in safetensors_shapes(weights).items():
        for part in _PARTS:
            if part not in key or len(shape) != 2:
                continue
            name = key.split(part)[0].removeprefix("base_model.model.")
            features = layer_shape(name)
            if features is None:
                continue
            features_in, features_out = features
            if part == ".lora_A." and shape[1] != features_in:
                raise EngineError(
                    f"adapter {version} does not fit the model: {name} takes "
                    f"{features_in} inputs, the adapter expects {shape[1]}"
                )
            if part == ".lora_B." and shape[0] != features_out:
                raise EngineError(
                    f"adapter {version} does not fit the model: {name} gives "
                    f"{features_out} outputs, the adapter expects {shape[0]}"
                )


def model_dir_layer_shapes(model_dir: Path) -> LayerShape | None:
    """Layer shapes read from a model directory's safetensors headers (None: no weights
    there, e.g. a directory holding only the tokenizer)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        shapes.update(safetensors_shapes(path))
    if not shapes:
        return None

    def layer_shape(name: str) -> tuple[int, int] | None:
        shape = shapes.get(f"{name}.weight")
        if shape is None or len(shape) != 2:
            return None
        return shape[1], shape[0]  # a Linear weight is (out, in)

    return layer_shape
