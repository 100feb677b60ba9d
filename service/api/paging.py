"""List answers: offset pages and keyset cursors, the envelope, and the RFC 8288 Link header."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlencode

from flask import current_app, request
from itsdangerous import BadData, URLSafeSerializer
from peewee import SQL, Field, Select, fn

from ..db import select_rows
from ..domain.errors import InvalidInput
from ..domain.ordering import SortKey, keyset_after, order_by
from ..domain.register_state import signing_keys
from .links import link

MAX_DEPTH = 10_000  # page * page_size beyond this must use a cursor
START = "*"  # `cursor=*` starts a cursor walk at the first record
_TOTAL = "total_of_matches"  # the page statement's count of every match (count_with_page)
# Arguments that page or present a list without changing which records it holds, or their order.
_NOT_FILTERS = {"page", "page_size", "cursor", "format", "facets", "include", "fields", "sort"}


def invalid_argument(name: str, message: str, explanation: str | None = None) -> InvalidInput:
    """A 422 naming the list argument ``name`` (a query parameter of a GET, a body member or query
    parameter of a POST search)."""
    kind = "query parameter" if request.method in ("GET", "HEAD") else "input"
    return InvalidInput(f"Invalid {kind} — {name}: {explanation or message}", errors={name: [message]})


def _canonical(value):
    """A loaded argument as JSON that is equal for equal filters (list order and repeats ignored; a
    search by how it was read)."""
    if isinstance(value, list | tuple | set):
        return sorted({json.dumps(_canonical(v), sort_keys=True) for v in value})
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    normalized = getattr(value, "normalized", None)  # a parsed `q`
    if isinstance(normalized, str):
        return {"q": normalized}
    return value


def _fingerprint(args: Mapping) -> str:
    """Identifies the filters and sort a cursor was made for (a cursor is only valid with them): computed
    from the arguments as loaded, so a GET's cursor and a POST search's with the same filters agree."""
    canonical = [(k, _canonical(args[k])) for k in sorted(args)
                 if k not in _NOT_FILTERS and args[k] is not None]
    canonical.append(("sort", args["sort"]))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]


# A cursor longer than this is refused before it is read (the ones issued are a few hundred characters).
MAX_CURSOR_LENGTH = 4096
_CURSOR_VERSION = 3
_INT64 = (-(1 << 63), (1 << 63) - 1)
_KINDS_AS_TEXT = {"date": ("d", dt.date), "datetime": ("t", dt.datetime)}


def _encode_value(value, key: SortKey):
    """A key's value as JSON: dates and instants tagged text (an expression's may come back as text)."""
    if key.kind in _KINDS_AS_TEXT:
        tag, kind = _KINDS_AS_TEXT[key.kind]
        if isinstance(value, str):
            value = kind.fromisoformat(value)
        return {tag: value.isoformat()}
    return value


def _decode_value(value, key: SortKey):
    """A cursor's value for ``key``, or ValueError when it is not one the key could have."""
    kind = key.kind
    if kind in _KINDS_AS_TEXT:
        tag, parsed = _KINDS_AS_TEXT[kind]
        if not isinstance(value, dict) or list(value) != [tag] or not isinstance(value[tag], str):
            raise ValueError("not a date")
        result = parsed.fromisoformat(value[tag])
        if kind == "date" and isinstance(result, dt.datetime) or (
                kind == "datetime" and result.tzinfo is not None):
            raise ValueError("not a date of this kind")
        return result
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if kind == "int" and isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    if kind == "float" and isinstance(value, int | float) and math.isfinite(value) and abs(value) < 1e300:
        return float(value)
    if kind == "str" and isinstance(value, str) and "\0" not in value:
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
        return value
    raise ValueError("cursor value does not fit the sort key")


def _serializer() -> URLSafeSerializer:
    """Signs and checks cursors with SECRET_KEY (earlier keys in SECRET_KEY_FALLBACKS still check), salted
    with the list they page: a cursor serves only the list it came from (a GET list and its POST
    search are the same list)."""
    keys = current_app.extensions.get("cursor_keys")
    if keys is None:
        config = current_app.config
        keys = signing_keys(config.get("SECRET_KEY"), config.get("SECRET_KEY_FALLBACKS", ()))
        current_app.extensions["cursor_keys"] = keys
    rule = request.url_rule.rule.removesuffix("/search") if request.url_rule else request.path
    view_args = json.dumps(request.view_args or {}, sort_keys=True, default=str)
    return URLSafeSerializer(keys, salt=f"study-register cursor {rule} {view_args}")


def encode_cursor(sort: str, values: Sequence, keys: Sequence[SortKey], fingerprint: str) -> str:
    return _serializer().dumps({"v": _CURSOR_VERSION, "s": sort, "f": fingerprint,
                                "k": [_encode_value(v, k) for v, k in zip(values, keys, strict=True)]})


def _bad_cursor(message: str):
    return invalid_argument("cursor", message)


def decode_cursor(cursor: str, sort: str, keys: Sequence[SortKey], fingerprint: str) -> list:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _bad_cursor(f"Longer than {MAX_CURSOR_LENGTH:,} characters: not a cursor this API issued; "
                          "start again without `cursor`.")
    try:
        payload = _serializer().loads(cursor)
    except BadData:
        raise _bad_cursor("Not a cursor this API issued for this list (altered, cut short, or from "
                          "another list); start again without `cursor`.") from None
    # Signed by this register, so only an older version or another sort or filters can be wrong; the
    # values are checked all the same.
    try:
        if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        made_for, made_with, values = payload["s"], payload["f"], payload["k"]
        if made_for == sort and made_with == fingerprint:
            if not isinstance(values, list) or len(values) != len(keys):
                raise ValueError("cursor does not fit the sort")
            return [_decode_value(v, k) for v, k in zip(values, keys, strict=True)]
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise _bad_cursor("Not a cursor this API issued; start again without `cursor`.") from None
    raise _bad_cursor("This cursor was made for other filters or another sort; give the same "
                      "filters and sort, or start again without `cursor`.")


def _url(link_args: Mapping, **changes) -> str:
    """This request's URL with ``changes`` (and ``link_args``) in place of its query parameters (None
    drops one). A POST search's query string holds only `page` or `cursor`: its links are its own URL
    with the next one, for the same body."""
    changes = {**link_args, **changes}
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in changes]
    params += [(k, v) for k, v in changes.items() if v is not None]
    return link(request.path) + ("?" + urlencode(params) if params else "")


def count_rows(query) -> int:
    """``query.count()``, written as ``SELECT COUNT(*) FROM … WHERE …`` and not peewee's ``SELECT COUNT(1)
    FROM (SELECT 1 FROM …)``: the same number (a plain select, no DISTINCT, GROUP BY, window or LIMIT), but
    SQLite counts a whole table without a WHERE from its b-tree (0.008 ms for 50,000 studies, where the
    subquery stepped through every row: 0.8 ms)."""
    if any(getattr(query, name, None) for name in ("_group_by", "_having", "_distinct", "_windows",
                                                    "_limit", "_offset")) \
            or getattr(query, "_simple_distinct", False):
        return query.count()
    return query.select(fn.COUNT(SQL("*"))).order_by().scalar()


def paginate(query, *, args: Mapping, keys: Sequence[SortKey], serialize: Callable[[list], list],
             rows_of: Callable[[Select], Select], total: int | None = None,
             link_args: Mapping[str, str | None] | None = None,
             count_with_page: bool = False, lean: bool = False,
             plain: tuple[Callable[[], int], Callable[[int, int], list]] | None = None) -> tuple[dict, dict]:
    """Run one page of ``query`` ordered by ``keys``; return the envelope and the headers (Link).

    ``args`` are the list's loaded arguments (from a query string or a body); a cursor is made for, and
    only accepted with, the same filters and sort. ``link_args`` replace query parameters in the links
    (a saved search's `since=last_run` becomes the instant it stood for).

    The page is found on the sort keys alone, and only its rows are read whole: ``rows_of(top)``
    joins the full records (and what is counted per record) to ``top``, the subquery of the page's
    keys, in one statement. Sorting every match by relevance with whole rows (a study's reference
    count, a reference's abstract) cost more than finding the page. ``total`` is counted unless
    the caller already knows it: with ``count_with_page`` (a search sorted by relevance, which
    ranks every match anyway) by the page's own statement, ``count(*) OVER ()``, so the strategy
    is matched once and not twice. ``lean``: rows are named tuples with only the converters that change
    a value (db.select_rows), not model instances, for serializers reading columns by name only.
    ``plain``: the caller's fixed SQL for this very list (no filter, ordered by id), as ``(count(),
    rows(limit, offset))`` giving what the built queries would, used for a page found without a cursor.
    """
    page_size, cursor, page = args["page_size"], args.get("cursor"), args.get("page")
    link_args = link_args or {}
    if cursor is not None and page is not None:
        raise invalid_argument("page", "Not allowed together with `cursor`.",
                               "use either `page` or `cursor`, not both.")
    page = page or (None if cursor else 1)
    if page is not None and page * page_size > MAX_DEPTH:
        raise invalid_argument(
            "page", f"page × page_size must not exceed {MAX_DEPTH}.",
            f"`page` × `page_size` reaches at most record {MAX_DEPTH:,}; walk further with `cursor` "
            f"(each answer's `next` carries one).")

    fingerprint = _fingerprint(args)
    values = None
    if cursor is not None and cursor != START:
        values = decode_cursor(cursor, args["sort"], keys, fingerprint)
    def count_all() -> int:
        return count_rows(query.select(keys[-1].expr))

    if plain is not None and values is None and not count_with_page:
        count, page_rows = plain
        total = count() if total is None else total
        rows = page_rows(page_size + 1, (page - 1) * page_size if page is not None else 0)
        return _envelope(rows, args=args, keys=keys, total=total, link_args=link_args, page=page,
                         page_size=page_size, cursor=cursor, fingerprint=fingerprint, serialize=serialize)
    counted_here = total is None and count_with_page and values is None
    if total is None and not counted_here:
        total = count_all()
    rows_query = query.order_by(*order_by(keys))
    if values is not None:
        rows_query = rows_query.where(keyset_after(keys, values))
    elif page is not None:
        rows_query = rows_query.offset((page - 1) * page_size)
    selected = [k.expr.alias(k.attr) for k in keys]
    if counted_here:
        selected.append(fn.COUNT(SQL("*")).over().alias(_TOTAL))
    top = rows_query.limit(page_size + 1).select(*selected).alias("top")
    computed = [top.c[k.attr].alias(k.attr) for k in keys if not isinstance(k.expr, Field)]
    if counted_here:
        computed.append(top.c[_TOTAL].alias(_TOTAL))
    page_query = rows_of(top).select_extend(*computed).order_by(
        *[top.c[k.attr].desc() if k.descending else top.c[k.attr].asc() for k in keys])
    rows = select_rows(page_query.namedtuples()) if lean else list(page_query.objects())
    if counted_here:  # past the last match no row carries it
        total = getattr(rows[0], _TOTAL) if rows else count_all()
    return _envelope(rows, args=args, keys=keys, total=total, link_args=link_args, page=page,
                     page_size=page_size, cursor=cursor, fingerprint=fingerprint, serialize=serialize)


def _envelope(rows: list, *, args: Mapping, keys: Sequence[SortKey], total: int, link_args: Mapping,
              page: int | None, page_size: int, cursor: str | None, fingerprint: str,
              serialize: Callable[[list], list]) -> tuple[dict, dict]:
    """A page's envelope and Link header from its rows (one more than ``page_size`` when more follow)."""
    more, rows = len(rows) > page_size, rows[:page_size]

    next_url = prev_url = None
    if more:
        if page is not None and (page + 1) * page_size <= MAX_DEPTH:
            next_url = _url(link_args, page=page + 1, cursor=None)
        else:
            last = rows[-1]
            next_url = _url(link_args, page=None, cursor=encode_cursor(
                args["sort"], [getattr(last, k.attr) for k in keys], keys, fingerprint))
    if page is not None and page > 1 and total:
        prev_url = _url(link_args, page=min(page - 1, math.ceil(total / page_size)), cursor=None)

    links = [f'<{next_url}>; rel="next"'] if next_url else []
    if prev_url:
        links.append(f'<{prev_url}>; rel="prev"')
    if cursor is None:
        links.append(f'<{_url(link_args, page=1, cursor=None)}>; rel="first"')
    envelope = {"items": serialize(rows), "total": total, "page": page, "page_size": page_size,
                "next": next_url, "prev": prev_url}
    return envelope, {"Link": ", ".join(links)}
