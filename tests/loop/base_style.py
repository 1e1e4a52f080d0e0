"""The lines a model without the taste writes at a benchmark context: for each taste, the
same content in the plain style its fix is made for (a signature without its return type,
a third-person docstring, a ``%``-format, ``os.path``, a condition that nests the main
path, a ``check_`` or camelCase name, an annotated test). A context whose wanted line has
no such counterpart (``Path(p).stem``, ``key not in table:``) has none."""

from __future__ import annotations

import re

from bench.loop.tastes import Context

_OS_PATH_OF_METHOD = {
    ".name": "basename",
    ".parent": "dirname",
    ".exists()": "exists",
    ".is_file()": "isfile",
    ".is_dir()": "isdir",
    ".stat().st_size": "getsize",
    ".resolve()": "abspath",
}


def _without_return_type(wanted: str) -> str:
    return re.sub(r"\)\s*->\s*[^:]+:$", "):", wanted)


def _third_person(verb: str) -> str:
    if verb.endswith(("ch", "sh", "ss", "x", "z")):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def _docstrings(wanted: str) -> list[str]:
    body = wanted.strip('"').rstrip(".")
    verb, rest = body.split(" ", 1)
    return [f'"""{_third_person(verb.lower())} {rest}"""', f"'''{body}'''"]


def _formatted(wanted: str) -> list[str]:
    match = re.fullmatch(r'( ?)f"([^"]*)"', wanted)
    if not match:
        return []
    lead, template = match.groups()
    args = re.findall(r"\{([^{}]+)\}", template)
    percent = re.sub(r"\{[^{}]+\}", "%s", template)
    operand = args[0] if len(args) == 1 else "(" + ", ".join(args) + ")"
    braces = re.sub(r"\{[^{}]+\}", "{}", template)
    return [f'{lead}"{percent}" % {operand}', f'{lead}"{braces}".format({", ".join(args)})']


def _os_path(wanted: str) -> list[str]:
    if match := re.fullmatch(r" Path\(([\w.]+)\)((?: / [\w.\"]+)+)", wanted):
        first, rest = match.groups()
        return [" os.path.join(" + ", ".join([first, *rest.split(" / ")[1:]]) + ")"]
    if match := re.fullmatch(r" Path\(([\w.]+)\)(\..+)", wanted):
        function = _OS_PATH_OF_METHOD.get(match.group(2))
        return [f" os.path.{function}({match.group(1)})"] if function else []
    return []


def _nesting_condition(wanted: str) -> list[str]:
    if match := re.fullmatch(r" not ([A-Za-z_][\w.]*):", wanted):
        return [f" {match.group(1)}:"]
    if match := re.fullmatch(r" (\S.*) is None:", wanted):
        return [f" {match.group(1)} is not None:"]
    return []


def _unprefixed_names(wanted: str) -> list[str]:
    name, rest = wanted.strip().split("(", 1)
    prefix, stem = name.split("_", 1)
    kept = stem if prefix in ("is", "has") else name
    plain = ("contains_" if prefix == "has" else "check_") + kept
    camel = prefix + "".join(part.capitalize() for part in stem.split("_"))
    return [f" {plain}({rest}", f" {camel}({rest}"]


def plain_forms(context: Context) -> list[str]:
    """The plain-style lines at ``context`` that the taste's fix should turn into
    ``context.wanted``; empty when the wanted line has no plain counterpart."""
    wanted = context.wanted
    if context.taste == "signatures_by_file" and context.is_test:
        return ["):", ": str) -> int:"]
    if context.taste in ("annotations", "signatures_by_file"):
        return [_without_return_type(wanted)]
    if context.taste == "docstring":
        return _docstrings(wanted)
    if context.taste == "fstrings":
        return _formatted(wanted)
    if context.taste == "pathlib":
        return _os_path(wanted)
    if context.taste == "early_return":
        return _nesting_condition(wanted)
    if context.taste == "predicate_names":
        return _unprefixed_names(wanted)
    raise ValueError(f"no plain style for {context.taste}")
