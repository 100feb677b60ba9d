"""Walking a filtered query to its end in keyset batches: every record, in order, in constant memory.

An export must not load the whole result (psycopg2's default cursor fetches every row of a query
into memory) nor page with OFFSET (each page rescans what came before). Instead each batch is one
query ``ORDER BY <keys>, id LIMIT n`` that continues after the last row of the previous batch, so
memory holds one batch whatever the size of the register, and each batch costs the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_

from peewee import Node

from ..models import StudyReference

BATCH_SIZE = 500  # rows per query; tests lower it to cross batch boundaries with few records


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a column, or any expression that is deterministic and never NULL per row."""

    expression: Node
    descending: bool = False


def order_keys(sorts: Mapping[str, Node], sort: str) -> list[OrderKey]:
    """The keys for a public ``sort`` value of a list endpoint (``-`` prefix: descending)."""
    return [OrderKey(sorts[sort.lstrip("-")], sort.startswith("-"))]


def _with_tie_break(keys: Sequence[OrderKey], id_field) -> list[OrderKey]:
    keys = list(keys)
    if not keys or keys[-1].expression is not id_field:
        keys.append(OrderKey(id_field))  # the id makes the order total, as the JSON list does
    return keys


def keyset_after(keys: list[OrderKey], values: list) -> Node:
    """Rows strictly after ``values`` in the order of ``keys`` (lexicographic, per-key direction).

    Written as ``k0 >= v0 AND (k0 > v0 OR (k0 = v0 AND k1 > v1) OR ...)``: the leading range on the
    first key lets an index on it start the scan at the last row instead of filtering every row.
    """
    def beyond(key: OrderKey, value):
        return key.expression < value if key.descending else key.expression > value

    branches = []
    for i, key in enumerate(keys):
        equal = [keys[j].expression == values[j] for j in range(i)]
        branches.append(reduce(and_, [*equal, beyond(key, values[i])]))
    condition = reduce(or_, branches)
    if len(keys) > 1:
        first = keys[0]
        start = first.expression <= values[0] if first.descending else first.expression >= values[0]
        condition = start & condition
    return condition


def keyset_batches(query, keys: Sequence[OrderKey], *, size: int | None = None) -> Iterator[list]:
    """Every row of ``query`` in the order of ``keys`` (+ id), as lists of at most ``size`` rows.

    ``query`` is a filtered peewee model select (its own ORDER BY and LIMIT are replaced). Each
    batch is one query; the last one is the first that comes back short.
    """
    size = size or BATCH_SIZE
    id_field = query.model._meta.primary_key
    keys = _with_tie_break(keys, id_field)
    names = [f"_export_key{i}" for i in range(len(keys))]
    ordered = (query.select_extend(*(k.expression.alias(n) for k, n in zip(keys, names, strict=True)))
               .order_by(*(k.expression.desc() if k.descending else k.expression.asc() for k in keys)))
    batch_query = ordered.limit(size)
    while True:
        rows = list(batch_query)
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1]
        batch_query = ordered.where(keyset_after(keys, [getattr(last, n) for n in names])).limit(size)


def reference_ids_of(study_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each study, the ids of its linked references in ascending order (one query)."""
    result: dict[int, list[int]] = defaultdict(list)
    study_ids = list(study_ids)
    if study_ids:
        rows = (StudyReference.select(StudyReference.study, StudyReference.reference)
                .where(StudyReference.study.in_(study_ids))
                .order_by(StudyReference.study, StudyReference.reference).tuples())
        for study_id, reference_id in rows:
            result[study_id].append(reference_id)
    return result
