"""The register's web pages for people (issue 15): server-side Jinja templates over the same domain
functions as the API. The top layer beside ``api/``: it may use ``api``'s input schemas so that a page
and the API read a query the same way; nothing below imports from here.

``init_web(app)`` registers the pages' blueprints. Templates are in ``templates/`` (``base.html``: the
notice banner, the header and footer every page shares), styles and any script in ``static/`` (served by
the service itself: no CDN, the pages work offline).
"""

from __future__ import annotations

from flask import Blueprint

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/web")

from . import map as _map  # noqa: E402,F401  (the /map route, on `web`)

BLUEPRINTS: list[Blueprint] = [web]


def init_web(app) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
