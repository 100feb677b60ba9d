"""The response cache (api/cache.py) and the write generation it stands on (service/generation.py): a read
asked again is a hit, and no answer is served after any kind of write that could change it (the API, an
import, curation, the CLI, a raw write from another process, a notice coming into force), in one
process, between two gunicorn workers, and between two apps sharing Redis."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service import create_app, generation
from service.db import close_all, database
from service.domain.register_state import stored_secret_key
from service.domain.tokens import create_token
from tests.conftest import make_token
from tests.helpers import HOST, create_reference, create_study, free_port, served
from tests.test_rate_limits import redis_url  # noqa: F401 - the fixture: Redis required in CI
from tests.test_suggestions import OTHERS, register, suggest, suggested

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WHO = FIXTURES / "ictrp_who_40.csv"
RIS = FIXTURES / "regcovid_articles.ris"
HTML = {"Accept": "text/html"}
# What the steps below can change, each read as JSON or as a page.
READS = [
    ("/studies?page_size=5&facets=study_type,registry,reference_type", {}),
    ("/studies?q=covid&page_size=3", {}),
    ("/studies/1", {}),
    ("/studies/1", HTML),
    ("/studies/1/references", {}),
    ("/studies/merged", {}),
    ("/studies/duplicates", {}),
    ("/references?page_size=5&facets=type", {}),
    ("/stats", {}),
    ("/stats/map", {}),
    ("/notices", {}),
    ("/changes", {}),
    ("/searches", {}),
    ("/", HTML),
    ("/map", HTML),
]


@pytest.fixture(autouse=True)
def _signing_key(app):
    """The register makes its cursor-signing key at the first answer with a cursor, a write (tracked): made
    first here, so that one write does not count as a change between two reads of the tests below."""
    with database.connection_context():
        stored_secret_key()


def _fresh(client, auth, path, headers):
    """The answer built now: a request with `Authorization` never reads the cache."""
    return client.get(path, headers={**headers, **auth})


def assert_current(client, auth, *, after: str) -> None:
    """Every read answers what the register holds now, and the first answer after a write is built anew."""
    for path, headers in READS:
        served = client.get(path, headers=headers)
        assert served.headers.get("X-Cache") in ("miss", None), (after, path)  # None: a 404, never cached
        again = client.get(path, headers=headers)  # a hit through Flask...
        fronted = client.get(path, headers=headers)  # ...and one the front (api/front.py) may answer
        built = _fresh(client, auth, path, headers)
        for answer in (again, fronted):
            assert (answer.status_code, answer.get_data()) == (built.status_code, built.get_data()), (
                after, path)
            if answer.status_code == 200:
                assert answer.headers["X-Cache"] == "hit", (after, path)
                assert answer.headers["ETag"] == served.headers["ETag"], (after, path)


def test_a_repeated_read_is_a_hit_with_the_same_answer_and_validators(client, auth, seeded):
    for path, headers in READS:
        first = client.get(path, headers=headers)
        assert first.status_code == 200, path
        assert first.headers["X-Cache"] == "miss" and first.headers["Cache-Control"] == "no-cache", path
        second = client.get(path, headers=headers)
        assert second.headers["X-Cache"] == "hit", path
        assert second.get_data() == first.get_data() and second.headers["ETag"] == first.headers["ETag"]
        assert second.content_type == first.content_type
        assert "app;dur=" in second.headers["Server-Timing"]
    # JSON and the page of one study are two entries, each with its own validator.
    assert client.get("/studies/1").headers["ETag"] != client.get("/studies/1", headers=HTML).headers["ETag"]


def test_every_kind_of_write_makes_every_cached_answer_current(client, auth, runner):
    made = register(client, auth)  # studies 1..n (RECOVERY first), an article and a preprint
    first, second, third, fourth = (made[identifier]["id"] for identifier, _ in OTHERS)
    steps = [
        ("create a study", lambda: made.update(crash=create_study(client, auth, "NCT04343001",
                                                                  title="CRASH-19"))),
        ("create a reference", lambda: made.update(letter=create_reference(
            client, auth, title="A letter", abstract=None, has_results=False))),
        ("edit a study", lambda: client.patch(f"/studies/{first}", json={"title": "Renamed"}, headers=auth)),
        ("edit a reference", lambda: client.patch(f"/references/{made['letter']['id']}",
                                                  json={"title": "A letter, renamed"}, headers=auth)),
        ("link", lambda: client.put(f"/studies/{first}/references/{made['letter']['id']}", headers=auth)),
        ("unlink", lambda: client.delete(f"/studies/{first}/references/{made['letter']['id']}",
                                         headers=auth)),
        ("merge", lambda: client.post(f"/studies/{first}/merge", json={"from": second}, headers=auth)),
        ("reject duplicates", lambda: client.post("/studies/duplicates/reject",
                                                  json={"study_ids": [third, fourth]}, headers=auth)),
        ("suggest (CLI)", lambda: suggest(runner)),
        ("accept a suggestion", lambda: client.post(
            f"/suggestions/{suggested(client, made['preprint']['id'])[0]['id']}/accept", headers=auth)),
        ("a notice", lambda: client.post("/notices", json={"message": "Holiday delay"}, headers=auth)),
        ("a saved search", lambda: client.post("/searches", json={"name": "s", "q": "covid"}, headers=auth)),
        ("import (API)", lambda: client.post("/imports?format=ictrp-csv", headers=auth, data=WHO.read_bytes(),
                                             content_type="text/csv")),
        ("import (CLI)", lambda: runner.invoke(args=["import", str(RIS), "--format", "ris", "--quiet"])),
        ("relink (CLI)", lambda: runner.invoke(args=["relink"])),
        ("reindex (CLI)", lambda: runner.invoke(args=["reindex"])),
        ("delete a study", lambda: client.delete(f"/studies/{made['crash']['id']}", headers=auth)),
    ]
    assert_current(client, auth, after="nothing")
    for name, step in steps:
        outcome = step()
        status = getattr(outcome, "status_code", None) or getattr(outcome, "exit_code", 0)
        assert status in (0, 200, 201, 204), (name, outcome, getattr(outcome, "output", None))
        assert_current(client, auth, after=name)


def test_a_write_no_read_shows_keeps_the_cache(client, auth, seeded):
    assert client.get("/studies").headers["X-Cache"] == "miss"
    with database.connection_context():
        create_token("another client")  # tokens (and idempotency keys) are not tracked
    assert client.get("/studies").headers["X-Cache"] == "hit"
    client.post("/notices", json={"message": "x"}, headers=auth)
    assert client.get("/studies").headers["X-Cache"] == "miss"


def test_a_list_answers_304_to_its_etag_after_one_generation_read_until_a_write(client, auth, seeded):
    path = "/references?page_size=3&facets=type"
    first = client.get(path)
    tag = first.headers["ETag"]
    assert tag.startswith('"g')
    with database.connection_context():
        before = generation.current()
    unchanged = client.get(path, headers={"If-None-Match": f'W/"x", {tag}'})
    assert unchanged.status_code == 304 and unchanged.get_data() == b"" and unchanged.headers["ETag"] == tag
    assert client.get(path, headers={"If-None-Match": '"gother"'}).status_code == 200
    create_reference(client, auth, title="New report")
    with database.connection_context():
        assert generation.current()[1] > before[1] and generation.current()[0] == before[0]
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.get_json()["total"] == first.get_json()["total"] + 1


def test_a_record_keeps_its_content_etag_and_a_cached_304(client, auth, seeded):
    first = client.get("/studies/1")
    tag = first.headers["ETag"]
    assert not tag.startswith('"g')  # the content tag If-Match checks on writes
    again = client.get("/studies/1", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["X-Cache"] == "hit"
    assert again.headers["ETag"] == tag and again.get_data() == b""
    assert client.patch("/studies/1", json={"title": "New title"},
                        headers={**auth, "If-Match": tag}).status_code == 200
    assert client.get("/studies/1", headers={"If-None-Match": tag}).status_code == 200


def test_requests_with_authorization_and_other_endpoints_are_never_cached(client, auth, seeded):
    client.get("/studies")
    assert "X-Cache" not in client.get("/studies", headers=auth).headers
    assert "X-Cache" not in client.get("/health").headers
    assert "X-Cache" not in client.get("/studies?format=csv").headers  # a streamed export
    assert client.get("/studies?page_size=abc").status_code == 422
    assert "X-Cache" not in client.get("/studies?page_size=abc").headers  # problems are built each time


def test_a_notice_coming_into_force_is_shown_without_any_write(client, auth):
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    made = client.post("/notices", json={"message": "Starts soon", "starts": starts.isoformat()},
                       headers=auth)
    assert made.status_code == 201, made.get_json()
    assert client.get("/notices").get_json()["items"] == []
    assert client.get("/notices").headers["X-Cache"] == "hit"
    assert "Starts soon" not in client.get("/", headers=HTML).get_data(as_text=True)
    time.sleep(max(0.0, (starts - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)
    now = client.get("/notices")
    assert now.headers["X-Cache"] == "miss"
    assert [n["message"] for n in now.get_json()["items"]] == ["Starts soon"]
    assert "Starts soon" in client.get("/", headers=HTML).get_data(as_text=True)


def _raw_write(url: str, sql: str) -> None:
    """``sql`` run and committed by another process, on the driver alone (no app, no Peewee)."""
    if url.startswith("postgres"):
        script = ("import psycopg2, sys; c = psycopg2.connect(sys.argv[1]); c.cursor().execute(sys.argv[2]);"
                  " c.commit()")
        target = url.replace("postgresql+pool://", "postgresql://").replace("postgres+pool://", "postgres://")
    else:
        script = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"
        target = url.removeprefix("sqlite:///")
    subprocess.run([sys.executable, "-c", script, target, sql], check=True, timeout=60)


def test_a_second_process_writing_the_database_is_seen_at_once(client, seeded, database_url):
    assert client.get("/studies/1").headers["X-Cache"] == "miss"
    assert client.get("/studies/1").headers["X-Cache"] == "hit"
    _raw_write(database_url, "UPDATE study SET title = 'Written elsewhere' WHERE id = 1")
    answer = client.get("/studies/1")
    assert answer.headers["X-Cache"] == "miss" and answer.get_json()["title"] == "Written elsewhere"


def test_every_table_a_read_can_show_moves_the_generation(app, seeded):
    with database.connection_context():
        tables = set(database.get_tables())
        tracked = set(generation.tracked_tables(database.obj))
        assert tracked | generation.UNTRACKED >= {t for t in tables if not t.startswith("sqlite_")} - {
            t for t in tables if t.startswith(("study_search", "reference_search"))}
        assert {"study", "reference", "study_reference", "registration", "notice", "change",
                "search_word", "saved_search", "suggestion"} <= tracked
        assert not tracked & generation.UNTRACKED
        written = 0
        for table in sorted(tracked):
            column = database.get_columns(table)[0].name
            if not database.execute_sql(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
                continue  # (a no-op update of no row fires no SQLite trigger)
            before = generation.current()[1]
            database.execute_sql(f'UPDATE "{table}" SET "{column}" = "{column}"')
            assert generation.current()[1] > before, table
            written += 1
        assert written >= 8
        before = generation.current()[1]
        database.execute_sql("UPDATE api_token SET name = name")
        assert generation.current()[1] == before


def test_an_unmigrated_register_serves_without_a_cache(empty_db):
    response = empty_db.test_client().get("/vocabularies")
    assert response.status_code == 200 and "X-Cache" not in response.headers


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cache_off_builds_every_answer_and_still_sends_list_etags(database_url, seeded):
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "CACHE": "off"})
    client = app.test_client()
    first, second = client.get("/studies"), client.get("/studies")
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "off"
    assert first.headers["ETag"] == second.headers["ETag"]
    assert client.get("/studies", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_apps_share_entries_through_redis_and_see_each_others_writes(database_url, seeded, redis_url):  # noqa: F811
    settings = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url,
                "RATE_LIMIT_KEY_PREFIX": f"test-cache-{os.getpid()}-{time.monotonic_ns()}"}
    one, two = create_app(settings).test_client(), create_app(settings).test_client()
    auth = {"Authorization": f"Bearer {make_token()}"}
    assert one.get("/studies?page_size=2").headers["X-Cache"] == "miss"
    shared = two.get("/studies?page_size=2")
    assert shared.headers["X-Cache"] == "hit"  # the other app's entry, from Redis
    assert two.get("/studies?page_size=2").headers["X-Cache"] == "hit"
    assert two.patch("/studies/1", json={"title": "Changed by two"}, headers=auth).status_code == 200
    seen = one.get("/studies/1")
    assert seen.headers["X-Cache"] == "miss" and seen.get_json()["title"] == "Changed by two"
    assert one.get("/studies?page_size=2").headers["X-Cache"] == "miss"
    close_all(database.obj)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_unreachable_redis_leaves_reads_served(database_url, seeded):
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                      "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = app.test_client()
    answers = [client.get("/studies?page_size=2") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[-1].headers["X-Cache"] == "hit"  # this process's entries still serve


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_gunicorn_workers_never_answer_from_before_a_write(database_url, seeded):
    """Each worker keeps its own entries; the generation both read is in the database."""
    token = make_token()
    close_all(database.obj)
    with served(database_url, threads=1, workers=2, RATE_LIMITS="off") as port:
        for round_ in range(5):
            for _ in range(6):  # new connections: both workers answer, and keep an entry
                assert _get(port, "/notices")[0] == 200
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            conn.request("POST", "/notices", body=json.dumps({"message": f"notice {round_}"}),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            assert conn.getresponse().status == 201
            conn.close()
            for _ in range(6):
                status, body = _get(port, "/notices")
                messages = [n["message"] for n in json.loads(body)["items"]]
                assert status == 200 and f"notice {round_}" in messages, (round_, messages)
