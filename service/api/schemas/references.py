"""Schemas of references: the record, what creating and patching accept, and the list's query arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain.facets import REFERENCE_FACETS
from ...domain.references import REFERENCE_SORTS
from ...validation import PartialDate, ReferenceCreateSchema, ReferencePatchSchema
from ...vocabularies import REFERENCE_TYPES
from .common import (
    FacetNames,
    Instant,
    QueryArgsSchema,
    Text,
    Vocab,
    envelope,
    paging_fields,
    search_field,
)


class ReferenceSchema(ma.Schema):
    id = fields.Integer(metadata={"example": 2})
    type = fields.String(metadata={"description": "Reference type code (vocabulary "
                                                  "`reference_type`).", "example": "journal_article"})
    type_label = fields.String(metadata={"description": "Display label of the type.",
                                         "example": "Journal article"})
    title = fields.String(metadata={"example": "Nebulization Therapy with Umbilical Cord Mesenchymal "
                                               "Stem Cell-Derived Exosomes for COVID-19 Pneumonia"})
    authors = fields.List(fields.String(), metadata={"description": "Authors in order, as written.",
                                                     "example": ["Chu M", "Wang H"]})
    abstract = fields.String(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": "Journal or registry name."})
    year = fields.Integer(allow_none=True, metadata={"example": 2022})
    published = fields.String(allow_none=True, metadata={
        "description": "Publication date at the precision known: YYYY, YYYY-MM or YYYY-MM-DD.",
        "example": "2022-06"})
    volume = fields.String(allow_none=True)
    issue = fields.String(allow_none=True)
    pages = fields.String(allow_none=True)
    doi = fields.String(allow_none=True, metadata={
        "description": "DOI, lower-cased, without resolver prefix."})
    pmid = fields.String(allow_none=True, metadata={"example": "32445440"})
    url = fields.String(allow_none=True)
    registration_id = fields.String(allow_none=True, metadata={
        "description": "For a trial registry record: the record's own identifier (canonical form).",
        "example": "ChiCTR2000030261"})
    has_results = fields.Boolean(metadata={"description": "`true`: \"Report Results\"; `false`: "
                                                          "\"No Results\"."})
    notes = fields.String(allow_none=True)
    study_ids = fields.List(fields.Integer(), metadata={"description": "Studies this reference reports."})
    registration_ids_found = fields.List(fields.String(), metadata={
        "description": "Registration identifiers found in its `registration_id`, title, abstract and "
                       "notes (canonical form): the reason it is, or is not, linked automatically.",
        "example": ["ChiCTR2000030261"]})
    first_published = fields.Date(metadata={"example": "2020-04-01"})
    updated = Instant(metadata={"example": "2022-07-04T00:00:00Z"})


class LinkedReferenceSchema(ReferenceSchema):
    link = fields.String(metadata={"description": "How this reference was linked to the study: "
                                                  "`manual` (by a curator) or `auto` (by a registration "
                                                  "identifier found in it).", "example": "auto"})
    link_identifier = fields.String(allow_none=True, metadata={
        "description": "For an automatic link: the registration identifier that made it."})


ReferenceQueryArgsSchema = QueryArgsSchema.from_dict({
    "q": search_field("the reference's title, abstract and authors (and its own registration "
                      "identifier and those found in its text)"),
    "type": fields.List(Vocab(REFERENCE_TYPES), metadata={
        "description": "Reference type code. Repeat to OR."}),
    "has_results": fields.Boolean(metadata={"description": "`true`: reports results (\"Report "
                                                           "Results\"); `false`: \"No Results\"."}),
    "study_id": fields.Integer(validate=validate.Range(1, 2_147_483_647), metadata={
        "description": "References linked to this study."}),
    "linked": fields.Boolean(metadata={"description": "`false`: the curation queue of references "
                                                      "linked to no study."}),
    "doi": Text(validate=validate.Length(1, 300), metadata={"description": "Exact DOI, any case."}),
    "pmid": Text(validate=validate.Regexp(r"^[1-9]\d{0,9}$", error="Not a PMID."),
                 metadata={"description": "Exact PubMed id, e.g. `32445440`."}),
    "registration_id": Text(validate=validate.Length(1, 100), metadata={
        "description": "A trial registry record's own identifier (any written form)."}),
    "year_from": fields.Integer(validate=validate.Range(1000, 9999), metadata={
        "description": "Published in this year or later."}),
    "year_to": fields.Integer(validate=validate.Range(1000, 9999), metadata={
        "description": "Published in this year or earlier."}),
    "updated_since": Instant(metadata={"description": "Updated at or after this instant (or day)."}),
    "facets": FacetNames(REFERENCE_FACETS, metadata={
        "description": "Facet counts to add to the answer, comma-separated: "
                       + ", ".join(f"`{f}`" for f in REFERENCE_FACETS) + ". `year` lists the "
                       "years present, newest first, then `null` for references without one.",
        "example": ["type", "has_results"]}),
    **paging_fields(REFERENCE_SORTS, "id", relevance=True, formats={
        "csv": "`text/csv; charset=utf-8` (UTF-8, no BOM), a header row then one row per reference, "
               "the study ids first: study_ids, id, type, title, authors, source, year, published, "
               "volume, issue, pages, doi, pmid, url, registration_id, has_results, abstract, notes, "
               "first_published, updated. Multiple values are joined with `|`; values are written "
               "as stored, with no spreadsheet-formula escaping.",
        "ndjson": "`application/x-ndjson`, one reference per line exactly as an item of this list.",
        "ris": "`application/x-research-info-systems` (UTF-8, CRLF) for reference managers and "
               "review tools: TY (JOUR, DBASE for registry records, UNPB preprints, INPR pre-proofs, "
               "ABST, NEWS, RPRT, GEN), ID (reference id), TI, AU (one per author), PY, DA "
               "(YYYY/MM/DD at the precision known), T2 and JO (source), VL, IS, SP/EP, AB, DO, UR, "
               "AN + DB (PMID + PubMed, or a registry record's registration id + its registry), M3 "
               "(type label), N1 (notes), C1 (the study ids, `|`-joined: regroup references by "
               "study), C2 (`Report Results` / `No Results`). Line breaks inside values become "
               "spaces.",
    }),
}, name="ReferenceQueryArgs")

ReferencePageSchema = envelope(ReferenceSchema, "ReferencePage", facets=REFERENCE_FACETS)

__all__ = ["PartialDate", "ReferenceCreateSchema", "ReferencePatchSchema"]
