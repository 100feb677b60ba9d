"""The cache's front (api/front.py): a hit answered before Flask is entered is the answer a hit through Flask
gives, byte for byte and header for header; what Flask would answer otherwise (a rate-limited search, a
token, a long request line, a breaker open, a write since) still goes to Flask. And the herd: concurrent
misses of one answer build it once in a process (api/cache.py ``wait_for``)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from peewee import OperationalError, __exception_wrapper__

from service import create_app
from service import db as service_db
from service.api import studies as studies_api
from service.config import MAX_REQUEST_LINE
from service.db import close_all, database
from service.domain.register_state import stored_secret_key
from tests.conftest import _reset

# Reads the front may answer (none is rate-limited), with the headers asked: the study as JSON, gzip'd
# and as its page, lists, facets, pages, HEAD.
READS = [
    ("GET", "/studies/1", {}),
    ("GET", "/studies/1", {"Accept-Encoding": "gzip"}),
    ("GET", "/studies/1", {"Accept": "text/html"}),
    ("GET", "/studies/1", {"Origin": "https://map.example"}),
    ("HEAD", "/studies/1", {}),
    ("GET", "/studies?page_size=5&facets=study_type,registry", {}),
    ("GET", "/references?page_size=3", {"Accept-Encoding": "gzip"}),
    ("GET", "/studies/1/references", {}),
    ("GET", "/stats", {}),
    ("GET", "/vocabularies", {}),
    ("GET", "/", {"Accept": "text/html"}),
]
MADE_PER_ANSWER = {"Date", "Server-Timing"}


class Hooks:
    """Counts the requests that entered Flask (a before_request hook run first: the cache's lookup, the
    last one, ends the hooks with its hit)."""

    def __init__(self, app):
        self.count = 0
        app.before_request_funcs.setdefault(None, []).insert(0, self._seen)

    def _seen(self):
        self.count += 1


@pytest.fixture
def apps(database_url):
    """Two apps on one register: the front on (the default), and CACHE_FRONT=off (every hit through Flask)."""
    made = {front: create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "CACHE_FRONT": front})
            for front in ("on", "off")}
    _reset(database_url)
    with database.connection_context():
        stored_secret_key()
    yield made
    close_all(database.obj)


def _ask(client, method, path, headers):
    answer = client.open(path, method=method, headers=headers)
    kept = sorted((k, v) for k, v in answer.headers.items() if k not in MADE_PER_ANSWER)
    return answer.status_code, kept, answer.get_data()


def test_the_front_answers_as_a_hit_through_flask_does(apps, seeded, auth):
    fronted, flask_only = apps["on"].test_client(), apps["off"].test_client()
    hooks = Hooks(apps["on"])
    for method, path, headers in READS:
        _ask(fronted, method, path, headers)  # a miss, or a hit through Flask (another read's entry)
        through_flask = _ask(fronted, method, path, headers)  # a hit; from the front when that one was
        before = hooks.count
        front = _ask(fronted, method, path, headers)
        assert hooks.count == before, (method, path, headers)  # answered before Flask was entered
        assert front == through_flask, (method, path, headers)
        # and what the same hit is with no front at all (its own app, the same register)
        _ask(flask_only, method, path, headers)
        assert _ask(flask_only, method, path, headers) == front, (method, path, headers)
        assert ("X-Cache", "hit") in front[1]
        if method == "HEAD":
            assert front[2] == b""
    served = fronted.get("/studies/1")
    assert "app;dur=" in served.headers["Server-Timing"]


def test_a_304_from_the_front_is_flasks_304(apps, seeded):
    fronted, flask_only = apps["on"].test_client(), apps["off"].test_client()
    hooks = Hooks(apps["on"])
    for path in ("/studies/1", "/studies?page_size=5"):
        tag = fronted.get(path).headers["ETag"]
        fronted.get(path)  # its first hit
        asked = {"If-None-Match": tag}
        through_flask = _ask(fronted, "GET", path, asked)
        before = hooks.count
        front = [_ask(fronted, "GET", path, asked) for _ in range(2)]
        assert hooks.count == before, path
        _ask(flask_only, "GET", path, {})
        assert through_flask[0] == 304
        assert front == [through_flask] * 2 == [_ask(flask_only, "GET", path, asked)] * 2
        # a tag of another state is a full answer, from the front too
        assert _ask(fronted, "GET", path, {"If-None-Match": '"other"'})[0] == 200
        assert hooks.count == before, path


def test_a_new_origin_or_method_goes_through_flask_once(apps, seeded):
    client = apps["on"].test_client()
    hooks = Hooks(apps["on"])
    client.get("/studies/2")  # the miss that stores it
    for method, headers in (("GET", {}), ("GET", {"Origin": "https://a.example"}),
                            ("GET", {"Origin": "https://b.example"}), ("HEAD", {})):
        before = hooks.count
        for _ in range(3):
            client.open("/studies/2", method=method, headers=headers)
        assert hooks.count - before == 1, (method, headers)  # its first hit only


def test_a_write_ends_what_the_front_answers(apps, seeded, auth, sqlite_url, database_url):
    client = apps["on"].test_client()
    for _ in range(3):
        client.get("/studies/1")
    assert client.get("/studies/1").headers["X-Cache"] == "hit"
    assert client.patch("/studies/1", json={"title": "Renamed"}, headers=auth).status_code == 200
    after = client.get("/studies/1")
    assert after.headers["X-Cache"] == "miss" and after.get_json()["title"] == "Renamed"
    if database_url == sqlite_url:  # another process's raw write to the same file
        for _ in range(2):
            client.get("/studies/1")
        raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        with raw:
            raw.execute("UPDATE study SET title = 'Raw' WHERE id = 1")
        raw.close()
        assert client.get("/studies/1").get_json()["title"] == "Raw"


def test_rate_limited_searches_and_tokens_go_through_flask(apps, seeded, auth):
    client = apps["on"].test_client()
    hooks = Hooks(apps["on"])
    path = "/studies?q=covid&page_size=3"
    remaining = []
    for _ in range(4):
        answer = client.get(path)
        remaining.append(answer.headers["RateLimit"])
    assert len(set(remaining)) == 4  # each counted, by Flask's hooks
    assert hooks.count == 4
    for _ in range(3):
        client.get("/studies/3")
    before = hooks.count
    assert client.get("/studies/3", headers=auth).status_code == 200
    assert hooks.count == before + 1  # a request with a token never reads the front


def test_a_long_request_line_is_refused_even_for_a_stored_answer(apps, seeded):
    client = apps["on"].test_client()
    for _ in range(3):
        assert client.get("/studies/1").status_code == 200
    # the same path and key, read from a request line over the limit (a server that passes it on)
    answer = client.get("/studies/1", environ_overrides={"RAW_URI": "/studies/1?" + "&" * MAX_REQUEST_LINE})
    assert answer.status_code == 414
    assert answer.content_type == "application/problem+json"


def test_with_the_breaker_open_flask_answers_503(apps, seeded, monkeypatch):
    client = apps["on"].test_client()
    for _ in range(3):
        client.get("/studies/1")
    monkeypatch.setattr(service_db.BREAKER, "opened", time.monotonic())
    monkeypatch.setattr(service_db.LIMITS, "breaker", 60.0)
    answer = client.get("/studies/1")
    assert answer.status_code == 503 and answer.content_type == "application/problem+json"


def test_cache_front_off_sends_every_hit_through_flask(apps, seeded):
    client = apps["off"].test_client()
    hooks = Hooks(apps["off"])
    for _ in range(4):
        assert client.get("/studies/1").status_code == 200
    assert hooks.count == 4


def test_concurrent_misses_of_one_answer_build_it_once(apps, seeded, monkeypatch):
    app = apps["off"]
    built = []
    original = studies_api.study_response

    def slow(*args, **kwargs):
        built.append(threading.get_ident())
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(studies_api, "study_response", slow)
    answers = []

    def read():
        answers.append(app.test_client().get("/studies/4"))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(built) == 1
    assert sorted(a.headers["X-Cache"] for a in answers) == ["hit", "hit", "hit", "miss"]
    assert len({a.get_data() for a in answers}) == 1


def test_a_miss_that_keeps_nothing_lets_the_waiters_build(apps, seeded, monkeypatch):
    app = apps["off"]
    original = studies_api.study_response
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)
            raise RuntimeError("the first build fails")
        return original(*args, **kwargs)

    monkeypatch.setattr(studies_api, "study_response", failing_once)
    answers = []

    def read():
        answers.append(app.test_client().get("/studies/5").status_code)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200, 200, 500]


def test_only_cached_endpoints_read_the_generation_in_the_front(apps, seeded, monkeypatch):
    client = apps["on"].test_client()
    cache = apps["on"].extensions["response_cache"]
    scoped = []
    original = type(cache).scope
    monkeypatch.setattr(type(cache), "scope", lambda self: scoped.append(1) or original(self))
    for path in ("/health", "/openapi.json", "/docs", "/nowhere"):
        client.get(path)
        client.get(path)
    assert scoped == []  # neither the front nor Flask's lookup asked: none of them is cached
    client.get("/studies/1")
    assert len(scoped) == 2  # the front's read, then lookup's (a miss)


def test_a_generation_read_that_finds_the_server_silent_opens_the_breaker(apps, seeded, monkeypatch):
    client = apps["on"].test_client()
    hooks = Hooks(apps["on"])
    for _ in range(3):
        client.get("/studies/1")
    cache = apps["on"].extensions["response_cache"]
    try:  # what a connect to a frozen server raises: the driver's error, wrapped by Peewee
        with __exception_wrapper__:
            raise service_db.NoAnswer("the database server did not answer in time")
    except OperationalError as error:
        silent = error
    recorded = []
    monkeypatch.setattr(service_db.BREAKER, "record",
                        lambda error, started, probe=False: recorded.append(error))

    def frozen(self):
        raise silent

    monkeypatch.setattr(type(cache), "scope", frozen)
    before = hooks.count
    answer = client.get("/studies/1")
    assert recorded[0] is silent  # the front told the breaker...
    assert hooks.count == before + 1  # ...and Flask answered, the problem its own read met
    assert answer.status_code == 503 and answer.content_type == "application/problem+json"
