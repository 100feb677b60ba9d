"""The HTTP API: the problem-aware Api instance, its blueprints, and Swagger UI served locally."""

from __future__ import annotations

import swagger_ui_bundle
from flask import send_from_directory
from flask_cors import CORS

from . import (
    changes,
    downloads,
    duplicates,
    imports,
    meta,
    references,
    registrations,
    searches,
    stats,
    studies,
    suggestions,
)
from .inputs import AsciiIntegerConverter, refuse_control_characters
from .limits import refuse_long_request_lines
from .negotiation import init_negotiation
from .parser import BEARER
from .problems import ProblemApi
from .ratelimits import init_rate_limits
from .spec import FinishedSpec, OperationIds

API_DESCRIPTION = """\
A study-based register of clinical research, first filled with COVID-19 studies. A **study** (one
trial, one cohort) is found once, with every **reference** that reports it grouped beneath: its
trial registry records, journal articles and preprints.

* Reads are public; every write needs `Authorization: Bearer <token>` (made with
  `study-register token create`).
* Errors are `application/problem+json` (RFC 9457) with an `errors` map for validation failures.
* Lists answer with an envelope (`items`, exact `total`, `page`, `page_size`, `next`, `prev`) and
  an RFC 8288 `Link` header; page with `page` (up to record 10,000) or with the opaque `cursor`
  from `next` (no depth limit; signed: an altered cursor is 422). `page_size` 1–1,000 (default 20).
* `fields=id,title` on studies and references (lists, single reads, `POST …/search` bodies) answers
  only those members of each record (`id` always): the JSON 200 is then the `…Fields` schema.
* A `POST` that writes takes an `Idempotency-Key` header: a retry with the same key answers the
  first answer (`Idempotent-Replayed: true`) and writes nothing.
* Lists also export: `format=csv|ndjson|fhir` (and `ris` on `/references`) streams every matching
  record, unpaged, in the order asked, as a download with its exact count in `X-Total-Count`.
* FHIR R4 (`application/fhir+json; fhirVersion=4.0`): `Accept: application/fhir+json` or `format=fhir`
  on a study (ResearchStudy) or a reference (DocumentReference); on the lists, a searchset Bundle.
  An `Accept` the endpoint cannot satisfy is answered 406; `*/*` and browsers get JSON, except on
  `/studies/{id}`, where a browser (`Accept: text/html`) gets the study record page.
* Input limits: every date and instant (bodies and filters) lies between 1900-01-01 and 2100-12-31
  (instants in UTC); integers are ASCII digits within 64 bits; booleans are `true`/`false`; strings
  hold no NUL, other control characters or lone surrogates; registration identifiers are never blank;
  ids in paths are ASCII digits. Anything else is a 4xx problem naming the parameter or field.
* Single-resource reads send `ETag`/`Last-Modified`; `If-None-Match` gives 304 and `If-Match` on
  writes gives 412 when stale.
"""

SWAGGER_ASSETS = "/docs/assets/"


def init_api(app) -> ProblemApi:
    app.config.update(
        API_TITLE="Study Register API",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_ASSETS,
        OPENAPI_SWAGGER_UI_CONFIG={"tryItOutEnabled": False, "displayRequestDuration": True},
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION,
                     "license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"}},
            # Relative: the document describes whichever host serves it.
            "servers": [{"url": "/", "description": "This server."}],
            "components": {"securitySchemes": {BEARER: {
                "type": "http", "scheme": "bearer",
                "description": "A token from `study-register token create`."}}},
        },
    )
    # Browsers on other origins (evidence maps, dashboards) may call the API; writes still need a token.
    CORS(app, expose_headers=["ETag", "Last-Modified", "Link", "Location", "Retry-After",
                             "Content-Disposition", "X-Total-Count", "Idempotent-Replayed", "RateLimit",
                             "RateLimit-Policy"],
         allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"],
         max_age=3600,
         send_wildcard=True)
    # Searches and exports over their rate limit are refused before a database connection is taken...
    init_rate_limits(app)
    # An Accept header the endpoint cannot satisfy: 406 (api/negotiation.py).
    init_negotiation(app)
    # ...and first of all hooks, a request line too long.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_long_request_lines)
    app.before_request_funcs[None].insert(1, refuse_control_characters)
    # Before any route is made: every `<int:...>` id in a path takes ASCII digits only.
    app.url_map.converters["int"] = AsciiIntegerConverter
    api = ProblemApi(app, spec_kwargs={"extra_plugins": [OperationIds()]})
    api.spec.__class__ = FinishedSpec  # to_dict() gives the finished document (api/spec.py)
    for blueprint in (studies.blp, duplicates.blp, references.blp, registrations.blp, stats.blp, imports.blp,
                      suggestions.blp, searches.blp, downloads.blp, changes.blp,
                      meta.notices,
                      meta.vocabularies, meta.ops):
        api.register_blueprint(blueprint)

    @app.get(SWAGGER_ASSETS + "<path:filename>")
    def swagger_assets(filename):
        """Swagger UI's own files, from the installed package: /docs works with no internet."""
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    return api
