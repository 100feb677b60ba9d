"""What the list endpoints share beyond paging: choosing the sort when `q` may rank the answer, the Link
header's documentation, a POST search's paging, a page dumped ahead of flask-smorest."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Response, jsonify

from ..domain.ordering import RELEVANCE
from .paging import invalid_argument


def resolve_sort(args: Mapping, default: str = "id") -> str:
    """The sort asked for, else `relevance` with `q`, else ``default``; `relevance` needs `q`."""
    sort, q = args.get("sort"), args.get("q")
    if sort == RELEVANCE and q is None:
        raise invalid_argument("sort", "`relevance` needs `q`.",
                               "`relevance` ranks the matches of `q`; give `q` or another sort.")
    return sort or (RELEVANCE if q is not None else default)


LINK_HEADER = {"Link": {"description": "RFC 8288 links: next, prev, first.", "schema": {"type": "string"}}}


def with_query_paging(body: dict, paging: dict) -> dict:
    """A POST search's arguments: its body, with the query string's `page` or `cursor` in place of the
    body's (how its `next` pages it)."""
    if not paging:
        return body
    return {**{k: v for k, v in body.items() if k not in ("page", "cursor")}, **paging}


def dumped(answer, dump: Callable[[dict], dict]):
    """A list's answer (``(envelope, status, headers)`` or a Response, an export) with its envelope
    dumped by ``dump`` (the page schema's ``dumping.dumper``) into the JSON answer flask-smorest's
    ``@blp.response`` would write (``jsonify`` of ``schema.dump``, the same bytes): given a Response,
    flask-smorest only sets its status and headers, and Schema.dump cost a third of a page's time."""
    if isinstance(answer, Response):
        return answer
    envelope, status, headers = answer
    return jsonify(dump(envelope)), status, headers
