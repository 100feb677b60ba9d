"""Blueprint "exports": `GET /studies/export` and `GET /references/export`, the list exports as operations
of their own.

The same answer as `GET /studies?format=csv` (which still works): every match, unpaged, streamed as a
download. An operation of its own so that the OpenAPI document can say what it answers (its media types,
never the JSON page) and that a generated client reads the body as text instead of parsing it as JSON;
its query takes the list's filters and `sort`, and `format` is required (no paging, no `facets`).
"""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from . import references, studies
from .exports import CONTENT_TYPES, EXPORT_FORMATS
from .parser import Blueprint
from .schemas.common import QueryArgsSchema
from .schemas.references import ReferenceQueryArgsSchema
from .schemas.studies import StudyQueryArgsSchema

blp = Blueprint("exports", __name__, url_prefix="/",
                description="Every matching study or reference as one download: CSV, NDJSON, RIS.")

NOT_EXPORTED = ("page", "page_size", "cursor", "facets", "include", "fields")


def export_args(list_args: type[ma.Schema], resource: str, name: str) -> type[ma.Schema]:
    """The list's query arguments without paging and presentation, `format` one export format, required."""
    declared = {key: field for key, field in list_args._declared_fields.items()
                if key not in (*NOT_EXPORTED, "format")}
    listed = list_args._declared_fields["format"]
    declared["format"] = fields.String(
        required=True, validate=validate.OneOf(list(EXPORT_FORMATS[resource])),
        metadata={"description": listed.metadata.get("description", "The export's format.")})
    return QueryArgsSchema.from_dict(declared, name=name)


# A JSON download is a JSON document, not a string (schemathesis validates it as such).
_JSON_BODIES = {"application/fhir+json": {
    "type": "object", "description": "A FHIR R4 Bundle of type searchset (README \"FHIR\")."}}


def export_responses(resource: str) -> dict:
    """The 200 of an export: one media type per format (text first: a generated client reads the body as
    text), with the download's headers."""
    media = [CONTENT_TYPES[f].split(";")[0] for f in EXPORT_FORMATS[resource]]
    media.sort(key=lambda m: not m.startswith("text/"))
    return {200: {
        "description": "The export as a download, in the media type of `format`.",
        "content": {m: {"schema": _JSON_BODIES.get(m, {"type": "string"})} for m in media},
        "headers": {
            "Content-Disposition": {
                "description": f'`attachment; filename="{resource}-YYYYMMDD.<format>"`.',
                "schema": {"type": "string"}},
            "X-Total-Count": {"description": "The exact number of records streamed.",
                              "schema": {"type": "integer"}},
        }}}


BUSY = ("This server is streaming as many exports as it serves at once (`EXPORT_STREAMS` per process), or "
        "the database is unavailable; `Retry-After` says when to try again.")

StudyExportArgsSchema = export_args(StudyQueryArgsSchema, "studies", "StudyExportArgs")
ReferenceExportArgsSchema = export_args(ReferenceQueryArgsSchema, "references", "ReferenceExportArgs")


@blp.route("studies/export")
class StudyExport(MethodView):
    @blp.arguments(StudyExportArgsSchema, location="query")
    @blp.doc(responses=export_responses("studies"))
    @blp.limited
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description=BUSY)
    def get(self, args):
        """Export studies

        Every study matching the filters (and `q`), unpaged, in the order of `sort`, as one download in
        `format`; `X-Total-Count` says how many. The same answer as `GET /studies?format=…`. Exports
        count against the exports rate limit of your address. A server streams at most a few exports
        at once (`EXPORT_STREAMS` per process): past them 503 with `Retry-After`, before anything is read.
        """
        return studies.list_studies(args)


@blp.route("references/export")
class ReferenceExport(MethodView):
    @blp.arguments(ReferenceExportArgsSchema, location="query")
    @blp.doc(responses=export_responses("references"))
    @blp.limited
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description=BUSY)
    def get(self, args):
        """Export references

        Every reference matching the filters (and `q`), unpaged, in the order of `sort`, as one download
        in `format` (`ris` for reference managers); `X-Total-Count` says how many. The same answer as
        `GET /references?format=…`. Exports count against the exports rate limit of your address. A
        server streams at most a few exports at once (`EXPORT_STREAMS` per process): past them 503 with
        `Retry-After`, before anything is read.
        """
        return references.list_references(args)
