"""The evidence map page, `/map`: the current search's studies by month of registration and study type,
and its study aim × study design matrix, each cell linking to the filtered list.

The query is read by the API's own `StudyQueryArgsSchema` (the parameters of `GET /studies`), so the
page and the API understand a query the same way; a bad one is answered with a 422 page in words.
"""

from __future__ import annotations

from urllib.parse import urlencode

import marshmallow as ma
from flask import render_template, request
from webargs.multidictproxy import MultiDictProxy

from ..api.schemas.studies import StudyQueryArgsSchema
from ..domain.evidence_map import evidence_map
from ..domain.studies import STUDY_FILTERS, study_conditions
from ..search.index import search_plan
from . import web
from .evidence_map import breakable, month_chart, month_label, shade

# The parameters a map carries over into its links (the rest, paging and formats, mean nothing here).
CARRIED = ("q", *STUDY_FILTERS)


def _messages(errors, prefix: str = "") -> list[str]:
    """marshmallow's nested error messages as lines `name: message`."""
    lines = []
    for key, value in errors.items():
        name = prefix or str(key)
        if isinstance(value, dict):
            lines.extend(_messages(value, name))
        else:
            lines.extend(f"{name}: {message}" for message in value)
    return lines


def _carried(**replace: str) -> list[tuple[str, str]]:
    """The current query's filters as (name, value) pairs, with ``replace``'s names set anew."""
    pairs = [(k, v) for k in CARRIED if k not in replace for v in request.args.getlist(k)]
    return pairs + list(replace.items())


def href(path: str, **replace: str) -> str:
    query = urlencode(_carried(**replace))
    return f"{path}?{query}" if query else path


@web.route("/map")
def evidence_map_page():
    """The evidence map of the current search and filters (HTML)."""
    schema = StudyQueryArgsSchema()
    try:
        args = schema.load(MultiDictProxy(request.args, schema))
    except ma.ValidationError as error:
        response = render_template("map.html", errors=_messages(error.messages),
                                   args=request.args), 422
    else:
        q = args.get("q")
        filters = {k: args[k] for k in STUDY_FILTERS if args.get(k) is not None}
        with search_plan(q is not None):
            counts = evidence_map(study_conditions(q=q, **filters))
        matrix = counts["matrix"]
        largest = max((n for row in matrix["counts"].values() for n in row.values()), default=0)
        filters_given = [(k, v) for k, v in _carried()]
        response = render_template(
            "map.html", errors=[], counts=counts, matrix=matrix, largest=largest,
            chart=month_chart(counts["by_month"]), month_label=month_label, shade=shade,
            breakable=breakable, href=href,
            filters_given=filters_given, query=q.normalized if q is not None else None,
            q=request.args.get("q", "")), 200
    return response  # the notices (context processor) and Server-Timing come from the `web` blueprint
