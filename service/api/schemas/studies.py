"""Schemas of studies: the record, what creating and patching accept, and the list's query arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from ...domain.facets import STUDY_FACETS
from ...domain.studies import STUDY_SORTS
from ...vocabularies import FACETS, REFERENCE_TYPES, REGISTRIES, UNCLEAR
from .common import (
    Day,
    FacetNames,
    Instant,
    QueryArgsSchema,
    Text,
    Vocab,
    envelope,
    paging_fields,
    search_field,
)
from .references import LinkedReferenceSchema

FACET_DOC = {
    "study_type": "Study type (vocabulary `study_type`).",
    "study_aim": "Study aim (vocabulary `study_aim`).",
    "study_design": "Study design (vocabulary `study_design`).",
    "intervention_assignment": "Intervention assignment (vocabulary `intervention_assignment`).",
}


class RegistrationSchema(ma.Schema):
    registry = Vocab(REGISTRIES, metadata={
        "description": "Registry code; derived from the identifier's pattern when omitted.",
        "example": "ChiCTR"})
    identifier = Text(required=True, validate=validate.Length(1, 100), metadata={
        "description": "Registration identifier, stored in canonical form (upper-case prefix, no "
                       "spaces, EudraCT without `EUCTR` and country suffix). Unique across studies.",
        "example": "ChiCTR2000030261"})


class StudySchema(ma.Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"description": "Short label shown as the record's heading.",
                                   "example": "ChiCTR2000030261"})
    title = fields.String(metadata={"example": "A study for the key technology of mesenchymal stem "
                                               "cells exosomes atomization in the treatment of novel "
                                               "coronavirus pneumonia (COVID-19)"})
    registrations = fields.List(fields.Nested(RegistrationSchema))
    study_type = fields.String(metadata={"description": FACET_DOC["study_type"], "example": "Interventional"})
    study_aim = fields.String(metadata={"description": FACET_DOC["study_aim"],
                                        "example": "Treatment and Management"})
    study_design = fields.String(metadata={"description": FACET_DOC["study_design"],
                                           "example": "Parallel/Crossover"})
    intervention_assignment = fields.String(metadata={
        "description": FACET_DOC["intervention_assignment"], "example": "Unclear"})
    first_published = fields.Date(metadata={"description": "Day the study was first published in "
                                                           "the register.", "example": "2020-04-01"})
    updated = Instant(metadata={"description": "When the study or its set of references last "
                                               "changed (UTC).", "example": "2022-07-04T00:00:00Z"})
    reference_count = fields.Integer(metadata={"description": "Number of linked references.",
                                               "example": 2})
    references = fields.List(fields.Nested(LinkedReferenceSchema), metadata={
        "description": "Linked references, newest first (single-study reads, and lists with "
                       "`include=references`)."})


def _facet_input(name: str, **kwargs) -> Vocab:
    return Vocab(FACETS[name], metadata={
        "description": FACET_DOC[name] + " Matched case-insensitively.", "example": UNCLEAR}, **kwargs)


class StudyPatchSchema(ma.Schema):
    name = Text(validate=validate.Length(1, 200), metadata={
        "description": "Heading label; defaults to the first registration identifier on create."})
    title = Text(validate=validate.Length(1, 5000))
    registrations = fields.List(fields.Nested(RegistrationSchema), validate=validate.Length(max=50),
                                metadata={"description": "On PATCH, replaces the whole list."})
    study_type = _facet_input("study_type")
    study_aim = _facet_input("study_aim")
    study_design = _facet_input("study_design")
    intervention_assignment = _facet_input("intervention_assignment")
    first_published = Day(metadata={"description": "Defaults to the day of creation.",
                                    "example": "2020-04-01"})
    updated = Instant(metadata={"description": "Set only when importing a record that carries its "
                                               "own date; otherwise the service sets it."})

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data and self.partial:
            raise ma.ValidationError("Give at least one field to change.", "body")


class StudyCreateSchema(StudyPatchSchema):
    title = Text(required=True, validate=validate.Length(1, 5000))
    registrations = fields.List(fields.Nested(RegistrationSchema), load_default=list,
                                validate=validate.Length(max=50))
    study_type = _facet_input("study_type", load_default=UNCLEAR)
    study_aim = _facet_input("study_aim", load_default=UNCLEAR)
    study_design = _facet_input("study_design", load_default=UNCLEAR)
    intervention_assignment = _facet_input("intervention_assignment", load_default=UNCLEAR)


def _facet_filter(name: str) -> fields.List:
    return fields.List(Vocab(FACETS[name]), metadata={
        "description": f"{FACET_DOC[name]} Repeat to OR values; matched case-insensitively."})


StudyQueryArgsSchema = QueryArgsSchema.from_dict({
    "q": search_field("the study's name, title and registration identifiers, and the title and "
                      "abstract of every linked reference (a study is found through any of its "
                      "reports)"),
    "study_type": _facet_filter("study_type"),
    "study_aim": _facet_filter("study_aim"),
    "study_design": _facet_filter("study_design"),
    "intervention_assignment": _facet_filter("intervention_assignment"),
    "registration": Text(validate=validate.Length(1, 100), metadata={
        "description": "A registration identifier of the study (any registry; case, spaces and "
                       "ICTRP prefixes ignored), e.g. `ChiCTR2000030261`."}),
    "registry": fields.List(Vocab(REGISTRIES), metadata={
        "description": "Studies with a registration in this registry. Repeat to OR."}),
    "reference_type": fields.List(Vocab(REFERENCE_TYPES), metadata={
        "description": "Studies with a linked reference of this type. Repeat to OR."}),
    "has_results": fields.Boolean(metadata={
        "description": "`true`: studies with a linked reference that reports results; `false`: "
                       "studies with none."}),
    "first_published_from": Day(metadata={"description": "First published on or after this day."}),
    "first_published_to": Day(metadata={"description": "First published on or before this day."}),
    "updated_since": Instant(metadata={"description": "Updated at or after this instant (or day)."}),
    "include": fields.List(fields.String(validate=validate.OneOf(["references"])), metadata={
        "description": "`references` embeds each study's references in the list items."}),
    "facets": FacetNames(STUDY_FACETS, metadata={
        "description": "Facet counts to add to the answer, comma-separated: "
                       + ", ".join(f"`{f}`" for f in STUDY_FACETS) + ". `registry` and "
                       "`reference_type` count the studies with at least one registration / linked "
                       "reference of that value; `has_results` `true` counts studies with a linked "
                       "reference reporting results.",
        "example": ["study_type", "study_aim"]}),
    **paging_fields(STUDY_SORTS, "id", relevance=True, formats={
        "csv": "`text/csv; charset=utf-8` (UTF-8, no BOM), a header row then one row per study: "
               "id, name, title, registrations, registries, study_type, study_aim, study_design, "
               "intervention_assignment, reference_count, reference_ids, first_published, updated. "
               "Multiple values are joined with `|` (registries in the order of registrations); "
               "values are written as stored, with no spreadsheet-formula escaping.",
        "ndjson": "`application/x-ndjson`, one study per line exactly as `GET /studies/{id}` "
                  "answers it (references embedded in full, with `link` and `link_identifier`).",
    }),
}, name="StudyQueryArgs")

StudyPageSchema = envelope(StudySchema, "StudyPage", facets=STUDY_FACETS)


class LinkSchema(ma.Schema):
    study_id = fields.Integer()
    reference_id = fields.Integer()
    link = fields.String(metadata={"description": "`manual` (by a curator) or `auto` (by a "
                                                  "registration identifier).", "example": "manual"})
    link_identifier = fields.String(allow_none=True, metadata={
        "description": "For an automatic link: the identifier that made it."})
    created = Instant()
