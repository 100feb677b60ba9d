"""Blueprint "studies": list, read, create, update, delete studies, and link their references."""

from __future__ import annotations

from flask import Response, json, request
from flask.views import MethodView

from ..domain import facets, records
from ..domain import studies as domain
from ..domain.ordering import RELEVANCE, sort_keys
from ..formats import fhir
from ..models import Study
from ..search.index import RANK, search_plan
from .caching import if_match, record_response
from .exports import export_doc, export_response, fhir_doc
from .links import link, link_for
from .listing import LINK_HEADER, dumped, resolve_sort, with_query_paging
from .negotiation import (
    FHIR_CONTENT_TYPE,
    FHIR_JSON,
    TEXT_HTML,
    json_only,
    list_format,
    record_format,
)
from .paging import paginate
from .parser import IF_MATCH, IF_NONE_MATCH, Blueprint
from .schemas.references import LinkedReferenceSchema
from .schemas.studies import (
    LinkPatchSchema,
    LinkSchema,
    StudyCreateSchema,
    StudyPageSchema,
    StudyPatchSchema,
    StudyQueryArgsSchema,
    StudyReadArgsSchema,
    StudyReferencesArgsSchema,
    StudySchema,
    StudySearchPagingArgsSchema,
    StudySearchSchema,
    dump_study,
    dump_study_page,
)

blp = Blueprint("studies", __name__, url_prefix="/studies",
                description="A study is one piece of research; its references are its reports.")

STUDY_ID = "<int(max=2147483647):study_id>"
REFERENCE_ID = "<int(max=2147483647):reference_id>"


def study_response(study_id: int, *, status: int = 200, headers: dict | None = None,
                   fields: list[str] | None = None):
    """The study as JSON; with ``fields``, only those members (and `id`), its ETag that of what is sent."""
    if fields is None:
        record = domain.get_study(study_id)
        return record_response(dump_study(record), record, last_modified=record["updated"],
                               status=status, headers=headers)
    record = domain.get_study(study_id, fields=[*fields, "updated"])  # `updated`: its Last-Modified
    shown = {name: value for name, value in record.items() if name == "id" or name in fields}
    return record_response(dump_study(shown), shown, last_modified=record["updated"],
                           status=status, headers=headers)


def fhir_study_response(study_id: int):
    """The study as a FHIR R4 ResearchStudy (formats/fhir.py), with its own ETag."""
    record = domain.get_study(study_id)
    resource = fhir.research_study(dump_study(record), link(""))
    return record_response(resource, record, last_modified=record["updated"],
                           content_type=FHIR_CONTENT_TYPE)


def list_studies(args: dict, *, link_args: dict | None = None):
    """The answer of GET /studies, POST /studies/search and a saved search's results, from their loaded
    arguments: an export, or the envelope (with `query` when `q` is given), 200 and its headers.
    ``link_args`` replace query parameters in the answer's links."""
    args["sort"] = resolve_sort(args)
    q, ranked = args.get("q"), args["sort"] == RELEVANCE
    filters = {k: args[k] for k in (*domain.STUDY_FILTERS, "changed_since") if args.get(k) is not None}
    query = domain.filtered_studies(domain.study_conditions(q=None if ranked else q, **filters),
                                    ranked_by=q if ranked else None)
    keys = sort_keys(args["sort"], domain.STUDY_SORTS, Study.id, rank=RANK, updated=Study.updated)
    if args.get("format", "json") != "json":  # an export: every match, unpaged (`facets` does not apply)
        return export_response("studies", args["format"], query, keys, bom=args.get("bom", False))
    include, members = args.get("include", []), args.get("fields")
    counted = members is None or any(name in members for name in records.COUNTED)
    with search_plan(q is not None):
        counts, total = {}, None
        if args.get("facets"):  # counted first: they give the total too
            counts, total = facets.study_facets(args["facets"], domain.study_conditions(q=q, **filters))
        envelope, headers = paginate(
            query, args=args, keys=keys, total=total, link_args=link_args, count_with_page=ranked, lean=True,
            rows_of=lambda top: domain.study_rows(top, counts=counted),
            plain=(records.study_total, lambda size, offset: records.study_page(size, offset, counts=counted))
            if not filters and q is None and args["sort"] == "id" else None,  # the whole register by id
            serialize=lambda rows: records.study_dicts(rows, include_references="references" in include,
                                                       include_sources="facet_sources" in include,
                                                       include_citing="citing" in include, fields=members))
    if args.get("facets"):
        envelope["facets"] = counts
    if q is not None:
        envelope["query"] = q.normalized
    return envelope, 200, headers


@blp.route("")
class Studies(MethodView):
    @blp.arguments(StudyQueryArgsSchema, location="query")
    @blp.response(200, StudyPageSchema, headers=LINK_HEADER)
    @blp.limited
    @blp.doc(responses=export_doc("studies"))
    @blp.alt_response(406, response="NOT_ACCEPTABLE",
                      description="`Accept` allows neither JSON nor FHIR (R4), and no `format` is given.")
    def get(self, args):
        """List and search studies

        Filters are exact: values of one filter are OR-ed, filters are AND-ed. `q`, a search
        strategy (boolean operators, parentheses, field tags, truncation: see `q`), searches every
        report of a study and sorts by relevance unless `sort` is given; the answer then says in
        `query` how `q` was read. `facets=` adds counts per value over the whole filtered set.
        Unknown or repeated single-value parameters are rejected with 422 naming the allowed ones.
        A request line over 8,190 bytes is answered 414: send a long strategy to `POST /studies/search`.
        `Accept: application/fhir+json` (without `format`) is `format=fhir`; an `Accept` allowing
        neither JSON nor FHIR is answered 406.
        """
        return dumped(list_studies(list_format(args)), dump_study_page)

    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(StudyCreateSchema, example={
        "title": "A study for the key technology of mesenchymal stem cells exosomes atomization "
                 "in the treatment of novel coronavirus pneumonia (COVID-19)",
        "registrations": [{"identifier": "ChiCTR2000030261"}],
        "study_type": "Interventional", "study_aim": "Treatment and Management",
        "study_design": "Parallel/Crossover", "intervention_assignment": "Unclear"})
    @blp.response(201, StudySchema, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(409, response="CONFLICT", description="A registration belongs to another study.")
    def post(self, data):
        """Create a study

        `name` defaults to the first registration identifier; facets default to `Unclear`.
        """
        study_id = domain.create_study(data)
        return study_response(study_id, status=201, headers={
            "Location": link_for("studies.StudyById", study_id=study_id)})


@blp.route("/search")
class StudySearch(MethodView):
    @blp.json_only
    @blp.body_errors
    @blp.arguments(StudySearchSchema, location="json", example={
        "q": '"mesenchymal stem cells" OR exosomes', "study_type": ["Interventional"],
        "facets": ["study_aim"], "page_size": 20})
    @blp.arguments(StudySearchPagingArgsSchema, location="query")
    @blp.limited
    @blp.response(200, StudyPageSchema, headers=LINK_HEADER)
    def post(self, body, paging):
        """Search studies with a long strategy (JSON body)

        The same search as `GET /studies`, for a strategy too long for a URL: the body is a JSON object
        whose members are the GET's query parameters (not `format`), each in its JSON type: a parameter
        the GET repeats is an array (`"study_type": ["Interventional", "Observational"]`), `has_results`
        a boolean, `page` and `page_size` numbers; `q` may be up to 20,000 characters. The answer is the
        GET's: the same envelope, items, `total`, `facets`, `query` and `Link` header. Public, like the
        GET. Unknown members and wrong types are refused with 422 naming the member.

        Paging: `next` (and `prev`, and the `Link` header) is this endpoint with `?page=N` or
        `?cursor=…`: POST the same body to it for that page. A `page` or `cursor` in the query string
        overrides the body's. A cursor is valid for the same filters and sort, whether it came from
        this endpoint or from `GET /studies`.
        """
        return dumped(list_studies(with_query_paging(body, paging)), dump_study_page)


@blp.route(f"/{STUDY_ID}")
class StudyById(MethodView):
    @blp.arguments(StudyReadArgsSchema, location="query")
    @blp.response(200, StudySchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.doc(responses=fhir_doc("ResearchStudy"))
    @blp.doc(responses={200: {"content": {"text/html": {"schema": {
        "type": "string",
        "description": "`Accept: text/html`: the study record page (README \"Web pages\")."}}}}})
    @blp.alt_response(304, response="NOT_MODIFIED", description="Your copy (If-None-Match) is current.")
    @blp.header(IF_NONE_MATCH)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    @blp.alt_response(406, response="NOT_ACCEPTABLE",
                      description="`Accept` allows neither JSON nor FHIR (R4).")
    def get(self, args, study_id):
        """Get a study with its reports and the references citing it

        `references` are its reports (links of role `reports`), `citing` the references that mention or
        cite it without reporting it; each says why it is linked (`role`, `confidence`, `rule`,
        `evidence`). Sends `ETag` and `Last-Modified`; `If-None-Match` gives 304.
        `fields=id,title` answers only those members (its own ETag).
        `Accept: application/fhir+json` or `format=fhir`: the study as a FHIR R4 ResearchStudy (its
        reports in `relatedArtifact`; README "FHIR"). `Accept: text/html` (a browser; `*/*` and no
        `Accept` still get JSON): the study record page for people (README "Web pages").
        """
        representation = record_format(args)
        if representation == FHIR_JSON:
            json_only(args)
            return fhir_study_response(study_id)
        if representation == TEXT_HTML:
            from ..web import render_study  # the pages' layer renders it (service/web)

            return render_study(study_id)
        return study_response(study_id, fields=args.get("fields"))

    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(StudyPatchSchema(partial=True), example={"study_aim": "Prevention"})
    @blp.response(200, StudySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    @blp.alt_response(409, response="CONFLICT", description="A registration belongs to another study.")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def patch(self, data, study_id):
        """Update a study

        Only the fields given change; `registrations`, when given, replaces the list. Send
        `If-Match` with the ETag you read to refuse the change if someone else changed it first.
        """
        domain.update_study(study_id, data, if_match=if_match())
        return study_response(study_id)

    @blp.write("studies")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def delete(self, study_id):
        """Delete a study

        Its registrations go with it; its references stay, unlinked from it.
        """
        domain.delete_study(study_id, if_match=if_match())
        return None


@blp.route(f"/{STUDY_ID}/references")
class StudyReferences(MethodView):
    @blp.arguments(StudyReferencesArgsSchema, location="query")
    @blp.response(200, LinkedReferenceSchema(many=True))
    @blp.doc(responses=fhir_doc("Bundle (searchset) of DocumentReference"))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    @blp.alt_response(406, response="NOT_ACCEPTABLE",
                      description="`Accept` allows neither JSON nor FHIR (R4).")
    def get(self, args, study_id):
        """List a study's references, reports and citing

        Its reports, then the references citing it, each newest first, each with its `role`, how it
        was linked and why (`confidence`, `rule`, `evidence`); `role=` keeps one role.
        `Accept: application/fhir+json` or `format=fhir`: the same references as a FHIR R4 Bundle of
        DocumentReference resources.
        """
        references = domain.study_references(study_id, role=args.get("role"))
        if record_format(args) == FHIR_JSON:
            base = link("")
            entries = [fhir.bundle_entry(fhir.document_reference(item, base),
                                         fhir.reference_url(base, item["id"]), search_mode="match")
                       for item in LinkedReferenceSchema(many=True).dump(references)]
            bundle = fhir.searchset(entries, link(request.full_path.rstrip("?")))
            return Response(json.dumps(bundle), content_type=FHIR_CONTENT_TYPE)
        return references


@blp.route(f"/{STUDY_ID}/references/{REFERENCE_ID}")
class StudyReferenceLink(MethodView):
    @blp.write("studies")
    @blp.response(200, LinkSchema, description="Already linked by hand: nothing changed.")
    @blp.alt_response(201, schema=LinkSchema, description="Linked (or an automatic link confirmed).")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    def put(self, study_id, reference_id):
        """Link a reference to the study by hand

        Idempotent. A manual link is never removed by automation; it reports the study unless a curator
        set its role (`PATCH`).
        """
        link, changed = domain.link_reference(study_id, reference_id)
        return link, 201 if changed else 200

    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(LinkPatchSchema, example={"role": "cites"})
    @blp.response(200, LinkSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No such study, reference or link.")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    def patch(self, data, study_id, reference_id):
        """Set a link's role by hand

        `reports` or `cites`: a curator's decision, remembered (`role_curated`) and never changed by
        automation or a relink; the link becomes manual, so automation never removes it either.
        """
        return domain.set_link_role(study_id, reference_id, data["role"])

    @blp.write("studies")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND", description="No such study, reference or link.")
    @blp.alt_response(308, response="PERMANENT_REDIRECT",
                      description="Merged into another study: `Location` names it.")
    def delete(self, study_id, reference_id):
        """Unlink a reference from the study

        Removes the link whatever its role or how it was made; both records stay. 404 when they are
        not linked.
        """
        domain.unlink_reference(study_id, reference_id)
        return None
