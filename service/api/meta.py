"""Blueprints for operations and reference data: /health, /version, /vocabularies, /notices."""

from __future__ import annotations

from importlib.metadata import version as package_version

from flask import current_app
from flask.views import MethodView

from .. import vocabularies as vocab
from ..db import LIMITS, backend_name, database, deadline
from ..domain import notices as domain
from ..domain.ordering import sort_keys
from ..migrations import current_version
from ..models import Notice
from .caching import if_match, record_response
from .links import link_for
from .paging import paginate
from .parser import IF_MATCH, IF_NONE_MATCH, Blueprint
from .problems import database_problem, problem
from .schemas.meta import (
    HealthSchema,
    NoticeCreateSchema,
    NoticePageSchema,
    NoticePatchSchema,
    NoticeQueryArgsSchema,
    NoticeSchema,
    VersionSchema,
    VocabulariesSchema,
    VocabularySchema,
)

ops = Blueprint("operations", __name__, url_prefix="/", description="Health and version.")
vocabularies = Blueprint("vocabularies", __name__, url_prefix="/vocabularies",
                         description="The controlled vocabularies behind every facet and filter.")
notices = Blueprint("notices", __name__, url_prefix="/notices",
                    description="Register notices, such as a delay over a holiday period.")

NOTICE_ID = "<int(max=2147483647):notice_id>"


@ops.route("health")
class Health(MethodView):
    @ops.response(200, HealthSchema)
    @ops.alt_response(503, response="SERVICE_UNAVAILABLE",
                      description="The database is unreachable, frozen or busy.")
    def get(self):
        """Is the service up, and can it reach its database?

        Answers within `HEALTH_TIMEOUT` (default 1.5 s) whatever the database does: 503 when it cannot
        be reached, is frozen or is too slow (`database` says which); at once, without trying, after a
        request found it unreachable or silent, until it answers again (the breaker,
        `DATABASE_BREAKER_SECONDS`).
        """
        try:
            with deadline(LIMITS.health):
                database.connect(reuse_if_open=True)
                database.execute_sql("SELECT 1")
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
            current_app.logger.warning("health check: database not answering: %s", error)
            return database_problem(error)
        return {"status": "ok", "database": "ok"}


@ops.route("version")
class Version(MethodView):
    @ops.response(200, VersionSchema)
    def get(self):
        """Versions of the service, its contract and its database schema

        `version` of the package, `api_version` of this HTTP contract, `schema_version` the last
        database migration applied, `database` the backend, `commit` the build's commit when known.
        """
        return {"version": package_version("study-register"), "api_version": "1",
                "schema_version": current_version(), "database": backend_name(),
                "commit": current_app.config.get("GIT_COMMIT")}


def _vocabulary_list() -> list[dict]:
    items = [{"name": name, "description": f"Values of the study facet `{name}`.",
              "values": [{"value": v, "label": v, "definition": d} for v, d in terms.items()]}
             for name, terms in vocab.FACETS.items()]
    items += [{"name": name, "description": f"Values of the study field `{name}`.",
               "values": [{"value": v, "label": v, "definition": d} for v, d in terms.items()]}
              for name, terms in vocab.STATUS_VOCABULARIES.items()]
    items.append({"name": "results_in", "description": "Where a study's results appeared "
                  "(`GET /studies?results_in=`).", "values": [{"value": v, "label": v, "definition": d}
                                                            for v, d in vocab.RESULTS_IN.items()]})
    items.append({"name": "reference_type", "description": "Reference types: filter by `value`, "
                  "show `label`.", "values": [{"value": code, "label": label, "definition": d}
                                              for code, (label, d) in vocab.REFERENCE_TYPES.items()]})
    items.append({"name": "registry", "description": "Trial registries whose identifiers the "
                  "register knows.", "values": [{"value": code, "label": label, "definition": d}
                                                for code, (label, d) in vocab.REGISTRIES.items()]})
    return items


@vocabularies.route("")
class Vocabularies(MethodView):
    @vocabularies.response(200, VocabulariesSchema)
    def get(self):
        """All vocabularies, each value with a one-line definition, in display order

        The values every facet, filter and field of a closed vocabulary takes (`study_type`,
        `reference_type`, `registry`...), as filters accept and answers hold them.
        """
        return {"items": _vocabulary_list()}


@vocabularies.route("/<string(maxlength=50):name>")
class VocabularyByName(MethodView):
    @vocabularies.response(200, VocabularySchema)
    @vocabularies.alt_response(404, response="NOT_FOUND")
    def get(self, name):
        """One vocabulary

        Its values in display order, each with its label and definition; 404 for an unknown name
        (`GET /vocabularies` lists the names).
        """
        for item in _vocabulary_list():
            if item["name"] == name:
                return item
        names = ", ".join(i["name"] for i in _vocabulary_list())
        return problem(404, f"No vocabulary named {name!r}. Known: {names}.")


def _notice_response(notice_id: int, *, status: int = 200, headers: dict | None = None):
    record = domain.get_notice(notice_id)
    return record_response(NoticeSchema().dump(record), record, last_modified=record["updated"],
                           status=status, headers=headers)


@notices.route("")
class Notices(MethodView):
    @notices.arguments(NoticeQueryArgsSchema, location="query")
    @notices.response(200, NoticePageSchema)
    def get(self, args):
        """List notices (those in force now, by default)

        `status=active` (default) lists those in force now; `upcoming`, `expired` or `all` the others.
        Paged like every list.
        """
        query = domain.filtered_notices(status=args["status"])
        args["sort"] = args.get("sort") or "id"
        envelope, headers = paginate(query, args=args,
                                     keys=sort_keys(args["sort"], domain.NOTICE_SORTS, Notice.id),
                                     serialize=lambda rows: [domain.notice_dict(n) for n in rows],
                                     rows_of=domain.notice_rows)
        return envelope, 200, headers

    @notices.write("notices")
    @notices.body_errors
    @notices.arguments(NoticeCreateSchema, example={
        "message": "Register update: there will be a delay adding new records during our holiday "
                   "period (Dec 17 - Jan 4)", "starts": "2026-12-01T00:00:00Z",
        "ends": "2027-01-04T23:59:59Z"})
    @notices.response(201, NoticeSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data):
        """Create a notice

        `message` is required; `starts` and `ends` (UTC instants, optional) bound when it is in force.
        """
        notice_id = domain.create_notice(data)
        return _notice_response(notice_id, status=201, headers={
            "Location": link_for("notices.NoticeById", notice_id=notice_id)})


@notices.route(f"/{NOTICE_ID}")
class NoticeById(MethodView):
    @notices.response(200, NoticeSchema)
    @notices.alt_response(304, response="NOT_MODIFIED", description="Your copy is current.")
    @notices.header(IF_NONE_MATCH)
    @notices.alt_response(404, response="NOT_FOUND")
    def get(self, notice_id):
        """Get a notice

        Sends `ETag` and `Last-Modified`; `If-None-Match` gives 304.
        """
        return _notice_response(notice_id)

    @notices.write("notices")
    @notices.body_errors
    @notices.arguments(NoticePatchSchema(partial=True), example={"ends": "2027-01-05T00:00:00Z"})
    @notices.response(200, NoticeSchema)
    @notices.alt_response(404, response="NOT_FOUND")
    @notices.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @notices.header(IF_MATCH)
    def patch(self, data, notice_id):
        """Update a notice

        Only the fields given change. Send `If-Match` with the ETag you read to refuse the change if
        someone else changed it first.
        """
        domain.update_notice(notice_id, data, if_match=if_match())
        return _notice_response(notice_id)

    @notices.write("notices")
    @notices.response(204)
    @notices.alt_response(404, response="NOT_FOUND")
    @notices.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @notices.header(IF_MATCH)
    def delete(self, notice_id):
        """Delete a notice

        `If-Match` with the ETag you read refuses the deletion when the notice changed since.
        """
        domain.delete_notice(notice_id, if_match=if_match())
        return None

