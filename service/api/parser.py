"""Our Blueprint: strict argument parsing and the `write(scope)` decorator (bearer token + docs)."""

from __future__ import annotations

import json
from copy import deepcopy
from functools import wraps

import flask_smorest
import marshmallow as ma
from flask import g, request
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from ..domain.tokens import find_token, is_expired, touch
from . import idempotency, ratelimits
from .problems import problem

BEARER = "bearerAuth"


IF_MATCH = ("If-Match", "ETag of the copy you changed; when the resource has changed since, "
                        "the write is refused with 412 and nothing changes. `*` matches any; a weak ETag "
                        "(`W/\"...\"`) never does (RFC 9110 strong comparison).")
IF_NONE_MATCH = ("If-None-Match", "ETag of your cached copy; 304 Not Modified when it is current.")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def load_json_body(data: bytes):
    """A JSON body as Python values; ValueError (with what is wrong) for anything RFC 8259 does not
    allow or Python cannot hold: bad UTF-8, NaN/Infinity, an integer of more digits than Python converts
    (4,300), nesting too deep for the decoder."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{error.msg} (line {error.lineno}, column {error.colno})") from None
    # A ValueError from int() (too many digits) or _refuse_constant passes through as it is.


class Parser(FlaskParser):
    """webargs' parser, refusing as 400 naming `body` any JSON body Python's decoder would take but
    RFC 8259 does not (NaN, Infinity), or would fail on with a 500 (nesting too deep, an integer of more
    than 4,300 digits)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}

    def _get_schema(self, argmap, req):
        """A schema class given to ``@blp.arguments`` made into an instance once, not on every request
        (webargs makes one per request: its fields deep-copied, a sixth of a cheap read's time); loading
        leaves a schema as it was, as webargs' own advice to pass instances assumes."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        data = read_body(req)
        try:
            return load_json_body(data)
        except ValueError as error:
            abort(400, messages={"body": [f"Invalid JSON body: {error}."]})
            return core.missing


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_header_doc)

    @staticmethod
    def _prepare_header_doc(doc, doc_info, **kwargs):
        for param in doc_info.get("header_params", []):
            doc.setdefault("parameters", []).append(param)
        return doc

    @staticmethod
    def header(name_and_description: tuple[str, str], schema: dict | None = None):
        """Document a request header the operation reads."""
        name, description = name_and_description

        def decorator(func):
            func._apidoc = deepcopy(getattr(func, "_apidoc", {}))
            func._apidoc.setdefault("header_params", []).append({
                "in": "header", "name": name, "required": False,
                "schema": {"type": "string", **(schema or {})}, "description": description})
            return func

        return decorator

    def write(self, scope: str, *, json_body: bool = True):
        """Require a bearer token with ``scope`` before anything else (so 401 comes before 422); with
        ``json_body``, a body must be application/json (415 otherwise)."""

        def decorator(func):
            func = self.alt_response(401, response="UNAUTHORIZED", description=(
                "No token, or not a valid one. Send `Authorization: Bearer <token>`."))(func)
            func = self.alt_response(403, response="FORBIDDEN", description=(
                f"The token lacks the `{scope}` scope."))(func)
            func = self.alt_response(429, response="TOO_MANY_REQUESTS", description=(
                "Too many writes with this token, or too many refused tokens from this address "
                "(`Retry-After` says when to retry)."))(func)
            # An `http` bearer scheme has no scopes in OpenAPI 3.0: the scope is named in 403's
            # description and in `x-token-scope`.
            func = self.doc(security=[{BEARER: []}], **{"x-token-scope": scope})(func)
            if func.__name__ == "post":  # a MethodView's POST: retried safely with an Idempotency-Key
                func = self.header(idempotency.DOC, idempotency.DOC_SCHEMA)(func)
                func = self.alt_response(409, response="CONFLICT", description=(
                    "The first request with this `Idempotency-Key` has not answered yet."))(func)
                func = self.alt_response(422, response="UNPROCESSABLE_ENTITY", description=(
                    "The `Idempotency-Key` is malformed, or was first sent with another request."))(func)

            @wraps(func)
            def wrapper(*args, **kwargs):
                denied = check_token(scope)
                if denied is not None:
                    return denied
                if json_body and has_body() and not request.is_json:
                    return problem(415, "Send the body as application/json.")
                return idempotency.idempotent(lambda: func(*args, **kwargs), with_body=json_body)

            return wrapper

        return decorator

    @staticmethod
    def json_only(func):
        """A public operation whose body, when there is one, must be application/json (415 otherwise),
        as ``write`` checks for writes."""

        @wraps(func)
        def wrapper(*args, **kwargs):
            if has_body() and not request.is_json:
                return problem(415, "Send the body as application/json.")
            return func(*args, **kwargs)

        return wrapper

    def limited(self, func):
        """Document the 429 of a read that counts as a search or an export (api/ratelimits.py)."""
        return self.alt_response(429, response="TOO_MANY_REQUESTS", description=(
            "Too many searches or exports from this address (`Retry-After` says when to retry; "
            "`RateLimit-Policy` and `RateLimit` give the limit and what is left)."))(func)

    def body_errors(self, func):
        """Document the answers a JSON body can get besides 422."""
        func = self.alt_response(400, response="BAD_REQUEST", description="The body is not valid JSON.")(func)
        func = self.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE",
                                 description="The body is larger than the configured limit.")(func)
        return self.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE",
                                 description="The body is not application/json.")(func)


def read_body(req) -> bytes:
    """The whole request body; a 400 problem when it cannot be read whole (a malformed chunked body, the
    client gone mid-body) rather than the server error the WSGI server's exception would make."""
    try:
        return req.get_data(cache=True)
    except ClientDisconnected:  # Werkzeug's word for an OSError or ValueError from the server's stream
        abort(400, messages={"body": ["The request body could not be read whole (the client went away "
                                      "or the chunked encoding is broken)."]})
        raise
    except HTTPException:
        raise
    except Exception as error:  # gunicorn's ChunkMissingTerminator, InvalidChunkSize, NoMoreData
        abort(400, messages={"body": [f"The request body could not be read whole ({type(error).__name__})."]})
        raise


def has_body() -> bool:
    """Whether the request carries a body (a length, or chunked)."""
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def check_token(scope: str):
    """None when the request carries a live token with ``scope``; else the 401/403 problem."""
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": f'Bearer realm="study-register", scope="{scope}"'}
    if kind.lower() != "bearer" or not token.strip():
        return problem(401, "This operation needs `Authorization: Bearer <token>`.", headers=challenge)
    blocked = ratelimits.auth_blocked()
    if blocked is not None:
        return blocked
    record = find_token(token.strip())
    if record is None or is_expired(record):
        # Counted against the address; one over the limit is already the 429.
        over = ratelimits.auth_failed()
        if over is not None:
            return over
        invalid = challenge["WWW-Authenticate"] + ', error="invalid_token"'
        if record is None:
            return problem(401, "The bearer token is not valid (unknown or revoked).",
                           headers={"WWW-Authenticate": invalid})
        return problem(401, f"The bearer token expired at {record.expires.isoformat()}Z; "
                            "ask for a new one (`study-register token create`).",
                       headers={"WWW-Authenticate": invalid + ', error_description="The token expired"'})
    if scope not in record.scopes.split():
        return problem(403, f"The token lacks the `{scope}` scope needed here.",
                       headers={"WWW-Authenticate": challenge["WWW-Authenticate"]
                                + ', error="insufficient_scope"'})
    g.api_token = record
    over = ratelimits.write_allowed(record.id)
    if over is not None:
        return over
    touch(record)
    return None
