"""Versioned rubrics: aspects with named levels (``<version>.json``) and prompt templates
(``<version>.md``), read from ``rubrics/`` or from a directory the settings name."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

RUBRICS_DIR = Path(__file__).resolve().parent / "rubrics"
DEFAULT_RUBRIC = "inline-v1"
DEFAULT_PAIRWISE = "pairwise-v1"

_SECTION = re.compile(r"^<!-- section: (\w+) -->\s*$", re.MULTILINE)


class RubricError(ValueError):
    """A rubric file is missing or malformed."""


@dataclass(frozen=True)
class Level:
    score: int
    name: str
    description: str


@dataclass(frozen=True)
class Aspect:
    id: str
    name: str
    question: str
    levels: tuple[Level, ...]

    def render(self) -> str:
        lines = [f"{self.id} ({self.name}): {self.question}"]
        lines += [f"  {lv.score} = {lv.name}: {lv.description}" for lv in self.levels]
        return "\n".join(lines)


@dataclass(frozen=True)
class Templates:
    """The sections of a ``.md`` prompt file, each a ``string.Template``."""

    version: str
    sections: dict[str, str]

    def render(self, section: str, **values: str) -> str:
        if section not in self.sections:
            raise RubricError(f"rubric {self.version} has no section {section!r}")
        return Template(self.sections[section]).substitute(values).strip("\n")

    def get(self, section: str) -> str:
        return self.sections.get(section, "").strip("\n")


@dataclass(frozen=True)
class Rubric:
    version: str
    task: str
    aspects: tuple[Aspect, ...]
    templates: Templates

    @property
    def aspect_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.aspects)

    def render_aspects(self) -> str:
        return "\n\n".join(a.render() for a in self.aspects)


def _locate(name: str, suffix: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".json", ".md") or "/" in name:
        path = candidate.with_suffix(suffix)
    else:
        path = RUBRICS_DIR / f"{name}{suffix}"
    if not path.is_file():
        raise RubricError(f"no rubric file {path}")
    return path


def _read_templates(path: Path, version: str) -> Templates:
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if "system" not in sections:
        raise RubricError(f"{path} has no system section")
    return Templates(version, sections)


def _parse_aspect(raw: dict[str, object]) -> Aspect:
    levels_raw = raw.get("levels")
    if not isinstance(levels_raw, dict) or sorted(levels_raw) != ["1", "2", "3", "4", "5"]:
        raise RubricError(f"aspect {raw.get('id')!r} needs named levels 1 to 5")
    levels = tuple(
        Level(int(score), str(levels_raw[score][0]), str(levels_raw[score][1]))
        for score in sorted(levels_raw)
    )
    return Aspect(str(raw["id"]), str(raw["name"]), str(raw["question"]), levels)


@lru_cache(maxsize=8)
def load_rubric(name: str = DEFAULT_RUBRIC) -> Rubric:
    """A critique rubric by version name (``inline-v1``) or by the path of its ``.json``."""
    spec_path = _locate(name, ".json")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        aspects = tuple(_parse_aspect(a) for a in spec["aspects"])
        version = str(spec["version"])
        task = str(spec.get("task", "code completion"))
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise RubricError(f"malformed rubric {spec_path}: {exc}") from exc
    if len({a.id for a in aspects}) != len(aspects) or not aspects:
        raise RubricError(f"rubric {spec_path} needs distinct aspect ids")
    templates = _read_templates(_locate(name, ".md"), version)
    return Rubric(version, task, aspects, templates)


@lru_cache(maxsize=8)
def load_templates(name: str = DEFAULT_PAIRWISE) -> Templates:
    """Prompt templates alone (the pairwise rubric has no aspects of its own)."""
    path = _locate(name, ".md")
    return _read_templates(path, path.stem)
