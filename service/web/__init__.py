"""The register's web pages for people (issue 15): server-side Jinja templates over the same domain
functions as the API. The top layer beside ``api/``: it may use ``api``'s input schemas so that a page
and the API read a query the same way; nothing below imports from here.

``init_web(app)`` registers the pages' blueprints. Templates are in ``templates/`` (``base.html``: the
notice banner, the header and footer every page shares), styles and any script in ``static/`` (served by
the service itself: no CDN, the pages work offline).

Every page of the ``web`` blueprint gets ``notices`` (the active ones, for the banner) and a
``Server-Timing: app;dur=<ms>`` header; ``render_study(study_id)`` is the record page the studies
blueprint answers `Accept: text/html` with.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from ..domain import notices as notice_domain
from ..domain.errors import NotFound

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/web")

from . import map as _map  # noqa: E402,F401  (the /map route, on `web`)

BLUEPRINTS: list[Blueprint] = [web]
HTML = "text/html; charset=utf-8"


def active_notices() -> list[dict]:
    return [notice_domain.notice_dict(n) for n in notice_domain.filtered_notices(status="active")
            .order_by(notice_domain.Notice.id)]


PAGE_ENDPOINTS = {"studies.StudyById"}  # pages answered by an API endpoint (content negotiation)


@web.app_context_processor
def _notices() -> dict:
    """Every page's template (the pages' blueprints, and the record page answered by the studies
    blueprint) has the active notices, read once per request; other templates (Swagger UI) do not."""
    if request.blueprint not in {b.name for b in BLUEPRINTS} and request.endpoint not in PAGE_ENDPOINTS:
        return {}
    if "web_notices" not in g:
        g.web_notices = active_notices()
    return {"notices": g.web_notices}


def start_timer() -> None:
    g.web_started = time.perf_counter()


def server_timing(response: Response) -> Response:
    """`Server-Timing: app;dur=<ms>`: the server's time on the page, for the bench and a browser."""
    started = g.get("web_started")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


web.before_request(start_timer)
web.after_request(server_timing)


def html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type=HTML)


@web.get("/")
def home():
    """The home page: search, facet filters with counts, results, paging and exports."""
    from .pages import home as home_page

    return html(*home_page())


def render_study(study_id: int) -> Response:
    """The study record page as an answer (timed like the web pages); a missing study is a 404 page,
    a merged one raises Moved (the API's 308)."""
    from .pages import error_page, record_page

    start_timer()
    try:
        response = html(*record_page(study_id))
    except NotFound as error:
        response = html(*error_page(404, "No such study", error.detail))
    return server_timing(response)


def init_web(app) -> None:
    from ..api.negotiation import EXEMPT_ENDPOINTS, OFFERS, TEXT_HTML

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # A page produces HTML: `Accept: text/html` gets it, `Accept: application/json` alone a 406
    # problem (as on any endpoint); its static files are served whatever `Accept` says.
    names = {blueprint.name for blueprint in BLUEPRINTS}
    for rule in app.url_map.iter_rules():
        owner, _, view = rule.endpoint.rpartition(".")
        if owner in names:
            if view == "static":
                EXEMPT_ENDPOINTS.add(rule.endpoint)
            else:
                OFFERS.setdefault(rule.endpoint, (TEXT_HTML,))
