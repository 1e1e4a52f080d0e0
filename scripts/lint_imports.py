"""Check the import contracts of ``[tool.importlinter]`` in pyproject.toml.

import-linter finds a package's modules by walking the package's directory, but
``prefloop.server``, ``prefloop.lsp`` and ``prefloop.trainer`` live in their own top-level
directories (setuptools ``package-dir``). This lays the sources out as they are installed
(``prefloop/server/...``) in a temporary directory and runs ``lint-imports`` there.

    python -m scripts.lint_imports [lint-imports options]

The exit status is lint-imports' own: 0 when every contract is kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
SOURCE_SUFFIXES = (".py", ".pyi")
RUN_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def package_dirs(pyproject: Path = PYPROJECT) -> dict[str, Path]:
    """Import name → source directory, from ``[tool.setuptools] package-dir``."""
    config = tomllib.loads(pyproject.read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: pyproject.parent / path for name, path in mapping.items()}


def lay_out(target: Path, pyproject: Path = PYPROJECT) -> None:
    """Copy every package's Python sources under ``target`` at their installed place."""
    for name, source in sorted(package_dirs(pyproject).items(), key=lambda kv: kv[0].count(".")):
        destination = target.joinpath(*name.split("."))
        for path in source.rglob("*"):
            if path.suffix not in SOURCE_SUFFIXES or "__pycache__" in path.parts:
                continue
            copy = destination / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="prefloop-lint-imports-") as tmp:
        root = Path(tmp)
        lay_out(root)
        env = {**os.environ, "PYTHONPATH": str(root)}
        command = [sys.executable, "-c", RUN_LINT_IMPORTS]
        command += ["--config", str(PYPROJECT), "--no-cache", "--no-logo", *args]
        # lint-imports puts its working directory first on sys.path: run it in the layout.
        return subprocess.run(command, cwd=root, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
