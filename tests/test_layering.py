"""The layering as tests: the light processes stay light, and SQL stays in the store.

The import contracts between core, server, lsp and trainer are checked by
``python -m scripts.lint_imports`` (``make lint``); these are the rules it cannot express.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "transformers")
"""Libraries the language server and the store must load without."""

LIGHT_MODULES = ("prefloop.lsp.server", "prefloop.store", "prefloop.store.writer")

SOURCE_ROOTS = ("prefloop", "server", "lsp", "trainer")
STORE = REPO / "prefloop" / "store"

SQL_METHODS = frozenset(
    {
        # sqlite3 connections and cursors
        "execute",
        "executemany",
        "executescript",
        # sqlite-utils databases and tables
        "query",
        "rows_where",
        "insert_all",
        "upsert_all",
        "create_table",
        "create_index",
    }
)
"""Calls that run SQL; outside the store, none of them may appear."""

SQL_STATEMENT = re.compile(
    r"""^\s*(?:
        SELECT\s+\S
      | INSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b
      | REPLACE\s+INTO\b
      | UPDATE\s+\w+\s+SET\b
      | DELETE\s+FROM\b
      | (?:CREATE|DROP|ALTER)\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)?
            (?:TABLE|INDEX|VIEW|TRIGGER)\b
      | PRAGMA\s+\w+
      | WITH\s+(?:RECURSIVE\s+)?\w+(?:\s*\([^)]*\))?\s+AS\s*\(
      | (?:BEGIN(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE))?|COMMIT|ROLLBACK)
            (?:\s+TRANSACTION)?\s*;?\s*$
      | (?:SAVEPOINT|RELEASE(?:\s+SAVEPOINT)?|ROLLBACK\s+TO(?:\s+SAVEPOINT)?)\s+\w+\s*;?\s*$
      | VACUUM\b
    )""",
    re.VERBOSE,
)
"""The start of an SQL statement, keywords in capitals as the house writes them."""


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_imports_no_heavy_library(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "", f"importing {module} loads {result.stdout.strip()}"


def _sources() -> Iterator[Path]:
    for root in SOURCE_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not path.is_relative_to(STORE):
                yield path


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def find_sql(source: str, where: str) -> list[str]:
    """``where:line: what`` for every SQL call and SQL string literal in ``source``."""
    tree = ast.parse(source, filename=where)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
        ):
            found.append((node.lineno, f".{node.func.attr}(...)"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_STATEMENT.match(node.value)
        ):
            found.append((node.lineno, repr(node.value.strip()[:40])))
    return [f"{where}:{line}: {what}" for line, what in sorted(found)]


def test_no_sql_outside_the_store() -> None:
    found = [
        line
        for path in _sources()
        for line in find_sql(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert not found, "SQL belongs in prefloop/store/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'db.execute("SELECT 1")',
        'conn.executemany("INSERT INTO t VALUES (?)", rows)',
        "conn.executescript(SCHEMA)",
        'db.query("SELECT * FROM t")',
        'db["t"].rows_where("id = ?", [1])',
        'sql = "DELETE FROM pairs WHERE id = ?"',
        'sql = f"UPDATE runs SET {column} = ? WHERE id = ?"',
        'sql = """\n    INSERT OR IGNORE INTO spool (id) VALUES (?)\n"""',
        'SCHEMA = "CREATE TEMP TABLE IF NOT EXISTS keys (key TEXT)"',
        'mode = "PRAGMA journal_mode=WAL"',
        'begin = "BEGIN IMMEDIATE"',
        'done = "COMMIT"',
        'sql = "WITH recent AS (SELECT 1) SELECT * FROM recent"',
    ],
)
def test_the_check_finds_sql(source: str) -> None:
    assert find_sql(source, "probe.py")


@pytest.mark.parametrize(
    "source",
    [
        '"""SELECT the pairs from the table (a docstring)."""',
        'client.request("DELETE", url)',
        'print("Select a model version; update the registry; commit the file.")',
        'label = "END"',
        'help = "INSERT mode"',
        "params.update(values)",
    ],
)
def test_the_check_passes_what_is_not_sql(source: str) -> None:
    assert find_sql(source, "probe.py") == []


def test_the_contracts_see_the_installed_layout(tmp_path: Path) -> None:
    from scripts.lint_imports import lay_out

    lay_out(tmp_path)
    for module in ("cli", "store/writer", "server/app", "lsp/server", "trainer/gate"):
        assert (tmp_path / "prefloop" / f"{module}.py").is_file(), module
    assert not list(tmp_path.rglob("__pycache__"))
