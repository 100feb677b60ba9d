"""The register in numbers: totals, counts per facet value, and studies first published per month."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from peewee import fn

from ..models import Study
from ..validation import within_range
from .facets import REFERENCE_FACETS, STUDY_FACETS, reference_facets, study_facets


def _months(first: dt.date, last: dt.date) -> list[str]:
    """Every month from ``first``'s to ``last``'s, as `YYYY-MM` (dates compared as dates)."""
    months = []
    month = first.replace(day=1)
    while month <= last:
        months.append(f"{month.year:04d}-{month.month:02d}")
        month = (month + dt.timedelta(days=31)).replace(day=1)
    return months


def _as_date(value) -> dt.date | None:
    """A stored day as a date (SQLite may hand back text); None when unreadable."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def register_stats() -> dict:
    """What a dashboard or evidence map draws (a fixed number of queries, whatever the register's size)."""
    study_counts, studies = study_facets(STUDY_FACETS, [])
    reference_counts, references = reference_facets(REFERENCE_FACETS, [])
    by_month = {}
    for name, column in (("first_published", Study.first_published), ("registered", Study.registered)):
        per_day = (Study.select(column, fn.COUNT(Study.id)).where(column.is_null(False))
                   .group_by(column).tuples())
        # Only days in the register's date range count: a stray far date (stored before the range was
        # enforced) cannot make the list of months explode.
        days: Counter[dt.date] = Counter()
        for value, count in per_day:
            day = _as_date(value)
            if within_range(day):
                days[day] += count
        per_month: Counter[str] = Counter()
        for day, count in days.items():
            per_month[f"{day.year:04d}-{day.month:02d}"] += count
        months = _months(min(days), max(days)) if days else []
        by_month[name] = [{"month": m, "count": per_month[m]} for m in months]
    last_updated = Study.select(fn.MAX(Study.updated)).scalar()
    return {
        "studies": studies,
        "references": references,
        "study_facets": study_counts,
        "reference_facets": reference_counts,
        "studies_first_published_by_month": by_month["first_published"],
        "studies_registered_by_month": by_month["registered"],
        "last_updated": last_updated,
    }
