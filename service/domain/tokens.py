"""API tokens: made once and shown once, stored only as a SHA-256 hash, checked on every write."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence

from peewee import OperationalError

from ..db import no_lock_wait, write_transaction
from ..models import ApiToken, utcnow

# `searches`: saved searches only (a review team's token that changes no record).
SCOPES = ("studies", "references", "notices", "imports", "searches")
TOKEN_PREFIX = "sr_"
# `last_used` is written at most once per this interval per token (not a write per request).
LAST_USED_EVERY = dt.timedelta(seconds=60)
# An expiry is after now and before this bound (the register's dates end at 2100).
LATEST_EXPIRY = dt.datetime(2100, 12, 31, 23, 59, 59)
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """When a token made ``now`` with ``--expires text`` expires, as naive UTC: a duration (`90d`, `12h`,
    `30m`, `2w`) or an absolute date or instant (`2027-03-31`, `2027-03-31T12:00:00Z`; a date means its
    end, 23:59:59 UTC). ValueError, naming the form expected, when it is neither or not in the future."""
    now = now or utcnow()
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            raise ValueError("a duration must be more than 0")
        try:
            when = now + dt.timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            when = dt.datetime.max
    else:
        raw = text.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                when = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(23, 59, 59))
            else:
                when = dt.datetime.fromisoformat(raw.replace("z", "Z"))
                if when.tzinfo is not None:
                    when = when.astimezone(dt.UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            raise ValueError(f"{text!r} is neither a duration (90d, 12h, 30m, 2w) nor a date "
                             "(2027-03-31) or instant (2027-03-31T12:00:00Z)") from None
    if when <= now:
        raise ValueError(f"{text!r} is not in the future")
    if when > LATEST_EXPIRY:
        raise ValueError(f"{text!r} is after {LATEST_EXPIRY.date().isoformat()}")
    return when.replace(microsecond=0)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, scopes: Sequence[str] = SCOPES, expires: dt.datetime | None = None) -> str:
    """Store a new token's hash and return the token itself (the only time it exists in clear);
    ``expires`` (naive UTC), when given, is when it stops working."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    # 32 random bytes: a hash without salt or stretching is enough for a secret this strong.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction():
        ApiToken.create(name=name, prefix=token[:10], token_hash=_hash(token),
                        scopes=" ".join(sorted(set(scopes))), created=utcnow(), expires=expires)
    return token


def find_token(token: str) -> ApiToken | None:
    """The live token record for ``token``, or None when it is unknown or revoked."""
    return ApiToken.get_or_none((ApiToken.token_hash == _hash(token)) & ApiToken.revoked.is_null())


def is_expired(record: ApiToken, now: dt.datetime | None = None) -> bool:
    return record.expires is not None and record.expires <= (now or utcnow())


def touch(record: ApiToken, now: dt.datetime | None = None) -> None:
    """Record that ``record`` was just used, at most once per LAST_USED_EVERY: one conditional UPDATE when
    the stored time is older (so workers racing write it once), nothing otherwise. Best effort: a
    database too busy to take it leaves the older time, at once (the request's own write then waits for
    the lock, not this one too)."""
    now = now or utcnow()
    if record.last_used is not None and now - record.last_used < LAST_USED_EVERY:
        return
    stale = ApiToken.last_used.is_null() | (ApiToken.last_used <= now - LAST_USED_EVERY)
    try:
        with no_lock_wait(), write_transaction():
            ApiToken.update(last_used=now).where((ApiToken.id == record.id) & stale).execute()
    except OperationalError:
        return
    record.last_used = now


def state(record: ApiToken, now: dt.datetime | None = None) -> str:
    """`active`, `revoked` or `expired`."""
    if record.revoked:
        return "revoked"
    return "expired" if is_expired(record, now) else "active"


def revoke_token(prefix: str) -> int:
    with write_transaction():
        return ApiToken.update(revoked=utcnow()).where(
            (ApiToken.prefix == prefix) & ApiToken.revoked.is_null()).execute()


def list_tokens() -> list[ApiToken]:
    return list(ApiToken.select().order_by(ApiToken.id))
