"""The SQLite store: schema, migrations, every query, typed rows.

All database access of the project goes through this package, one module per kind of
record:

* :mod:`~prefloop.store.schema`: the migrations and :func:`migrate`;
* :mod:`~prefloop.store.connection`: :func:`connect` and its pragmas, and
  :func:`~prefloop.store.connection.immediate`, a write transaction that locks at once;
* :mod:`~prefloop.store.timestamps`: :func:`utcnow` and :func:`parse_since`;
* :mod:`~prefloop.store.events`: suggestions and feedback events (:class:`Store`);
* :mod:`~prefloop.store.writer`: the service's single writer;
* :mod:`~prefloop.store.critiques`: the judge's critiques and their naming convention;
* :mod:`~prefloop.store.pairs`: preference pairs, their builds and splits, and every
  reader of the pairs table (one order);
* :mod:`~prefloop.store.runs`: training runs;
* :mod:`~prefloop.store.versions`: the model registry's versions and promotions;
* :mod:`~prefloop.store.tokens`: team mode's users and the hashes of their tokens;
* :mod:`~prefloop.store.spool`: the language server's event spool (its own file).

Inside the service the :class:`~prefloop.store.writer.Writer` is the only writer; other
processes write through the same store functions. The names below are loaded on first
use, so a process that needs only the spool does not import ``sqlite_utils``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefloop.store.connection import connect
    from prefloop.store.events import EVENT_COLUMNS, Store
    from prefloop.store.schema import applied_migrations, migrate, migrations
    from prefloop.store.timestamps import parse_since, utcnow

_HOMES = {
    "EVENT_COLUMNS": "prefloop.store.events",
    "Store": "prefloop.store.events",
    "applied_migrations": "prefloop.store.schema",
    "connect": "prefloop.store.connection",
    "migrate": "prefloop.store.schema",
    "migrations": "prefloop.store.schema",
    "parse_since": "prefloop.store.timestamps",
    "utcnow": "prefloop.store.timestamps",
}

__all__ = [
    "EVENT_COLUMNS",
    "Store",
    "applied_migrations",
    "connect",
    "migrate",
    "migrations",
    "parse_since",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
