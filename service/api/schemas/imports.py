"""Schemas of imports: the query arguments of `POST /imports` and the report it answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...formats import FORMATS
from ...formats.reading import ENCODINGS
from .common import Bool, QueryArgsSchema

FORMAT_DOC = (
    "`ictrp-csv`: a WHO ICTRP trial list (the WHO export's 40/58 columns, or the TrialsTracker and "
    "DIRECCT layouts, told by their headers); `ctgov-json`: ClinicalTrials.gov API v2 JSON (one study, a "
    "page `{\"studies\": [...]}`, or NDJSON); `ris`: RIS (journal articles, preprints); `ndjson`: the "
    "register's own NDJSON export; `ctgov-aact-csv`: ClinicalTrials.gov studies as CSV in the AACT `studies` "
    "table's columns; `ictrp-xlsx`: the WHO ICTRP export (40/58 columns) saved as an Excel workbook; "
    "`articles-csv`: an article list as CSV (the regCOVID PubMed lists, LitCovid document info, DIRECCT "
    "trial-id search hits, told by their headers); `direcct-registrations`, `direcct-results` (send "
    "DIRECCT's registrations file as the multipart part `trial_ids` too) and `direcct-registries` "
    "(recognised, refused): the DIRECCT link files. "
    "Optional when the upload's file name ends in `.csv`, `.json`, `.ris` or `.xlsx` "
    "(`.gz` allowed) or the body's Content-Type is `text/csv`, `application/json`, "
    "`application/x-research-info-systems`, `application/x-ndjson` (the register's NDJSON) or the xlsx "
    "type `application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`.")


class ImportQueryArgsSchema(QueryArgsSchema):
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={"description": FORMAT_DOC})
    dry_run = Bool(load_default=False, metadata={
        "description": "`true`: do everything but write, and answer the same report."})
    encoding = fields.String(validate=validate.OneOf(sorted(ENCODINGS)), metadata={
        "description": "The file's text encoding. Default: detected (UTF-8 with or without BOM, else "
                       "Windows-1252)."})


class RejectedRowSchema(ma.Schema):
    line = fields.Integer(metadata={"description": "Line the record starts on (for a JSON page: the "
                                                   "study's position in `studies`, from 1).", "example": 12})
    reason = fields.String(metadata={"example": "trial identifier 'ABC-1' is not a registration number "
                                                "of a known registry."})


class DuplicateRowSchema(ma.Schema):
    line = fields.Integer(metadata={"example": 451})
    same_as = fields.Integer(metadata={"description": "The earlier line with the same key; that one "
                                                      "was imported.", "example": 450})
    key = fields.String(metadata={"example": "ChiCTR2000029658"})


class CountsSchema(ma.Schema):
    created = fields.Integer()
    updated = fields.Integer()


class ImportReportSchema(ma.Schema):
    format = fields.String(metadata={"example": "ictrp-csv"})
    dry_run = fields.Boolean(metadata={"description": "`true`: nothing was written."})
    layout = fields.String(allow_none=True, metadata={
        "description": "The layout recognised: `who-40`, `who-58`, `trialstracker-25`, `direcct-13`, "
                       "`ictrp-columns`; `study`, `page`, `ndjson`; `ris`; `register-ndjson`; "
                       "`direcct-registrations`, `direcct-results`.",
        "example": "who-40"})
    encoding = fields.String(metadata={"example": "utf-8"})
    rows = fields.Integer(metadata={"description": "Records read (rejected and duplicates included)."})
    created = fields.Integer(metadata={"description": "Records that created a study or reference."})
    updated = fields.Integer(metadata={"description": "Records that changed what was stored (a newer "
                                                      "version, a registration added)."})
    unchanged = fields.Integer(metadata={"description": "Records equal to what was stored: not written, "
                                                        "their `updated` dates stay."})
    linked = fields.Integer(metadata={"description": "Automatic links added between studies and "
                                                     "references."})
    rejected = fields.List(fields.Nested(RejectedRowSchema), metadata={
        "description": "Every record not imported, with its line and the reason."})
    duplicates = fields.List(fields.Nested(DuplicateRowSchema), metadata={
        "description": "Records whose key came earlier in the same file (the first one is imported)."})
    studies = fields.Nested(CountsSchema)
    references = fields.Nested(CountsSchema)
    registrations_added = fields.Integer()
    seconds = fields.Float(metadata={"description": "Time the import took."})
