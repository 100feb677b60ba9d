"""Schemas of studies: the record, what creating and patching accept, and the list's query arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain.facets import STUDY_FACETS
from ...domain.studies import STUDY_SORTS
from ...search.query import STUDY_FIELDS
from ...validation import FACET_DOC, Bool, Country, RegistrationSchema, StudyCreateSchema, StudyPatchSchema
from ...vocabularies import (
    FACETS,
    PHASE,
    RECRUITMENT_STATUS,
    REFERENCE_TYPES,
    REGISTRIES,
    RESULTS_IN,
)
from ..dumping import dumper
from ..negotiation import RecordFormatArgsSchema
from .common import (
    OPTIONAL,
    Day,
    FacetNames,
    FieldNames,
    Instant,
    QueryArgsSchema,
    Text,
    Vocab,
    envelope,
    fields_doc,
    paging_fields,
    search_field,
)
from .references import LinkedReferenceSchema, LinkFieldsSchema
from .search_body import long_form_note, search_body, search_paging_args
from .trial import CountrySchema, DisseminationSchema


class RegistrationRecordSchema(RegistrationSchema):
    """A registration as answers hold it: the request's `RegistrationSchema` with `registry` always
    given, its own component so that answers can require every member (api/spec.py)."""


class StudySchema(ma.Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"description": "Short label shown as the record's heading.",
                                   "example": "ChiCTR2000030261"})
    title = fields.String(metadata={"example": "A study for the key technology of mesenchymal stem "
                                               "cells exosomes atomization in the treatment of novel "
                                               "coronavirus pneumonia (COVID-19)"})
    registrations = fields.List(fields.Nested(RegistrationRecordSchema))
    study_type = fields.String(metadata={"description": FACET_DOC["study_type"], "example": "Interventional"})
    study_aim = fields.String(metadata={"description": FACET_DOC["study_aim"],
                                        "example": "Treatment and Management"})
    study_design = fields.String(metadata={"description": FACET_DOC["study_design"],
                                           "example": "Parallel/Crossover"})
    intervention_assignment = fields.String(metadata={
        "description": FACET_DOC["intervention_assignment"], "example": "Unclear"})
    first_published = fields.Date(metadata={
        "description": "When the study first appeared in its sources: the earliest day any of its registry "
                       "records was registered or published (a study written through the API without "
                       "one: the day it was written).", "example": "2020-04-01"})
    updated = Instant(metadata={"description": "When the study or its set of references last "
                                               "changed (UTC).", "example": "2022-07-04T00:00:00Z"})
    registered = fields.Date(allow_none=True, metadata={
        "description": "The earliest registration date any of the study's records states.",
        "example": "2020-02-24"})
    start_date = fields.Date(allow_none=True, metadata={
        "description": "When the study started (or plans to): its records' start or enrolment date; a "
                       "month-only date is its first day (`facet_sources` says so).",
        "example": "2020-02-24"})
    recruitment_status = fields.String(metadata={
        "description": "Recruitment status (vocabulary `recruitment_status`), from the newest source.",
        "example": "Completed"})
    phase = fields.String(metadata={"description": "Phase (vocabulary `phase`).", "example": "Phase 3"})
    target_size = fields.Integer(allow_none=True, metadata={
        "description": "Target (or actual) number of participants, from the newest source.",
        "example": 1062})
    countries = fields.List(fields.Nested(CountrySchema), metadata={
        "description": "Countries where the study recruits (ISO 3166-1)."})
    sponsor = fields.String(allow_none=True, metadata={"description": "Primary sponsor.",
                                                       "example": "National Institute of Allergy and "
                                                                  "Infectious Diseases (NIAID)"})
    primary_completion_date = fields.Date(allow_none=True, metadata={
        "description": "Primary completion date (actual or anticipated), from the newest source.",
        "example": "2020-04-19"})
    dissemination = fields.Nested(DisseminationSchema, metadata={
        "description": "Whether and when results appeared in a registry, a journal article, a preprint."})
    facet_sources = fields.Dict(metadata={
        **OPTIONAL,
        "description": "For each derived field, where its value came from: `source` (file format and "
                       "layout), `registration`, `field` (the source's column) and `strength` (3 a coded "
                       "registry field, 2 a registry's words mapped by a table, 1 a keyword rule over "
                       "free text), or the `rule` that derived it (`set by a curator`...), and "
                       "`conflicts`: other values sources state. In single-study reads and exports."})
    curated = fields.List(fields.String(), metadata={
        **OPTIONAL,
        "description": "Fields a curator set by hand: derivation from the sources never changes them. "
                       "In single-study reads and exports.", "example": ["study_aim"]})
    reference_count = fields.Integer(metadata={
        "description": "Number of the study's reports: references linked with role `reports` (its registry "
                       "records, results articles, preprints, protocols, conference abstracts).",
        "example": 2})
    cited_by_count = fields.Integer(metadata={
        "description": "Number of references citing the study without reporting it (role `cites`: "
                       "reviews, meta-analyses, guidance, commentaries, other trials' reports).",
        "example": 0})
    references = fields.List(fields.Nested(LinkedReferenceSchema), metadata={
        **OPTIONAL,
        "description": "The study's reports (links of role `reports`), newest first, each with why it is "
                       "linked (single-study reads, and lists with `include=references`)."})
    citing = fields.List(fields.Nested(LinkedReferenceSchema), metadata={
        **OPTIONAL,
        "description": "References citing the study without reporting it (role `cites`), newest first "
                       "(single-study reads, and lists with `include=citing`)."})


STUDY_MEMBERS = tuple(StudySchema._declared_fields)  # what `fields=` may name
_EMBEDDED_DOC = (" Naming `references`, `citing`, `facet_sources` or `curated` embeds them as `include` "
                 "would: `fields` decides what each item holds, whatever `include` says.")


def _fields(*, single: bool = False) -> FieldNames:
    return FieldNames(STUDY_MEMBERS, metadata={
        "description": fields_doc(
            "study", STUDY_MEMBERS, single=single, extra="" if single else _EMBEDDED_DOC,
            costs=" (`references` and `citing` cost three queries, `registrations` one)"),
        "example": ["id", "title", "registrations"]})


# GET /studies/{id}: its representation and its members.
StudyReadArgsSchema = RecordFormatArgsSchema.from_dict({"fields": _fields(single=True)}, name="StudyReadArgs")


def _facet_filter(name: str) -> fields.List:
    return fields.List(Vocab(FACETS[name]), metadata={
        "description": f"{FACET_DOC[name]} Repeat to OR values; matched case-insensitively."})


StudyQueryArgsSchema = QueryArgsSchema.from_dict({
    "q": long_form_note(search_field(
        "studies: their `name`, `title`, `registration` identifiers and `registry` names, and the "
        "title (`report_title`), `abstract` and authors (`author`) of every report (a study is found "
        "through any of its reports)", STUDY_FIELDS, 'title:(exosom* OR "stem cells") NOT review'),
        "/studies/search"),
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
        "description": "Studies with a report (a reference of role `reports`) of this type. Repeat to OR."}),
    "has_results": Bool(metadata={
        "description": "`true`: studies with a report (role `reports`) that has results; `false`: "
                       "studies with none. References only citing a study never count."}),
    "first_published_from": Day(metadata={"description": "First published on or after this day."}),
    "first_published_to": Day(metadata={"description": "First published on or before this day."}),
    "updated_since": Instant(metadata={"description": "Updated at or after this instant (or day)."}),
    "registered_from": Day(metadata={"description": "Registered on or after this day."}),
    "registered_to": Day(metadata={"description": "Registered on or before this day."}),
    "start_from": Day(metadata={"description": "Started (start date) on or after this day."}),
    "start_to": Day(metadata={"description": "Started (start date) on or before this day."}),
    "recruitment_status": fields.List(Vocab(RECRUITMENT_STATUS), metadata={
        "description": "Recruitment status (vocabulary `recruitment_status`). Repeat to OR; matched "
                       "case-insensitively."}),
    "phase": fields.List(Vocab(PHASE), metadata={
        "description": "Phase (vocabulary `phase`). Repeat to OR; matched case-insensitively."}),
    "country": fields.List(Country(), metadata={
        "description": "Studies recruiting in this country: ISO 3166-1 alpha-2 or alpha-3 code, or its "
                       "name (`DE`, `DEU`, `Germany`). Repeat to OR."}),
    "results_in": fields.List(fields.String(validate=validate.OneOf(list(RESULTS_IN))), metadata={
        "description": "Where results appeared: " + "; ".join(f"`{k}`: {v}" for k, v in RESULTS_IN.items())
                       + " Repeat to OR (`results_in=none&recruitment_status=Completed`: completed trials "
                         "that never reported)."}),
    "include": fields.List(fields.String(validate=validate.OneOf(["references", "citing", "facet_sources"])),
                           metadata={
        "description": "`references` embeds each study's reports in the list items; `citing` the references "
                       "citing each study without reporting it; `facet_sources` adds each study's "
                       "`facet_sources` and `curated`. Repeat to ask for several."}),
    "facets": FacetNames(STUDY_FACETS, metadata={
        "description": "Facet counts to add to the answer, comma-separated: "
                       + ", ".join(f"`{f}`" for f in STUDY_FACETS) + ". `registry` and "
                       "`reference_type` count the studies with at least one registration / report "
                       "(role `reports`) of that value; `has_results` `true` counts studies with a report "
                       "that has results; `country` counts the studies recruiting in each "
                       "country (those with a study, most first); `results_in` the studies with results "
                       "in each place (a study may count under several) and `none`.",
        "example": ["study_type", "study_aim"]}),
    "fields": _fields(),
    **paging_fields(STUDY_SORTS, "id", relevance=True, formats={
        "csv": "`text/csv; charset=utf-8` (UTF-8, a BOM only with `bom=true`), a header row then one "
               "row per study: "
               "id, name, title, registrations, registries, study_type, study_aim, study_design, "
               "intervention_assignment, reference_count, reference_ids (its reports), cited_by_count, "
               "first_published, updated. "
               "Multiple values are joined with `|` (registries in the order of registrations); "
               "values are written as stored, with no spreadsheet-formula escaping; text and "
               "identifier cells quoted (see `bom`).",
        "ndjson": "`application/x-ndjson`, one study per line exactly as `GET /studies/{id}` "
                  "answers it (its reports in `references`, the references citing it in `citing`, each "
                  "with its `role`, `link`, `link_identifier`, `confidence`, `rule` and `evidence`).",
        "fhir": "`application/fhir+json; fhirVersion=4.0`: a FHIR R4 Bundle (`searchset`) of "
                "ResearchStudy resources, one per study, its reports in `relatedArtifact` (README "
                "\"FHIR\"; the reports themselves: `GET /references?format=fhir&study_id=…`).",
    }),
}, name="StudyQueryArgs")

StudyPageSchema = envelope(StudySchema, "StudyPage", facets=STUDY_FACETS, searched=True)
dump_study_page = dumper(StudyPageSchema())  # StudyPageSchema().dump of an envelope, planned once
dump_study = dumper(StudySchema())  # StudySchema().dump of one record, planned once (api/dumping.py)

# POST /studies/search: the GET's parameters as a JSON body; `page` or `cursor` in its query string.
StudySearchSchema = search_body(StudyQueryArgsSchema, "StudySearch", search_path="/studies/search")
StudySearchPagingArgsSchema = search_paging_args("StudySearchPagingArgs", search_path="/studies/search")


class LinkSchema(LinkFieldsSchema):
    study_id = fields.Integer()
    reference_id = fields.Integer()
    created = Instant()


class StudyReferencesArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    role = fields.String(validate=validate.OneOf(["reports", "cites"]), metadata={
        "description": "Only the links of this role: `reports` (its reports) or `cites` (references citing "
                       "it without reporting it). Default: both."})
    format = fields.String(validate=validate.OneOf(["json", "fhir"]), metadata={
        "description": "`json` (the default) or `fhir`: a FHIR R4 Bundle (`searchset`) of DocumentReference "
                       "resources (`application/fhir+json; fhirVersion=4.0`), as `Accept: "
                       "application/fhir+json` asks. Given, it wins over `Accept`."})


class LinkPatchSchema(ma.Schema):
    role = fields.String(required=True, validate=validate.OneOf(["reports", "cites"]), metadata={
        "description": "`reports` or `cites`. Remembered as a curator's decision: automation and relinking "
                       "never change it, and the link becomes manual (never removed by automation).",
        "example": "cites"})

__all__ = ["RegistrationRecordSchema", "RegistrationSchema", "StudyCreateSchema", "StudyPatchSchema"]
