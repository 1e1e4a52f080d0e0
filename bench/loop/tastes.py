"""Latent code-style preferences of simulated developers.

A taste judges the line a suggestion would put at the cursor (suggestions are asked for in
single-line mode) and says what the developer keeps there:

- ``satisfied(context, line)``: the line already has the taste;
- ``fix(context, line)``: the small in-place edit a developer makes to a near miss (a
  ``%``-format turned into an f-string, ``os.path.join`` into ``Path(...) /``), or None
  when the line cannot be fixed in place;
- :func:`react`: accept what is satisfied; accept and then edit a near miss (a fix that
  satisfies the taste, or a line close to what the developer would have written); dismiss
  the rest by typing over it with what the developer wanted (``context.wanted``).

Everything here is pure and deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bench.loop.textdistance import similarity

NEAR_MISS_SIMILARITY = 0.6
"""A line at least this similar to the wanted one is accepted and then edited."""


@dataclass(frozen=True)
class Context:
    """A place in a file where a developer is about to write the rest of a line.

    ``prefix`` is the document up to the cursor, ``suffix`` what follows it, ``path`` the
    file's path in the workspace, ``wanted`` the rest of the line the developer writes in
    their taste when no suggestion helps.
    """

    taste: str
    name: str
    path: str
    prefix: str
    suffix: str
    wanted: str

    @property
    def is_test(self) -> bool:
        """Is the file a test module (``tests/`` or ``test_*.py``)?"""
        parts = self.path.split("/")
        return "tests" in parts[:-1] or parts[-1].startswith("test_")


class ReactionKind(StrEnum):
    """What the developer does with a suggestion."""

    ACCEPT = "accept"
    EDIT = "edit_after_accept"
    REWRITE = "dismiss_and_rewrite"


@dataclass(frozen=True)
class Reaction:
    """The developer's reaction and the text they keep at the cursor afterwards (for an
    accepted suggestion, the suggestion itself)."""

    kind: ReactionKind
    kept: str


@dataclass(frozen=True)
class Taste:
    """A named preference: ``satisfied`` tests a line, ``fix`` edits a near miss."""

    name: str
    description: str
    satisfied: Callable[[Context, str], bool]
    fix: Callable[[Context, str], str | None]


def first_line(text: str) -> str:
    """The part of a suggestion on the cursor's line, without trailing blanks."""
    return text.split("\n", 1)[0].rstrip()


def react(taste: Taste, context: Context, suggestion: str) -> Reaction:
    """What the developer does with ``suggestion`` at ``context`` and what they keep."""
    line = first_line(suggestion)
    if line.strip() and taste.satisfied(context, line):
        return Reaction(ReactionKind.ACCEPT, suggestion)
    if line.strip():
        fixed = taste.fix(context, line)
        if fixed is not None and fixed != line and taste.satisfied(context, fixed):
            return Reaction(ReactionKind.EDIT, fixed)
        if similarity(line, context.wanted) >= NEAR_MISS_SIMILARITY:
            return Reaction(ReactionKind.EDIT, context.wanted)
    return Reaction(ReactionKind.REWRITE, context.wanted)


# ---- type annotations on signatures -------------------------------------------------

_RETURN = re.compile(r"\)\s*->\s*[^:\s][^:]*:$")


def _annotated(_: Context, line: str) -> bool:
    """``: T, b: U) -> R:`` completing ``def f(a``: every parameter and the return typed."""
    text = line.strip()
    if not text.startswith(":") or not _RETURN.search(text):
        return False
    params = text[: text.rindex(")")]
    depth, pieces, current = 0, [], ""
    for char in params:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    first, rest = pieces[0], pieces[1:]
    return bool(first[1:].strip()) and all(
        re.match(r"^\s*\*{0,2}\w+\s*:\s*\S", piece) for piece in rest
    )


def _fix_annotation(context: Context, line: str) -> str | None:
    """Add the wanted return annotation to an otherwise annotated signature."""
    wanted_return = re.search(r"->\s*([^:]+):$", context.wanted)
    if wanted_return and re.search(r"\)\s*:$", line) and "->" not in line:
        return re.sub(r"\)\s*:$", f") -> {wanted_return.group(1).strip()}:", line)
    return None


ANNOTATIONS = Taste(
    "annotations",
    "type annotations on every parameter and the return type of a signature",
    _annotated,
    _fix_annotation,
)


# ---- one-line imperative docstrings -------------------------------------------------

_DOCSTRING = re.compile(r'^"""(\S.*?)"""$')


def _imperative_docstring(_: Context, line: str) -> bool:
    """``\"\"\"Return the total.\"\"\"``: one line, a capitalised imperative verb, a full stop."""
    match = _DOCSTRING.match(line.strip())
    if not match:
        return False
    body = match.group(1).strip()
    first = body.split()[0]
    return (
        first[:1].isupper()
        and first.isalpha()
        and not (first.endswith("s") and not first.endswith("ss"))
        and body.endswith(".")
    )


def _fix_docstring(_: Context, line: str) -> str | None:
    """Normalise quotes, capitalise, make the verb imperative (``returns``, ``matches``,
    ``applies`` become ``Return``, ``Match``, ``Apply``), end with a full stop."""
    match = re.match(r'^(?:"""|\'\'\'|"|\')\s*(\S.*?)\s*(?:"""|\'\'\'|"|\')$', line.strip())
    if not match:
        return None
    words = match.group(1).split()
    verb = words[0].capitalize()
    if verb.endswith("s") and not verb.endswith("ss") and verb.isalpha():
        if verb.endswith(("ches", "shes", "sses", "xes", "zes")):
            verb = verb[:-2]
        elif verb.endswith("ies") and len(verb) > 4:
            verb = verb[:-3] + "y"
        else:
            verb = verb[:-1]
    body = " ".join([verb, *words[1:]]).rstrip(".") + "."
    return f'"""{body}"""'


DOCSTRING = Taste(
    "docstring",
    'a one-line imperative docstring right after `def` ("""Return the total.""")',
    _imperative_docstring,
    _fix_docstring,
)


# ---- f-strings over % and .format ---------------------------------------------------

_PERCENT = re.compile(r"""(["'])((?:(?!\1).)*%[sdrf](?:(?!\1).)*)\1\s*%\s*(\([^()]*\)|[\w.]+)""")
_FORMAT = re.compile(r"""(["'])((?:(?!\1).)*\{\}(?:(?!\1).)*)\1\.format\(([^()]*)\)""")


def _uses_fstrings(_: Context, line: str) -> bool:
    """An f-string and no ``%`` or ``.format`` formatting on the line."""
    has_fstring = re.search(r"""\b[rR]?[fF][rR]?["']""", line) is not None
    return has_fstring and not _PERCENT.search(line) and ".format(" not in line


def _to_fstring(template: str, args: list[str], placeholder: str) -> str | None:
    pieces = re.split(placeholder, template)
    if len(pieces) != len(args) + 1:
        return None
    out = pieces[0]
    for arg, piece in zip(args, pieces[1:], strict=True):
        out += "{" + arg.strip() + "}" + piece
    return out


def _fix_fstring(_: Context, line: str) -> str | None:
    """``"%s items" % n`` and ``"{} items".format(n)`` become ``f"{n} items"``."""
    for pattern, placeholder in ((_PERCENT, r"%[sdrf]"), (_FORMAT, r"\{\}")):
        match = pattern.search(line)
        if not match:
            continue
        quote, template, raw = match.groups()
        raw = raw.strip()
        if raw.startswith("(") and raw.endswith(")"):
            raw = raw[1:-1]
        args = [a for a in raw.split(",") if a.strip()]
        body = _to_fstring(template, args, placeholder)
        if body is None:
            return None
        return line[: match.start()] + "f" + quote + body + quote + line[match.end() :]
    return None


FSTRINGS = Taste(
    "fstrings",
    "f-strings rather than `%` or `.format` formatting",
    _uses_fstrings,
    _fix_fstring,
)


# ---- pathlib over os.path -----------------------------------------------------------

_OS_PATH = re.compile(r"os\.path\.(\w+)\(([^()]*)\)")
_OS_PATH_AS_PATHLIB = {
    "exists": "Path({0}).exists()",
    "isfile": "Path({0}).is_file()",
    "isdir": "Path({0}).is_dir()",
    "basename": "Path({0}).name",
    "dirname": "Path({0}).parent",
    "getsize": "Path({0}).stat().st_size",
    "abspath": "Path({0}).resolve()",
}


def _uses_pathlib(_: Context, line: str) -> bool:
    """``Path(...)`` on the line and no ``os.path``."""
    return "Path(" in line and "os.path" not in line


def _fix_pathlib(_: Context, line: str) -> str | None:
    """``os.path.join(a, "b")`` becomes ``Path(a) / "b"``; exists, basename and the like
    their ``Path`` methods."""

    def replace(match: re.Match[str]) -> str:
        function, raw = match.group(1), match.group(2)
        args = [a.strip() for a in raw.split(",") if a.strip()]
        if function == "join" and args:
            return " / ".join([f"Path({args[0]})", *args[1:]])
        if function in _OS_PATH_AS_PATHLIB and len(args) == 1:
            return _OS_PATH_AS_PATHLIB[function].format(args[0])
        return match.group(0)

    fixed = _OS_PATH.sub(replace, line)
    return fixed if fixed != line else None


PATHLIB = Taste("pathlib", "`pathlib.Path` rather than `os.path`", _uses_pathlib, _fix_pathlib)


# ---- early return over nested if ----------------------------------------------------

_GUARD = re.compile(r"^(not\s+\S.*|\S.*\s+is\s+None|len\(.+\)\s*==\s*0|\S.*\s+not\s+in\s+\S.*):$")


def _guard_clause(_: Context, line: str) -> bool:
    """The condition completing ``if `` tests the case that leaves early (``not items:``,
    ``config is None:``), so the main path is not nested."""
    return bool(_GUARD.match(line.strip()))


def _fix_guard(_: Context, line: str) -> str | None:
    """``items:`` becomes ``not items:``; ``x is not None:`` becomes ``x is None:`` (the
    blank before the condition is kept)."""
    text = line.strip()
    lead = line[: len(line) - len(line.lstrip())]
    if match := re.match(r"^(\S.*)\s+is\s+not\s+None:$", text):
        return f"{lead}{match.group(1)} is None:"
    if match := re.match(r"^len\((.+)\)\s*(?:>\s*0|!=\s*0|>=\s*1):$", text):
        return f"{lead}not {match.group(1)}:"
    if match := re.match(r"^([A-Za-z_][\w.]*):$", text):
        return f"{lead}not {match.group(1)}:"
    return None


EARLY_RETURN = Taste(
    "early_return",
    "guard clauses that return early rather than nested `if` blocks",
    _guard_clause,
    _fix_guard,
)


# ---- predicate names ---------------------------------------------------------------

_PREDICATE = re.compile(r"^\s*(is|has|can|should)_[a-z0-9_]+\(")
_FUNCTION = re.compile(r"^(\s*)([A-Za-z_]\w*)\((.*)$")


def _predicate_name(_: Context, line: str) -> bool:
    """A function returning a boolean named ``is_``/``has_``/``can_``/``should_`` in
    snake_case (the line completes ``def``)."""
    return bool(_PREDICATE.match(line))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _fix_predicate_name(_: Context, line: str) -> str | None:
    """``check_email(`` and ``emailValid(`` become ``is_email(`` and ``is_email_valid(``."""
    match = _FUNCTION.match(line)
    if not match:
        return None
    space, name, rest = match.groups()
    name = _snake(name)
    for prefix in ("check_", "validate_", "test_", "get_"):
        name = name.removeprefix(prefix)
    if name.startswith("contains_"):
        name = "has_" + name.removeprefix("contains_")
    elif not name.startswith(("is_", "has_", "can_", "should_")):
        name = "is_" + name
    return f"{space}{name}({rest}"


PREDICATE_NAMES = Taste(
    "predicate_names",
    "functions that answer yes or no named `is_`/`has_`/`can_`/`should_` in snake_case",
    _predicate_name,
    _fix_predicate_name,
)


# ---- signatures by file: annotated in library code, `-> None` in tests -------------


def _signature_by_file(context: Context, line: str) -> bool:
    """Library code: every parameter and the return annotated (as ``annotations``). Tests:
    fixtures left bare and the test annotated ``-> None``."""
    text = line.strip()
    if not context.is_test:
        return _annotated(context, text)
    return bool(re.match(r"^(,\s*\w+)*\)\s*->\s*None:$", text))


def _fix_signature_by_file(context: Context, line: str) -> str | None:
    """In tests: drop parameter annotations and return ``None``; in library code: add the
    wanted return annotation."""
    text = line.strip()
    if not context.is_test:
        return _fix_annotation(context, line)
    if not text.endswith(":") or ")" not in text:
        return None
    params = text[: text.rindex(")")]
    names = [re.sub(r"\s*:.*$", "", p).strip() for p in params.split(",")[1:]]
    return "".join(f", {n}" for n in names if n) + ") -> None:"


SIGNATURES_BY_FILE = Taste(
    "signatures_by_file",
    "depends on the file: annotated signatures in library code, `-> None` and bare "
    "fixtures in tests",
    _signature_by_file,
    _fix_signature_by_file,
)


TASTES: dict[str, Taste] = {
    taste.name: taste
    for taste in (
        ANNOTATIONS,
        DOCSTRING,
        FSTRINGS,
        PATHLIB,
        EARLY_RETURN,
        PREDICATE_NAMES,
        SIGNATURES_BY_FILE,
    )
}
"""Every taste by name."""
