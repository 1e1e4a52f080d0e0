"""The SQLite store: schema, migrations, every query, typed rows.

All database access of the project goes through this package. Inside the service the
:class:`~prefloop.store.writer.Writer` is the only writer; other processes write through
the same store functions.
"""

from prefloop.store.schema import (
    EVENT_COLUMNS,
    Store,
    applied_migrations,
    connect,
    migrate,
    migrations,
    parse_since,
    utcnow,
)

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
