"""Blueprint "changes": the change feed mirrors follow (`/changes`) and each record's history."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from urllib.parse import urlencode

from flask import g, has_request_context, request
from flask.views import MethodView

from ..domain import changes as domain
from ..domain.errors import NotFound
from ..domain.ordering import SortKey
from ..models import Change, Reference, Study
from .links import link
from .paging import START, decode_cursor, encode_cursor
from .parser import Blueprint
from .schemas.changes import (
    ChangePageSchema,
    ChangeQueryArgsSchema,
    HistoryPageSchema,
    HistoryQueryArgsSchema,
)

blp = Blueprint("changes", __name__, url_prefix="",
                description="The change feed: every create, update, delete and merge of studies and "
                            "references, deletions kept as tombstones; and each record's history.")

_KEYS = [SortKey(Change.seq, False, "seq")]
_SORT = "seq"
LINK_HEADER = {"Link": {"description": "RFC 8288 links: next.", "schema": {"type": "string"}}}


def _acting_token() -> str | None:
    token = g.get("api_token") if has_request_context() else None
    return token.name if token is not None else None


domain.set_actor_source(_acting_token)


def _fingerprint(args: dict) -> str:
    filters = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in args.items()
               if k in ("since", "kind") and v is not None}
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]


def _url(**changes) -> str:
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in changes]
    params += [(k, v) for k, v in changes.items() if v is not None]
    return link(request.path) + ("?" + urlencode(params) if params else "")


def _page(query, args: dict, serialize):
    """One page of ``query`` in `seq` order after the cursor, the envelope and its Link header."""
    fingerprint, cursor = _fingerprint(args), args.get("cursor")
    after = None
    if cursor is not None and cursor != START:
        (after,) = decode_cursor(cursor, _SORT, _KEYS, fingerprint)
    rows, more = domain.page_after(query, after, args["page_size"])
    last = rows[-1].seq if rows else after
    resume = _url(cursor=encode_cursor(_SORT, [last], _KEYS, fingerprint) if last is not None else None)
    next_url = resume if more else None
    envelope = {"items": serialize(rows), "total": query.count(), "page": None,
                "page_size": args["page_size"], "next": next_url, "prev": None, "resume": resume}
    return envelope, 200, ({"Link": f'<{next_url}>; rel="next"'} if next_url else {})


@blp.route("/changes")
class Changes(MethodView):
    @blp.arguments(ChangeQueryArgsSchema, location="query")
    @blp.response(200, ChangePageSchema, headers=LINK_HEADER)
    def get(self, args):
        """Follow every change of studies and references

        The register's changes in the order they were committed (`seq`, ascending; ties cannot
        occur), each create, update, delete and merge of a study or a reference, with the names and
        new values of the fields that changed. A deleted or merged record stays as a tombstone
        (`deleted_at`, and `merged_into` for a merge). A link made or removed is a change of both the
        study and the reference. A mirror starts without `cursor` (or with `since`), follows `next`
        to the end, keeps the last page's `resume` and polls it later: the cursor carries the last
        `seq` seen, so a change committed after the poll is never skipped. Replaying from the start
        reproduces the register: records there before the feed began appear once as `snapshot`.
        `since` keeps the changes at or after an instant (one in the future answers an empty page);
        a malformed one is a 422 naming `since`.
        """
        query = domain.feed_query(since=args.get("since"), kind=args.get("kind"))
        return _page(query, args, lambda rows: [domain.feed_item(r) for r in rows])


def _history(kind: str, model, record_id: int, args: dict):
    # A record with no change recorded (written outside the API's writes) has an empty history.
    if not domain.has_history(kind, record_id) and not model.select().where(model.id == record_id).exists():
        raise NotFound(f"{kind.capitalize()} {record_id} does not exist and never did.")
    query = domain.history_query(kind, record_id)
    return _page(query, args, lambda rows: domain.history_items(kind, record_id, rows))


@blp.route("/studies/<int(max=2147483647):study_id>/history")
class StudyHistory(MethodView):
    @blp.arguments(HistoryQueryArgsSchema, location="query")
    @blp.response(200, HistoryPageSchema, headers=LINK_HEADER)
    @blp.alt_response(404, response="NOT_FOUND", description="No study has ever had this id.")
    def get(self, args, study_id):
        """A study's history

        Each change of the study, oldest first: when (`at`), which token's name made it (`actor`),
        what (`action`), and for each field that changed its old and new value (`changes`). A deleted
        study answers 200 with its history, the tombstone (`delete`, or `merge` with `merged_into`) as
        its last entry (a merged id itself answers 308 at `/studies/{id}`). An id no study ever had is
        a 404.
        """
        return _history(domain.STUDY, Study, study_id, args)


@blp.route("/references/<int(max=2147483647):reference_id>/history")
class ReferenceHistory(MethodView):
    @blp.arguments(HistoryQueryArgsSchema, location="query")
    @blp.response(200, HistoryPageSchema, headers=LINK_HEADER)
    @blp.alt_response(404, response="NOT_FOUND", description="No reference has ever had this id.")
    def get(self, args, reference_id):
        """A reference's history

        Each change of the reference, oldest first: when (`at`), which token's name made it
        (`actor`), what (`action`), and for each field that changed its old and new value
        (`changes`). A deleted reference answers 200 with its history, the tombstone (`delete`) as
        its last entry. An id no reference ever had is a 404.
        """
        return _history(domain.REFERENCE, Reference, reference_id, args)
