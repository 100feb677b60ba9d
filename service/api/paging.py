"""List answers: offset pages and keyset cursors, the envelope, and the RFC 8288 Link header."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from flask import request
from peewee import DateField, DateTimeField, Field

from ..domain.errors import InvalidInput

MAX_DEPTH = 10_000  # page * page_size beyond this must use a cursor
START = "*"  # `cursor=*` starts a cursor walk at the first record
_NOT_FILTERS = {"page", "page_size", "cursor", "format"}


def _fingerprint(args: Mapping) -> str:
    """Identifies the filters and sort a cursor was made for (a cursor is only valid with them)."""
    keys = sorted(k for k in request.args if k not in _NOT_FILTERS)
    canonical = [(k, sorted(request.args.getlist(k))) for k in keys if k != "sort"]
    canonical.append(("sort", args["sort"]))
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()[:16]


def _encode_value(value):
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    return value


def _decode_value(value, field: Field):
    if isinstance(value, dict):
        (kind, text), = value.items()
        parse = dt.datetime.fromisoformat if kind == "t" else dt.date.fromisoformat
        return parse(text)
    if isinstance(field, DateTimeField | DateField):
        raise ValueError("cursor value does not fit the sort field")
    return value


def encode_cursor(sort: str, value, last_id: int, fingerprint: str) -> str:
    payload = json.dumps({"v": 1, "s": sort, "k": _encode_value(value), "i": last_id,
                          "f": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _bad_cursor(message: str):
    return InvalidInput(f"Invalid query parameter — cursor: {message}", errors={"cursor": [message]})


def decode_cursor(cursor: str, sort: str, field: Field, fingerprint: str):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload.get("v") != 1 or not isinstance(payload.get("i"), int):
            raise ValueError("unknown cursor version")
        value = _decode_value(payload["k"], field)
        last_id, made_for, made_with = payload["i"], payload["s"], payload["f"]
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor("Not a cursor this API issued; start again without `cursor`.") from None
    if made_for != sort or made_with != fingerprint:
        raise _bad_cursor("This cursor was made for other filters or another sort; give the same "
                          "filters and sort, or start again without `cursor`.")
    return value, last_id


def _url(**changes) -> str:
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in changes]
    params += [(k, v) for k, v in changes.items() if v is not None]
    return request.base_url + ("?" + urlencode(params) if params else "")


def paginate(query, *, args: Mapping, sorts: Mapping[str, Field], id_field: Field,
             serialize: Callable[[list], list]) -> tuple[dict, dict]:
    """Run one page of ``query``; return the envelope and the headers (Link) to send with it."""
    page_size, cursor, page = args["page_size"], args.get("cursor"), args.get("page")
    descending = args["sort"].startswith("-")
    sort_name = args["sort"].lstrip("-")
    column = sorts[sort_name]
    if cursor is not None and page is not None:
        raise InvalidInput("Invalid query parameter — page: use either `page` or `cursor`, not both.",
                           errors={"page": ["Not allowed together with `cursor`."]})
    page = page or (None if cursor else 1)
    if page is not None and page * page_size > MAX_DEPTH:
        raise InvalidInput(
            f"Invalid query parameter — page: `page` × `page_size` reaches at most record "
            f"{MAX_DEPTH:,}; walk further with `cursor` (each answer's `next` carries one).",
            errors={"page": [f"page × page_size must not exceed {MAX_DEPTH}."]})

    fingerprint = _fingerprint(args)
    total = query.select(id_field).count()
    order = [column.desc() if descending else column.asc(), id_field.asc()]
    rows_query = query.order_by(*order)
    if cursor is not None and cursor != START:
        value, last_id = decode_cursor(cursor, args["sort"], column, fingerprint)
        beyond = column < value if descending else column > value
        if column is id_field:
            rows_query = rows_query.where(beyond)
        else:
            rows_query = rows_query.where(beyond | ((column == value) & (id_field > last_id)))
    elif page is not None:
        rows_query = rows_query.offset((page - 1) * page_size)
    rows = list(rows_query.limit(page_size + 1))
    more, rows = len(rows) > page_size, rows[:page_size]

    next_url = prev_url = None
    if more:
        if page is not None and (page + 1) * page_size <= MAX_DEPTH:
            next_url = _url(page=page + 1, cursor=None)
        else:
            last = rows[-1]
            key = getattr(last, column.name)
            next_url = _url(page=None, cursor=encode_cursor(
                args["sort"], key, getattr(last, id_field.name), fingerprint))
    if page is not None and page > 1 and total:
        prev_url = _url(page=min(page - 1, math.ceil(total / page_size)), cursor=None)

    links = [f'<{next_url}>; rel="next"'] if next_url else []
    if prev_url:
        links.append(f'<{prev_url}>; rel="prev"')
    if cursor is None:
        links.append(f'<{_url(page=1, cursor=None)}>; rel="first"')
    envelope = {"items": serialize(rows), "total": total, "page": page, "page_size": page_size,
                "next": next_url, "prev": prev_url}
    return envelope, {"Link": ", ".join(links)}
