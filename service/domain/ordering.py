"""The order of a list: its sort keys, and the keyset condition "rows after this one".

A list page, a cursor and an export batch all walk the same order: the keys of a public `sort`
(or relevance), always ending with the id so the order is total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_

from peewee import (
    AutoField,
    BooleanField,
    DateField,
    DateTimeField,
    Field,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Node,
    fn,
)

RELEVANCE = "relevance"


@dataclass(frozen=True)
class SortKey:
    """One key of an order: an expression that is deterministic and never NULL per row, its
    direction, and the attribute a fetched row carries its value in."""

    expr: Node
    descending: bool
    attr: str
    # What a value of the key is (`int`, `float`, `str`, `date`, `datetime`): told by a column itself,
    # given for an expression. A cursor's values are checked against it.
    value_kind: str | None = None

    @property
    def kind(self) -> str:
        if self.value_kind is not None:
            return self.value_kind
        expr = self.expr
        if isinstance(expr, DateTimeField):
            return "datetime"
        if isinstance(expr, DateField):
            return "date"
        if isinstance(expr, BooleanField):
            return "bool"
        if isinstance(expr, AutoField | IntegerField | ForeignKeyField):
            return "int"
        if isinstance(expr, FloatField):
            return "float"
        if isinstance(expr, Field):
            return "str"
        raise TypeError(f"sort key {self.attr}: an expression needs its value_kind")


@dataclass(frozen=True)
class Dated:
    """A date column that may be empty, sorted with the empty ones last in either direction (a sort key
    is never NULL: the column is compared through COALESCE with a day no record has)."""

    field: DateField


EARLIEST, LATEST = dt.date(1, 1, 1), dt.date(9999, 12, 31)


def sort_keys(sort: str, sorts: Mapping[str, Field], id_field: Field, *, rank: Node | None = None,
              updated: Field | None = None) -> list[SortKey]:
    """The order for ``sort`` (a field, `-field`, or `relevance`), always ending with the id."""
    ident = SortKey(id_field, False, id_field.name)
    if sort == RELEVANCE:
        # Most relevant first; equally relevant: most recently updated, then by id.
        # Kinds given: the keys may be columns of a subquery (search rows) rather than the model's fields.
        return [SortKey(rank, True, "rank", "float"), SortKey(updated, True, updated.name, "datetime"),
                SortKey(id_field, False, id_field.name, "int")]
    column = sorts[sort.lstrip("-")]
    if isinstance(column, Dated):
        descending = sort.startswith("-")
        expr = fn.COALESCE(column.field, EARLIEST if descending else LATEST)
        return [SortKey(expr, descending, f"{column.field.name}_key", "date"), ident]
    if column is id_field:
        return [SortKey(id_field, sort.startswith("-"), id_field.name)]
    return [SortKey(column, sort.startswith("-"), column.name), ident]


def keyset_after(keys: Sequence[SortKey], values: Sequence) -> Node:
    """Rows strictly after ``values`` in the order of ``keys`` (lexicographic, per-key direction).

    Written as ``k0 >= v0 AND (k0 > v0 OR (k0 = v0 AND k1 > v1) OR ...)``: the leading range on the
    first key lets an index on it start the scan at the last row instead of filtering every row.
    """
    def beyond(key: SortKey, value):
        return key.expr < value if key.descending else key.expr > value

    branches = []
    for i, key in enumerate(keys):
        equal = [keys[j].expr == values[j] for j in range(i)]
        branches.append(reduce(and_, [*equal, beyond(key, values[i])]))
    condition = reduce(or_, branches)
    if len(keys) > 1:
        first = keys[0]
        start = first.expr <= values[0] if first.descending else first.expr >= values[0]
        condition = start & condition
    return condition


def order_by(keys: Sequence[SortKey]) -> list[Node]:
    """The ORDER BY terms of ``keys``."""
    return [k.expr.desc() if k.descending else k.expr.asc() for k in keys]
