"""Tree-sitter parsers from the grammar packages on PyPI (prebuilt, nothing fetched)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from prefloop.checks.base import dist_version

# language id -> (module, function returning the grammar, distribution)
GRAMMARS: dict[str, tuple[str, str, str]] = {
    "python": ("tree_sitter_python", "language", "tree-sitter-python"),
    "javascript": ("tree_sitter_javascript", "language", "tree-sitter-javascript"),
    "javascriptreact": ("tree_sitter_javascript", "language", "tree-sitter-javascript"),
    "typescript": ("tree_sitter_typescript", "language_typescript", "tree-sitter-typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx", "tree-sitter-typescript"),
    "go": ("tree_sitter_go", "language", "tree-sitter-go"),
    "rust": ("tree_sitter_rust", "language", "tree-sitter-rust"),
    "java": ("tree_sitter_java", "language", "tree-sitter-java"),
    "c": ("tree_sitter_c", "language", "tree-sitter-c"),
    "cpp": ("tree_sitter_cpp", "language", "tree-sitter-cpp"),
}

MAX_ERRORS = 20


class GrammarMissing(Exception):
    """No tree-sitter grammar is installed for the language."""


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 1-based
    column: int  # 0-based
    message: str


@lru_cache(maxsize=16)
def parser_for(language: str) -> tuple[Any, str]:
    """A parser for ``language`` and the name of the tool with versions."""
    if language not in GRAMMARS:
        raise GrammarMissing(f"no grammar for {language}")
    module_name, function, dist = GRAMMARS[language]
    try:
        import tree_sitter

        grammar = getattr(importlib.import_module(module_name), function)()
    except ImportError as exc:
        raise GrammarMissing(f"{dist} is not installed") from exc
    parser = tree_sitter.Parser(tree_sitter.Language(grammar))
    tool = f"tree-sitter {dist_version('tree-sitter')} + {dist} {dist_version(dist)}"
    return parser, tool


def syntax_problems(language: str, text: str) -> list[SyntaxProblem]:
    """The ERROR and MISSING nodes of ``text`` (outermost ones, at most ``MAX_ERRORS``)."""
    parser, _ = parser_for(language)
    root = parser.parse(text.encode("utf-8")).root_node
    problems: list[SyntaxProblem] = []
    stack = [root]
    while stack and len(problems) < MAX_ERRORS:
        node = stack.pop()
        if node.is_missing:
            problems.append(_problem(node, f"missing {node.type!r}"))
        elif node.is_error:
            problems.append(_problem(node, "syntax error"))
        elif node.has_error:
            stack.extend(reversed(node.children))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _problem(node: Any, message: str) -> SyntaxProblem:
    row, column = node.start_point
    return SyntaxProblem(line=int(row) + 1, column=int(column), message=message)
