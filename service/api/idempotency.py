"""`Idempotency-Key` on writes that POST (as payment APIs take it): a retry with the same key answers the
first request's answer, with `Idempotent-Replayed: true`, and writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Response, current_app, g, request

from ..db import write_transaction
from ..domain import idempotency
from .problems import problem

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
DOC = (HEADER, (
    "Any string of 1 to 255 visible ASCII characters (a UUID, say), new for each write. Retrying with "
    "the same key (and token) answers the first answer again, with `Idempotent-Replayed: true`, and writes "
    "nothing; the same key with another request (method, path, query or body) is 422, and while the "
    "first request is still running, 409. Only successful answers are kept (an error writes nothing, "
    "so a retry runs again); keys expire after `IDEMPOTENCY_KEY_HOURS` (default 24)."))
DOC_SCHEMA = {"minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}
# Not kept with an answer: computed again when it is sent.
_NOT_KEPT = {"content-length", "date", "server", "connection", "transfer-encoding"}


class _Discard(Exception):
    """Leaves the transaction of a request that answered an error (rolling back whatever it did)."""

    def __init__(self, response: Response):
        self.response = response


def _bad_key(message: str) -> Response:
    return problem(422, f"Invalid header — {HEADER}: {message}", errors={HEADER: [message]})


class _HashingInput:
    """The WSGI input, hashed as it is read (an upload streams into its import, never held whole)."""

    def __init__(self, stream, digest):
        self._stream, self._digest = stream, digest

    def read(self, *args):
        data = self._stream.read(*args)
        self._digest.update(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self._digest.update(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")


class _RequestHash:
    """What a retry must repeat: method, path, query, media type and body. A JSON body is hashed at once;
    an upload as the import reads it (or, on a retry that may replay, by reading it through)."""

    def __init__(self, with_body: bool):
        self._digest = hashlib.sha256()
        self._update(request.method, request.path, request.query_string.decode("latin-1"), request.mimetype)
        self._upload = False
        if with_body:
            self._digest.update(request.get_data(cache=True))
        elif request.mimetype == "multipart/form-data":
            # By its parts, not its bytes: a client encoding the retry again picks another boundary.
            request.max_content_length = current_app.config["MAX_IMPORT_BYTES"]
            # A part whose name werkzeug cannot decode (`name="%0D"`) is keyed None: hash it as "".
            for name, value in sorted((name or "", value) for name, value in request.form.items(multi=True)):
                self._update(name, value)
            for name, upload in sorted(request.files.items(multi=True), key=lambda part: part[0] or ""):
                self._update(name or "", upload.filename or "")
                for chunk in iter(lambda upload=upload: upload.stream.read(1 << 16), b""):
                    self._digest.update(chunk)
                upload.stream.seek(0)
        else:
            self._upload = True
            request.environ["wsgi.input"] = _HashingInput(request.environ["wsgi.input"], self._digest)

    def _update(self, *parts: str) -> None:
        for part in parts:
            self._digest.update(part.encode("utf-8", "surrogateescape") + b"\0")

    def __call__(self) -> str:
        if self._upload:  # read what the import left (all of it, when it has not run)
            request.max_content_length = current_app.config["MAX_IMPORT_BYTES"]
            while request.stream.read(1 << 16):
                pass
        return self._digest.hexdigest()


def idempotent(view: Callable[[], object], *, with_body: bool) -> Response | object:
    """Run ``view`` under the request's Idempotency-Key, when it has one (only on POST)."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return view()
    if not key or len(key) > idempotency.MAX_KEY_LENGTH:
        return _bad_key(f"Give 1 to {idempotency.MAX_KEY_LENGTH} characters.")
    if not all(" " <= c <= "~" for c in key):
        return _bad_key("Only visible ASCII characters and spaces.")
    request_hash = _RequestHash(with_body)
    begun = idempotency.begin(g.api_token.id, key, request_hash,
                              hours=current_app.config["IDEMPOTENCY_KEY_HOURS"])
    if begun.outcome == "mismatch":
        return problem(422, f"This {HEADER} was first sent with another request (method, path, query or "
                            "body); use a new key for a new request.",
                       errors={HEADER: ["Used with another request."]})
    if begun.outcome == "running":
        return problem(409, f"The first request with this {HEADER} has not answered yet; retry shortly.",
                       headers={"Retry-After": "1"})
    if begun.outcome == "replay":
        row = begun.row
        response = Response(row.body, status=row.status)
        response.headers.clear()
        for name, value in idempotency.stored_headers(row):
            response.headers.add(name, value)
        response.headers[REPLAYED] = "true"
        return response
    row = begun.row
    try:
        with write_transaction():
            response = current_app.make_response(view())
            if not 200 <= response.status_code < 300 or response.is_streamed:
                raise _Discard(response)
            headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_KEPT]
            idempotency.finish(row, request_hash(), response.status_code, headers,
                               response.get_data(as_text=True))
    except _Discard as discarded:
        idempotency.abandon(row)
        return discarded.response
    except BaseException:
        try:
            idempotency.abandon(row)
        except Exception:  # the database is gone: the key's lease runs out by itself
            current_app.logger.warning("could not free Idempotency-Key %r", key)
        raise
    return response
