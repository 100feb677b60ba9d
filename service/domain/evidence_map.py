"""The evidence map's counts over a filtered set of studies: one grouped query per chart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from peewee import fn

from ..models import Study
from ..validation import within_range
from ..vocabularies import STUDY_AIM, STUDY_DESIGN, STUDY_TYPE
from .stats import _as_date, _months


def _where(query, conditions: Sequence):
    return query.where(*conditions) if conditions else query


def registered_by_month_and_type(conditions: Sequence = ()) -> dict:
    """Studies per month of registration and study type: every month from the first to the last
    registration of the set (as dates, as /stats counts them), each with a count per type in
    vocabulary order; the types that occur, and how many studies have a registration date.

    One query grouped by day and type (portable across SQLite and Postgres); days outside the
    register's date range are not counted, so a stray far date cannot make the months explode.
    """
    rows = _where(Study.select(Study.registered, Study.study_type, fn.COUNT(Study.id))
                  .where(Study.registered.is_null(False)), conditions)
    per_month: dict[str, Counter] = {}
    first = last = None
    for value, study_type, count in rows.group_by(Study.registered, Study.study_type).tuples():
        day = _as_date(value)
        if not within_range(day):
            continue
        first = day if first is None or day < first else first
        last = day if last is None or day > last else last
        per_month.setdefault(f"{day.year:04d}-{day.month:02d}", Counter())[study_type] += count
    present = Counter()
    for counts in per_month.values():
        present.update(counts)
    types = [t for t in STUDY_TYPE if present[t]] + sorted(t for t in present if t not in STUDY_TYPE)
    months = _months(first, last) if first is not None else []
    return {
        "types": types,
        "months": [{"month": m, "counts": {t: per_month.get(m, Counter())[t] for t in types}}
                   for m in months],
        "dated": sum(present.values()),
    }


def aim_by_design(conditions: Sequence = ()) -> dict:
    """Studies per study aim × study design (every vocabulary value as a row or column, even at 0),
    and the set's total: one grouped query."""
    rows = _where(Study.select(Study.study_aim, Study.study_design, fn.COUNT(Study.id)), conditions)
    counts: Counter = Counter()
    for aim, design, count in rows.group_by(Study.study_aim, Study.study_design).tuples():
        counts[aim, design] += count
    aims = list(STUDY_AIM) + sorted({a for a, _ in counts} - set(STUDY_AIM))
    designs = list(STUDY_DESIGN) + sorted({d for _, d in counts} - set(STUDY_DESIGN))
    return {
        "aims": aims,
        "designs": designs,
        "counts": {aim: {design: counts[aim, design] for design in designs} for aim in aims},
        "design_totals": {design: sum(counts[aim, design] for aim in aims) for design in designs},
        "total": sum(counts.values()),
    }


def evidence_map(conditions: Sequence = ()) -> dict:
    """Both charts of the evidence map over the studies meeting ``conditions`` (two queries)."""
    return {"by_month": registered_by_month_and_type(conditions), "matrix": aim_by_design(conditions)}


__all__ = ["aim_by_design", "evidence_map", "registered_by_month_and_type"]
