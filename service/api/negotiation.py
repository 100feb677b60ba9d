"""Content negotiation: which media type an answer takes, from the request's `Accept` (RFC 9110 §12.5.1).

Every endpoint produces JSON; some also produce other representations (FHIR). ``OFFERS`` maps an endpoint
to the media types it can produce, best first; an endpoint not listed produces JSON only. ``chosen()``
picks the client's most preferred of them (q-values, `type/*` and `*/*` honoured; a more specific range
decides an offer's quality; ties go to the endpoint's own order, so `*/*` and no `Accept` get JSON), and
the ``before_request`` hook answers 406 problem+json when none is acceptable. A browser's
`text/html,...,*/*;q=0.8` gets JSON, except on `/studies/{id}`, which offers HTML last (the study record
page: one URL per study, for people and machines alike). To add a representation, add its media type to
the endpoint's offers and branch on ``chosen()`` in the view.

An explicit `format=` query parameter (exports, `format=fhir`) decides the representation itself and
`Accept` is not consulted: a Swagger UI or a generated client may send `Accept: application/json` with
`format=csv`, and the parameter is the more deliberate of the two. Errors are always problem+json.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import marshmallow as ma
from flask import Response, request
from marshmallow import fields, validate
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from ..domain.errors import InvalidInput
from .problems import problem
from .schemas.common import _PAGING

JSON = "application/json"
FHIR_JSON = "application/fhir+json"
TEXT_HTML = "text/html"
FHIR_VERSION = "4.0"
FHIR_CONTENT_TYPE = f"{FHIR_JSON}; fhirVersion={FHIR_VERSION}"
_BARE_DECIMAL = re.compile(r"(;\s*)q=\.", re.IGNORECASE)

# endpoint -> every media type its GET can produce, the default (JSON) first.
OFFERS: dict[str, tuple[str, ...]] = {
    "studies.StudyById": (JSON, FHIR_JSON, TEXT_HTML),  # HTML: the study record page (service/web)
    "references.ReferenceById": (JSON, FHIR_JSON),
    "studies.Studies": (JSON, FHIR_JSON),
    "references.References": (JSON, FHIR_JSON),
    "studies.StudyReferences": (JSON, FHIR_JSON),
}
# Endpoints left alone: Swagger UI (HTML) and its files, whatever a browser asks for.
EXEMPT_ENDPOINTS = {"api-docs.openapi_swagger_ui", "swagger_assets", "static"}


# The query argument of a single-record GET: its representation (else `Accept` decides). Other
# parameters are let through as before (a merged id's redirect keeps them).
class RecordFormatArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    format = fields.String(validate=validate.OneOf(["json", "fhir"]), metadata={
        "description": "`json` (the default) or `fhir`: the FHIR R4 resource "
                       "(`application/fhir+json; fhirVersion=4.0`), as `Accept: application/fhir+json` "
                       "asks. Given, it wins over `Accept`."})


def _split(media_range: str) -> tuple[str, str, dict[str, str]]:
    """`type/subtype; a=b` (as werkzeug lower-cases it) -> type, subtype, parameters."""
    essence, *params = [part.strip() for part in media_range.split(";")]
    kind, _, subtype = essence.partition("/")
    parameters = {}
    for param in params:
        name, _, value = param.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    return kind.lower(), (subtype or "*").lower(), parameters


def _matches(media_range: str, offer: str) -> int | None:
    """How specifically ``media_range`` matches ``offer`` (3 exact, 2 `type/*`, 1 `*/*`), or None."""
    kind, subtype, parameters = _split(media_range)
    offer_kind, offer_subtype, _ = _split(offer)
    version = parameters.get("fhirversion")
    if version is not None and offer == FHIR_JSON and version not in (FHIR_VERSION, "4.0.1"):
        return None  # a FHIR version we do not serve
    if kind == "*" and subtype == "*":
        return 1
    if kind != offer_kind:
        return None
    if subtype == "*":
        return 2
    return 3 if subtype == offer_subtype else None


def best_match(offers: Sequence[str], header: str | None) -> str | None:
    """The offer the client prefers most, or None when it accepts none of them.

    No (or an empty) `Accept` accepts anything: the first offer. An offer's quality is the q of the most
    specific range matching it; q=0 refuses it.
    """
    if header:  # `q=.2` (Java's default Accept) is no RFC qvalue, and werkzeug drops its range
        header = _BARE_DECIMAL.sub(r"\1q=0.", header)
    ranges = list(parse_accept_header(header, MIMEAccept)) if header else []
    if not ranges:
        return offers[0] if offers else None
    best, best_quality = None, 0.0
    for offer in offers:
        specificity, quality = 0, 0.0
        for media_range, q in ranges:
            level = _matches(media_range, offer)
            if level is not None and level > specificity:
                specificity, quality = level, q
        if quality > best_quality:
            best, best_quality = offer, quality
    return best


def offers() -> tuple[str, ...]:
    """The media types the current request's endpoint can produce, best first (writes answer JSON)."""
    if request.method not in ("GET", "HEAD"):
        return (JSON,)
    return OFFERS.get(request.endpoint or "", (JSON,))


def chosen() -> str | None:
    """The media type to answer the current request with (None: not acceptable)."""
    return best_match(offers(), request.headers.get("Accept"))


def refuse_unacceptable() -> Response | None:
    """before_request: 406 problem+json when the client accepts nothing this endpoint produces."""
    if request.endpoint is None or request.endpoint in EXEMPT_ENDPOINTS or "format" in request.args:
        return None  # no route (404 follows), Swagger UI, or `format=` decides
    if request.method == "OPTIONS" or chosen() is not None:
        return None
    produced = ", ".join(offers())
    return problem(406, f"Cannot answer in any media type the Accept header allows "
                        f"({request.headers.get('Accept')!r}); {request.path} produces: {produced}. "
                        f"Errors are application/problem+json.")


def add_vary(response: Response) -> Response:
    """after_request: answers that depend on `Accept` say so to caches."""
    if request.endpoint in OFFERS:
        response.vary.add("Accept")
    return response


def init_negotiation(app) -> None:
    app.before_request(refuse_unacceptable)
    app.after_request(add_vary)


def record_format(args: dict) -> str:
    """The media type of a single-record GET: from `format=` when given, else from `Accept` (JSON, FHIR
    JSON, or HTML where the endpoint offers it)."""
    if args.get("format"):
        return FHIR_JSON if args["format"] == "fhir" else JSON
    return chosen() or JSON


def json_only(args: dict) -> None:
    """422 when a single record's FHIR answer is asked for with `fields` (which picks JSON members)."""
    if args.get("fields"):
        raise InvalidInput("Invalid query parameter — fields: `fields` picks members of the JSON record; "
                           "a FHIR resource is sent whole. Drop `fields` or ask for JSON.",
                           errors={"fields": ["Not with FHIR (`format=fhir` or Accept: "
                                              "application/fhir+json): drop `fields`."]})


def list_format(args: dict) -> dict:
    """A list's arguments with `format` set to `fhir` when `Accept` (no `format=`) asks for FHIR: the
    whole Bundle, which is not paged (422 naming a paging parameter, or `fields`, given with it)."""
    if "format" not in request.args and chosen() == FHIR_JSON:
        paging = [key for key in (*_PAGING, "fields") if key in request.args]
        if paging:
            raise InvalidInput("A FHIR Bundle (Accept: application/fhir+json) is not paged: it streams "
                               "every matching record, whole.",
                               errors={key: [f"Not with a FHIR Bundle: drop `{key}`."] for key in paging})
        args = dict(args, format="fhir")
    return args
