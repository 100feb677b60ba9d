"""Compression: gzip for JSON answers, pages and streamed exports when the client asks for it.

`Accept-Encoding: gzip` (with a q above 0) gets `Content-Encoding: gzip`; every answer says
`Vary: Accept-Encoding`. Bodies are compressed by flask-compress (COMPRESS_LEVEL, nothing under
COMPRESS_MIN_SIZE bytes, only the media types in MIMETYPES, only 2xx: errors go as they are); streamed
exports here (COMPRESS_STREAM_LEVEL), chunk by chunk, without a Content-Length, the export's own stream
closed when ours is (it gives the database connection back: api/exports.py). Static files (send_file:
Swagger UI's assets, the stylesheet) are sent as they are. `COMPRESS=off`: nothing is compressed and
nothing says Vary for it.

- The response cache (api/cache.py) files an answer under the coding chosen here (``coding``: the
  one flask-compress picks from the same header, `gzip` or identity), not under the raw header, and
  stores the body as it was sent: this hook runs before its ``store`` and does nothing on a hit.
- A compressed answer is another representation (RFC 9110 §8.8.3): its strong ETag gets `:gzip`
  inside the quotes (`"abc"` → `"abc:gzip"`, as flask-compress does; weak ones are left alone), so a
  cache never takes one representation's bytes for the other's. `If-None-Match` with it is answered
  304 (below, when the view compared only its own tag); `If-Match` on a write accepts it as the tag
  of the same record state (api/caching.py ``if_match``).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from flask_compress import Compress
from flask_compress.flask_compress import _choose_algorithm  # the choice flask-compress makes

from .caching import none_match, none_match_tags

ALGORITHMS = ("gzip",)  # br and zstd would file each answer a third and fourth time in the cache
MIMETYPES = (
    "application/json", "application/problem+json", "application/fhir+json",  # the API
    "application/x-ndjson", "text/csv", "application/x-research-info-systems",  # exports
    "text/html", "text/css", "text/plain", "text/javascript", "application/javascript", "image/svg+xml",
)


def coding() -> str | None:
    """The content coding a compressible answer to this request gets: `gzip`, or None (identity)."""
    return coding_of(current_app.extensions.get("compress"), request.headers.get("Accept-Encoding", ""))


def coding_of(compress: Compress | None, header: str) -> str | None:
    """The same for the app's Compress (None: compression off) and an `Accept-Encoding` header."""
    return None if compress is None else _coding(compress.enabled_algorithms, header)


@functools.lru_cache(maxsize=256)
def _coding(algorithms: tuple[str, ...], header: str) -> str | None:
    """flask-compress's choice, but for a coding the header refuses with `q=0` (RFC 9110 §12.5.3), which
    flask-compress 1.25 still picks when it is the only one named: then identity, and flask-compress is
    not asked (``compress_response``), so that it never disagrees with the cache's key."""
    chosen = _choose_algorithm(algorithms, header)
    return None if chosen is not None and _quality(header, chosen) == 0 else chosen


def _quality(header: str, name: str) -> float | None:
    """The q the header gives the coding ``name`` (1 without one), None when it does not name it."""
    for part in header.lower().split(","):
        coding_name, _, parameters = part.partition(";")
        if coding_name.strip() != name:
            continue
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 1.0
        return 1.0
    return None


def _gzip_stream(source: object, chunks: Iterator[bytes], level: int) -> Iterator[bytes]:
    """``chunks`` (of the export's own stream ``source``) gzip'd; ``source`` closed when this stream is,
    however it ends (run out, the client gone, an error)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    try:
        for chunk in chunks:
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _not_modified(response: Response) -> Response:
    answer = Response(status=304)
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        if name in response.headers:
            answer.headers[name] = response.headers[name]
    return answer


def compress_response(response: Response) -> Response:
    """after_request, before the cache's ``store``: compress what the client accepts compressed."""
    compress: Compress = current_app.extensions["compress"]
    if g.get("cache_hit") or coding() is None:  # a hit is stored as it was sent, compressed or not
        response.vary.add("Accept-Encoding")
        return response
    response = compress.after_request(response)  # adds Vary; streams are left to us
    if "Content-Encoding" in response.headers:
        wanted = none_match_tags(request.headers.get("If-None-Match"))
        if (request.method == "GET" and response.status_code == 200
                and none_match(response.headers.get("ETag"), wanted)):
            return _not_modified(response)
        return response
    if (response.is_streamed and not response.direct_passthrough and response.status_code == 200
            and response.mimetype in compress.compress_mimetypes_set):
        response.response = _gzip_stream(response.response, response.iter_encoded(),
                                         current_app.config["COMPRESS_STREAM_LEVEL"])
        response.headers["Content-Encoding"] = "gzip"
        response.headers.pop("Content-Length", None)
    return response


def init_compression(app: Flask) -> None:
    """After init_cache: its after_request runs before the cache's store (they run in reverse)."""
    if not app.config["COMPRESS_ENABLED"]:
        return
    app.config.update(COMPRESS_ALGORITHM=list(ALGORITHMS), COMPRESS_MIMETYPES=list(MIMETYPES),
                      COMPRESS_REGISTER=False, COMPRESS_STREAMS=False,
                      COMPRESS_EVALUATE_CONDITIONAL_REQUEST=False)
    compress = Compress()
    compress.init_app(app)
    app.extensions["compress"] = compress
    app.after_request(compress_response)
