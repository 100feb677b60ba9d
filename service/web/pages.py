"""The home page (search, facets, results) and the study record page, over the API's own argument schema
and list function: a page and `GET /studies` read a query, and count, the same way."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import marshmallow as ma
from flask import render_template, request
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from ..api.problems import flatten
from ..api.schemas.studies import StudyQueryArgsSchema, dump_study
from ..api.studies import list_studies
from ..domain import studies as domain
from ..domain.errors import DomainError
from ..identifiers import registry_record_url
from ..search.query import QueryError
from ..vocabularies import REFERENCE_TYPES

# Facets the home page offers as filters, in the order shown, with their labels.
PAGE_FACETS = {
    "study_type": "Study Type", "study_aim": "Study Aim", "study_design": "Study Design",
    "intervention_assignment": "Intervention Assignment", "reference_type": "Report type",
    "has_results": "Results", "registry": "Registry", "recruitment_status": "Recruitment status",
    "phase": "Phase", "results_in": "Results in", "country": "Country",
}
RECORD_FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")
# Parameters of GET /studies a page does not take: it always shows its facets, as HTML, page by page.
NOT_ON_PAGES = ("format", "bom", "include", "facets", "fields", "cursor")
FILTERS = ("study_type", "study_aim", "study_design", "intervention_assignment", "registry",
           "reference_type", "has_results", "recruitment_status", "phase", "country", "results_in")
EXPORT_KEEP = ("q", *FILTERS, "registration", "first_published_from", "first_published_to",
               "updated_since", "registered_from", "registered_to", "start_from", "start_to", "sort")


class PageError(Exception):
    """A request a page cannot answer: its status, the detail in words and the errors per parameter."""

    def __init__(self, status: int, detail: str, errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or {}


def day(value) -> str:
    """The seed's date format: `2020 Apr 1` (no leading zero on the day)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value:%Y %b} {value.day}"


def value_label(facet: str, value) -> str:
    if facet == "has_results":
        return "Report Results" if value else "No Results"
    if facet == "reference_type":
        return type_label(value)
    if value is None:
        return "Not known"
    if facet == "results_in":
        return {"none": "No results anywhere"}.get(value, str(value).capitalize())
    return str(value)


def value_param(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def type_label(code: str | None) -> str:
    return REFERENCE_TYPES[code][0] if code in REFERENCE_TYPES else (code or "")


def error_page(status: int, title: str, detail: str, errors: dict | None = None):
    return render_template("error.html", status=status, title=title, detail=detail,
                           errors=errors or {}), status


def _page_args() -> dict:
    given = [key for key in NOT_ON_PAGES if key in request.args]
    if given:
        raise PageError(422, "The search page does not take " + ", ".join(f"`{k}`" for k in given)
                        + ": use the export links on the page, or GET /studies.",
                        {key: ["Not a parameter of the search page."] for key in given})
    schema = StudyQueryArgsSchema()
    # An empty search box (`?q=`) is no search, an empty choice ("Any") no filter: a form sends them.
    given = MultiDict([(k, v) for k, v in request.args.items(multi=True) if v.strip()])
    try:
        args = schema.load(MultiDictProxy(given, schema))
    except ma.ValidationError as error:
        errors = flatten(error.messages)
        parts = [f"{key}: {msgs[0]}" for key, msgs in errors.items()]
        raise PageError(422, "The search cannot be read — " + "; ".join(parts), errors) from None
    args["facets"] = list(PAGE_FACETS)
    return args


def _link(params: dict, **changes) -> str:
    merged = {**params, **changes}
    pairs = [(k, v) for k, values in merged.items() if values not in (None, "", [])
             for v in (values if isinstance(values, list) else [values])]
    return "?" + urlencode(pairs) if pairs else "?"


def home():
    """GET /: the search box, the facet filters with counts, one page of studies, paging and exports."""
    try:
        args = _page_args()
        envelope, _, _ = list_studies(args)
    except PageError as error:
        return error_page(error.status, "The search cannot be read", error.detail, error.errors)
    except QueryError as error:
        return error_page(422, "The search cannot be run", f"q: {error}", {"q": [str(error)]})
    except DomainError as error:
        return error_page(error.status, "The search cannot be run", error.detail, error.errors)
    params = {key: [v for v in request.args.getlist(key) if v.strip()] for key in request.args}
    params = {key: values for key, values in params.items() if values}
    selected = {name: set(params.get(name, [])) for name in FILTERS}
    facets = []
    for name, label in PAGE_FACETS.items():
        values = [dict(item, label=value_label(name, item["value"]), param=value_param(item["value"]),
                       checked=value_param(item["value"]) in selected.get(name, ()))
                  for item in envelope.get("facets", {}).get(name, [])
                  if item["value"] is not None]
        values = [v for v in values if v["count"] or v["checked"]]
        if values:
            facets.append({"name": name, "label": label, "values": values,
                           "multiple": name != "has_results"})
    page, page_size, total = args.get("page") or 1, args["page_size"], envelope["total"]
    last = max(1, -(-total // page_size))
    exports = {key: params[key] for key in EXPORT_KEEP if key in params}
    reference_filters = {key: params[key] for key in ("q", "has_results") if key in params}
    return render_template(
        "home.html", items=envelope["items"], total=total, page=page, last=last, page_size=page_size,
        q=request.args.get("q", ""), query=envelope.get("query"), facets=facets, selected=selected,
        hidden={k: v for k, v in params.items() if k not in ("q", "page", *FILTERS)},
        prev_url=_link(params, page=page - 1) if page > 1 else None,
        next_url=_link(params, page=page + 1) if page < last and page * page_size < 10_000 else None,
        csv_url="/studies/export" + _link(exports, format="csv"),
        ris_url="/references/export" + _link(reference_filters, format="ris"),
        api_url="/studies" + _link({k: v for k, v in params.items()}),
        record_facets=RECORD_FACETS, facet_labels=PAGE_FACETS), 200


def record_page(study_id: int):
    """The study record page, in the seed page's sections and order (`Accept: text/html` on
    /studies/{id}). A merged id raises Moved (redirected as JSON is); a missing one is a 404 page."""
    record = dump_study(domain.get_study(study_id))
    references = []
    # Reports with results first (as the register's own page shows them), each group newest first.
    for ref in sorted(record.get("references", []), key=lambda ref: not ref.get("has_results")):
        links = []
        if ref.get("doi"):
            links.append(("DOI " + ref["doi"], "https://doi.org/" + ref["doi"]))
        if ref.get("pmid"):
            links.append(("PubMed " + ref["pmid"], f"https://pubmed.ncbi.nlm.nih.gov/{ref['pmid']}/"))
        registry_url = registry_record_url(ref.get("registration_id"))
        if registry_url:
            links.append(("Registry record " + ref["registration_id"], registry_url))
        references.append(dict(ref, type_text=ref.get("type_label") or type_label(ref.get("type")),
                               links=links))
    citing = [dict(ref, type_text=ref.get("type_label") or type_label(ref.get("type")),
                   url=("https://doi.org/" + ref["doi"]) if ref.get("doi") else
                   (f"https://pubmed.ncbi.nlm.nih.gov/{ref['pmid']}/" if ref.get("pmid") else None))
              for ref in record.get("citing", [])]
    registrations = [dict(r, url=registry_record_url(r["identifier"]))
                     for r in record.get("registrations", [])]
    return render_template("record.html", study=record, references=references, citing=citing,
                           registrations=registrations, facet_labels=PAGE_FACETS,
                           record_facets=RECORD_FACETS, first_published=day(record.get("first_published")),
                           updated=day(record.get("updated"))), 200
