"""Blueprint "searches": saved searches for living reviews, their run history, and their results (what is
new since the last run)."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from ..domain import searches as domain
from ..domain.errors import Conflict
from ..domain.ordering import sort_keys
from ..models import SavedSearch, utcnow
from .caching import if_match, record_response
from .links import link_for
from .listing import LINK_HEADER
from .paging import START, paginate
from .parser import IF_MATCH, IF_NONE_MATCH, Blueprint
from .problems import flatten
from .schemas.searches import (
    LAST_RUN,
    STRATEGY,
    SavedSearchCreateSchema,
    SavedSearchPageSchema,
    SavedSearchPatchSchema,
    SavedSearchQueryArgsSchema,
    SavedSearchResultsArgsSchema,
    SavedSearchResultsSchema,
    SavedSearchSchema,
    StudyFiltersSchema,
)
from .schemas.studies import StudySearchSchema
from .studies import list_studies

blp = Blueprint("searches", __name__, url_prefix="/searches",
                description="Saved searches for living reviews: a strategy and its filters kept by name, "
                            "run again for what is new since the last run, with the history of its runs "
                            "(when, how many studies) to report.")

SEARCH_ID = "<int(max=2147483647):search_id>"
EXAMPLE = {"name": "Living review: convalescent plasma, weekly",
           "q": '"convalescent plasma" OR "hyperimmune globulin"',
           "filters": {"study_type": ["Interventional"], "intervention_assignment": ["Randomised"]}}


def _read(q: str) -> str | None:
    """How the saved `q` reads now (null when it no longer parses)."""
    try:
        return STRATEGY.deserialize(q).normalized
    except ma.ValidationError:
        return None


def _presented(record: dict) -> dict:
    return {**record, "query": _read(record["q"]),
            "results": link_for("searches.SavedSearchResults", search_id=record["id"])}


def _search_response(search_id: int, *, status: int = 200, headers: dict | None = None):
    record = domain.get_search(search_id)
    changed = max([record["updated"], *[r["run_at"] for r in record["runs"][:1]]])
    return record_response(SavedSearchSchema().dump(_presented(record)), record, last_modified=changed,
                           status=status, headers=headers)


def _stored(data: dict) -> dict:
    """What a create or patch body stores: the filters in their canonical form."""
    if "filters" in data:
        data = {**data, "filters": StudyFiltersSchema().dump(data["filters"])}
    return data


def _instant(value) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


@blp.route("")
class SavedSearches(MethodView):
    @blp.arguments(SavedSearchQueryArgsSchema, location="query")
    @blp.response(200, SavedSearchPageSchema, headers=LINK_HEADER)
    def get(self, args):
        """List saved searches

        Each with its strategy (`q` as written, `query` as read), its filters, its latest run and how
        many runs it has had. Paged like the other lists (`page`, or `cursor=*` then `next`).
        """
        args["sort"] = args.get("sort") or "id"
        keys = sort_keys(args["sort"], domain.SEARCH_SORTS, SavedSearch.id)
        envelope, headers = paginate(
            domain.all_searches(), args=args, keys=keys, rows_of=domain.search_rows,
            serialize=lambda rows: [_presented(r) for r in domain.search_dicts(rows)])
        return envelope, 200, headers

    @blp.write("searches")
    @blp.body_errors
    @blp.arguments(SavedSearchCreateSchema, example=EXAMPLE)
    @blp.response(201, SavedSearchSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data):
        """Save a search

        A review's strategy (`q`, as `POST /studies/search` takes it: up to 20,000 characters) and its
        study `filters`, kept by `name` to be run again: `GET /searches/{id}/results?since=last_run`
        answers what is new. Both are validated as that search validates them: a strategy or filter it
        would refuse is refused here with 422 naming it, and nothing is stored. Needs a token with the
        `searches` scope.
        """
        search_id = domain.create_search(_stored(data))
        return _search_response(search_id, status=201, headers={
            "Location": link_for("searches.SavedSearchById", search_id=search_id)})


@blp.route(f"/{SEARCH_ID}")
class SavedSearchById(MethodView):
    @blp.response(200, SavedSearchSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.alt_response(304, response="NOT_MODIFIED", description="Your copy (If-None-Match) is current.")
    @blp.header(IF_NONE_MATCH)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, search_id):
        """Get a saved search with its runs

        Its strategy as written (`q`) and as read (`query`, to report word for word), its filters, and
        every run, newest first: when (`run_at`), how many studies it answered (`total`) and since when
        (`since`). Sends `ETag` and `Last-Modified` (a new run changes both); `If-None-Match` gives 304.
        """
        return _search_response(search_id)

    @blp.write("searches")
    @blp.body_errors
    @blp.arguments(SavedSearchPatchSchema(partial=True), example={"q": EXAMPLE["q"] + " OR plasmapheresis"})
    @blp.response(200, SavedSearchSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def patch(self, data, search_id):
        """Change a saved search

        Its `name`, `q` or `filters` (given, `filters` replaces them all), validated as when it was
        saved. Its runs stay: a changed strategy's next `since=last_run` still starts from the latest.
        """
        domain.update_search(search_id, _stored(data), if_match=if_match())
        return _search_response(search_id)

    @blp.write("searches")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def delete(self, search_id):
        """Delete a saved search and its runs

        Its recorded runs go with it. `If-Match` with the ETag you read refuses the deletion when it
        changed since.
        """
        domain.delete_search(search_id, if_match=if_match())
        return None


@blp.route(f"/{SEARCH_ID}/results")
class SavedSearchResults(MethodView):
    @blp.arguments(SavedSearchResultsArgsSchema, location="query")
    @blp.limited
    @blp.response(200, SavedSearchResultsSchema, headers=LINK_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description=(
        "The saved strategy or filters no longer validate (the search grammar or a vocabulary changed): "
        "`errors` names them; PATCH the search."))
    def get(self, args, search_id):
        """Run a saved search: its studies, or those new since the last run

        The studies matching the saved strategy and filters, as `POST /studies/search` answers them
        (the same envelope, `query` echoed, `facets`, `include`, paged, sorted by relevance unless
        `sort` is given). `since=last_run` keeps only those that appeared or changed since this
        search's latest run (a study first in the register since, or `updated` since: its record, its
        registrations or its set of reports changed); `since=` also takes a day or an instant. The
        answer says which instant it used (`since`, null for every match).

        Public, like `GET /studies`: a saved search is a review team's shared strategy. Every first page
        (no `page` or `page=1`, or `cursor=*`) records a run, whoever asks: `run_at`, the `total`
        answered and the `since` used; later pages record nothing. So `since=last_run` means "since
        anyone last ran it": a team sharing a search reads the same feed.
        """
        q_text, stored = domain.strategy(search_id)
        try:
            strategy = StudySearchSchema().load({"q": q_text, **stored})
        except ma.ValidationError as error:
            raise Conflict(f"Saved search {search_id} no longer validates: change its `q` or `filters` "
                           f"(PATCH /searches/{search_id}).", errors=flatten(error.messages)) from None
        since = args.pop("since", None)
        if since == LAST_RUN:
            since = domain.last_run_at(search_id)
        first_page = args.get("cursor") in (None, START) and args.get("page", 1) == 1
        run_at = utcnow()
        envelope, status, headers = list_studies({**strategy, **args, "changed_since": since},
                                                 link_args={"since": _instant(since)})
        envelope["since"], envelope["run"] = since, None
        if first_page and request.method == "GET":
            envelope["run"] = domain.record_run(search_id, run_at=run_at, total=envelope["total"],
                                                since=since)
        return envelope, status, headers
