"""The response cache's front: a stored answer served before Flask is entered.

A hit through Flask (api/cache.py ``lookup``) costs its request context, routing, the before_request
hooks (the limits, negotiation, a pooled connection), the after_request ones (CORS, Vary, compression)
and the response object: 0.31 ms of a hit's time in this process, where the answer itself is a dict
lookup. This WSGI middleware, inside TrustedProxies (so the scheme and host are the ones the cache's
key is made of), answers a GET or HEAD from the cache's entry without any of it, when everything Flask
would do is known to give the same answer:

- the entry is one whose request counts against no rate limit (``Entry.front``: searches with `q` and
  exports are counted, so their answers go through Flask and carry their limit's headers);
- the request routes to one of the cached endpoints (CACHED: Flask's own url_map; anything else, /health
  or an export's path included, goes straight to Flask without a database read here);
- the request has no `Authorization` (as ``lookup``), a request line within MAX_REQUEST_LINE (a longer
  one is a 414 in Flask, whatever its key), and the database's breaker is closed (else Flask answers
  503 at once); a generation read that finds the server gone or silent opens the breaker as a
  request's would, so Flask then answers 503 at once instead of waiting its connect limit again;
- the key is the one ``lookup`` makes (``key_of``: the generation read first, then the URL, `Accept`
  and the coding chosen), so routing, negotiation and the path checks would decide as they did;
- and a request of the same method and `Origin` was answered from the same entry through Flask (200,
  or 304 for a matching `If-None-Match`): the front replays those final headers (CORS, Vary, the
  validators: everything the hooks added), with `X-Cache: hit`, this answer's `Server-Timing` and the
  server's own `Date`. Those headers are kept with the entry in this process only (``Entry.finals``).

Anything else, or any failure on the way (the connection, the generation read), goes to Flask, which
answers as without the front. `CACHE_FRONT=off` sends every request there.
"""

from __future__ import annotations

import logging
import time

from werkzeug.exceptions import HTTPException

from ..config import MAX_REQUEST_LINE
from ..db import BREAKER, LIMITS, database, deadline, request_limits
from .cache import CACHED, MARK, key_of
from .caching import none_match, none_match_tags
from .compression import coding_of
from .limits import request_line_length

logger = logging.getLogger(__name__)

MAX_FINALS = 8  # final header sets kept per entry (methods × statuses × origins)
MADE_AGAIN = frozenset({"date", "server-timing", "x-cache"})  # headers each answer makes for itself


class CacheFront:
    def __init__(self, app, wsgi_app):
        self.wsgi_app = wsgi_app
        self.cache = app.extensions["response_cache"]
        self.compress = app.extensions.get("compress")
        self.url_map = app.url_map
        self.enabled = self.cache.enabled and app.config["CACHE_FRONT"]

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if not self.enabled or method not in ("GET", "HEAD") or "HTTP_AUTHORIZATION" in environ:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        found = self._find(environ, method)
        if found is None:
            return self.wsgi_app(environ, self._recorder(environ, start_response))
        entry, status, (status_line, headers) = found
        if status == 304:  # as lookup's 304: no Server-Timing
            start_response(status_line, [*headers, ("X-Cache", "hit")])
            return []
        start_response(status_line, [*headers, ("X-Cache", "hit"), (
            "Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}")])
        return [entry.body] if method == "GET" else []

    def _find(self, environ, method: str):
        """(entry, status, final headers) to answer with, or None: Flask answers."""
        if BREAKER.opened is not None or request_line_length(environ) > MAX_REQUEST_LINE:
            return None
        try:  # Flask's own routing: only the cached endpoints read the generation here (not /health)
            endpoint, _ = self.url_map.bind_to_environ(environ).match(method=method)
        except HTTPException:
            return None
        if endpoint not in CACHED:
            return None
        started = time.monotonic()
        try:
            with request_limits(), deadline(LIMITS.connect):
                opened = database.connect(reuse_if_open=True)
                try:
                    scope = self.cache.scope()
                finally:
                    if opened:
                        database.close()
        except Exception as error:  # noqa: BLE001 - Flask answers it (a 503 at once if the breaker opens)
            BREAKER.record(error, started)  # a server gone or silent opens the breaker, as a request's would
            logger.debug("cache front: no generation (%s); Flask answers", error)
            return None
        if scope is None:
            return None
        key = key_of(scope, environ, coding_of(self.compress, environ.get("HTTP_ACCEPT_ENCODING", "")))
        entry = self.cache.get(key)
        if entry is None or not entry.front:
            return None
        status = 304 if none_match(entry.etag, none_match_tags(environ.get("HTTP_IF_NONE_MATCH"))) else 200
        final = entry.finals.get((status, method, environ.get("HTTP_ORIGIN")))
        return None if final is None else (entry, status, final)

    @staticmethod
    def _recorder(environ, start_response):
        """``start_response`` that keeps, for an answer Flask gave from an entry the front may serve, its
        final status line and headers."""

        def record(status_line, headers, exc_info=None):
            marked = environ.pop(MARK, None)
            if marked is not None and exc_info is None:
                entry, status = marked
                finals = entry.finals
                if (status_line.startswith(f"{status} ") and len(finals) < MAX_FINALS
                        and not any(name.lower() == "set-cookie" for name, _ in headers)):
                    finals[(status, environ["REQUEST_METHOD"], environ.get("HTTP_ORIGIN"))] = (
                        status_line, [(n, v) for n, v in headers if n.lower() not in MADE_AGAIN])
            return start_response(status_line, headers, exc_info)

        return record
