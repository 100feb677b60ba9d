"""Compression through HTTP (api/compression.py): gzip when asked, the same content once decoded, the cache
serving each client the coding it asked for, validators per representation, exports streamed compressed."""

from __future__ import annotations

import gzip
import http.client
import json

import pytest

from service import create_app
from service.db import close_all, database
from service.domain import exports
from tests.conftest import assert_problem
from tests.helpers import HOST, served

GZIP = {"Accept-Encoding": "gzip"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # another header choosing the same coding
HTML = {"Accept": "text/html"}
READS = [
    ("/studies/1", {}),
    ("/studies?page_size=20&facets=study_type", {}),
    ("/references?page_size=10", {}),
    ("/studies/1", HTML),
    ("/", HTML),
    ("/stats", {}),
    ("/openapi.json", {}),  # not a cached endpoint
]


def _decoded(response) -> bytes:
    assert response.headers.get("Content-Encoding") == "gzip", response.headers
    return gzip.decompress(response.get_data())


@pytest.mark.parametrize(("path", "headers"), READS)
def test_gzip_decodes_to_exactly_the_identity_answer(client, seeded, path, headers):
    identity = client.get(path, headers=headers)
    assert identity.status_code == 200 and "Content-Encoding" not in identity.headers
    coded = client.get(path, headers={**headers, **GZIP})
    assert coded.status_code == 200 and coded.content_type == identity.content_type
    assert _decoded(coded) == identity.get_data()
    assert int(coded.headers["Content-Length"]) == len(coded.get_data()) < len(identity.get_data())
    for response in (identity, coded):
        assert "Accept-Encoding" in response.headers["Vary"]


def test_the_cache_serves_each_client_the_coding_it_asked_for(client, seeded):
    path = "/studies?page_size=20"
    first = client.get(path, headers=GZIP)
    assert first.headers["X-Cache"] == "miss" and first.headers["Content-Encoding"] == "gzip"
    plain = client.get(path)
    assert plain.headers["X-Cache"] == "miss" and "Content-Encoding" not in plain.headers
    again = client.get(path, headers=BROWSER)  # another header string, the same coding: the same entry
    assert again.headers["X-Cache"] == "hit" and again.get_data() == first.get_data()
    assert again.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in again.headers["Vary"]
    plain_again = client.get(path, headers={"Accept-Encoding": "identity"})
    assert plain_again.headers["X-Cache"] == "hit" and "Content-Encoding" not in plain_again.headers
    assert plain_again.get_data() == plain.get_data() and "Accept-Encoding" in plain_again.headers["Vary"]
    refused = client.get(path, headers={"Accept-Encoding": "gzip;q=0"})
    assert refused.headers["X-Cache"] == "hit" and refused.get_data() == plain.get_data()
    assert "Content-Encoding" not in refused.headers
    assert _decoded(again) == plain.get_data()
    assert first.headers["ETag"] != plain.headers["ETag"]  # two representations, two validators


@pytest.mark.parametrize("path", ["/studies/1", "/studies?page_size=5"])
def test_if_none_match_answers_304_with_and_without_gzip(client, seeded, path):
    plain, coded = client.get(path), client.get(path, headers=GZIP)
    plain_tag, coded_tag = plain.headers["ETag"], coded.headers["ETag"]
    assert plain_tag != coded_tag
    for headers, tag in (({}, plain_tag), (GZIP, coded_tag), (BROWSER, coded_tag)):
        again = client.get(path, headers={**headers, "If-None-Match": tag})
        assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == tag
    # One representation's tag does not validate the other.
    assert client.get(path, headers={"If-None-Match": coded_tag}).status_code == 200
    other = client.get(path, headers={**GZIP, "If-None-Match": plain_tag})
    assert other.status_code == 200 and _decoded(other) == plain.get_data()


def test_an_uncached_gzip_answer_304s_on_its_own_tag(database_url, seeded):
    client = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "CACHE": "off"}).test_client()
    tag = client.get("/studies/1", headers=GZIP).headers["ETag"]
    assert tag.endswith(':gzip"')
    again = client.get("/studies/1", headers={**GZIP, "If-None-Match": tag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == tag
    close_all(database.obj)


def test_if_match_takes_the_etag_of_a_gzip_answer(client, auth, seeded):
    tag = client.get("/studies/1", headers=GZIP).headers["ETag"]
    assert tag.endswith(':gzip"')
    changed = client.patch("/studies/1", json={"title": "Changed"}, headers={**auth, **GZIP, "If-Match": tag})
    assert changed.status_code == 200
    assert client.patch("/studies/1", json={"title": "Again"},  # the record moved on: 412 as before
                        headers={**auth, "If-Match": tag}).status_code == 412
    plain_tag = client.get("/studies/2").headers["ETag"]
    assert client.delete("/studies/2", headers={**auth, "If-Match": plain_tag}).status_code == 204
    coded_tag = client.get("/studies/3", headers=GZIP).headers["ETag"]
    assert client.delete("/studies/3", headers={**auth, "If-Match": coded_tag}).status_code == 204


@pytest.mark.parametrize("path", ["/studies?format=ndjson", "/references?format=ndjson",
                                  "/references?format=csv", "/references?format=ris",
                                  "/studies?format=fhir", "/references/export?format=ndjson"])
def test_a_gzip_export_decodes_to_exactly_the_identity_export(client, seeded, monkeypatch, path):
    monkeypatch.setattr(exports, "BATCH_SIZE", 7)  # several batches, several chunks
    identity = client.get(path)
    plain = identity.get_data()  # read to its end before the next request (one connection per thread)
    coded = client.get(path, headers=GZIP)
    assert coded.status_code == 200 and coded.is_streamed and "Content-Length" not in coded.headers
    assert _decoded(coded) == plain and len(coded.get_data()) < len(plain)
    for name in ("Content-Type", "Content-Disposition", "X-Total-Count"):
        assert coded.headers[name] == identity.headers[name]
    assert "Accept-Encoding" in coded.headers["Vary"]
    assert database.is_closed()


def test_an_abandoned_gzip_export_gives_its_connection_back(client, auth, seeded, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 5)
    response = client.get("/references?format=ndjson", headers=GZIP, buffered=False)
    chunks = iter(response.response)
    while not next(chunks):
        pass  # gzip keeps a batch until it has enough to send
    assert not database.is_closed()  # the stream holds it while the client reads
    response.close()  # the client goes away half-way
    assert database.is_closed()
    from tests.helpers import create_reference
    create_reference(client, auth, title="Not blocked by the abandoned export")


def test_head_and_empty_exports_with_gzip(client, seeded):
    head = client.head("/references?format=ndjson", headers=GZIP)
    assert head.status_code == 200 and head.get_data() == b"" and head.headers["Content-Encoding"] == "gzip"
    assert int(head.headers["X-Total-Count"]) > 0 and "Content-Length" not in head.headers
    head.close()  # as the server does once the headers are out (with or without gzip)
    assert database.is_closed()
    empty = client.get("/references?format=ndjson&q=nomatchwhatsoever", headers=GZIP)
    assert empty.headers["X-Total-Count"] == "0" and _decoded(empty) == b""
    record = client.head("/studies/1", headers=GZIP)
    assert record.status_code == 200 and record.get_data() == b""
    assert record.headers["Content-Encoding"] == "gzip"


def test_problems_keep_their_media_type_and_go_as_they_are(database_url, seeded):
    """flask-compress compresses 2xx answers only: an error, however long, is sent as it is."""
    client = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                         "COMPRESS_MIN_SIZE": "0"}).test_client()
    for path in ("/studies?page_size=0&sort=nonsense", "/studies/999999"):
        plain, asked = client.get(path), client.get(path, headers=GZIP)
        assert_problem(asked, plain.status_code)
        assert "Content-Encoding" not in asked.headers and asked.get_data() == plain.get_data()
        assert "Accept-Encoding" in asked.headers["Vary"]
    close_all(database.obj)


def test_small_answers_are_sent_as_they_are(client, seeded):
    small = client.get("/health", headers=GZIP)
    assert small.status_code == 200 and "Content-Encoding" not in small.headers


def test_compress_off_sends_identity(database_url, seeded):
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "COMPRESS": "off"})
    client = app.test_client()
    for path in ("/studies?page_size=20", "/studies/1", "/studies?format=ndjson", "/openapi.json"):
        for _ in range(2):  # a miss, then a hit
            response = client.get(path, headers=GZIP)
            response.get_data()  # an export read to its end before the next request
            assert response.status_code == 200 and "Content-Encoding" not in response.headers, path
            assert "Accept-Encoding" not in response.headers.get("Vary", "")
    close_all(database.obj)


def _get(port: int, path: str, headers: dict) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_gunicorn_sends_gzip_exports_and_answers(database_url, seeded):
    close_all(database.obj)
    with served(database_url, threads=2, RATE_LIMITS="off") as port:
        for path in ("/references?format=ndjson", "/studies?page_size=50"):
            identity = _get(port, path, {})
            coded = _get(port, path, GZIP)
            assert coded.status == identity.status == 200
            assert coded.getheader("Content-Encoding") == "gzip"
            assert identity.getheader("Content-Encoding") is None
            assert gzip.decompress(coded.body) == identity.body
            if "format=" in path:
                assert coded.getheader("Content-Length") is None
                assert coded.getheader("Transfer-Encoding") == "chunked"
                assert int(coded.getheader("X-Total-Count")) == len(identity.body.splitlines())
            else:
                assert json.loads(gzip.decompress(coded.body)) == json.loads(identity.body)
