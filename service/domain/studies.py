"""Studies: filtered queries, one-study reads, and transactional create/update/delete/link/unlink."""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Collection, Sequence
from functools import reduce
from typing import Any, NoReturn

from peewee import IntegrityError

from ..db import changed, locked, write_transaction
from ..identifiers import canonical, normalise
from ..models import MergedStudy, Reference, Registration, Study, StudyCountry, StudyReference, utcnow
from ..search import index
from ..search.query import SearchQuery
from ..validation import CURATABLE
from ..vocabularies import UNCLEAR
from . import changes, evidence, linking, records
from .errors import Conflict, InvalidInput, Moved, NotFound
from .ordering import Dated

STUDY_SORTS = {
    "id": Study.id,
    "name": Study.name,
    "first_published": Study.first_published,
    "updated": Study.updated,
    "registered": Dated(Study.registered),
    "start_date": Dated(Study.start_date),
}
RESULTS_COLUMNS = {"registry": Study.results_registry, "article": Study.results_article,
                   "preprint": Study.results_preprint}
FACET_FIELDS = ("study_type", "study_aim", "study_design", "intervention_assignment")
# The filters of a study list (study_conditions' arguments but `q` and `changed_since`).
STUDY_FILTERS = (*FACET_FIELDS, "registration", "registry", "reference_type", "has_results",
                 "first_published_from", "first_published_to", "updated_since", "registered_from",
                 "registered_to", "start_from", "start_to", "recruitment_status", "phase", "country",
                 "results_in")


def study_conditions(
    *,
    q: SearchQuery | None = None,
    study_type: Sequence[str] = (),
    study_aim: Sequence[str] = (),
    study_design: Sequence[str] = (),
    intervention_assignment: Sequence[str] = (),
    registration: str | None = None,
    registry: Sequence[str] = (),
    reference_type: Sequence[str] = (),
    has_results: bool | None = None,
    first_published_from: dt.date | None = None,
    first_published_to: dt.date | None = None,
    updated_since: dt.datetime | None = None,
    registered_from: dt.date | None = None,
    registered_to: dt.date | None = None,
    start_from: dt.date | None = None,
    start_to: dt.date | None = None,
    recruitment_status: Sequence[str] = (),
    phase: Sequence[str] = (),
    country: Sequence[str] = (),
    results_in: Sequence[str] = (),
    changed_since: dt.datetime | None = None,
) -> list:
    """Conditions on Study for every given filter (values OR-ed within a filter, filters AND-ed).

    ``changed_since`` keeps the studies that appeared or changed at or after that instant (`created`, or
    `updated`: a study's record, its registrations or its set of references changed): what a saved
    search's `since` asks.
    """
    conditions = []
    if q is not None:
        conditions.append(Study.id.in_(index.matching_ids(index.STUDY_TABLE, q)))
    for name, values in (("study_type", study_type), ("study_aim", study_aim),
                         ("study_design", study_design),
                         ("intervention_assignment", intervention_assignment)):
        if values:
            conditions.append(getattr(Study, name).in_(list(values)))
    if registration is not None:
        owners = Registration.select(Registration.study).where(
            Registration.identifier == linking.canonical_identifier(registration))
        conditions.append(Study.id.in_(owners))
    if registry:
        owners = Registration.select(Registration.study).where(Registration.registry.in_(list(registry)))
        conditions.append(Study.id.in_(owners))
    if reference_type:
        linked = (StudyReference.select(StudyReference.study).join(Reference)
                  .where(Reference.type.in_(list(reference_type)) & (StudyReference.role == "reports")))
        conditions.append(Study.id.in_(linked))
    if has_results is not None:
        with_results = (StudyReference.select(StudyReference.study).join(Reference)
                        .where((Reference.has_results == True)  # noqa: E712
                               & (StudyReference.role == "reports")))
        conditions.append(Study.id.in_(with_results) if has_results else Study.id.not_in(with_results))
    if first_published_from is not None:
        conditions.append(Study.first_published >= first_published_from)
    if first_published_to is not None:
        conditions.append(Study.first_published <= first_published_to)
    if updated_since is not None:
        conditions.append(Study.updated >= updated_since)
    if changed_since is not None:
        conditions.append((Study.updated >= changed_since) | (Study.created >= changed_since))
    for column, low, high in ((Study.registered, registered_from, registered_to),
                              (Study.start_date, start_from, start_to)):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if recruitment_status:
        conditions.append(Study.recruitment_status.in_(list(recruitment_status)))
    if phase:
        conditions.append(Study.phase.in_(list(phase)))
    if country:
        conditions.append(Study.id.in_(StudyCountry.select(StudyCountry.study)
                                       .where(StudyCountry.code.in_(list(country)))))
    if results_in:
        wanted = [RESULTS_COLUMNS[name] == True for name in results_in if name in RESULTS_COLUMNS]  # noqa: E712
        if "none" in results_in:
            wanted.append(reduce(operator.and_, [c == False for c in RESULTS_COLUMNS.values()]))  # noqa: E712
        conditions.append(reduce(operator.or_, wanted))
    return conditions


def filtered_studies(conditions: Sequence = (), *, ranked_by: SearchQuery | None = None):
    """Studies (with their reference counts) meeting ``conditions``; with ``ranked_by``, only those
    matching that search, each with its relevance as ``rank``."""
    query = records.studies_with_counts()
    if ranked_by is not None:
        hits = index.matches(index.STUDY_TABLE, ranked_by).alias(index.HITS)
        query = query.join(hits, on=(Study.id == hits.c.id)).select_extend(hits.c.rank).objects()
    return query.where(*conditions) if conditions else query


def study_rows(top, *, counts: bool = True):
    """The whole rows (with reference counts, unless ``counts`` is false) of the studies whose ids
    ``top`` (a subquery with an ``id`` column) selects: a page found on its sort keys alone."""
    rows = records.studies_with_counts() if counts else Study.select()
    return rows.join(top, on=(Study.id == top.c.id))


def _get(study_id: int, *, lock: bool = False) -> Study:
    query = records.studies_with_counts().where(Study.id == study_id)
    study = (locked(query) if lock else query).first()
    if study is None:
        _missing(study_id)
    return study


def _missing(study_id: int) -> NoReturn:
    """Raise what a read of a study that is not there answers: 308 when it was merged, else 404."""
    merged = MergedStudy.get_or_none(MergedStudy.id == study_id)
    if merged is not None:
        raise Moved(f"Study {study_id} was merged into study {merged.into_id}; it is found at "
                    f"/studies/{merged.into_id}.", resource="studies", old_id=study_id,
                    new_id=merged.into_id)
    raise NotFound(f"Study {study_id} does not exist.")


def study_owning(identifier: str) -> int:
    """The id of the study owning a registration identifier written in any form."""
    canonical_form = linking.canonical_identifier(identifier)
    if not canonical_form.strip():
        raise NotFound("No study has a blank registration identifier.")
    owner = Registration.select(Registration.study).where(Registration.identifier == canonical_form).first()
    if owner is None:
        raise NotFound(f"No study has the registration {canonical_form}.")
    return owner.study_id


def get_study(study_id: int, *, fields: Collection[str] | None = None) -> dict:
    """One study with its registrations and every linked reference (four queries); with ``fields``, only
    those members and `id` (and only the queries they need: records.study_dicts)."""
    study = records.study_row(study_id)  # the lean read: fixed SQL (records.study_row), not _get
    if study is None:
        _missing(study_id)
    return records.study_dicts([study], include_references=True, fields=fields)[0]


def _registration_rows(items: Sequence[dict]) -> list[dict]:
    """Canonical registrations; 422 when an identifier's registry cannot be told or two collide."""
    rows, seen, errors = [], set(), {}
    for position, item in enumerate(items):
        known = canonical(item["identifier"])
        identifier = known[0] if known else normalise(item["identifier"])
        registry = item.get("registry") or (known[1] if known else None)
        if not identifier.strip():
            errors[f"registrations.{position}.identifier"] = [
                "Must not be blank (nothing is left once spaces and separators are removed)."]
            continue
        if registry is None:
            errors[f"registrations.{position}.registry"] = [
                f"The registry of {identifier!r} cannot be derived from its pattern; give `registry`."]
            continue
        if identifier in seen:
            errors[f"registrations.{position}.identifier"] = [f"{identifier} is listed twice."]
            continue
        seen.add(identifier)
        rows.append({"registry": registry, "identifier": identifier})
    if errors:
        raise InvalidInput("Some registrations are not valid.", errors=errors)
    return rows


def _claim_registrations(study_id: int | None, rows: list[dict]) -> None:
    """409 naming the owner when another study already holds one of these identifiers."""
    if not rows:
        return
    owned = Registration.select(Registration.identifier, Registration.study).where(
        Registration.identifier.in_([r["identifier"] for r in rows]))
    if study_id is not None:
        owned = owned.where(Registration.study != study_id)
    clash = owned.first()
    if clash is not None:
        raise Conflict(
            f"Registration {clash.identifier} already belongs to study {clash.study_id}.",
            errors={"registrations": [f"{clash.identifier} belongs to study {clash.study_id}"]},
            owner_study_id=clash.study_id,
        )


def _write_registrations(study_id: int, rows: list[dict]) -> None:
    Registration.delete().where(Registration.study == study_id).execute()
    if rows:
        Registration.insert_many([dict(r, study=study_id) for r in rows]).execute()


STUDY_FIELDS = ("name", "title", *FACET_FIELDS, "first_published", "updated", "registered", "start_date",
                "recruitment_status", "phase", "target_size", "sponsor", "primary_completion_date")


# Fields a curator may set to null ("not known").
NULLABLE = ("registered", "start_date", "target_size", "sponsor", "primary_completion_date")


def _curated(data: dict[str, Any], current: str = "[]", *, creating: bool = False) -> str:
    """The `curated` list of a study written with ``data``: the fields it sets by hand are added. A
    classification written `Unclear` says "not known", not a decision: the sources may still state it."""
    fields = set(json.loads(current or "[]"))
    for name in CURATABLE:
        if name in data and (data[name] is not None or (name in NULLABLE and not creating)):
            if name in FACET_FIELDS and data[name] == UNCLEAR:
                continue
            fields.add(name)
    return json.dumps(sorted(fields))


def write_countries(study_id: int, codes: list[str] | None) -> None:
    """The rows the `country` filter reads, for a study whose `countries` are set to ``codes``."""
    if codes is None:
        return
    StudyCountry.delete().where(StudyCountry.study == study_id).execute()
    if codes:
        StudyCountry.insert_many([{"study": study_id, "code": c} for c in sorted(set(codes))]).execute()


def create_study(data: dict[str, Any]) -> int:
    """Create a study and its registrations in one transaction; return its id."""
    rows = _registration_rows(data.get("registrations", []))
    now = utcnow()
    values = {k: data[k] for k in STUDY_FIELDS if data.get(k) is not None}
    if "name" not in values:
        if not rows:
            raise InvalidInput("A study needs a `name` or at least one registration.",
                               errors={"name": ["Missing data for required field."]})
        values["name"] = rows[0]["identifier"]
    for facet in FACET_FIELDS:
        values.setdefault(facet, UNCLEAR)
    values.setdefault("first_published", now.date())
    values.setdefault("updated", now)
    values["created"] = now
    values["curated"] = _curated(data, creating=True)
    if data.get("countries") is not None:
        values["countries"] = json.dumps(sorted(set(data["countries"])))
    try:
        with write_transaction():
            _claim_registrations(None, rows)
            study_id = Study.insert(values).execute()
            changed(studies=[study_id], study_dates={study_id: values["updated"]} if data.get("updated")
                    else None)
            write_countries(study_id, data.get("countries"))
            _write_registrations(study_id, rows)
            linking.relink_study(study_id, lambda refs: touch_references(refs, now))
    except IntegrityError:
        raise Conflict("A registration of this study was claimed by another study meanwhile.") from None
    return study_id


def update_study(study_id: int, data: dict[str, Any], *, if_match: list[str] | None = None) -> None:
    """Apply a partial update; registrations, when given, replace the study's whole list."""
    try:
        with write_transaction():
            study = _get(study_id, lock=True)
            records.check_precondition(
                f"Study {study_id}", lambda: records.study_dicts([study], include_references=True)[0],
                if_match)
            changed(studies=[study_id])
            values = {k: data[k] for k in STUDY_FIELDS if k in data and (data[k] is not None
                                                                         or k in NULLABLE)}
            values["curated"] = _curated(data, study.curated)
            if data.get("countries") is not None:
                values["countries"] = json.dumps(sorted(set(data["countries"])))
                write_countries(study_id, data["countries"])
            now = utcnow()
            if "registrations" in data:
                rows = _registration_rows(data["registrations"])
                _claim_registrations(study_id, rows)
                _write_registrations(study_id, rows)
                linking.relink_study(study_id, lambda refs: touch_references(refs, now))
            values.setdefault("updated", now)
            if data.get("updated"):
                changed(study_dates={study_id: data["updated"]})
            Study.update(values).where(Study.id == study_id).execute()
    except IntegrityError:
        raise Conflict("A registration of this study was claimed by another study meanwhile.") from None


def touch_references(reference_ids: Sequence[int], when: dt.datetime) -> None:
    changes.note(references=reference_ids)
    if reference_ids:
        Reference.update(updated=when).where(Reference.id.in_(list(reference_ids))).execute()


def touch_studies(study_ids: Sequence[int], when: dt.datetime) -> None:
    changes.note(studies=study_ids)
    if study_ids:
        Study.update(updated=when).where(Study.id.in_(list(study_ids))).execute()


def delete_study(study_id: int, *, if_match: list[str] | None = None) -> None:
    """Delete a study; its references stay, unlinked from it."""
    with write_transaction():
        study = _get(study_id, lock=True)
        records.check_precondition(
            f"Study {study_id}", lambda: records.study_dicts([study], include_references=True)[0], if_match)
        changed(studies=[study_id])
        ref_ids = [r for (r,) in StudyReference.select(StudyReference.reference)
                   .where(StudyReference.study == study_id).tuples()]
        StudyReference.delete().where(StudyReference.study == study_id).execute()
        Registration.delete().where(Registration.study == study_id).execute()
        Study.delete().where(Study.id == study_id).execute()
        touch_references(ref_ids, utcnow())


def _require_reference(reference_id: int) -> None:
    if not Reference.select(Reference.id).where(Reference.id == reference_id).exists():
        raise NotFound(f"Reference {reference_id} does not exist.")


def study_references(study_id: int, *, role: str | None = None) -> list[dict]:
    """The study's references: its reports then the references citing it, each newest first (or only
    those of ``role``)."""
    _get(study_id)
    linked = records.linked_references([study_id]).get(study_id, {"reports": [], "cites": []})
    if role is not None:
        return linked[role]
    return linked["reports"] + linked["cites"]


def link_reference(study_id: int, reference_id: int) -> tuple[dict, bool]:
    """Link by hand (idempotent): a report of the study, unless a curator set its role; return the link
    and whether it was created or changed."""
    with write_transaction():
        _get(study_id, lock=True)
        _require_reference(reference_id)
        existing = StudyReference.get_or_none(study=study_id, reference=reference_id)
        modified = existing is None or existing.link != "manual"
        linking.unsuppress(study_id, reference_id)
        if existing is None:
            existing = StudyReference.create(study=study_id, reference=reference_id, link="manual")
        elif modified:
            # A curator confirming an automatic link makes it theirs: automation never removes it.
            existing.link, existing.identifier = "manual", None
            existing.save()
        # Its evidence (a manual link without a curator's role reports); its other links may follow.
        _, others, _ = linking.relink_references([reference_id])
        if others:
            changed(studies=others)
            touch_studies(sorted(others), utcnow())
        if modified:
            now = utcnow()
            touch_studies([study_id], now)
            touch_references([reference_id], now)
            changed(studies=[study_id])
        existing = StudyReference.get_by_id(existing.id)
    return _link_dict(existing), modified


def _curate_role(link: StudyReference, role: str) -> None:
    link.role, link.role_curated, link.link, link.confidence = role, True, "manual", evidence.BY_HAND
    link.save()


def set_link_role(study_id: int, reference_id: int, role: str) -> dict:
    """A curator sets a link's role (`reports` / `cites`): remembered, never changed by automation; the
    link becomes manual."""
    with write_transaction():
        _get(study_id, lock=True)
        _require_reference(reference_id)
        link = StudyReference.get_or_none(study=study_id, reference=reference_id)
        if link is None:
            raise NotFound(f"Reference {reference_id} is not linked to study {study_id}: link it first "
                           f"(PUT /studies/{study_id}/references/{reference_id}).")
        if link.role != role or not link.role_curated or link.link != "manual":
            _curate_role(link, role)
            _, others, _ = linking.relink_references([reference_id])  # the evidence, under the curator's rule
            now = utcnow()
            touch_studies(sorted({study_id, *others}), now)
            touch_references([reference_id], now)
            changed(studies=[study_id, *others], references=[reference_id])
        return _link_dict(StudyReference.get_by_id(link.id))


def _link_dict(link: StudyReference) -> dict:
    return {"study_id": link.study_id, "reference_id": link.reference_id, "created": link.created,
            **records.link_fields(link.link, link.identifier, link.role, link.role_curated, link.confidence,
                                  link.evidence)}


def unlink_reference(study_id: int, reference_id: int) -> None:
    with write_transaction():
        _get(study_id, lock=True)
        _require_reference(reference_id)
        deleted = StudyReference.delete().where(
            (StudyReference.study == study_id) & (StudyReference.reference == reference_id)).execute()
        if not deleted:
            raise NotFound(f"Reference {reference_id} is not linked to study {study_id}.")
        # Remembered, so automatic linking never makes this link again.
        linking.suppress(study_id, reference_id)
        changed(studies=[study_id])
        now = utcnow()
        touch_studies([study_id], now)
        touch_references([reference_id], now)


def study_etag(record: dict) -> str:
    return records.etag(record)

