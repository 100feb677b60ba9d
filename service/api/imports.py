"""Blueprint "imports": a file of registry records or references, uploaded and imported in one go."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from ..db import long_operation
from ..domain.imports import import_file
from ..formats.reading import Bounds
from .parser import Blueprint
from .problems import problem
from .schemas.imports import ImportQueryArgsSchema, ImportReportSchema

blp = Blueprint("imports", __name__, url_prefix="/imports",
                description="Import files of registry records and references (as the CLI's `import`).")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BY_EXTENSION = {".csv": "ictrp-csv", ".json": "ctgov-json", ".ris": "ris", ".xlsx": "ictrp-xlsx"}
BY_MEDIA_TYPE = {"text/csv": "ictrp-csv", "application/json": "ctgov-json",
                 "application/x-research-info-systems": "ris", "application/x-ndjson": "ndjson",
                 XLSX: "ictrp-xlsx"}
RAW_MEDIA_TYPES = (*BY_MEDIA_TYPE, "text/plain", "application/octet-stream", "application/gzip",
                   "application/x-gzip", "application/vnd.ms-excel", "text/tab-separated-values")

# Examples: real records (DIRECCT's ICTRP list; ClinicalTrials.gov; PubMed via regCOVID), shortened.
CSV_EXAMPLE = (
    "trn,registry,date_registration,date_enrollement,retrospective_registration,recruitment_status,phase,"
    "study_type,countries,public_title,target_enrollment,web_address,euctr_country\n"
    "NCT04315948,ClinicalTrials.gov,2020-03-13,2020-03-22,FALSE,Not Recruiting,Phase 3,Interventional,"
    "France,Trial of Treatments for COVID-19 in Hospitalized Adults,3100,"
    "https://clinicaltrials.gov/show/NCT04315948,NA\n")
CTGOV_EXAMPLE = {"studies": [{"protocolSection": {
    "identificationModule": {"nctId": "NCT04280705",
                             "briefTitle": "Adaptive COVID-19 Treatment Trial (ACTT)"},
    "designModule": {"studyType": "INTERVENTIONAL", "designInfo": {
        "allocation": "RANDOMIZED", "interventionModel": "PARALLEL", "primaryPurpose": "TREATMENT"}}},
    "hasResults": True}]}
RIS_EXAMPLE = ("TY  - JOUR\nTI  - Remdesivir for the Treatment of Covid-19 - Final Report.\n"
               "JO  - The New England journal of medicine\nPY  - 2020\nAN  - 32445440\n"
               "AB  - ... (ClinicalTrials.gov number, NCT04280705.)\nER  - \n")


def _format_of_name(name: str | None) -> str | None:
    name = (name or "").lower().removesuffix(".gz")
    return next((fmt for ext, fmt in BY_EXTENSION.items() if name.endswith(ext)), None)


@blp.route("")
class Imports(MethodView):
    @blp.write("imports", json_body=False)
    @blp.arguments(ImportQueryArgsSchema, location="query")
    @blp.response(200, ImportReportSchema)
    @blp.alt_response(400, response="BAD_REQUEST", description="The multipart body cannot be read.")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE", description=(
        "The file is larger than `MAX_IMPORT_BYTES`, or unpacks (gzip, xlsx) to more than "
        "`IMPORT_MAX_UNPACKED_BYTES` or `IMPORT_MAX_RATIO` times its compressed size: nothing was imported."))
    @blp.alt_response(409, response="CONFLICT", description=(
        "The database refused a write as breaking a constraint (a concurrent change): nothing was imported."))
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description=(
        "The database is locked, unreachable or timed out (with `Retry-After`): nothing was imported."))
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE",
                      description="The body is neither a multipart upload nor a file's raw bytes.")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description=(
        "A bad query parameter, no file, a format that cannot be told, or a file refused as a whole "
        "(wrong encoding, truncated, wrong columns, not the format named, malformed XML in a workbook, data "
        "the database refuses): nothing was imported."))
    @blp.doc(requestBody={"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "The file (plain or gzip); its name may tell the format."},
            "trial_ids": {"type": "string", "format": "binary",
                          "description": "`direcct-results` only (and required there): DIRECCT's "
                                         "registrations file (plain or gzip), the map from the DIRECCT "
                                         "trial ids of the results to registrations."}}}},
        "text/csv": {"schema": {"type": "string", "format": "binary"}, "example": CSV_EXAMPLE},
        "application/json": {"schema": {"type": "object", "additionalProperties": True, "description": (
            "A ClinicalTrials.gov API v2 studies document.")}, "example": CTGOV_EXAMPLE},
        "application/x-research-info-systems": {"schema": {"type": "string", "format": "binary"},
                                                "example": RIS_EXAMPLE},
        "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
        XLSX: {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }})
    def post(self, args):
        """Import a file

        Upload a file as multipart/form-data (field `file`) or send its bytes as the body. It is imported
        in one transaction: every record is created, updated (a newer version) or left unchanged (importing
        the same file twice changes nothing), rows that cannot be mapped are rejected with their line and
        reason, and a file that cannot be read as the format named is refused whole (422, nothing
        written). The answer is the same report as the CLI's `study-register import`.

        Gzip files are unpacked transparently (not an xlsx workbook, which is compressed already), to at
        most `IMPORT_MAX_UNPACKED_BYTES` (default 1 GiB) and `IMPORT_MAX_RATIO` (default 100) times the
        compressed size; the same bounds hold for the parts of an xlsx workbook. The
        size limit is `MAX_IMPORT_BYTES` (default 200 MiB),
        separate from the JSON body limit. Needs a token with the `imports` scope: an import creates and
        changes both studies and references.
        """
        limit = current_app.config["MAX_IMPORT_BYTES"]
        if request.content_length is not None and request.content_length > limit:
            return problem(413, f"The file is larger than the import limit of {limit:,} bytes.")
        request.max_content_length = limit
        fmt = args.get("format")
        options = None
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            if upload is None:
                return problem(422, "Send the file in the multipart field `file`.",
                               errors={"file": ["Missing data for required field."]})
            fmt = fmt or _format_of_name(upload.filename)
            stream = upload.stream
            trial_ids = request.files.get("trial_ids")
            if trial_ids is not None:
                if fmt != "direcct-results":
                    return problem(422, "The part `trial_ids` is only for the format `direcct-results`.",
                                   errors={"trial_ids": ["Unknown field."]})
                options = {"trial_ids": trial_ids.stream}
        elif request.mimetype in RAW_MEDIA_TYPES:
            fmt = fmt or BY_MEDIA_TYPE.get(request.mimetype)
            stream = request.stream
        else:
            return problem(415, "Send the file as multipart/form-data (field `file`) or as the raw body "
                                "(text/csv, application/json, application/x-research-info-systems, "
                                "application/x-ndjson, the xlsx type, application/octet-stream).")
        if fmt is None:
            return problem(422, "The format cannot be told from the upload; give `format`.",
                           errors={"format": ["Missing data for required field."]})
        bounds = Bounds(max_bytes=current_app.config["IMPORT_MAX_UNPACKED_BYTES"],
                        max_ratio=current_app.config["IMPORT_MAX_RATIO"])
        with long_operation():  # an import's own, longer limits (DATABASE_LONG_TIMEOUT)
            return import_file(stream, fmt=fmt, encoding=args.get("encoding"),
                               dry_run=args["dry_run"], options=options, bounds=bounds).as_dict()
