"""Walking a filtered query to its end in batches: every record, in order, in constant memory.

An export must not load the whole result (psycopg2's default cursor fetches every row of a query
into memory) nor page with OFFSET (each page rescans what came before).

- Postgres: the query runs once, in a server-side (named) cursor of the export's transaction, and each
  batch is one ``FETCH FORWARD n``: an order no index gives is sorted once, not once a batch.
- SQLite (which has no server-side cursors, and whose reads in a WAL snapshot are cheap): each batch
  is one query ``ORDER BY <keys>, id LIMIT n`` that continues after the last row of the previous batch.

Either way memory holds one batch whatever the size of the register, and each batch costs the same.
Rows are named tuples, not model instances (a third of the time), with only the converters that change
a value on the backend applied (db.lean_rows).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from ..db import database, is_postgres, lean_rows, select_rows
from ..models import Registration, StudyReference
from .ordering import SortKey, keyset_after, order_by

BATCH_SIZE = 500  # rows per query; tests lower it to cross batch boundaries with few records


def keyset_batches(query, keys: Sequence[SortKey], *, size: int | None = None) -> Iterator[list]:
    """Every row of ``query`` in the order of ``keys`` (which end with the id), as lists of at most
    ``size`` rows.

    ``query`` is a filtered peewee model select (its own ORDER BY and LIMIT are replaced). Each
    batch is one query; the last one is the first that comes back short.
    """
    size = size or BATCH_SIZE
    if is_postgres():
        yield from _cursor_batches(query.order_by(*order_by(keys)).namedtuples(), size)
        return
    names = [f"export_key{i}" for i in range(len(keys))]
    ordered = (query.select_extend(*(k.expr.alias(n) for k, n in zip(keys, names, strict=True)))
               .order_by(*order_by(keys)))
    ordered = ordered.namedtuples()  # a row's columns as attributes, without building model instances
    batch_query = ordered.limit(size)
    while True:
        rows = select_rows(batch_query)
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1]
        batch_query = ordered.where(keyset_after(keys, [getattr(last, n) for n in names])).limit(size)


_QUERY_LOG = logging.getLogger("peewee")  # where peewee logs each statement (and count_queries counts it)


def _cursor_batches(ordered, size: int) -> Iterator[list]:
    """``ordered``'s rows from a server-side cursor, ``size`` at a time (Postgres, in a transaction).

    The DECLARE and each FETCH are logged as peewee logs its statements."""
    sql, params = ordered.sql()
    name = f"export_{uuid.uuid4().hex}"
    # WITH HOLD only because peewee runs the transaction itself (psycopg2 is in autocommit and refuses a
    # plain named cursor); the cursor is closed before that transaction ends, so nothing is held past it.
    cursor = database.connection().cursor(name=name, withhold=True)
    try:
        _QUERY_LOG.debug((sql, params))
        cursor.execute(sql, params)
        rows_of = None
        while True:
            _QUERY_LOG.debug((f"FETCH FORWARD {size} FROM {name}", None))
            rows = cursor.fetchmany(size)
            if rows:
                if rows_of is None:  # peewee's converters and row class for these columns
                    rows_of = ordered._get_cursor_wrapper(cursor)
                    rows_of.initialize()
                yield lean_rows(rows_of, rows)
            if len(rows) < size:
                return
    finally:
        with contextlib.suppress(Exception):  # a failed transaction has dropped the cursor already
            cursor.close()


def reference_ids_of(study_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each study, the ids of its linked references in ascending order (one query)."""
    result: dict[int, list[int]] = defaultdict(list)
    study_ids = list(study_ids)
    if study_ids:
        rows = (StudyReference.select(StudyReference.study, StudyReference.reference)
                .where(StudyReference.study.in_(study_ids) & (StudyReference.role == "reports"))
                .order_by(StudyReference.study, StudyReference.reference).tuples())
        for study_id, reference_id in rows:
            result[study_id].append(reference_id)
    return result


def registration_ids_of(study_ids: Iterable[int]) -> dict[int, list[str]]:
    """For each study, its registration identifiers in the order it was given them (one query)."""
    result: dict[int, list[str]] = defaultdict(list)
    study_ids = list(study_ids)
    if study_ids:
        rows = (Registration.select(Registration.study, Registration.identifier)
                .where(Registration.study.in_(study_ids))
                .order_by(Registration.study, Registration.id).tuples())
        for study_id, identifier in rows:
            result[study_id].append(identifier)
    return result
