"""study-register: the application factory, the only place the pieces are wired together."""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask

from .config import load_config
from .db import Limits, init_database, register_request_hooks
from .forwarded import TrustedProxies
from .jsonprovider import OrjsonProvider
from .logging import configure_logging


def create_app(config: Mapping | None = None) -> Flask:
    """Build the app from ``config`` (a mapping of environment-style settings) or the environment."""
    settings = load_config(os.environ if config is None else config)
    configure_logging(settings["LOG_LEVEL"], sql_echo=settings["SQL_ECHO"])
    app = Flask(__name__)
    app.config.update(settings)
    app.json = OrjsonProvider(app)  # the same JSON values as Flask's own provider, faster
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    init_database(settings["DATABASE_URL"], max_connections=settings["DATABASE_MAX_CONNECTIONS"],
                  limits=Limits(**settings["DATABASE_LIMITS"]))
    register_request_hooks(app)

    from .api import init_api
    from .api.cache import init_cache
    from .api.compression import init_compression
    from .api.front import CacheFront
    from .cli import register_commands
    from .web import init_web

    app.extensions["problem_api"] = init_api(app)
    init_web(app)
    init_cache(app)  # after every other hook: its lookup runs last, its store first...
    init_compression(app)  # ...but for this one, so that the cache stores what it compressed
    register_commands(app)
    # A hit the cache can answer without Flask is answered there (api/front.py), after the proxies'
    # headers are read: the scheme and host are part of its key.
    app.wsgi_app = TrustedProxies(CacheFront(app, app.wsgi_app), settings["TRUSTED_PROXIES"])
    return app
