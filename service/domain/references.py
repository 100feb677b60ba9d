"""References: filtered queries, reads, and transactional create/update/delete."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from peewee import Select

from ..db import changed, database, locked, write_transaction
from ..models import Reference, Study, StudyReference, utcnow
from ..search import index
from ..search.query import SearchQuery
from . import linking, records
from .errors import InvalidInput, NotFound
from .studies import touch_references, touch_studies

REFERENCE_SORTS = {
    "id": Reference.id,
    "title": Reference.title,
    "first_published": Reference.first_published,
    "updated": Reference.updated,
}
WRITABLE = (
    "type", "title", "authors", "abstract", "source", "year", "published", "volume", "issue",
    "pages", "doi", "pmid", "url", "registration_id", "has_results", "publication_types", "notes",
    "first_published", "updated",
)


# The filters on columns the search rows of references carry on Postgres (search.index.CARRIED).
_CARRIED_FILTERS = frozenset({"type", "has_results", "year_from", "year_to", "updated_since"})


def search_rows(q: SearchQuery | None, filters: Mapping[str, Any]):
    """The search rows of references (search.index.reference_rows) when the matches of ``q`` with
    ``filters`` can be counted and ranked from them alone, without reading "reference" for each match:
    on Postgres, every filter on a column they carry. Else None."""
    if q is None or not index.carries_references() or not set(filters) <= _CARRIED_FILTERS:
        return None
    return index.reference_rows()


def ranked_search_rows(q: SearchQuery, filters: Mapping[str, Any]):
    """The matches of ``q`` meeting ``filters`` (all carried: :func:`search_rows`) as (id, rank,
    updated), from the search rows alone, and the subquery of matches they are selected from (what
    their sort keys are columns of)."""
    hits = index.matches(index.REFERENCE_TABLE, q, carried=True).alias(index.HITS)
    query = Select([hits], [hits.c.id, hits.c.rank, hits.c.updated]).bind(database)
    conditions = reference_conditions(rows=hits, **filters)
    return (query.where(*conditions) if conditions else query), hits


def reference_conditions(
    *,
    rows=None,
    q: SearchQuery | None = None,
    type: Sequence[str] = (),  # noqa: A002 - the API's own parameter name
    has_results: bool | None = None,
    study_id: int | None = None,
    linked: bool | None = None,
    doi: str | None = None,
    pmid: str | None = None,
    registration_id: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    updated_since: dt.datetime | None = None,
) -> list:
    """Conditions on Reference for every given filter (values OR-ed within a filter, filters AND-ed).
    With ``rows`` (search rows: :func:`search_rows`, or a subquery of them), on their columns instead:
    only the carried filters then."""
    def column(name: str):
        return getattr(Reference, name) if rows is None else rows.c[name]

    if rows is not None and (study_id, linked, doi, pmid, registration_id) != (None,) * 5:
        raise ValueError("the search rows carry no column for study_id, linked, doi, pmid, registration_id")
    conditions = []
    if q is not None:
        conditions.append(Reference.id.in_(index.matching_ids(index.REFERENCE_TABLE, q)) if rows is None
                          else index.matching(rows, index.REFERENCE_TABLE, q))
    if type:
        conditions.append(column("type").in_(list(type)))
    if has_results is not None:
        conditions.append(column("has_results") == has_results)
    if study_id is not None:
        conditions.append(Reference.id.in_(
            StudyReference.select(StudyReference.reference).where(
                (StudyReference.study == study_id) & (StudyReference.role == "reports"))))
    if linked is not None:
        reports = StudyReference.select(StudyReference.reference).where(StudyReference.role == "reports")
        conditions.append(Reference.id.in_(reports) if linked else Reference.id.not_in(reports))
    if doi is not None:
        conditions.append(Reference.doi == normalise_doi(doi))
    if pmid is not None:
        conditions.append(Reference.pmid == pmid)
    if registration_id is not None:
        conditions.append(Reference.registration_id == linking.canonical_identifier(registration_id))
    if year_from is not None:
        conditions.append(column("year") >= year_from)
    if year_to is not None:
        conditions.append(column("year") <= year_to)
    if updated_since is not None:
        conditions.append(column("updated") >= updated_since)
    return conditions


def filtered_references(conditions: Sequence = (), *, ranked_by: SearchQuery | None = None):
    """References meeting ``conditions``; with ``ranked_by``, only those matching that search, each
    with its relevance as ``rank``."""
    query = Reference.select()
    if ranked_by is not None:
        hits = index.matches(index.REFERENCE_TABLE, ranked_by).alias(index.HITS)
        query = (query.join(hits, on=(Reference.id == hits.c.id)).select_extend(hits.c.rank)
                 .objects())
    return query.where(*conditions) if conditions else query


def reference_rows(top):
    """The whole rows of the references whose ids ``top`` (a subquery with an ``id`` column)
    selects: a page found on its sort keys alone."""
    return Reference.select().join(top, on=(Reference.id == top.c.id))


def normalise_doi(doi: str) -> str:
    """DOIs are case-insensitive: store and match them lower-cased, without a resolver prefix."""
    text = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                   "http://dx.doi.org/", "doi:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            break
    return text.lower()


def _get(reference_id: int, *, lock: bool = False) -> Reference:
    query = Reference.select().where(Reference.id == reference_id)
    ref = (locked(query) if lock else query).first()
    if ref is None:
        raise NotFound(f"Reference {reference_id} does not exist.")
    return ref


def get_reference(reference_id: int, *, fields: Collection[str] | None = None) -> dict:
    """One reference; with ``fields``, only those members and `id` (records.reference_dicts)."""
    ref = records.reference_row(reference_id)  # the lean read: fixed SQL (records.reference_row)
    if ref is None:
        raise NotFound(f"Reference {reference_id} does not exist.")
    return records.reference_dicts([ref], fields=fields)[0]


def _column_values(data: dict[str, Any]) -> dict[str, Any]:
    values = {k: data[k] for k in WRITABLE if k in data}
    for name in ("authors", "publication_types"):
        if name in values:
            values[name] = json.dumps(values[name] or [], ensure_ascii=False)
    if values.get("doi"):
        values["doi"] = normalise_doi(values["doi"])
    if values.get("registration_id"):
        values["registration_id"] = linking.canonical_identifier(values["registration_id"])
    if values.get("published") and values.get("year") is None and "year" not in data:
        values["year"] = int(values["published"][:4])
    return values


def _linked_study_ids(reference_id: int) -> list[int]:
    return [s for (s,) in StudyReference.select(StudyReference.study)
            .where(StudyReference.reference == reference_id).tuples()]


# A reference's fields its reporting studies derive values from (domain/derive.py: dissemination).
REPORTING_FIELDS = ("type", "has_results", "published")


def create_reference(data: dict[str, Any]) -> int:
    """Create a reference, linked by hand to ``study_ids`` when given; return its id."""
    study_ids = sorted(set(data.get("study_ids") or []))
    now = utcnow()
    values = _column_values(data)
    values.setdefault("first_published", now.date())
    values.setdefault("updated", now)
    values["created"] = now
    with write_transaction():
        if study_ids:
            found = {s for (s,) in Study.select(Study.id).where(Study.id.in_(study_ids)).tuples()}
            missing = [s for s in study_ids if s not in found]
            if missing:
                raise InvalidInput(
                    f"No study has id {', '.join(map(str, missing))}.",
                    errors={"study_ids": [f"Study {s} does not exist." for s in missing]})
        reference_id = Reference.insert(values).execute()
        changed(references=[reference_id])
        if study_ids:
            StudyReference.insert_many(
                [{"study": s, "reference": reference_id, "link": "manual", "created": now}
                 for s in study_ids]).execute()
            touch_studies(study_ids, now)
        linking.relink_reference(Reference.get_by_id(reference_id),
                                 lambda ids: touch_studies(ids, now))
    return reference_id


def update_reference(reference_id: int, data: dict[str, Any], *,
                     if_match: list[str] | None = None) -> None:
    with write_transaction():
        ref = _get(reference_id, lock=True)
        records.check_precondition(
            f"Reference {reference_id}", lambda: records.reference_dicts([ref])[0], if_match)
        values = _column_values(data)
        now = utcnow()
        values.setdefault("updated", now)
        Reference.update(values).where(Reference.id == reference_id).execute()
        changed(references=[reference_id])
        if any(name in data for name in REPORTING_FIELDS):
            # What its studies derive from it (dissemination): they are derived again.
            changed(studies=_linked_study_ids(reference_id))
        if any(name in data for name in linking.TEXT_FIELDS + linking.DECIDING_FIELDS):
            linking.relink_reference(Reference.get_by_id(reference_id),
                                     lambda ids: touch_studies(ids, now))
        # A study's record shows its references in full, so it changes when one of them does.
        touch_studies(_linked_study_ids(reference_id), now)


def delete_reference(reference_id: int, *, if_match: list[str] | None = None) -> None:
    with write_transaction():
        ref = _get(reference_id, lock=True)
        records.check_precondition(
            f"Reference {reference_id}", lambda: records.reference_dicts([ref])[0], if_match)
        study_ids = _linked_study_ids(reference_id)
        changed(studies=study_ids, references=[reference_id])
        StudyReference.delete().where(StudyReference.reference == reference_id).execute()
        Reference.delete().where(Reference.id == reference_id).execute()
        touch_studies(study_ids, utcnow())


def relink_all(progress=None) -> int:
    """Re-run automatic linking over every reference (after a rule or pattern change), in batches;
    return links added. References and studies whose links changed are touched."""
    added = 0
    with write_transaction():
        now = utcnow()
        ids = [r for (r,) in Reference.select(Reference.id).order_by(Reference.id).tuples()]
        for start in range(0, len(ids), 2000):
            batch = list(Reference.select(Reference.id, *[getattr(Reference, f) for f in linking.TEXT_FIELDS])
                         .where(Reference.id.in_(ids[start:start + 2000])).order_by(Reference.id))
            linking.remember_identifiers_bulk(
                {ref.id: linking.identifiers_in({f: getattr(ref, f) for f in linking.TEXT_FIELDS})
                 for ref in batch})
            gained, studies, references = linking.relink_references([ref.id for ref in batch])
            added += gained
            if studies:
                changed(studies=studies)
                touch_studies(sorted(studies), now)
            if references:
                touch_references(sorted(references), now)
            if progress is not None:
                progress(len(batch))
    return added
