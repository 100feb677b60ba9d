"""Turning rows into the plain dicts the API serves, in a fixed number of queries, and their ETags."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence

import orjson
import pycountry
from peewee import fn

from ..db import RowPlan, columns_of, database, select_in
from ..models import Reference, Study, StudyReference
from ..vocabularies import type_label
from .errors import PreconditionFailed
from .linking import identifiers_found, stored_evidence

REFERENCE_FIELDS = (
    "id", "type", "title", "authors", "abstract", "source", "year", "published", "volume",
    "issue", "pages", "doi", "pmid", "url", "registration_id", "has_results", "publication_types",
    "notes", "first_published", "updated",
)


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def etag(record: dict) -> str:
    """A strong ETag over the whole representation, so any change to it changes the tag."""
    text = json.dumps(record, sort_keys=True, default=_json_default, ensure_ascii=False)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def check_precondition(what: str, record: Callable[[], dict], if_match: list[str] | None) -> None:
    """412 unless ``if_match`` (absent, ``*``, or a list of ETags) accepts the current ``record()``."""
    if if_match is None or "*" in if_match:
        return
    current = etag(record())
    if current not in if_match:
        raise PreconditionFailed(
            f"{what} has changed since that ETag was issued (current ETag {current}).")


def reference_count_column():
    """The number of the study's reports (links of role `reports`), as a column."""
    sub = StudyReference.select(fn.COUNT(StudyReference.id)).where(
        (StudyReference.study == Study.id) & (StudyReference.role == "reports"))
    return sub.alias("reference_count")


def cited_by_count_column():
    """The number of references citing the study without reporting it (role `cites`), as a column."""
    sub = StudyReference.select(fn.COUNT(StudyReference.id)).where(
        (StudyReference.study == Study.id) & (StudyReference.role == "cites"))
    return sub.alias("cited_by_count")


_reference_values = operator.attrgetter(*REFERENCE_FIELDS)


def _reference_dict(ref: Reference, study_ids: list[int], found: list[str], cited: list[int]) -> dict:
    record = dict(zip(REFERENCE_FIELDS, _reference_values(ref), strict=True))
    record["authors"] = orjson.loads(ref.authors or "[]")
    record["publication_types"] = orjson.loads(ref.publication_types or "[]")
    record["type_label"] = type_label(ref.type)
    record["study_ids"] = study_ids
    record["registration_ids_found"] = found
    record["cited_study_ids"] = cited
    return record


def _only(record: dict, wanted: Collection[str] | None) -> dict:
    return record if wanted is None else {k: v for k, v in record.items() if k in wanted}


def reference_dicts(refs: Sequence[Reference], *, fields: Collection[str] | None = None) -> list[dict]:
    """Reference records with their study ids and identifiers found: two queries for all of ``refs``.

    ``fields`` (`fields=`): only these members and `id`, and only the queries they need (`study_ids` and
    `cited_study_ids` one, `registration_ids_found` one)."""
    wanted = None if fields is None else {"id", *fields}
    ids = [r.id for r in refs]
    study_ids: dict[int, list[int]] = defaultdict(list)
    cited: dict[int, list[int]] = defaultdict(list)
    if ids and (wanted is None or wanted & {"study_ids", "cited_study_ids"}):
        rows = select_in("SELECT reference_id, study_id, role FROM study_reference WHERE {where} "
                         "ORDER BY study_id", "reference_id", ids)  # raw: as identifiers_found
        for ref_id, study_id, role in rows:
            (study_ids if role == "reports" else cited)[ref_id].append(study_id)
    found = (identifiers_found(ids) if wanted is None or "registration_ids_found" in wanted
             else defaultdict(list))
    records = [_reference_dict(r, study_ids[r.id], found[r.id], cited[r.id]) for r in refs]
    return records if wanted is None else [_only(record, wanted) for record in records]


def link_fields(link: str, identifier: str | None, role: str, role_curated: bool, confidence: float | None,
                stored: str | None) -> dict:
    """What a link says of itself in the API: role, kind, identifier, confidence, rule, evidence."""
    rule, items = stored_evidence(stored)
    return {"role": role, "role_curated": bool(role_curated), "link": link, "link_identifier": identifier,
            "confidence": confidence, "rule": "curator" if role_curated else rule, "evidence": items}


# The lean read (issue 16): the study and its linked references are read with fixed SQL, written once, into
# named tuples carrying what the models' rows would (db.RowPlan), not compiled by peewee per request.
_LINKED_SQL = (
    f'SELECT {columns_of(Reference, "r")}, l.study_id, l.link, l.identifier, l.role, l.role_curated, '
    'l.confidence, l.evidence AS link_evidence FROM "reference" AS r '
    "JOIN study_reference AS l ON l.reference_id = r.id WHERE {where} "
    "ORDER BY COALESCE(r.published, '') DESC, r.first_published DESC, r.id DESC")
_LINKED_ROWS = RowPlan([*Reference._meta.sorted_fields, ("study", StudyReference.study),
                        StudyReference.link, StudyReference.identifier, StudyReference.role,
                        StudyReference.role_curated, StudyReference.confidence,
                        ("link_evidence", StudyReference.evidence)])
_STUDY_ROWS = RowPlan([*Study._meta.sorted_fields, "reference_count", "cited_by_count"])
_REFERENCE_ROWS = RowPlan(Reference._meta.sorted_fields)


def _study_select(counts: bool) -> str:
    """The SELECT of a study's columns, with its two counts (as ``studies_with_counts``) if ``counts``."""
    if not counts:
        return f"SELECT {columns_of(Study, 's')}"
    counted = ", ".join(
        f"(SELECT COUNT(c.id) FROM study_reference AS c WHERE c.study_id = s.id AND c.role = '{role}') "
        f"AS {name}" for role, name in (("reports", "reference_count"), ("cites", "cited_by_count")))
    return f"SELECT {columns_of(Study, 's')}, {counted}"


@functools.cache
def _study_sql(param: str) -> str:
    return f"{_study_select(True)} FROM study AS s WHERE s.id = {param}"


_STUDY_PAGE_ROWS = RowPlan(Study._meta.sorted_fields)


@functools.cache
def _study_page_sql(param: str, counts: bool) -> str:
    """A page of every study by id: its ids found first, then their rows (as the lists' built queries)."""
    return (f"{_study_select(counts)} FROM study AS s JOIN (SELECT id FROM study ORDER BY id "
            f"LIMIT {param} OFFSET {param}) AS top ON s.id = top.id ORDER BY top.id")


def study_page(limit: int, offset: int, *, counts: bool = True) -> list:
    """Studies ``offset`` to ``offset + limit`` by id, as named tuples (with ``reference_count`` and
    ``cited_by_count`` unless ``counts`` is false): what the unfiltered list's page query reads."""
    cursor = database.execute_sql(_study_page_sql(database.param, counts), [limit, offset])
    return (_STUDY_ROWS if counts else _STUDY_PAGE_ROWS).rows(cursor.fetchall())


def study_total() -> int:
    """How many studies there are (one query; SQLite counts a table without a WHERE from its b-tree)."""
    return database.execute_sql("SELECT COUNT(*) FROM study").fetchone()[0]


def study_row(study_id: int):
    """The study (with ``reference_count`` and ``cited_by_count``, as ``studies_with_counts``) as a named
    tuple, or None (one query)."""
    rows = _STUDY_ROWS.rows(database.execute_sql(_study_sql(database.param), [study_id]).fetchall())
    return rows[0] if rows else None


@functools.cache
def _reference_sql(param: str) -> str:
    return f'SELECT {columns_of(Reference, "r")} FROM "reference" AS r WHERE r.id = {param}'


def reference_row(reference_id: int):
    """The reference as a named tuple of its columns, or None (one query)."""
    cursor = database.execute_sql(_reference_sql(database.param), [reference_id])
    rows = _REFERENCE_ROWS.rows(cursor.fetchall())
    return rows[0] if rows else None


def linked_references(study_ids: Iterable[int]) -> dict[int, dict[str, list[dict]]]:
    """For each study, its references newest first by role (``reports``, ``cites``), each with how it was
    linked and why (three queries)."""
    study_ids = list(study_ids)
    if not study_ids:
        return {}
    rows = _LINKED_ROWS.rows(select_in(_LINKED_SQL, "l.study_id", study_ids))
    unique = list({r.id: r for r in rows}.values())
    records = {rec["id"]: rec for rec in reference_dicts(unique)}
    result: dict[int, dict[str, list[dict]]] = defaultdict(lambda: {"reports": [], "cites": []})
    for row in rows:
        record = dict(records[row.id], **link_fields(row.link, row.identifier, row.role, row.role_curated,
                                                     row.confidence, row.link_evidence))
        result[row.study][row.role].append(record)
    return result


def country_entry(code: str) -> dict:
    """A country code with its ISO 3166 name."""
    country = pycountry.countries.get(alpha_2=code)
    return {"code": code, "name": getattr(country, "common_name", None) or country.name if country else code}


def dissemination(study: Study) -> dict:
    """Where and from when the study's results are known: registry, journal article, preprint."""
    out = {}
    for where in ("registry", "article", "preprint"):
        out[where] = {"results": bool(getattr(study, f"results_{where}")),
                      "date": getattr(study, f"results_{where}_date")}
    days = [v["date"] for v in out.values() if v["date"]]
    out["reported"] = any(v["results"] for v in out.values())
    out["first_results"] = min(days) if days else None
    return out


_STUDY_MEMBERS: dict[str, Callable[[Study], object]] = {
    "id": lambda s: s.id, "name": lambda s: s.name, "title": lambda s: s.title,
    "study_type": lambda s: s.study_type, "study_aim": lambda s: s.study_aim,
    "study_design": lambda s: s.study_design, "intervention_assignment": lambda s: s.intervention_assignment,
    "first_published": lambda s: s.first_published, "updated": lambda s: s.updated,
    "registered": lambda s: s.registered, "start_date": lambda s: s.start_date,
    "recruitment_status": lambda s: s.recruitment_status, "phase": lambda s: s.phase,
    "target_size": lambda s: s.target_size,
    "countries": lambda s: [country_entry(code) for code in json.loads(s.countries or "[]")],
    "sponsor": lambda s: s.sponsor, "primary_completion_date": lambda s: s.primary_completion_date,
    "dissemination": dissemination,
    "reference_count": lambda s: s.reference_count,
    "cited_by_count": lambda s: s.cited_by_count,
}  # then `registrations` (one query), `facet_sources` and `curated`, `references` and `citing`
COUNTED = ("reference_count", "cited_by_count")  # the members read from studies_with_counts()' columns


def study_dicts(studies: Sequence[Study], *, include_references: bool = False,
                include_sources: bool | None = None, include_citing: bool | None = None,
                fields: Collection[str] | None = None) -> list[dict]:
    """Study records for rows selected with ``reference_count_column()`` and ``cited_by_count_column()``
    (`studies_with_counts`): one or four more queries. ``references`` holds its reports; ``citing`` (with the
    references, unless told otherwise) the references citing it.

    ``fields`` (`fields=`): only these members and `id`, whatever the include flags say (naming
    `references`, `citing`, `facet_sources` or `curated` includes them), and only the queries they need:
    none without `registrations`, `references` or `citing`; rows without `reference_count` and
    `cited_by_count` need not have their columns."""
    wanted = None if fields is None else {"id", *fields}
    if wanted is not None:
        include_references, include_citing = "references" in wanted, "citing" in wanted
        include_sources = bool(wanted & {"facet_sources", "curated"})
    include_sources = include_references if include_sources is None else include_sources
    include_citing = include_references if include_citing is None else include_citing
    members = [(name, get) for name, get in _STUDY_MEMBERS.items() if wanted is None or name in wanted]
    ids = [s.id for s in studies]
    registrations: dict[int, list[dict]] = defaultdict(list)
    with_registrations = wanted is None or "registrations" in wanted
    if ids and with_registrations:
        rows = select_in("SELECT study_id, registry, identifier FROM registration WHERE {where} ORDER BY id",
                         "study_id", ids)
        for study_id, registry, identifier in rows:
            registrations[study_id].append({"registry": registry, "identifier": identifier})
    references = linked_references(ids) if include_references or include_citing else {}
    records = []
    for s in studies:
        record = {name: get(s) for name, get in members}
        if with_registrations:
            record["registrations"] = registrations[s.id]
        if include_sources:
            record["facet_sources"] = json.loads(s.facet_sources or "{}")
            record["curated"] = json.loads(s.curated or "[]")
        if include_references:
            record["references"] = references[s.id]["reports"] if s.id in references else []
        if include_citing:
            record["citing"] = references[s.id]["cites"] if s.id in references else []
        records.append(_only(record, wanted))
    return records


def studies_with_counts():
    return Study.select(Study, reference_count_column(), cited_by_count_column())

