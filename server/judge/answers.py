"""The judge's structured answer: pydantic models built from a rubric, JSON extraction from
free text (code fences, prose around it, a truncated tail) and validation.

A critique is valid only with every aspect scored 1-5 (integers; ``"4"`` and ``4.0`` are
read as 4) and a non-empty rationale. When several candidates are judged together, the
valid entries are kept and the missing or invalid ones reported, so a retry can ask again
for just those.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from prefloop.server.judge.rubric import Rubric

Score = Annotated[int, Field(ge=1, le=5)]
MAX_RATIONALE = 2000
MAX_REPAIR_CUTS = 32

_REFUSAL = re.compile(
    r"\b(I(?:'m| am) (?:sorry|unable|not able)|I can(?:not|'t)|as an AI|I won't|I will not)\b",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedCritique:
    scores: dict[str, int]
    rationale: str


@dataclass
class ParseResult:
    """Valid critiques by label, and what was wrong with the rest (None: nothing)."""

    critiques: dict[str, ParsedCritique] = field(default_factory=dict)
    error: str | None = None
    repaired: bool = False


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


@lru_cache(maxsize=16)
def _build_models(
    aspects: tuple[str, ...],
) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    fields: dict[str, Any] = {a: (Score, ...) for a in aspects}
    scores = create_model("Scores", __base__=_Lenient, **fields)
    rationale: Any = (str, Field(min_length=1, max_length=MAX_RATIONALE))
    single = create_model("Critique", __base__=_Lenient, scores=(scores, ...), rationale=rationale)
    item = create_model(
        "CandidateCritique",
        __base__=_Lenient,
        candidate=(str, Field(min_length=1, max_length=4)),
        scores=(scores, ...),
        rationale=rationale,
    )
    together = create_model("Critiques", __base__=_Lenient, critiques=(list[item], ...))  # type: ignore[valid-type]
    return scores, single, together


def _models(rubric: Rubric) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """The (scores, single answer, together answer) models of a rubric."""
    return _build_models(rubric.aspect_ids)


def answer_schema(rubric: Rubric, labels: list[str] | None = None) -> dict[str, Any]:
    """The JSON schema of the expected answer: one critique, or one per label."""
    _, single, together = _models(rubric)
    if labels is None:
        return single.model_json_schema()
    schema = together.model_json_schema()
    item = schema["$defs"]["CandidateCritique"]
    item["properties"]["candidate"] = {"type": "string", "enum": list(labels)}
    schema["properties"]["critiques"]["minItems"] = len(labels)
    schema["properties"]["critiques"]["maxItems"] = len(labels)
    return schema


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook keeping the first of repeated keys (a looping model repeats them)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def extract_json(text: str) -> tuple[Any, bool]:
    """The first JSON object in ``text`` and whether it had to be repaired (a truncated
    tail closed); ``(None, False)`` when there is none. The outermost object is tried
    first, then repaired, before any object nested in it."""
    cleaned = _FENCE.sub("", text)
    decoder = json.JSONDecoder(object_pairs_hook=_first_wins)
    starts = [m.start() for m in re.finditer(r"\{", cleaned)]
    for n, start in enumerate(starts):
        try:
            value, _ = decoder.raw_decode(cleaned, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value, False
        if n == 0:
            repaired = _repair(cleaned[start:])
            if repaired is not None:
                return repaired, True
    return None, False


def _repair(text: str) -> dict[str, Any] | None:
    """A cut-off object closed, dropping its unfinished last members if need be."""
    candidate = text
    for _ in range(MAX_REPAIR_CUTS):
        closed = _close_truncated(candidate)
        if closed is None:
            return None
        try:
            value = json.loads(closed, object_pairs_hook=_first_wins)
        except json.JSONDecodeError:
            cut = candidate.rfind(",")
            if cut <= 0:
                return None
            candidate = candidate[:cut]
            continue
        return value if isinstance(value, dict) else None
    return None


def _close_truncated(text: str) -> str | None:
    """Close the strings and brackets a cut-off JSON text left open."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and (not stack or stack.pop() != ch):
            return None
    if not stack:
        return None
    out = text.rstrip()
    if escaped:
        out = out[:-1]
    if in_string:
        out += '"'
    out = re.sub(r"[,:]\s*$", "", out)
    if out.endswith('"') and stack[-1] == "}" and _dangling_key(out):
        out = out[: out[:-1].rfind('"')].rstrip().rstrip(",")
    return out + "".join(reversed(stack))


def _dangling_key(text: str) -> bool:
    """Whether the last string in an object is a key still waiting for its value."""
    before = text[: text[:-1].rfind('"')].rstrip()
    return before.endswith(("{", ","))


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or 'answer'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts[:6])


def _no_json(text: str) -> str:
    snippet = " ".join(text.split())[:120]
    if _REFUSAL.search(text):
        return f"refused: {snippet!r}"
    return f"no JSON object in the answer: {snippet!r}" if snippet else "empty answer"


def _normalize(obj: dict[str, Any], aspects: tuple[str, ...]) -> dict[str, Any]:
    """Lower-case score keys; accept scores given at the top level of the object."""
    out = dict(obj)
    scores = out.get("scores")
    if not isinstance(scores, dict):
        flat = {k.lower(): v for k, v in out.items() if k.lower() in aspects}
        if flat:
            out["scores"] = flat
    else:
        out["scores"] = {str(k).strip().lower(): v for k, v in scores.items()}
    return out


def _critique(model: BaseModel) -> ParsedCritique:
    data = model.model_dump()
    return ParsedCritique(scores=dict(data["scores"]), rationale=str(data["rationale"]))


def parse_single(text: str, rubric: Rubric) -> ParseResult:
    """One critique (stored under label ``A``)."""
    obj, repaired = extract_json(text)
    if obj is None:
        return ParseResult(error=_no_json(text))
    _, single, _ = _models(rubric)
    if isinstance(obj.get("critiques"), list) and len(obj["critiques"]) == 1:
        obj = obj["critiques"][0] if isinstance(obj["critiques"][0], dict) else obj
    try:
        model = single.model_validate(_normalize(obj, rubric.aspect_ids))
    except ValidationError as exc:
        return ParseResult(error=describe(exc), repaired=repaired)
    return ParseResult(critiques={"A": _critique(model)}, repaired=repaired)


def _items(obj: dict[str, Any]) -> list[Any] | None:
    if isinstance(obj.get("critiques"), list):
        return list(obj["critiques"])
    keyed = [{**v, "candidate": k} for k, v in obj.items() if isinstance(v, dict) and len(k) <= 4]
    return keyed or None


def parse_together(text: str, rubric: Rubric, labels: list[str]) -> ParseResult:
    """One critique per label; valid entries are kept, the rest reported."""
    obj, repaired = extract_json(text)
    if obj is None:
        return ParseResult(error=_no_json(text))
    items = _items(obj)
    if items is None:
        return ParseResult(error="answer has no `critiques` list", repaired=repaired)
    _, single, _ = _models(rubric)
    result = ParseResult(repaired=repaired)
    problems: list[str] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"critiques.{position}: not an object")
            continue
        label = str(item.get("candidate", "")).strip().strip("\"'").upper()
        if label not in labels:
            problems.append(f"critiques.{position}: unknown candidate {label[:8]!r}")
            continue
        if label in result.critiques:
            continue
        try:
            model = single.model_validate(_normalize(item, rubric.aspect_ids))
        except ValidationError as exc:
            problems.append(f"candidate {label}: {describe(exc)}")
            continue
        result.critiques[label] = _critique(model)
    missing = [label for label in labels if label not in result.critiques]
    if missing:
        problems.append(f"no valid critique for candidate(s) {', '.join(missing)}")
        result.error = "; ".join(problems)
    return result


def salvage_prefix(text: str, rubric: Rubric) -> str | None:
    """The valid start of a failed single answer, as an answer prefix for the retry: the
    scores that were valid (in rubric order, up to the first bad one), then the key to
    continue with. None when nothing is worth keeping."""
    obj, _ = extract_json(text)
    if not isinstance(obj, dict):
        return None
    raw = _normalize(obj, rubric.aspect_ids).get("scores")
    if not isinstance(raw, dict):
        return None
    kept: list[str] = []
    for aspect in rubric.aspect_ids:
        value = raw.get(aspect)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            break
        if not 1 <= value <= 5:
            break
        kept.append(f'"{aspect}": {int(value)}')
    if not kept:
        return None
    scores = ", ".join(kept)
    if len(kept) == len(rubric.aspect_ids):
        return f'{{"scores": {{{scores}}}, "rationale": "'
    return f'{{"scores": {{{scores}, "'
