"""Tokens that expire (`token create --expires`), and `last_used` kept to the minute, not per request."""

from __future__ import annotations

import datetime as dt

import pytest

from service.db import database
from service.domain import tokens
from service.models import ApiToken, utcnow
from tests.conftest import assert_problem
from tests.helpers import study_body

NOW = dt.datetime(2026, 12, 2, 13, 30, 0)


@pytest.mark.parametrize("text, expected", [
    ("90d", NOW + dt.timedelta(days=90)),
    ("12h", NOW + dt.timedelta(hours=12)),
    ("30m", NOW + dt.timedelta(minutes=30)),
    ("2w", NOW + dt.timedelta(weeks=2)),
    ("2027-03-31", dt.datetime(2027, 3, 31, 23, 59, 59)),
    ("2027-03-31T12:00:00Z", dt.datetime(2027, 3, 31, 12, 0, 0)),
    ("2027-03-31T12:00:00+02:00", dt.datetime(2027, 3, 31, 10, 0, 0)),
])
def test_an_expiry_is_a_duration_or_a_date_or_an_instant(text, expected):
    assert tokens.parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text, says", [
    ("0d", "more than 0"), ("90 days", "neither"), ("soon", "neither"), ("2026-02-30", "neither"),
    ("2020-01-01", "not in the future"), ("2026-12-02T13:00:00Z", "not in the future"),
    ("9999-12-31", "after 2100"), ("999999w", "after 2100"), ("", "neither"),
])
def test_a_bad_expiry_is_refused_naming_what_is_expected(text, says):
    with pytest.raises(ValueError, match=says):
        tokens.parse_expiry(text, NOW)


def _row(runner, name: str) -> list[str]:
    """The `token list` row of the token called ``name``, split into its columns."""
    listing = runner.invoke(args=["token", "list"]).output
    return next(line for line in listing.splitlines() if f"\t{name}\t" in line).split("\t")


def _stored(name: str) -> ApiToken:
    with database.connection_context():
        return ApiToken.get(ApiToken.name == name)


def test_token_create_expires_and_list_shows_expiry_and_last_use(runner, client):
    made = runner.invoke(args=["token", "create", "--name", "bot", "--expires", "90d"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    stored = _stored("bot")
    assert abs(stored.expires - (utcnow() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    assert stored.last_used is None

    assert _row(runner, "bot")[3:] == ["active", stored.expires.isoformat(timespec="minutes") + "Z", "-"]

    assert client.post("/studies", json=study_body(), headers={"Authorization": f"Bearer {token}"}
                       ).status_code == 201
    used = _stored("bot").last_used
    assert used is not None and abs(used - utcnow()) < dt.timedelta(minutes=1)
    assert _row(runner, "bot")[5] == used.isoformat(timespec="minutes") + "Z"

    never = runner.invoke(args=["token", "create", "--name", "forever"])
    assert never.exit_code == 0 and _stored("forever").expires is None
    assert _row(runner, "forever")[4] == "never"


@pytest.mark.parametrize("expires", ["yesterday", "2001-01-01", "0h"])
def test_token_create_refuses_a_bad_expiry_and_makes_no_token(runner, app, expires):
    result = runner.invoke(args=["token", "create", "--name", "bot", "--expires", expires])
    assert result.exit_code == 2 and "--expires" in result.output
    with database.connection_context():
        assert ApiToken.select().count() == 0


def test_an_expired_token_is_a_401_that_says_so(runner, client):
    token = runner.invoke(args=["token", "create", "--name", "old", "--expires", "1h"]).stdout.split()[0]
    with database.connection_context():
        ApiToken.update(expires=utcnow() - dt.timedelta(seconds=1)).execute()
    response = client.post("/studies", json=study_body(), headers={"Authorization": f"Bearer {token}"})
    problem = assert_problem(response, 401)
    assert "expired" in problem["detail"] and "token create" in problem["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert client.get("/studies").get_json()["total"] == 0
    assert _row(runner, "old")[3] == "expired"


def test_last_used_is_written_at_most_once_a_minute(client, app, monkeypatch):
    with database.connection_context():
        token = tokens.create_token("busy")
    headers = {"Authorization": f"Bearer {token}"}
    writes = []
    real_touch_update = ApiToken.update

    def counting_update(*args, **kwargs):
        if "last_used" in kwargs:
            writes.append(kwargs["last_used"])
        return real_touch_update(*args, **kwargs)

    monkeypatch.setattr(ApiToken, "update", counting_update)
    for number in range(5):
        assert client.post("/studies", json=study_body(f"NCT0428070{number}"), headers=headers
                           ).status_code == 201
    assert len(writes) == 1
    first = _stored("busy").last_used

    # A minute later the next write records it again (once).
    with database.connection_context():
        ApiToken.update(last_used=first - tokens.LAST_USED_EVERY).execute()
    writes.clear()
    for number in range(5, 8):
        assert client.post("/studies", json=study_body(f"NCT0428070{number}"), headers=headers
                           ).status_code == 201
    assert len(writes) == 1 and _stored("busy").last_used >= first


def test_last_used_written_by_one_worker_is_not_written_again_by_another(app):
    with database.connection_context():
        tokens.create_token("shared")
        seen_by_a = ApiToken.get()
        seen_by_b = ApiToken.get()  # two workers read the token before either touched it
        tokens.touch(seen_by_a)
        stamped = ApiToken.get().last_used
        tokens.touch(seen_by_b, now=stamped + dt.timedelta(seconds=5))
        assert ApiToken.get().last_used == stamped


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's one write lock (Postgres locks rows)
def test_last_used_gives_up_at_once_while_the_write_lock_is_held_elsewhere(app, backend):
    import sqlite3
    import time
    from urllib.parse import urlsplit

    with database.connection_context():
        tokens.create_token("waiting")
    holder = sqlite3.connect(urlsplit(app.config["DATABASE_URL"]).path[1:], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as an import does
    try:
        with database.connection_context():
            record = ApiToken.get()
            started = time.monotonic()
            tokens.touch(record)
            took = time.monotonic() - started
            busy = database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
    finally:
        holder.rollback()
        holder.close()
    assert took < 0.5, took  # the busy timeout is 1 s (a CLI connection's is 600 s)
    assert busy > 0  # the connection's own wait is back for the writes that follow
    assert _stored("waiting").last_used is None
