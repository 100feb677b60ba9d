"""Conditional requests: ETag and Last-Modified on single-resource reads, If-None-Match, If-Match."""

from __future__ import annotations

import datetime as dt

from flask import Response, json, request

from ..domain.records import etag


def none_match_tags(header: str | None) -> list[str] | None:
    if header is None:
        return None
    # Weak validators compare equal to strong ones for If-None-Match (RFC 9110 §13.1.2).
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def none_match(tag: str | None, wanted: list[str] | None) -> bool:
    """If-None-Match's tags (``none_match_tags``) take in ``tag``, weak or not: the client's copy is
    current, answered 304."""
    return tag is not None and wanted is not None and ("*" in wanted or tag.removeprefix("W/") in wanted)


CODED_SUFFIX = ':gzip"'  # a compressed answer's strong ETag: `"abc"` → `"abc:gzip"` (api/compression.py)


def uncoded_tag(tag: str) -> str:
    """`"abc:gzip"` → `"abc"`: the ETag of the record state a compressed answer was made of."""
    return tag[:-len(CODED_SUFFIX)] + '"' if tag.endswith(CODED_SUFFIX) else tag


def if_match() -> list[str] | None:
    """The ETags an If-Match header accepts (``["*"]`` for any), or None when it is absent.

    If-Match uses the strong comparison (RFC 9110 §13.1.1): a weak tag (`W/"..."`) never matches, so a
    header of weak tags only accepts nothing and the write is refused with 412. The tag of a gzip'd
    answer (`"abc:gzip"`) is taken as its record's (`"abc"`): the same state, only sent compressed."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    return [uncoded_tag(t.strip()) for t in header.split(",") if t.strip() and not t.strip().startswith("W/")]


def record_response(body: dict, record: dict, *, last_modified: dt.datetime | None,
                    status: int = 200, headers: dict | None = None,
                    content_type: str = "application/json") -> Response:
    """A JSON answer for one resource with its validators; 304 when the client's copy is current.

    ``record`` is the domain record the ETag is computed from (the same one If-Match checks). Another
    representation (``content_type``, e.g. FHIR) has a tag of its own, as RFC 9110 §8.8.3 wants.
    """
    tag = etag(record if content_type == "application/json" else {content_type: record})
    response = Response(status=status, content_type=content_type)
    response.headers["ETag"] = tag
    if last_modified is not None:
        response.last_modified = last_modified.replace(tzinfo=dt.UTC)
    response.headers["Cache-Control"] = "no-cache"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 200 and request.method == "GET":
        wanted = none_match_tags(request.headers.get("If-None-Match"))
        if none_match(tag, wanted):
            response.status_code = 304
            return response
    response.set_data(json.dumps(body))
    return response
