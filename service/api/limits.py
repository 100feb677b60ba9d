"""Limits on what a request may be: a request line too long to read is answered with a problem, not HTML."""

from __future__ import annotations

from urllib.parse import quote

from flask import request

from ..config import MAX_REQUEST_LINE
from .problems import problem

# Where a search too long for a URL goes, by the path of the GET that was too long.
LONG_SEARCHES = {"/studies": "POST /studies/search", "/references": "POST /references/search"}


def too_long_detail(length: int | None = None, path: str = "") -> str:
    """What a 414 says (gunicorn.conf.py's worker says the same when gunicorn refuses the line)."""
    targets = [t for prefix, t in LONG_SEARCHES.items() if path.startswith(prefix)] or list(
        LONG_SEARCHES.values())
    size = f"is {length:,} bytes, over" if length else "is over"
    return (f"The request line (method, URL and protocol) {size} the {MAX_REQUEST_LINE:,} bytes this "
            f"service reads. Send a long search as a JSON body to "
            + " or ".join(f"`{t}`" for t in targets)
            + " instead: the same parameters, `q` up to 20,000 characters.")


def request_line_length(environ) -> int:
    """The length in bytes of the request line a WSGI ``environ`` was read from."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri is None:
        uri = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/;=,@:+$!*'()~")
        if environ.get("QUERY_STRING"):
            uri += "?" + environ["QUERY_STRING"]
    return (len(environ.get("REQUEST_METHOD", "")) + 1 + len(uri) + 1
            + len(environ.get("SERVER_PROTOCOL", "")))


def refuse_long_request_lines():
    """A before_request hook: 414 problem+json above MAX_REQUEST_LINE. gunicorn refuses a longer line
    before the app sees it (gunicorn.conf.py answers it the same way); Werkzeug's development server and
    other servers pass such lines on, up to their own limits."""
    length = request_line_length(request.environ)
    if length > MAX_REQUEST_LINE:
        return problem(414, too_long_detail(length, request.path))
    return None
