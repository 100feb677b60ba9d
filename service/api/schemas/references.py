"""Schemas of references: the record, what creating and patching accept, and the list's query arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain import evidence
from ...domain.facets import REFERENCE_FACETS
from ...domain.references import REFERENCE_SORTS
from ...search.query import REFERENCE_FIELDS
from ...validation import (
    EARLIEST,
    LATEST,
    Bool,
    Int,
    PartialDate,
    ReferenceCreateSchema,
    ReferencePatchSchema,
)
from ...vocabularies import REFERENCE_TYPES
from ..dumping import dumper
from ..negotiation import RecordFormatArgsSchema
from .common import (
    OPTIONAL,
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
from .search_body import long_form_note, search_body, search_paging_args


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
    publication_types = fields.List(fields.String(), metadata={
        "description": "Publication types as its bibliographic source gives them (PubMed's \"Review\", "
                       "\"Randomized Controlled Trial\", ...); empty when unknown.",
        "example": ["Journal Article", "Randomized Controlled Trial"]})
    notes = fields.String(allow_none=True)
    study_ids = fields.List(fields.Integer(), metadata={
        "description": "Studies this reference reports (its links of role `reports`)."})
    cited_study_ids = fields.List(fields.Integer(), metadata={
        "description": "Studies this reference mentions or cites without reporting them (links of role "
                       "`cites`: a review, background, another trial it discusses)."})
    registration_ids_found = fields.List(fields.String(), metadata={
        "description": "Registration identifiers found in its `registration_id`, title, abstract and "
                       "notes (canonical form): the reason it is, or is not, linked automatically.",
        "example": ["ChiCTR2000030261"]})
    first_published = fields.Date(metadata={"example": "2020-04-01"})
    updated = Instant(metadata={"example": "2022-07-04T00:00:00Z"})


class EvidenceSchema(ma.Schema):
    kind = fields.String(validate=validate.OneOf(evidence.KINDS), metadata={
        "description": "Where the identifier was found: `registration_id` (the reference's own field), "
                       "`registration_statement` (a trial-registration statement in its title or abstract, "
                       "\"TRIAL REGISTRATION: ... ChiCTR2000030261\", \"ClinicalTrials.gov Identifier: "
                       "NCT...\"), `databank` (a file says a bibliographic database lists it as the "
                       "article's own), `hand_found` (a file says people found the article to be a "
                       "publication of the trial), `text` (other title, abstract or notes text), `full_text` "
                       "(a file says it occurs in the article's full text), `registry_listing` (a file says "
                       "the study's registry record lists the article).",
        "example": "registration_statement"})
    field = fields.String(metadata={"description": "The reference's field holding it: `registration_id`, "
                                                   "`title`, `abstract` or `notes`.", "example": "abstract"})
    text = fields.String(metadata={"description": "The matched text, with about 150 characters around the "
                                                  "identifier (a file's whole claim sentence).",
                                   "example": "TRIAL REGISTRATION: Chinese Clinical Trial Registry, "
                                              "ChiCTR2000030261."})
    start = fields.Integer(metadata={"description": "Where the identifier starts in `field` (characters)."})
    end = fields.Integer(metadata={"description": "Where it ends in `field`."})
    source = fields.String(metadata={"description": "For a file's claim: the file it came from.", **OPTIONAL})
    claim = fields.String(metadata={"description": "For a file's claim: what the file says of the "
                                                   "article and the trial.", **OPTIONAL})


class LinkFieldsSchema(ma.Schema):
    """What a link between a study and a reference says of itself (domain/evidence.py has the rules)."""

    role = fields.String(validate=validate.OneOf(["reports", "cites"]), metadata={
        "description": "`reports`: the reference is a report of the study (its registry record, a results "
                       "article, a preprint, a protocol, a conference abstract of it); `cites`: it mentions "
                       "or cites the study without reporting it (a review, guidance, a commentary, another "
                       "trial's report, background).", "example": "reports"})
    role_curated = fields.Boolean(metadata={
        "description": "`true`: a curator set the role (`PATCH /studies/{id}/references/{ref}`); automation "
                       "never changes it."})
    link = fields.String(metadata={"description": "How the link was made: `manual` (by a curator, or a "
                                                  "file's manual link) or `auto` (by a registration "
                                                  "identifier found in the reference).", "example": "auto"})
    link_identifier = fields.String(allow_none=True, metadata={
        "description": "For an automatic link: the registration identifier that made it."})
    confidence = fields.Float(allow_none=True, metadata={
        "description": "0-1: how sure the rules are of the role (1 for a curator's link or role).",
        "example": 0.97})
    rule = fields.String(allow_none=True, validate=validate.OneOf(evidence.RULES), metadata={
        "description": "The rule that gave the role: " + ", ".join(f"`{r}`" for r in evidence.RULES)
                       + " (README, \"How links are made\"); `manual` a link made by hand, `curator` a "
                         "role set by hand.", "example": "own_registration"})
    evidence = fields.List(fields.Nested(EvidenceSchema), metadata={
        "description": "Every place the study's registration identifiers were found in the reference, "
                       "strongest first as found."})


class LinkedReferenceSchema(ReferenceSchema, LinkFieldsSchema):
    pass


REFERENCE_MEMBERS = tuple(ReferenceSchema._declared_fields)  # what `fields=` may name


def _fields(*, single: bool = False) -> FieldNames:
    return FieldNames(REFERENCE_MEMBERS, metadata={
        "description": fields_doc("reference", REFERENCE_MEMBERS, single=single, costs=(
            " (`study_ids` and `cited_study_ids` cost a query, `registration_ids_found` another)")),
        "example": ["id", "title", "doi", "pmid"]})


# GET /references/{id}: its representation and its members.
ReferenceReadArgsSchema = RecordFormatArgsSchema.from_dict({"fields": _fields(single=True)},
                                                           name="ReferenceReadArgs")

ReferenceQueryArgsSchema = QueryArgsSchema.from_dict({
    "q": long_form_note(search_field(
        "references: their `title` (with their own registration identifier), `abstract` (with the "
        "identifiers found in it), authors (`author`), `source`, `doi` and `pmid`", REFERENCE_FIELDS,
        'title:"stem cells" AND covid*'), "/references/search"),
    "type": fields.List(Vocab(REFERENCE_TYPES), metadata={
        "description": "Reference type code. Repeat to OR."}),
    "has_results": Bool(metadata={"description": "`true`: reports results (\"Report "
                                                           "Results\"); `false`: \"No Results\"."}),
    "study_id": Int(validate=validate.Range(1, 2_147_483_647), metadata={
        "description": "References reporting this study (links of role `reports`; "
                       "`GET /studies/{id}/references?role=cites` lists those citing it)."}),
    "linked": Bool(metadata={"description": "`false`: the curation queue of references "
                                                      "reporting no study (no link of role `reports`: "
                                                      "unlinked, or only citing studies); `true`: those "
                                                      "reporting at least one."}),
    "doi": Text(validate=validate.Length(1, 300), metadata={"description": "Exact DOI, any case."}),
    "pmid": Text(validate=validate.Regexp(r"^[1-9]\d{0,9}$", error="Not a PMID."),
                 metadata={"description": "Exact PubMed id, e.g. `32445440`."}),
    "registration_id": Text(validate=validate.Length(1, 100), metadata={
        "description": "A trial registry record's own identifier (any written form)."}),
    "year_from": Int(validate=validate.Range(EARLIEST.year, LATEST.year), metadata={
        "description": "Published in this year or later."}),
    "year_to": Int(validate=validate.Range(EARLIEST.year, LATEST.year), metadata={
        "description": "Published in this year or earlier."}),
    "updated_since": Instant(metadata={"description": "Updated at or after this instant (or day)."}),
    "facets": FacetNames(REFERENCE_FACETS, metadata={
        "description": "Facet counts to add to the answer, comma-separated: "
                       + ", ".join(f"`{f}`" for f in REFERENCE_FACETS) + ". `year` lists the "
                       "years present, newest first, then `null` for references without one.",
        "example": ["type", "has_results"]}),
    "fields": _fields(),
    **paging_fields(REFERENCE_SORTS, "id", relevance=True, formats={
        "csv": "`text/csv; charset=utf-8` (UTF-8, a BOM only with `bom=true`), a header row then "
               "one row per reference, "
               "the study ids first: study_ids, id, type, title, authors, source, year, published, "
               "volume, issue, pages, doi, pmid, url, registration_id, has_results, publication_types, "
               "cited_study_ids, abstract, notes, first_published, updated (study_ids: the studies it "
               "reports; cited_study_ids: those it cites). Multiple values are joined with `|`; values "
               "are written as stored, with no spreadsheet-formula escaping; text and identifier "
               "cells quoted (see `bom`).",
        "ndjson": "`application/x-ndjson`, one reference per line exactly as an item of this list.",
        "ris": "`application/x-research-info-systems` (UTF-8, CRLF) for reference managers and "
               "review tools, tags chosen so that Zotero and citation-js read every value (README "
               "\"RIS export\"): TY (JOUR, MANSCPT preprints, DBASE registry records, ABST, NEWS, "
               "RPRT, GEN), ID, TI, AU (`Family, Given`; a group author without a comma), PY, DA, "
               "T2 (journal), DB (server, registry or PubMed), AN (PMID or registration id), VL, IS, "
               "SP/EP, AB, DO, UR, KW `study:<registration id>` for each registration of each study it "
               "reports and `results:yes`/`results:no`, N1 (notes). Line breaks inside values become "
               "spaces.",
        "fhir": "`application/fhir+json; fhirVersion=4.0`: a FHIR R4 Bundle (`searchset`) of "
                "DocumentReference resources, one per reference (README \"FHIR\").",
    }),
}, name="ReferenceQueryArgs")

ReferencePageSchema = envelope(ReferenceSchema, "ReferencePage", facets=REFERENCE_FACETS, searched=True)
dump_reference = dumper(ReferenceSchema())  # ReferenceSchema().dump of one record, planned once
dump_reference_page = dumper(ReferencePageSchema())  # ReferencePageSchema().dump of an envelope

# POST /references/search: the GET's parameters as a JSON body; `page` or `cursor` in its query string.
ReferenceSearchSchema = search_body(ReferenceQueryArgsSchema, "ReferenceSearch",
                                    search_path="/references/search")
ReferenceSearchPagingArgsSchema = search_paging_args("ReferenceSearchPagingArgs",
                                                     search_path="/references/search")

__all__ = ["PartialDate", "ReferenceCreateSchema", "ReferencePatchSchema"]
