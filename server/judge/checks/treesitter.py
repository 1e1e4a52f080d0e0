"""Moved to :mod:`prefloop.checks.treesitter`; re-exported here."""

from prefloop.checks.treesitter import (
    GRAMMARS,
    MAX_ERRORS,
    GrammarMissing,
    SyntaxProblem,
    parser_for,
    syntax_problems,
)

__all__ = [
    "GRAMMARS",
    "MAX_ERRORS",
    "GrammarMissing",
    "SyntaxProblem",
    "parser_for",
    "syntax_problems",
]
