"""Facet counts over a filtered set of studies or references: at most one SQL query per facet.

Every value of a facet's vocabulary is listed, in vocabulary order, even at count 0, so a client
can draw a stable list of filters. Single-valued facets (the four classifications, a reference's
type, `has_results`, `year`) add up to the set's total; `registry` and `reference_type` count the
studies having at least one registration / linked reference of that value, so a study with two
counts under both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from peewee import Case, Table, fn

from ..models import Reference, Registration, Study, StudyCountry
from ..models import StudyReportTypes as Types
from ..vocabularies import (
    FACETS,
    HAS_RESULTS_BIT,
    REFERENCE_TYPES,
    REGISTRIES,
    REPORT_TYPE_BITS,
    RESULTS_IN,
    STATUS_VOCABULARIES,
)

STUDY_FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment", "registry",
                "reference_type", "has_results", "recruitment_status", "phase", "country", "results_in")
# Single-valued columns of the study counted together in one grouped query.
GROUPED = {**FACETS, **STATUS_VOCABULARIES}
REFERENCE_FACETS = ("type", "has_results", "year")


def _listed(order: Sequence, counts: dict) -> list[dict]:
    return [{"value": value, "count": counts.get(value, 0)} for value in order]


def _reported(conditions: Sequence, ids, *columns):
    """``columns`` of `study_report_types` over the studies matching ``conditions``."""
    query = Types.select(*columns)
    return query.where(Types.study.in_(ids)) if conditions else query


def _where(query, conditions: Sequence):
    return query.where(*conditions) if conditions else query


def _grouped(model, names: Sequence[str], conditions: Sequence) -> tuple[dict[str, Counter], int]:
    """Counts per value of several columns of ``model`` (or of a table: columns named alike) and the
    total, in one grouped query."""
    columns = [model.c[n] if isinstance(model, Table) else getattr(model, n) for n in names]
    ident = model.c.id if isinstance(model, Table) else model.id
    rows = _where(model.select(*columns, fn.COUNT(ident)), conditions).group_by(*columns).tuples()
    counts = {n: Counter() for n in names}
    total = 0
    for *values, count in rows:
        total += count
        for name, value in zip(names, values, strict=True):
            counts[name][value] += count
    return counts, total


def study_facets(names: Sequence[str], conditions: Sequence) -> tuple[dict[str, list[dict]], int]:
    """Counts of the studies matching ``conditions`` (expressions over Study) for each facet, and
    how many studies match. The four classifications are counted together in one grouped query
    (which also gives the total); `registry`, `reference_type`, `has_results` take one each, the last
    two over `study_report_types` (kept by triggers: m0013), not a join of every reporting reference."""
    ids = _where(Study.select(Study.id), conditions)
    columns = [n for n in names if n in GROUPED]
    if columns:
        counts, total = _grouped(Study, columns, conditions)
    else:
        counts, total = {}, _where(Study.select(Study.id), conditions).count()
    result = {}
    for name in names:
        if name in GROUPED:
            result[name] = _listed(GROUPED[name], counts[name])
        elif name == "country":
            rows = (StudyCountry.select(StudyCountry.code, fn.COUNT(StudyCountry.id))
                    .group_by(StudyCountry.code))
            rows = rows.where(StudyCountry.study.in_(ids)) if conditions else rows
            found = sorted(rows.tuples(), key=lambda row: (-row[1], row[0]))
            result[name] = [{"value": code, "count": count} for code, count in found]
        elif name == "results_in":
            flags = [Study.results_registry, Study.results_article, Study.results_preprint]
            sums = [fn.SUM(Case(None, [(flag == True, 1)], 0)) for flag in flags]  # noqa: E712
            none = fn.SUM(Case(None, [((flags[0] == False) & (flags[1] == False)  # noqa: E712
                                       & (flags[2] == False), 1)], 0))  # noqa: E712
            row = _where(Study.select(*sums, none), conditions).tuples().first() or (0, 0, 0, 0)
            result[name] = _listed(list(RESULTS_IN), dict(zip(RESULTS_IN, (int(v or 0) for v in row),
                                                               strict=True)))
        elif name == "registry":
            rows = (Registration.select(Registration.registry, fn.COUNT(fn.DISTINCT(Registration.study)))
                    .group_by(Registration.registry))
            rows = rows.where(Registration.study.in_(ids)) if conditions else rows
            result[name] = _listed(list(REGISTRIES), dict(rows.tuples()))
        elif name == "reference_type":
            # A bit per type reporting the study: the few masks there are, counted.
            rows = _reported(conditions, ids, Types.types, fn.COUNT(Types.study)).group_by(
                Types.types).tuples()
            by_type: Counter = Counter()
            for mask, count in rows:
                for kind, bit in REPORT_TYPE_BITS.items():
                    if mask & bit:
                        by_type[kind] += count
            result[name] = _listed(list(REFERENCE_TYPES), by_type)
        elif name == "has_results":
            with_results = _reported(conditions, ids, fn.COUNT(Types.study)).where(
                Types.types.bin_and(HAS_RESULTS_BIT) != 0)
            count = with_results.scalar() or 0
            result[name] = _listed([True, False], {True: count, False: total - count})
    return result, total


def reference_facets(names: Sequence[str], conditions: Sequence, *,
                     rows: Table | None = None) -> tuple[dict[str, list[dict]], int]:
    """Counts of the references matching ``conditions`` for each facet (years newest first, then
    `null` for references without a year), and how many match: one grouped query. With ``rows`` (the
    search rows, which carry the facets' columns: references.search_rows), ``conditions`` are on them
    and the count reads them alone."""
    counts, total = _grouped(Reference if rows is None else rows, list(names), conditions)
    result = {}
    for name in names:
        if name == "type":
            result[name] = _listed(list(REFERENCE_TYPES), counts[name])
        elif name == "has_results":
            result[name] = _listed([True, False], counts[name])
        else:
            years = sorted((y for y in counts[name] if y is not None), reverse=True)
            result[name] = _listed(years + ([None] if None in counts[name] else []), counts[name])
    return result, total
