"""Register notices (banners such as a holiday delay), with the time window they are in force."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Any

from ..db import database, write_transaction
from ..models import Notice, utcnow
from . import records
from .errors import InvalidInput, NotFound

NOTICE_FIELDS = ("id", "message", "starts", "ends", "created", "updated")


def notice_dict(notice: Notice) -> dict:
    return {name: getattr(notice, name) for name in NOTICE_FIELDS}


def filtered_notices(*, status: str = "active", now: dt.datetime | None = None):
    """Notices by status relative to ``now``: active, upcoming, expired or all."""
    now = now or utcnow()
    query = Notice.select()
    started = Notice.starts.is_null() | (Notice.starts <= now)
    not_ended = Notice.ends.is_null() | (Notice.ends > now)
    if status == "active":
        query = query.where(started & not_ended)
    elif status == "upcoming":
        query = query.where(Notice.starts > now)
    elif status == "expired":
        query = query.where(Notice.ends <= now)
    return query


def notice_rows(top):
    """The whole rows of the notices whose ids ``top`` (a subquery with an ``id`` column) selects."""
    return Notice.select().join(top, on=(Notice.id == top.c.id))


NOTICE_SORTS = {"id": Notice.id, "updated": Notice.updated}


def _get(notice_id: int) -> Notice:
    notice = Notice.get_or_none(Notice.id == notice_id)
    if notice is None:
        raise NotFound(f"Notice {notice_id} does not exist.")
    return notice


def get_notice(notice_id: int) -> dict:
    return notice_dict(_get(notice_id))


def _check_window(starts, ends) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput("A notice must end after it starts.",
                           errors={"ends": ["Must be later than `starts`."]})


def create_notice(data: dict[str, Any]) -> int:
    _check_window(data.get("starts"), data.get("ends"))
    now = utcnow()
    with write_transaction():
        return Notice.insert(message=data["message"], starts=data.get("starts"),
                             ends=data.get("ends"), created=now, updated=now).execute()


def update_notice(notice_id: int, data: dict[str, Any], *, if_match: list[str] | None = None) -> None:
    with write_transaction():
        notice = _get(notice_id)
        records.check_precondition(f"Notice {notice_id}", lambda: notice_dict(notice), if_match)
        values = {k: data[k] for k in ("message", "starts", "ends") if k in data}
        _check_window(values.get("starts", notice.starts), values.get("ends", notice.ends))
        values["updated"] = utcnow()
        Notice.update(values).where(Notice.id == notice_id).execute()


def delete_notice(notice_id: int, *, if_match: list[str] | None = None) -> None:
    with write_transaction():
        notice = _get(notice_id)
        records.check_precondition(f"Notice {notice_id}", lambda: notice_dict(notice), if_match)
        Notice.delete().where(Notice.id == notice_id).execute()


def notice_boundaries() -> list[dt.datetime]:
    """Every instant at which a notice starts or ends, in order: between two of them the set of active
    notices (the banner of every page, `GET /notices`) cannot change without a write."""
    cursor = database.cursor()  # the driver's own: the cache's query, once per write generation
    cursor.execute('SELECT starts, ends FROM "notice" WHERE starts IS NOT NULL OR ends IS NOT NULL')
    instants = set()
    for starts, ends in cursor.fetchall():
        instants.update(Notice.starts.python_value(t) for t in (starts, ends) if t is not None)
    return sorted(instants)


def notice_period(boundaries: list[dt.datetime], now: dt.datetime | None = None) -> int:
    """How many of ``boundaries`` have passed at ``now``: answers that show notices are the same for
    one write generation and one period."""
    return bisect.bisect_right(boundaries, now or utcnow())
