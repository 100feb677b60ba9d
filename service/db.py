"""Owns the database handle: the proxy models bind to, opening it from a URL, and per-request connections."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from peewee import SQL, AutoField, DatabaseProxy, Model, NodeList, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "synchronous": "normal",
    "cache_size": -32000,
}


class IdField(AutoField):
    """An id that is never reused: AUTOINCREMENT on SQLite (Postgres sequences never go back)."""

    def ddl(self, ctx):
        nodes = super().ddl(ctx)
        db = self.model._meta.database
        if isinstance(getattr(db, "obj", db), SqliteDatabase):
            return NodeList((nodes, SQL("AUTOINCREMENT")))
        return nodes


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


def open_database(url: str, *, max_connections: int = 8):
    """Return an unconnected, pooled peewee database for ``url`` (SQLite file or Postgres)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise ValueError("an in-memory SQLite database cannot be shared between requests")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        # Pooled too: a connection's page cache lives as long as it does. With one connection per
        # request every search re-read the index and table pages it needed from the OS (2.5x the
        # SQL time of the same statements on a warm connection).
        # A pooled connection is handed to one thread at a time, but not always the thread that opened it.
        return PooledSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, autoconnect=False, check_same_thread=False,
                                    max_connections=max_connections, stale_timeout=300, timeout=10)
    # Every Postgres URL goes through a pool: opening a backend per request cost 5x throughput.
    params = dict(parse_qsl(parts.query))
    params.setdefault("max_connections", str(max_connections))
    scheme = parts.scheme.split("+")[0]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    pooled = parts._replace(scheme=f"{scheme}+pool", query=query).geturl()
    # connect_timeout bounds a connect to a vanished host (health checks answer 503 in time);
    # timeout bounds the wait for a free pooled connection.
    db = connect(pooled, autoconnect=False, stale_timeout=300, timeout=10, connect_timeout=3)
    assert isinstance(db, PooledPostgresqlDatabase)
    return db


def init_database(url: str, *, max_connections: int = 8):
    """Bind the shared proxy to the database at ``url`` and return it."""
    previous = database.obj
    if previous is not None:
        close_all(previous)
    db = open_database(url, max_connections=max_connections)
    database.initialize(db)
    return db


def close_all(db) -> None:
    if not db.is_closed():
        db.close()
    if hasattr(db, "close_all"):
        db.close_all()


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def backend_name() -> str:
    return "postgresql" if is_postgres() else "sqlite"


@dataclass
class Changes:
    """Records whose derived data (the search index) must be rewritten before the write commits."""

    studies: set[int] = field(default_factory=set)
    references: set[int] = field(default_factory=set)
    # Studies written with a date of their own (a seed, a record that carries its `updated`): what is
    # derived from them at commit keeps that date.
    study_dates: dict[int, Any] = field(default_factory=dict)


_changes: contextvars.ContextVar[Changes | None] = contextvars.ContextVar("changes", default=None)
# Called with the transaction's Changes just before the outermost write transaction commits.
before_commit: list[Callable[[Changes], None]] = []


def changed(*, studies: Iterable[int] = (), references: Iterable[int] = (),
            study_dates: dict[int, Any] | None = None) -> None:
    """Note, inside a write transaction, records whose text, registrations or links changed (and the
    studies written with an `updated` of their own, which derivation keeps)."""
    pending = _changes.get()
    if pending is None:
        raise RuntimeError("changed() outside write_transaction()")
    pending.studies.update(studies)
    pending.references.update(references)
    pending.study_dates.update(study_dates or {})


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front, so read-check-write cannot interleave.

    Nested, it is a savepoint. The outermost one runs the ``before_commit`` hooks (the search
    index refresh) inside the transaction, so records and index commit or roll back together.
    """
    outermost = _changes.get() is None
    token = _changes.set(Changes()) if outermost else None
    try:
        with database.atomic() if is_postgres() else database.atomic(lock_type="IMMEDIATE"):
            yield
            if outermost:
                pending = _changes.get()
                for hook in before_commit:
                    hook(pending)
    finally:
        if token is not None:
            _changes.reset(token)


def locked(query):
    """``query`` with FOR UPDATE where the backend has row locks (SQLite's IMMEDIATE lock covers it)."""
    return query.for_update() if is_postgres() else query


@contextlib.contextmanager
def connection() -> Iterator[None]:
    """Open a connection for a CLI command or a test, and give it back afterwards."""
    with database.connection_context():
        yield


def register_request_hooks(app) -> None:
    from flask import g

    @app.before_request
    def _connect() -> None:
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc) -> None:
        # A streamed export (api/exports.py) still reads after this runs; it closes the connection itself.
        if g.get("stream_holds_connection"):
            return
        if not database.is_closed():
            database.close()


def _array_types(columns) -> list[str]:
    """The Postgres array type of each column (``varchar[]``, ``date[]``...), for ``unnest`` casts."""
    types = database.obj._field_types
    return [("integer" if c.field_type in ("AUTO", "BIGAUTO", "INT")
             else types.get(c.field_type, c.field_type)).lower() + "[]" for c in columns]


def _column_values(rows: list[dict], names: list[str], columns) -> list[list]:
    """Each column's values as the driver takes them (``rows`` may leave out a column: its default)."""
    out = []
    for name, column in zip(names, columns, strict=True):
        default = column.default
        values = []
        for row in rows:
            value = row[name] if name in row else (default() if callable(default) else default)
            values.append(column.db_value(value))
        out.append(values)
    return out


def insert_rows(model, rows: list[dict], *, returning: bool = False) -> list[int]:
    """Insert many rows in a few statements (peewee's query builder, and on Postgres even the driver's
    interpolation of one parameter per value, cost more than the database on bulk loads: there every
    column goes as one array, ``INSERT ... SELECT FROM unnest(...)``); with ``returning``, the new ids in
    the order of ``rows``."""
    if not rows:
        return []
    fields = model._meta.fields
    names = list(dict.fromkeys(name for row in rows for name in row))
    # Columns added by a migration have no default in the database: every default is sent.
    names += [name for name, column in fields.items() if name not in names and column.default is not None
              and not column.primary_key]
    columns = [fields[name] for name in names]
    param = database.param
    head = (f'INSERT INTO "{model._meta.table_name}" ('
            + ", ".join(f'"{column.column_name}"' for column in columns) + ") ")
    tail = f' RETURNING "{model._meta.primary_key.column_name}"' if returning else ""
    ids: list[int] = []
    if is_postgres():
        arrays = ", ".join(f"{param}::{cast}" for cast in _array_types(columns))
        listed = ", ".join(f"u{i}" for i in range(len(columns)))
        size = 5000
        chunks = [rows[start:start + size] for start in range(0, len(rows), size)]
        for chunk in chunks:
            # Ids come from one sequence, drawn in the order the rows are inserted: that of the arrays.
            cursor = database.execute_sql(
                f"{head}SELECT {listed} FROM unnest({arrays}) WITH ORDINALITY AS u ({listed}, n) ORDER BY n"
                + tail, _column_values(chunk, names, columns))
            if returning:
                ids.extend(sorted(row[0] for row in cursor.fetchall()))
        return ids
    per_row = "(" + ", ".join([param] * len(names)) + ")"
    size = max(1, 30_000 // len(names))
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        values = [value for row in zip(*_column_values(chunk, names, columns), strict=True) for value in row]
        cursor = database.execute_sql(head + "VALUES " + ", ".join([per_row] * len(chunk)) + tail, values)
        if returning:
            # Ids come from one sequence, given in the order the rows are inserted.
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
    return ids


def any_of(column: str, values) -> tuple[str, list]:
    """A condition "``column`` is one of ``values``" for raw SQL, with its parameters: one array
    parameter on Postgres (``= ANY``), a list of placeholders on SQLite. Building the same condition
    with peewee's ``in_`` costs more than running it for the hundreds of values of an import batch."""
    values = list(values)
    if is_postgres():
        return f"{column} = ANY({database.param})", [values]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join([database.param] * len(values))})", values


def select_in(sql: str, column: str, values, *, params=(), size: int = 5000) -> list[tuple]:
    """Rows of ``sql`` (raw; ``{where}`` stands for the condition ``column`` is one of ``values``,
    its own ``params`` come first), for any number of values: on SQLite in chunks of ``size``,
    which keeps each value's rows together but not any order across chunks."""
    values = list(dict.fromkeys(values))
    if not values:
        return []
    chunks = [values] if is_postgres() else [values[i:i + size] for i in range(0, len(values), size)]
    rows: list[tuple] = []
    for chunk in chunks:
        condition, extra = any_of(column, chunk)
        rows.extend(database.execute_sql(sql.format(where=condition), [*params, *extra]).fetchall())
    return rows


def update_rows(model, changes, *, size: int = 5000) -> int:
    """Set different values on many rows (``changes``: (id, {field name: value}) pairs) in a few
    statements: rows changing the same fields share one ``UPDATE ... FROM unnest(arrays)`` on Postgres,
    one ``executemany`` on SQLite. Returns the rows given."""
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for row_id, values in changes:
        groups.setdefault(tuple(values), []).append((row_id, values))
    fields, table = model._meta.fields, model._meta.table_name
    key = model._meta.primary_key.column_name
    param = database.param
    count = 0
    for names, rows in groups.items():
        columns = [fields[name] for name in names]
        count += len(rows)
        if is_postgres():
            arrays = ", ".join(f"{param}::{cast}" for cast in ["integer[]", *_array_types(columns)])
            setting = ", ".join(f'"{c.column_name}" = v.u{i}' for i, c in enumerate(columns))
            listed = ", ".join(["__id"] + [f"u{i}" for i in range(len(columns))])
            for start in range(0, len(rows), size):
                chunk = rows[start:start + size]
                values = _column_values([row for _, row in chunk], list(names), columns)
                database.execute_sql(
                    f'UPDATE "{table}" AS t SET {setting} FROM unnest({arrays}) AS v ({listed}) '
                    f'WHERE t."{key}" = v.__id', [[row_id for row_id, _ in chunk], *values])
        else:
            values = zip(*_column_values([row for _, row in rows], list(names), columns), strict=True)
            setting = ", ".join(f'"{c.column_name}" = {param}' for c in columns)
            database.cursor().executemany(
                f'UPDATE "{table}" SET {setting} WHERE "{key}" = {param}',
                [(*row, row_id) for (row_id, _), row in zip(rows, values, strict=True)])
    return count
