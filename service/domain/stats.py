"""The register in numbers: totals, counts per facet value, and studies first published per month."""

from __future__ import annotations

from collections import Counter

from peewee import fn

from ..models import Study
from .facets import REFERENCE_FACETS, STUDY_FACETS, reference_facets, study_facets


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def register_stats() -> dict:
    """What a dashboard or evidence map draws (a fixed number of queries, whatever the register's size)."""
    study_counts, studies = study_facets(STUDY_FACETS, [])
    reference_counts, references = reference_facets(REFERENCE_FACETS, [])
    by_month = {}
    for name, column in (("first_published", Study.first_published), ("registered", Study.registered)):
        per_day = (Study.select(column, fn.COUNT(Study.id)).where(column.is_null(False))
                   .group_by(column).tuples())
        per_month: Counter[str] = Counter()
        for day, count in per_day:
            per_month[str(day)[:7]] += count
        months = _months(min(per_month), max(per_month)) if per_month else []
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
