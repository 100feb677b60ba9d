"""Blueprint "references": list, read, create, update and delete references."""

from __future__ import annotations

from flask.views import MethodView

from ..domain import facets, records
from ..domain import references as domain
from ..domain.ordering import RELEVANCE, sort_keys
from ..formats import fhir
from ..models import Reference
from ..search.index import RANK, search_plan
from .caching import if_match, record_response
from .exports import export_doc, export_response, fhir_doc
from .links import link, link_for
from .listing import LINK_HEADER, dumped, resolve_sort, with_query_paging
from .negotiation import FHIR_CONTENT_TYPE, FHIR_JSON, json_only, list_format, record_format
from .paging import paginate
from .parser import IF_MATCH, IF_NONE_MATCH, Blueprint
from .schemas.references import (
    ReferenceCreateSchema,
    ReferencePageSchema,
    ReferencePatchSchema,
    ReferenceQueryArgsSchema,
    ReferenceReadArgsSchema,
    ReferenceSchema,
    ReferenceSearchPagingArgsSchema,
    ReferenceSearchSchema,
    dump_reference,
    dump_reference_page,
)

blp = Blueprint("references", __name__, url_prefix="/references",
                description="A reference is one report of a study: a registry record, an article, "
                            "a preprint...")

REFERENCE_ID = "<int(max=2147483647):reference_id>"
_FILTERS = ("type", "has_results", "study_id", "linked", "doi", "pmid", "registration_id",
            "year_from", "year_to", "updated_since")


def _reference_response(reference_id: int, *, status: int = 200, headers: dict | None = None,
                        fields: list[str] | None = None):
    """The reference as JSON; with ``fields``, only those members (and `id`), its ETag that of what is
    sent."""
    if fields is None:
        record = domain.get_reference(reference_id)
        return record_response(dump_reference(record), record,
                               last_modified=record["updated"], status=status, headers=headers)
    record = domain.get_reference(reference_id, fields=[*fields, "updated"])  # `updated`: Last-Modified
    shown = {name: value for name, value in record.items() if name == "id" or name in fields}
    return record_response(dump_reference(shown), shown, last_modified=record["updated"],
                           status=status, headers=headers)


def list_references(args: dict):
    """The answer of GET /references and POST /references/search, from their loaded arguments: an
    export, or the envelope (with `query` when `q` is given), 200 and its headers."""
    args["sort"] = resolve_sort(args)
    q, ranked = args.get("q"), args["sort"] == RELEVANCE
    filters = {k: args[k] for k in _FILTERS if args.get(k) is not None}
    query = domain.filtered_references(
        domain.reference_conditions(q=None if ranked else q, **filters),
        ranked_by=q if ranked else None)
    keys = sort_keys(args["sort"], domain.REFERENCE_SORTS, Reference.id, rank=RANK,
                     updated=Reference.updated)
    if args.get("format", "json") != "json":  # an export: every match, unpaged (`facets` does not apply)
        return export_response("references", args["format"], query, keys, bom=args.get("bom", False))
    # On Postgres, with only filters the search rows carry, the facets and a relevance page are found
    # from the search rows alone; "reference" is read for the page's rows only.
    rows = domain.search_rows(q, filters)
    if rows is not None and ranked:
        query, hits = domain.ranked_search_rows(q, filters)
        keys = sort_keys(RELEVANCE, domain.REFERENCE_SORTS, hits.c.id, rank=hits.c.rank,
                         updated=hits.c.updated)
    with search_plan(q is not None):
        counts, total = {}, None
        if args.get("facets"):  # counted first: they give the total too
            counts, total = facets.reference_facets(
                args["facets"], domain.reference_conditions(q=q, rows=rows, **filters), rows=rows)
        envelope, headers = paginate(
            query, args=args, keys=keys, total=total, count_with_page=ranked, rows_of=domain.reference_rows,
            serialize=lambda rows: records.reference_dicts(rows, fields=args.get("fields")), lean=True)
    if args.get("facets"):
        envelope["facets"] = counts
    if q is not None:
        envelope["query"] = q.normalized
    return envelope, 200, headers


@blp.route("")
class References(MethodView):
    @blp.arguments(ReferenceQueryArgsSchema, location="query")
    @blp.response(200, ReferencePageSchema, headers=LINK_HEADER)
    @blp.limited
    @blp.doc(responses=export_doc("references"))
    @blp.alt_response(406, response="NOT_ACCEPTABLE",
                      description="`Accept` allows neither JSON nor FHIR (R4), and no `format` is given.")
    def get(self, args):
        """List and search references

        `linked=false` is the curation queue: references linked to no study yet. `q`, a search
        strategy (see `q`), searches titles, abstracts, authors, sources, DOIs and PMIDs and sorts
        by relevance unless `sort` is given; the answer then says in `query` how `q` was read.
        `facets=` adds counts per value over the whole filtered set. A request line over 8,190 bytes
        is answered 414: send a long strategy to `POST /references/search`.
        `Accept: application/fhir+json` (without `format`) is `format=fhir`; an `Accept` allowing
        neither JSON nor FHIR is answered 406.
        """
        return dumped(list_references(list_format(args)), dump_reference_page)

    @blp.write("references")
    @blp.body_errors
    @blp.arguments(ReferenceCreateSchema, example={
        "type": "journal_article",
        "title": "Nebulization Therapy with Umbilical Cord Mesenchymal Stem Cell-Derived Exosomes "
                 "for COVID-19 Pneumonia",
        "authors": ["Chu M", "Wang H", "Bian L"], "has_results": True, "study_ids": [1]})
    @blp.response(201, ReferenceSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data):
        """Create a reference

        `study_ids` links it by hand to existing studies (422 naming any that does not exist).
        """
        reference_id = domain.create_reference(data)
        return _reference_response(reference_id, status=201, headers={
            "Location": link_for("references.ReferenceById", reference_id=reference_id)})


@blp.route("/search")
class ReferenceSearch(MethodView):
    @blp.json_only
    @blp.body_errors
    @blp.arguments(ReferenceSearchSchema, location="json", example={
        "q": "remdesivir -review", "type": ["journal_article", "preprint"], "facets": ["year"]})
    @blp.arguments(ReferenceSearchPagingArgsSchema, location="query")
    @blp.limited
    @blp.response(200, ReferencePageSchema, headers=LINK_HEADER)
    def post(self, body, paging):
        """Search references with a long strategy (JSON body)

        The same search as `GET /references`, for a strategy too long for a URL: the body is a JSON
        object whose members are the GET's query parameters (not `format`), each in its JSON type: a
        parameter the GET repeats is an array (`"type": ["journal_article", "preprint"]`), `linked` and
        `has_results` booleans, `study_id`, `year_from`, `page` numbers; `q` may be up to 20,000
        characters. The answer is the GET's: the same envelope, items, `total`, `facets`, `query` and
        `Link` header. Public, like the GET. Unknown members and wrong types are refused with 422
        naming the member.

        Paging: `next` (and `prev`, and the `Link` header) is this endpoint with `?page=N` or
        `?cursor=…`: POST the same body to it for that page. A `page` or `cursor` in the query string
        overrides the body's. A cursor is valid for the same filters and sort, whether it came from
        this endpoint or from `GET /references`.
        """
        return dumped(list_references(with_query_paging(body, paging)), dump_reference_page)


@blp.route(f"/{REFERENCE_ID}")
class ReferenceById(MethodView):
    @blp.arguments(ReferenceReadArgsSchema, location="query")
    @blp.response(200, ReferenceSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.doc(responses=fhir_doc("DocumentReference"))
    @blp.alt_response(304, response="NOT_MODIFIED", description="Your copy (If-None-Match) is current.")
    @blp.header(IF_NONE_MATCH)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(406, response="NOT_ACCEPTABLE",
                      description="`Accept` allows neither JSON nor FHIR (R4).")
    def get(self, args, reference_id):
        """Get a reference

        With the studies it reports (`study_ids`) and cites (`cited_study_ids`) and the registration
        identifiers found in it. Sends `ETag` and `Last-Modified`; `If-None-Match` gives 304.
        `fields=id,title` answers only those members (its own ETag).
        `Accept: application/fhir+json` or `format=fhir`: the reference as a FHIR R4 DocumentReference
        (README "FHIR").
        """
        if record_format(args) == FHIR_JSON:
            json_only(args)
            record = domain.get_reference(reference_id)
            resource = fhir.document_reference(dump_reference(record), link(""))
            return record_response(resource, record, last_modified=record["updated"],
                                   content_type=FHIR_CONTENT_TYPE)
        return _reference_response(reference_id, fields=args.get("fields"))

    @blp.write("references")
    @blp.body_errors
    @blp.arguments(ReferencePatchSchema(partial=True), example={"has_results": True})
    @blp.response(200, ReferenceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def patch(self, data, reference_id):
        """Update a reference

        Its linked studies count as updated too (their records show it in full).
        """
        domain.update_reference(reference_id, data, if_match=if_match())
        return _reference_response(reference_id)

    @blp.write("references")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def delete(self, reference_id):
        """Delete a reference

        It is unlinked from its studies, which count as updated.
        """
        domain.delete_reference(reference_id, if_match=if_match())
        return None
