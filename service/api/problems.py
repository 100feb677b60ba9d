"""Every error leaves the service here, as application/problem+json (RFC 9457)."""

from __future__ import annotations

import http
import logging

from flask import Response, g, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException, InternalServerError

from ..db import LIMITS, DatabaseUnavailable, problem_kind
from ..domain.errors import DomainError, Moved
from ..search.query import QueryError
from .links import link
from .schemas.common import ProblemSchema

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, *, errors: dict | None = None, headers: dict | None = None,
            **extra) -> Response:
    body = {"type": "about:blank", "title": http.HTTPStatus(status).phrase, "status": status,
            "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


DATABASE_PROBLEMS = {  # problem_kind: (detail, Retry-After seconds)
    "busy": ("The database is busy (another write holds its lock, or every connection is in use); "
             "nothing was changed; try again shortly.", "2"),
    "timeout": ("The database did not answer in time; try again shortly.", "5"),
    "unreachable": ("The database is unreachable; try again shortly.", "5"),
}


def database_problem(error: Exception) -> Response:
    """503 for a database error: busy, too slow or unreachable (``database`` says which), with Retry-After."""
    kind = problem_kind(error)
    detail, retry = DATABASE_PROBLEMS[kind]
    if isinstance(error, DatabaseUnavailable):
        detail = (f"The database {'did not answer' if kind == 'timeout' else 'could not be reached'} a "
                  f"moment ago; requests are refused until it answers again (at most {LIMITS.breaker:g} s "
                  "after its last failure); try again shortly.")
    else:
        g.database_error = error  # the request hooks (db.register_request_hooks) tell the breaker
    return problem(503, detail, database=kind, headers={"Retry-After": retry})


def flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow nested messages -> {"field.sub.0": ["message", ...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "body" if key == "_schema" and not prefix else str(key)
            path = f"{prefix}.{name}" if prefix else name
            if key == "_schema" and prefix:
                path = prefix
            for sub, msgs in flatten(value, path).items():
                flat.setdefault(sub, []).extend(msgs)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat[prefix or "body"] = list(messages)
        else:
            for item in messages:
                for sub, msgs in flatten(item, prefix).items():
                    flat.setdefault(sub, []).extend(msgs)
    else:
        flat[prefix or "body"] = [str(messages)]
    return flat


def _validation_detail(by_location: dict) -> tuple[str, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    kinds = set()
    for location, messages in by_location.items():
        kinds.add("query parameter" if location == "query" else "field")
        for key, msgs in flatten(messages).items():
            errors.setdefault(key, []).extend(msgs)
    kind = kinds.pop() if len(kinds) == 1 else "input"
    parts = [f"{key}: {msgs[0]}" for key, msgs in list(errors.items())[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    noun = f"Invalid {kind}" if len(errors) == 1 else f"Invalid {kind}s"
    return f"{noun} — " + "; ".join(parts) + more, errors


def _moved_location(error: Moved) -> str:
    """The path asked for with the merged id replaced by the survivor's (a subresource stays one)."""
    old, new = f"/{error.resource}/{error.old_id}", f"/{error.resource}/{error.new_id}"
    path = request.path
    location = new + path[len(old):] if path == old or path.startswith(old + "/") else new
    query = request.query_string.decode("latin-1")
    return link(f"{location}?{query}" if query else location)


class ProblemApi(Api):
    """flask-smorest's Api, answering and documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *args, **kwargs):
        super().init_app(app, *args, **kwargs)
        app.register_error_handler(DomainError, self.handle_domain_error)
        app.register_error_handler(QueryError, self.handle_query_error)
        app.register_error_handler(OperationalError, self.handle_database_down)
        app.register_error_handler(InterfaceError, self.handle_database_down)
        app.register_error_handler(MaxConnectionsExceeded, self.handle_database_down)

    def handle_http_exception(self, error: HTTPException):
        if isinstance(error, InternalServerError):
            original = getattr(error, "original_exception", None)
            logger.error("unhandled error on %s %s", request.method, request.path,
                         exc_info=original or error)
            return problem(500, "The server met an unexpected error; it has been logged.")
        data = getattr(error, "data", None) or {}
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        messages = data.get("messages")
        if isinstance(messages, dict) and error.code in (400, 422):
            detail, errors = _validation_detail(messages)
            if error.code == 400:
                first = next(iter(errors.values()), [""])[0]
                detail = f"The request body cannot be used — {first}" if first else "Bad request body."
            return problem(error.code, detail, errors=errors, headers=headers)
        if error.code == 404 and not data:
            detail = f"No resource at {request.path}."
        elif error.code == 405:
            detail = f"{request.method} is not allowed on {request.path}."
        else:
            detail = data.get("message") or error.description or http.HTTPStatus(error.code).phrase
        return problem(error.code, detail, errors=data.get("errors"), headers=headers)

    def handle_domain_error(self, error: DomainError):
        headers = {"Location": _moved_location(error)} if isinstance(error, Moved) else None
        return problem(error.status, error.detail, errors=error.errors, headers=headers, **error.extra)

    def handle_query_error(self, error: QueryError):
        """A strategy that parsed but cannot be run on this register (a truncation standing for too
        many of its words)."""
        return problem(422, f"Invalid search — q: {error}", errors={"q": [str(error)]})

    def handle_database_down(self, error: Exception):
        if isinstance(error, DatabaseUnavailable):  # refused without trying: logged when it opened
            return database_problem(error)
        logger.error("database error on %s %s: %s", request.method, request.path, error)
        return database_problem(error)

    def _register_responses(self):
        """Document every error status with the problem schema under application/problem+json."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
