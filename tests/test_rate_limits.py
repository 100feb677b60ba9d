"""Rate limits per client: refused tokens and exports/searches per address, writes per token; 429 problem+json
with `Retry-After` and the IETF draft `RateLimit-Policy`/`RateLimit` headers; in memory and in Redis (shared
by gunicorn's workers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from peewee import OperationalError

from service import create_app
from service.api import ratelimits
from service.config import ConfigError, load_config
from service.db import close_all, database
from service.domain.tokens import create_token
from service.models import Study
from tests.conftest import IN_CI, _reset, assert_problem
from tests.helpers import free_port as _free_port
from tests.helpers import study_body
from tests.test_serving import _gunicorn, _send

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POLICY = re.compile(r'^"(\w+)";q=(\d+);w=(\d+)$')
STATE = re.compile(r'^"(\w+)";r=(\d+);t=(\d+)$')


@pytest.fixture(scope="session")
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        if IN_CI:
            pytest.fail(f"CI=true but Redis at {REDIS_URL} is unreachable: {error}")
        pytest.skip(f"no Redis at {REDIS_URL} (set CI=true to require it)")
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


@pytest.fixture
def make_app(sqlite_url, storage):
    """An app with the given rate-limit settings, counting in memory or in Redis (under a key prefix of
    its own, so no other test's counts are seen)."""
    made = []

    def make(url: str = sqlite_url, **settings: str):
        config = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                  "RATE_LIMIT_KEY_PREFIX": f"sr-test-{uuid.uuid4().hex}", **settings}
        if storage:
            config["REDIS_URL"] = storage
        app = create_app(config)
        app.config["TESTING"] = True
        _reset(url)
        made.append(app)
        return app

    yield make
    close_all(database.obj)


def _token(*scopes: str) -> dict:
    with database.connection_context():
        return {"Authorization": f"Bearer {create_token('t', scopes or ('studies',))}"}


def _studies() -> int:
    with database.connection_context():
        return Study.select().count()


def _assert_429(response, kind: str, quota: int) -> dict:
    body = assert_problem(response, 429)
    assert body["limit"] == kind and f"limit is {quota} per" in body["detail"]
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 60 and f"Retry in {retry} s" in body["detail"]
    assert POLICY.match(response.headers["RateLimit-Policy"]).groups() == (kind, str(quota), "60")
    state = STATE.match(response.headers["RateLimit"]).groups()
    assert state[:2] == (kind, "0") and 1 <= int(state[2]) <= 60
    return body


WRONG = {"Authorization": "Bearer sr_wrong-token-of-the-right-length-0000000000000000"}


def test_refused_tokens_are_limited_per_address_and_then_no_token_is_tried(make_app):
    client = make_app(RATE_LIMIT_AUTH_FAILURES="3 per minute").test_client()
    good = _token()
    for _ in range(3):
        assert_problem(client.post("/studies", json=study_body(), headers=WRONG), 401)
    _assert_429(client.post("/studies", json=study_body(), headers=WRONG), "auth", 3)
    # Blocked, the address cannot try any token, the right one included (or it could keep guessing).
    _assert_429(client.post("/studies", json=study_body(), headers=good), "auth", 3)
    assert _studies() == 0
    # A request with no token guesses nothing: still the plain 401, not counted.
    assert_problem(client.post("/studies", json=study_body()), 401)
    # Another address is not blocked.
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert_problem(client.post("/studies", json=study_body(), headers=WRONG, environ_base=other), 401)
    assert client.post("/studies", json=study_body(), headers=good, environ_base=other).status_code == 201


def test_writes_are_limited_per_token(make_app):
    client = make_app(RATE_LIMIT_WRITES="2 per minute").test_client()
    first, second = _token(), _token()
    answers = [client.post("/studies", json=study_body(f"NCT0428070{n}"), headers=first) for n in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert [STATE.match(a.headers["RateLimit"]).group(2) for a in answers] == ["1", "0"]
    assert answers[0].headers["RateLimit-Policy"] == '"writes";q=2;w=60'
    _assert_429(client.post("/studies", json=study_body("NCT04280709"), headers=first), "writes", 2)
    assert _studies() == 2
    # The same address with another token writes on.
    assert client.post("/studies", json=study_body("NCT04280709"), headers=second).status_code == 201
    # Reads are not writes.
    assert client.get("/studies", headers=first).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_write_over_the_limit_changes_nothing_on_either_database(make_app, database_url):
    client = make_app(database_url, RATE_LIMIT_WRITES="1 per minute").test_client()
    headers = _token()
    created = client.post("/studies", json=study_body(), headers=headers)
    assert created.status_code == 201
    location = created.headers["Location"]
    etag = client.get(location).headers["ETag"]
    _assert_429(client.patch(location, json={"title": "Changed"}, headers={**headers, "If-Match": etag}),
                "writes", 1)
    assert client.get(location).get_json()["title"] == study_body()["title"]


def test_exports_are_limited_per_address(make_app):
    client = make_app(RATE_LIMIT_EXPORTS="2 per minute").test_client()
    assert client.get("/studies?format=csv").status_code == 200
    assert client.get("/references?format=ris").status_code == 200
    _assert_429(client.get("/studies?format=ndjson"), "exports", 2)
    page = client.get("/studies")  # a page is no export
    assert page.status_code == 200 and "RateLimit" not in page.headers
    assert client.get("/studies?format=csv", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 200


def test_searches_are_limited_per_address(make_app):
    client = make_app(RATE_LIMIT_SEARCHES="3 per minute").test_client()
    assert client.get("/studies?q=covid").status_code == 200
    assert client.post("/references/search", json={"q": "covid"}).status_code == 200
    assert client.post("/studies/search", json={"q": "remdesivir"}).status_code == 200
    _assert_429(client.get("/references?q=covid"), "searches", 3)
    assert client.get("/studies").status_code == 200  # no `q`: a list, not a search
    assert client.get("/studies?q=covid", environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 200


def test_the_search_page_counts_as_a_search(make_app):
    client = make_app(RATE_LIMIT_SEARCHES="2 per minute").test_client()
    assert client.get("/?q=covid").status_code == 200
    assert client.get("/studies?q=covid").status_code == 200
    _assert_429(client.get("/?q=exosomes"), "searches", 2)
    assert client.get("/").status_code == 200  # no `q`: the register's first page, not a search


def test_a_refused_search_takes_no_database_connection(make_app, monkeypatch):
    client = make_app(RATE_LIMIT_SEARCHES="1 per minute").test_client()
    assert client.get("/studies?q=covid").status_code == 200

    def unreachable(*args, **kwargs):
        raise OperationalError("the database is down")

    monkeypatch.setattr(database.obj, "connect", unreachable)
    _assert_429(client.get("/studies?q=covid"), "searches", 1)
    assert client.get("/studies").status_code == 503  # the same request, not limited, needs the database


def test_limits_can_be_turned_off(make_app):
    client = make_app(RATE_LIMITS="off", RATE_LIMIT_AUTH_FAILURES="1 per minute").test_client()
    for _ in range(3):
        response = client.post("/studies", json=study_body(), headers=WRONG)
        assert_problem(response, 401)
        assert "RateLimit" not in response.headers


@pytest.mark.parametrize("name, value, message", [
    ("RATE_LIMIT_WRITES", "lots", "RATE_LIMIT_WRITES must be limits"),
    ("RATE_LIMIT_SEARCHES", "10 per fortnight", "RATE_LIMIT_SEARCHES must be limits"),
    ("RATE_LIMIT_STRATEGY", "leaky-bucket", "RATE_LIMIT_STRATEGY must be one of"),
    ("RATE_LIMITS", "maybe", "RATE_LIMITS must be on or off"),
    ("REDIS_URL", "http://user:secret@127.0.0.1:6379", "REDIS_URL must be a redis://.*'http'$"),
])
def test_bad_rate_limit_settings_stop_the_start(name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({name: value})


def test_defaults_are_documented_values():
    config = load_config({})
    assert config["RATE_LIMIT_AUTH_FAILURES"] == "10 per minute" and config["REDIS_URL"] is None
    assert config["RATE_LIMITS_ENABLED"] is True and config["RATE_LIMIT_STRATEGY"] == "fixed-window"


def test_an_unreachable_redis_leaves_the_service_serving_unlimited(sqlite_url):
    app = create_app({"DATABASE_URL": sqlite_url, "LOG_LEVEL": "ERROR",
                      "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
                      "RATE_LIMIT_AUTH_FAILURES": "1 per minute"})
    _reset(sqlite_url)
    client = app.test_client()
    started = time.monotonic()
    for _ in range(3):
        assert_problem(client.post("/studies", json=study_body(), headers=WRONG), 401)
    assert client.post("/studies", json=study_body(), headers=_token()).status_code == 201
    assert time.monotonic() - started < 10
    close_all(database.obj)


def test_a_frozen_redis_costs_one_short_timeout_not_one_per_request(sqlite_url, monkeypatch, tmp_path):
    port = _free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=port, socket_timeout=1).ping():
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        monkeypatch.setattr(ratelimits, "STORAGE_RETRY_AFTER", 1.0)
        app = create_app({"DATABASE_URL": sqlite_url, "LOG_LEVEL": "ERROR",
                          "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                          "RATE_LIMIT_AUTH_FAILURES": "2 per minute"})
        _reset(sqlite_url)
        client = app.test_client()
        assert_problem(client.post("/studies", json=study_body(), headers=WRONG), 401)
        server.send_signal(signal.SIGSTOP)  # frozen: connections open, nothing answers
        started = time.monotonic()
        for _ in range(10):
            assert_problem(client.post("/studies", json=study_body(), headers=WRONG), 401)
        assert time.monotonic() - started < 3  # one 0.5 s timeout, then no asking for a second
        server.send_signal(signal.SIGCONT)
        time.sleep(1.1)
        # Back: the count goes on where Redis kept it (one refusal before the freeze, one now).
        assert_problem(client.post("/studies", json=study_body(), headers=WRONG), 401)
        _assert_429(client.post("/studies", json=study_body(), headers=WRONG), "auth", 2)
        close_all(database.obj)
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(timeout=10)


def test_gunicorn_workers_share_the_counts_in_redis(tmp_path, redis_url):
    """Two workers, four clients at once, a new connection per request (so both workers answer): no
    more refusals than the limit are answered 401, in total, however the requests interleave."""
    with _gunicorn(tmp_path, WEB_CONCURRENCY="2", REDIS_URL=redis_url,
                   RATE_LIMIT_KEY_PREFIX=f"sr-test-{uuid.uuid4().hex}",
                   RATE_LIMIT_AUTH_FAILURES="5 per minute") as port:
        def guess(_):
            return _send(port, b"POST /studies HTTP/1.1\r\nAuthorization: Bearer sr_wrong",
                         json.dumps({}).encode())

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(guess, range(24)))
        assert Counter(status for status, _, _ in answers) == {401: 5, 429: 19}
        for status, headers, content in answers:
            if status == 429:
                assert headers["content-type"] == "application/problem+json" and "retry-after" in headers
                assert json.loads(content)["limit"] == "auth"
