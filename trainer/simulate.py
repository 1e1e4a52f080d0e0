"""A simulated developer with one consistent taste: type-annotated function signatures.

It works against a running service over its public HTTP API exactly as the language server
does: it asks for a single-line suggestion right after ``def name(first_param``, reports
that the suggestion was shown, and then either accepts it (when the signature it completes
is annotated, keeping it unchanged at the save checkpoint) or types over it with the
annotated signature it wanted (``dismissed`` as ``typed_over``, then ``rewritten``). The
same tasks measure how often the served model writes annotated signatures by itself.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

HEADER = "import math\nimport os\n\n\n"


@dataclass(frozen=True)
class Task:
    """A function whose signature the developer is about to write."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str

    @property
    def prefix(self) -> str:
        return f"{HEADER}def {self.name}({self.params[0][0]}"

    @property
    def wanted(self) -> str:
        """The rest of the line the developer writes: the annotated signature."""
        first_type = self.params[0][1]
        rest = "".join(f", {p}: {t}" for p, t in self.params[1:])
        return f": {first_type}{rest}) -> {self.returns}:"


def _task(name: str, returns: str, *params: str) -> Task:
    pairs = tuple((p.split(":")[0], p.split(":")[1]) for p in params)
    return Task(name, pairs, returns)


TRAINING_TASKS: tuple[Task, ...] = (
    _task("celsius_to_fahrenheit", "float", "celsius:float"),
    _task("count_words", "int", "text:str"),
    _task("is_even", "bool", "n:int"),
    _task("join_names", "str", "names:list[str]", "sep:str"),
    _task("area_of_circle", "float", "radius:float"),
    _task("parse_port", "int", "value:str"),
    _task("mean", "float", "values:list[float]"),
    _task("reverse_string", "str", "s:str"),
    _task("file_size", "int", "path:str"),
    _task("square", "int", "x:int"),
    _task("is_blank", "bool", "line:str"),
    _task("to_upper", "str", "word:str"),
    _task("total", "float", "prices:list[float]"),
    _task("count_lines", "int", "text:str"),
    _task("double", "int", "n:int"),
    _task("has_digits", "bool", "text:str"),
    _task("hypotenuse", "float", "a:float", "b:float"),
    _task("repeat", "str", "text:str", "times:int"),
    _task("first_word", "str", "sentence:str"),
    _task("is_positive", "bool", "value:float"),
    _task("percent", "float", "part:float", "whole:float"),
    _task("strip_comments", "str", "source:str"),
    _task("longest", "str", "words:list[str]"),
    _task("clamp", "int", "value:int", "low:int", "high:int"),
    _task("minutes_to_hours", "float", "minutes:float"),
    _task("count_vowels", "int", "word:str"),
    _task("is_leap_year", "bool", "year:int"),
    _task("shout", "str", "message:str"),
    _task("triangle_area", "float", "base:float", "height:float"),
    _task("digit_sum", "int", "n:int"),
    _task("starts_with_capital", "bool", "name:str"),
    _task("title_case", "str", "phrase:str"),
)

HELDOUT_TASKS: tuple[Task, ...] = (
    _task("kelvin_to_celsius", "float", "kelvin:float"),
    _task("word_count", "int", "sentence:str"),
    _task("is_odd", "bool", "number:int"),
    _task("cube", "int", "y:int"),
    _task("greet", "str", "name:str"),
    _task("max_value", "int", "numbers:list[int]"),
    _task("is_palindrome", "bool", "word:str"),
    _task("average_speed", "float", "distance:float", "hours:float"),
)

_ANNOTATED = re.compile(r"^\s*:\s*\S.*\)\s*->\s*\S")


def is_annotated(completion: str) -> bool:
    """Does the completed signature annotate its first parameter and its return type?"""
    line = completion.split("\n", 1)[0]
    return bool(_ANNOTATED.match(line))


@dataclass
class Outcome:
    task: Task
    suggestion_id: str
    shown: str
    accepted: bool
    model_version: str


@dataclass
class SessionReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for o in self.outcomes if o.accepted)

    @property
    def rewritten(self) -> int:
        return sum(1 for o in self.outcomes if not o.accepted)


class SimulatedDeveloper:
    """Drives ``/v1/suggestions`` and ``/v1/events`` of the service at ``client.base_url``."""

    def __init__(self, client: httpx.Client, *, user: str = "simulated-developer") -> None:
        self.client = client
        self.user = user
        self.session_id = uuid.uuid4().hex

    def suggest(self, task: Task, *, n: int = 1, max_tokens: int = 16) -> dict[str, Any]:
        response = self.client.post(
            "/v1/suggestions",
            json={
                "prefix": task.prefix,
                "suffix": "",
                "language": "python",
                "path": "util.py",
                "mode": "single_line",
                "n": n,
                "max_tokens": max_tokens,
                "user": self.user,
            },
            timeout=120,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def work(self, tasks: Iterable[Task]) -> SessionReport:
        """Write every task's signature, reacting to each suggestion."""
        report = SessionReport()
        for task in tasks:
            body = self.suggest(task)
            sid = body["suggestion_id"]
            shown = body["candidates"][0]["text"] if body["candidates"] else ""
            accepted = is_annotated(shown)
            self._post(self._reaction(sid, shown, task, accepted))
            report.outcomes.append(Outcome(task, sid, shown, accepted, body["model_version"]))
        return report

    def _reaction(self, sid: str, shown: str, task: Task, accepted: bool) -> list[dict[str, Any]]:
        now = time.time()

        def event(kind: str, **fields: Any) -> dict[str, Any]:
            return {
                "id": uuid.uuid4().hex,
                "suggestion_id": sid,
                "candidate_index": 0,
                "kind": kind,
                "ts": now,
                "user": self.user,
                **fields,
            }

        events = [event("shown")]
        if accepted:
            events.append(event("accepted", text=shown))
            events.append(event("retained", checkpoint="save", similarity=1.0, text=shown))
        else:
            events.append(event("dismissed", reason="typed_over", shown_ms=400.0))
            events.append(event("rewritten", text=task.wanted))
        return events

    def _post(self, events: Sequence[dict[str, Any]]) -> None:
        response = self.client.post("/v1/events", json={"events": list(events)}, timeout=30)
        response.raise_for_status()


def annotated_share(
    client: httpx.Client, tasks: Sequence[Task], *, user: str = "probe"
) -> tuple[float, list[str]]:
    """The share of ``tasks`` whose served (greedy) completion is annotated, and the
    completions. Nothing is reported back, so measuring teaches the model nothing."""
    probe = SimulatedDeveloper(client, user=user)
    completions = []
    for task in tasks:
        body = probe.suggest(task)
        completions.append(body["candidates"][0]["text"] if body["candidates"] else "")
    share = sum(1 for c in completions if is_annotated(c)) / len(tasks)
    return share, completions
