"""`Idempotency-Key` on POST writes: a retry with the same key (and token) answers the first answer with
`Idempotent-Replayed: true` and writes nothing; another request under the key is 422; a retry while the
first runs is 409; keys are per token and expire."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from service import create_app
from service.api import meta
from service.api.imports import CSV_EXAMPLE
from service.db import database
from service.models import IdempotencyKey, Notice, utcnow
from tests.conftest import assert_problem, make_token
from tests.helpers import count, reference_body, study_body

KEY = {"Idempotency-Key": "6f1c2a4e-retry-me"}
NOTICE = {"message": "Maintenance tonight", "starts": "2020-01-01T00:00:00Z"}


def _notices() -> int:
    with database.connection_context():
        return Notice.select().count()


def test_a_retry_answers_the_first_answer_and_writes_nothing(client, auth):
    first = client.post("/studies", json=study_body(), headers={**auth, **KEY})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = client.post("/studies", json=study_body(), headers={**auth, **KEY})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    for name in ("Location", "ETag", "Content-Type"):
        assert again.headers[name] == first.headers[name], name
    assert count(client, "/studies") == 1
    # Without the key the same request is a new one (here: the registration is taken).
    assert_problem(client.post("/studies", json=study_body(), headers=auth), 409, "registrations")
    reference = client.post("/references", json=reference_body(), headers={**auth, "Idempotency-Key": "r1"})
    replayed = client.post("/references", json=reference_body(), headers={**auth, "Idempotency-Key": "r1"})
    assert replayed.get_json() == reference.get_json() and replayed.headers["Idempotent-Replayed"] == "true"
    assert count(client, "/references") == 1


def test_the_same_key_with_another_request_is_refused(client, auth):
    assert client.post("/notices", json=NOTICE, headers={**auth, **KEY}).status_code == 201
    other_body = client.post("/notices", json={**NOTICE, "message": "Other"}, headers={**auth, **KEY})
    assert "Idempotency-Key" in assert_problem(other_body, 422, "Idempotency-Key")["detail"]
    other_path = client.post("/searches", json={"name": "x", "q": "covid"}, headers={**auth, **KEY})
    assert_problem(other_path, 422, "Idempotency-Key")
    other_query = client.post("/notices?x=1", json=NOTICE, headers={**auth, **KEY})
    assert_problem(other_query, 422, "Idempotency-Key")
    assert _notices() == 1 and count(client, "/searches") == 0


def test_keys_are_per_token(client, auth):
    other = {"Authorization": f"Bearer {make_token('notices')}"}
    assert client.post("/notices", json=NOTICE, headers={**auth, **KEY}).status_code == 201
    theirs = client.post("/notices", json=NOTICE, headers={**other, **KEY})
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert _notices() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_key_is_refused_and_changes_nothing(client, auth, key):
    response = client.post("/notices", json=NOTICE, headers={**auth, "Idempotency-Key": key})
    assert_problem(response, 422, "Idempotency-Key")
    assert _notices() == 0


def test_an_error_is_not_kept_so_a_retry_runs_again(client, auth):
    bad = client.post("/notices", json={"message": ""}, headers={**auth, **KEY})
    assert bad.status_code == 422 and "Idempotent-Replayed" not in bad.headers
    again = client.post("/notices", json={"message": ""}, headers={**auth, **KEY})
    assert again.status_code == 422 and "Idempotent-Replayed" not in again.headers
    assert client.post("/notices", json=NOTICE, headers={**auth, **KEY}).status_code == 201
    assert _notices() == 1
    with database.connection_context():
        assert IdempotencyKey.select().count() == 1


def test_keys_expire(database_url, app, auth):
    client = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                         "IDEMPOTENCY_KEY_HOURS": "2"}).test_client()
    assert client.post("/notices", json=NOTICE, headers={**auth, **KEY}).status_code == 201
    with database.connection_context():
        IdempotencyKey.update(created=utcnow() - dt.timedelta(hours=1)).execute()
    replayed = client.post("/notices", json=NOTICE, headers={**auth, **KEY})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    with database.connection_context():
        IdempotencyKey.update(created=utcnow() - dt.timedelta(hours=3)).execute()
    fresh = client.post("/notices", json=NOTICE, headers={**auth, **KEY})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert _notices() == 2
    with database.connection_context():  # the expired one has gone
        assert IdempotencyKey.select().count() == 1


def test_a_retry_while_the_first_runs_is_409(app, client, auth, monkeypatch):
    started, release = threading.Event(), threading.Event()
    create = meta.domain.create_notice

    def slow_create(data):
        started.set()
        assert release.wait(20)
        return create(data)

    monkeypatch.setattr(meta.domain, "create_notice", slow_create)
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault(
        "first", app.test_client().post("/notices", json=NOTICE, headers={**auth, **KEY})))
    first.start()
    try:
        assert started.wait(20)
        running = client.post("/notices", json=NOTICE, headers={**auth, **KEY})
        assert_problem(running, 409)
        assert running.headers["Retry-After"] == "1"
    finally:
        release.set()
        first.join(30)
    assert answers["first"].status_code == 201
    replay = client.post("/notices", json=NOTICE, headers={**auth, **KEY})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == answers["first"].get_json()
    assert _notices() == 1


def test_an_abandoned_first_request_frees_its_key_after_the_lease(client, auth):
    assert client.post("/notices", json=NOTICE, headers={**auth, **KEY}).status_code == 201
    with database.connection_context():  # as if its worker had been killed before it answered
        IdempotencyKey.update(status=None, created=utcnow() - dt.timedelta(hours=1)).execute()
        Notice.delete().execute()
    retried = client.post("/notices", json=NOTICE, headers={**auth, **KEY})
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert _notices() == 1


@pytest.fixture
def server(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join(10)


def test_a_retried_post_after_a_lost_answer_creates_no_duplicate(server, auth):
    import json

    body = json.dumps(study_body()).encode()
    request = (f"POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Authorization: {auth['Authorization']}\r\nIdempotency-Key: {KEY['Idempotency-Key']}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # the client goes away: its answer is lost
    deadline = time.monotonic() + 20
    while True:
        with database.connection_context():
            done = IdempotencyKey.select().where(IdempotencyKey.status.is_null(False)).count()
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert done == 1

    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    connection.request("POST", "/studies", body=body, headers={
        "Content-Type": "application/json", **auth, **KEY})
    retry = connection.getresponse()
    retried = json.loads(retry.read())
    assert retry.status == 201 and retry.getheader("Idempotent-Replayed") == "true"
    connection.request("GET", "/studies")
    listed = json.loads(connection.getresponse().read())
    assert listed["total"] == 1 and listed["items"][0]["id"] == retried["id"]
    connection.close()


def test_an_import_retried_with_its_key_imports_nothing_again(client, auth):
    csv = CSV_EXAMPLE.encode()
    headers = {**auth, **KEY, "Content-Type": "text/csv"}
    first = client.post("/imports", data=csv, headers=headers)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["created"] == 1
    again = client.post("/imports", data=csv, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(client, "/studies") == 1
    different = client.post("/imports?dry_run=true", data=csv, headers=headers)
    assert_problem(different, 422, "Idempotency-Key")
    same_length = csv.replace(b",3100,", b",3200,")
    assert len(same_length) == len(csv) and same_length != csv
    assert_problem(client.post("/imports", data=same_length, headers=headers), 422, "Idempotency-Key")
    upload = {"file": (io.BytesIO(csv), "trials.csv")}
    assert client.post("/imports", data=upload, headers={**auth, "Idempotency-Key": "multipart"}
                       ).status_code == 200
    replayed = client.post("/imports", data={"file": (io.BytesIO(csv), "trials.csv")},
                           headers={**auth, "Idempotency-Key": "multipart"})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    other_file = client.post("/imports", data={"file": (io.BytesIO(same_length), "trials.csv")},
                             headers={**auth, "Idempotency-Key": "multipart"})
    assert_problem(other_file, 422, "Idempotency-Key")
    assert count(client, "/studies") == 1


@pytest.mark.parametrize("parts", [
    [b'name=""', b'name="\r"'],                  # werkzeug keys these "" and None: unorderable
    [b'name="\r"', b'name="file"; filename="file"'],
    [b'filename="x"', b'filename="y"'],            # files without a name: keyed None
])
def test_an_upload_with_undecodable_part_names_is_a_4xx_under_a_key(client, auth, parts):
    boundary = "88477fe87515c6bc065ee83531e15810"
    body = b"".join(b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\nnull\r\n" % (boundary.encode(), part)
                    for part in parts) + b"--%s--\r\n" % boundary.encode()
    response = client.post("/imports", data=body, headers={
        **auth, "Idempotency-Key": "odd-parts", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert count(client, "/studies") == 0


def test_every_post_write_documents_the_header(client):
    spec = client.get("/openapi.json").get_json()
    posts = [(path, op) for path, item in spec["paths"].items() for method, op in item.items()
             if method == "post" and op.get("security")]
    assert len(posts) >= 8
    for path, op in posts:
        names = [p.get("name") for p in op.get("parameters", [])]
        assert "Idempotency-Key" in names, path
    assert "Idempotency-Key" in client.options(
        "/notices", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "Idempotency-Key"}
    ).headers.get("Access-Control-Allow-Headers", "")
