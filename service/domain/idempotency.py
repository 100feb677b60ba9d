"""`Idempotency-Key`s of writes, per token: the first request's answer is kept (in the write's own
transaction) and a retry with the same key gets it again, writing nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from peewee import IntegrityError

from ..db import write_transaction
from ..models import IdempotencyKey, utcnow

MAX_KEY_LENGTH = 255
# A first request still unanswered after this is taken as lost (its worker killed): the key is free again.
LEASE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Begun:
    """What to do with a request that carries a key: ``new`` (run it; ``row`` keeps its answer),
    ``replay`` (answer ``row``'s), ``mismatch`` (the key was used with another request) or ``running``
    (the first request with the key has not answered yet)."""

    outcome: str
    row: IdempotencyKey | None = None


def begin(token_id: int, key: str, request_hash: Callable[[], str], *, hours: int) -> Begun:
    """Look the key up for this token; when it is new, note (committed) that its request is running.
    ``request_hash`` is asked only when the key has an answer to compare with (an upload is read for it)."""
    for _ in range(3):
        now = utcnow()
        row = IdempotencyKey.get_or_none((IdempotencyKey.token == token_id) & (IdempotencyKey.key == key))
        if row is not None and row.created >= now - dt.timedelta(hours=hours):
            if row.status is not None:
                return Begun("replay" if row.request_hash == request_hash() else "mismatch", row)
            if row.created >= now - LEASE:
                return Begun("running", row)
            with write_transaction():  # abandoned: take it over, unless another retry just did
                taken = IdempotencyKey.update(created=now).where(
                    (IdempotencyKey.id == row.id) & IdempotencyKey.status.is_null()
                    & (IdempotencyKey.created == row.created)).execute()
            if taken:
                row.created = now
                return Begun("new", row)
            continue
        try:
            with write_transaction():
                # Expired keys go (every token's: they are no use to anyone), this one's among them.
                expired = IdempotencyKey.created < now - dt.timedelta(hours=hours)
                IdempotencyKey.delete().where(expired).execute()
                # The request's hash is written with its answer (an upload's is known once it is read).
                row = IdempotencyKey.create(token=token_id, key=key, request_hash="", created=now)
            return Begun("new", row)
        except IntegrityError:  # the same key began at the same moment: look again
            continue
    return Begun("running")


def finish(row: IdempotencyKey, request_hash: str, status: int, headers: list[tuple[str, str]],
           body: str) -> None:
    """Keep the answer; called inside the write's transaction, so both commit or neither does."""
    IdempotencyKey.update(request_hash=request_hash, status=status, headers=json.dumps(headers),
                          body=body).where(IdempotencyKey.id == row.id).execute()


def abandon(row: IdempotencyKey) -> None:
    """The request answered an error and wrote nothing: free the key for a retry."""
    with write_transaction():
        IdempotencyKey.delete().where(
            (IdempotencyKey.id == row.id) & IdempotencyKey.status.is_null()).execute()


def stored_headers(row: IdempotencyKey) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in json.loads(row.headers or "[]")]
