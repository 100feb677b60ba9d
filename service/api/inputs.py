"""Values refused where they enter the URL: ids in paths are ASCII digits only, and a path or query
string carrying a NUL or another control character is answered before any database sees it (Postgres
refuses NUL in text: that was a 500)."""

from __future__ import annotations

import re

from flask import request
from werkzeug.routing import IntegerConverter

from .problems import problem

# C0 controls other than tab, newline, carriage return, and DEL (as validation.Text refuses).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AsciiIntegerConverter(IntegerConverter):
    """`<int:...>` with ASCII digits only: `/studies/%EF%BC%91` (a full-width 1) is no study's path,
    where Werkzeug's own converter (`\\d+`, then `int()`) read it as study 1."""

    regex = r"[0-9]+"


def refuse_control_characters():
    """A before_request hook: 404 for a path with a control character (no resource has one), 422 naming
    the query parameter whose name or value has one."""
    if _CONTROL.search(request.path):
        return problem(404, "No resource at this path (it contains a control character).")
    bad = sorted({key for key, value in request.args.items(multi=True)
                  if _CONTROL.search(key) or _CONTROL.search(value)})
    if bad:
        names = [key.encode("unicode_escape").decode("ascii") for key in bad]
        return problem(422, f"Invalid query parameter — {names[0]}: Must not contain control characters.",
                       errors={name: ["Must not contain control characters."] for name in names})
    return None
