"""Values bounded where they enter (issue 13): one explicit case per rule, on both databases. Every bad
value is a 4xx problem+json naming what is wrong, and changes nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket

import pytest

from service.db import database
from service.formats import fields, trialdata
from service.models import Study
from tests.conftest import assert_problem
from tests.helpers import count, create_study, study_body
from tests.test_serving import _gunicorn

# --- dates and instants: 1900-01-01 .. 2100-12-31 -------------------------------------------------


@pytest.mark.parametrize("value", ["1899-12-31", "2101-01-01", "9999-12-31", "0001-01-01", "１９９９-01-01"])
@pytest.mark.parametrize("field", ["first_published", "registered", "start_date", "primary_completion_date"])
def test_study_days_outside_the_range_are_refused(client, auth, field, value):
    assert_problem(client.post("/studies", json=study_body(**{field: value}), headers=auth), 422, field)
    assert count(client, "/studies") == 0


@pytest.mark.parametrize("value", ["1900-01-01", "2100-12-31"])
def test_the_range_ends_are_accepted(client, auth, value):
    study = create_study(client, auth, first_published=value, registered=value)
    assert study["first_published"] == value and study["registered"] == value


@pytest.mark.parametrize("param", ["first_published_from", "first_published_to", "registered_from",
                                   "registered_to", "start_from", "start_to", "updated_since"])
@pytest.mark.parametrize("value", ["2999-01-01", "1000-01-01", "9999-12-31T23:59:59-23:59"])
def test_study_filters_outside_the_range_are_refused(client, param, value):
    assert_problem(client.get("/studies", query_string={param: value}), 422, param)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                   "2100-12-31T23:59:59-01:00", "1900-01-01T00:30:00+01:00"])
@pytest.mark.parametrize("path", ["/studies", "/references", "/studies/merged"])
def test_instants_that_overflow_or_leave_the_range_in_utc_are_422(client, path, value):
    param = "since" if path.endswith("merged") else "updated_since"
    assert_problem(client.get(path, query_string={param: value}), 422, param)


def test_an_instant_with_an_offset_is_read_in_utc(client, auth):
    create_study(client, auth)
    # 2100-12-31T22:00-01:00 is 23:00 UTC, inside the range, after the study was made.
    assert count(client, "/studies?updated_since=2100-12-31T22:00:00-01:00") == 0
    assert count(client, "/studies?updated_since=1900-01-01T01:00:00%2B01:00") == 1


@pytest.mark.parametrize("body, field", [
    ({"message": "m", "ends": "9999-12-31T23:59:59-23:59"}, "ends"),
    ({"message": "m", "starts": "2101-01-01T00:00:00Z"}, "starts"),
])
def test_notice_instants_are_bounded(client, auth, body, field):
    assert_problem(client.post("/notices", json=body, headers=auth), 422, field)
    assert count(client, "/notices?status=all") == 0


@pytest.mark.parametrize("published", ["1899", "2101-05", "9999-12-31"])
def test_reference_published_is_bounded(client, auth, published):
    body = {"type": "journal_article", "title": "T", "published": published}
    assert_problem(client.post("/references", json=body, headers=auth), 422, "published")


@pytest.mark.parametrize("year", [1899, 2101, 9999])
def test_reference_year_is_bounded(client, auth, year):
    body = {"type": "journal_article", "title": "T", "year": year}
    assert_problem(client.post("/references", json=body, headers=auth), 422, "year")
    assert_problem(client.get("/references", query_string={"year_from": year}), 422, "year_from")


# --- /stats: months computed as dates, bounded by the data ------------------------------------------


def test_stats_months_ignore_days_stored_outside_the_range(client, auth):
    study = create_study(client, auth, first_published="2020-11-15")
    create_study(client, auth, "NCT04280705", first_published="2021-02-01")
    # A far date stored before the range was enforced (straight into the table).
    with database.connection_context():
        Study.update(registered="9999-12-31").where(Study.id == study["id"]).execute()
    stats = client.get("/stats").get_json()
    months = [m["month"] for m in stats["studies_first_published_by_month"]]
    assert months == ["2020-11", "2020-12", "2021-01", "2021-02"]
    assert stats["studies_registered_by_month"] == []


# --- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["１", "1_0", " 1", "+1 ", "0x10", "1e3", "9" * 30, "-" + "9" * 20, "٣"])
@pytest.mark.parametrize("param", ["page", "page_size"])
def test_query_integers_are_ascii_and_64_bit(client, param, value):
    assert_problem(client.get("/studies", query_string={param: value}), 422, param)


@pytest.mark.parametrize("value", ["1", True, 1.5, 2**63, -(2**63) - 1])
def test_body_integers_are_json_numbers_within_64_bits(client, auth, value):
    assert_problem(client.post("/studies", json=study_body(target_size=value), headers=auth), 422,
                   "target_size")


@pytest.mark.parametrize("path", ["/studies", "/references", "/notices"])
def test_json_with_a_huge_integer_is_400_naming_the_body(client, auth, path):
    data = '{"title": "T", "target_size": ' + "9" * 5000 + "}"
    response = client.post(path, data=data, headers={**auth, "Content-Type": "application/json"})
    body = assert_problem(response, 400, "body")
    assert "4300" in body["errors"]["body"][0]
    assert count(client, path) == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_400_naming_the_body(client, auth, constant):
    data = '{"title": "T", "target_size": ' + constant + "}"
    response = client.post("/studies", data=data, headers={**auth, "Content-Type": "application/json"})
    assert_problem(response, 400, "body")
    assert count(client, "/studies") == 0


def test_json_body_not_utf8_is_400(client, auth):
    response = client.post("/studies", data=b'{"title": "\xff"}',
                           headers={**auth, "Content-Type": "application/json"})
    assert_problem(response, 400, "body")


# --- strings: NUL, lone surrogates, blank identifiers ---------------------------------------------


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfff"])
def test_nul_and_lone_surrogates_in_body_strings_are_422(client, auth, value):
    data = json.dumps(study_body(title=value))  # ensure_ascii: written as \\u0000, \\ud800
    response = client.post("/studies", data=data, headers={**auth, "Content-Type": "application/json"})
    assert_problem(response, 422, "title")
    assert count(client, "/studies") == 0


@pytest.mark.parametrize("url", ["/registrations/%00", "/registrations/a%00b", "/studies/1%00",
                                 "/references/%01"])
def test_nul_in_the_path_is_404(client, url):
    assert_problem(client.get(url), 404)


@pytest.mark.parametrize("query", ["q=a%00b", "sort=%00", "cursor=%00", "format=json%00", "x%00=1"])
def test_nul_in_the_query_is_422(client, query):
    assert_problem(client.get("/studies?" + query), 422)
    assert_problem(client.get("/references?" + query), 422)


@pytest.mark.parametrize("identifier", [" ", "\t", "   ", "\u00a0", "\u3000 "])
def test_blank_registration_identifiers_are_refused(client, auth, identifier):
    body = study_body(identifier)
    body["registrations"][0]["registry"] = "ChiCTR"
    assert_problem(client.post("/studies", json=body, headers=auth), 422, "registrations.0.identifier")
    assert count(client, "/studies") == 0
    study = create_study(client, auth)
    response = client.patch(f"/studies/{study['id']}", json={"registrations": body["registrations"]},
                            headers=auth)
    assert_problem(response, 422, "registrations.0.identifier")


def test_a_blank_registration_is_no_study(client, auth):
    create_study(client, auth)
    assert_problem(client.get("/registrations/%20"), 404)
    assert_problem(client.get("/registrations/%20%20"), 404)


def test_a_blank_registration_id_on_a_reference_is_refused(client, auth):
    body = {"type": "trial_registration", "title": "T", "registration_id": "  "}
    assert_problem(client.post("/references", json=body, headers=auth), 422, "registration_id")


# --- booleans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "1", "yes", "no", "True", "FALSE", "on", "t", ""])
@pytest.mark.parametrize("path, param", [("/studies", "has_results"), ("/references", "has_results"),
                                         ("/references", "linked")])
def test_query_booleans_are_true_or_false_only(client, path, param, value):
    assert_problem(client.get(path, query_string={param: value}), 422, param)


@pytest.mark.parametrize("path, param", [("/studies", "has_results"), ("/references", "linked")])
def test_query_booleans_true_and_false_work(client, path, param):
    assert client.get(path, query_string={param: "true"}).status_code == 200
    assert client.get(path, query_string={param: "false"}).status_code == 200


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", None])
def test_body_booleans_are_json_true_or_false_only(client, auth, value):
    body = {"type": "journal_article", "title": "T", "has_results": value}
    assert_problem(client.post("/references", json=body, headers=auth), 422, "has_results")
    assert count(client, "/references") == 0


# --- ids in paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/studies/%EF%BC%91", "/studies/%D9%A1", "/studies/%E0%A5%A7",
                                  "/studies/%EF%BC%91/references", "/references/%EF%BC%91"])
def test_ids_in_paths_are_ascii_digits_only(client, auth, path):
    create_study(client, auth)
    assert client.get("/studies/1").status_code == 200
    assert_problem(client.get(path), 404)


# --- If-Match: weak ETags never match -------------------------------------------------------------


def test_if_match_with_a_weak_etag_is_412(client, auth):
    study = create_study(client, auth)
    tag = client.get(f"/studies/{study['id']}").headers["ETag"]
    assert not tag.startswith("W/")
    response = client.patch(f"/studies/{study['id']}", json={"title": "Changed"},
                            headers={**auth, "If-Match": "W/" + tag})
    assert_problem(response, 412)
    assert client.get(f"/studies/{study['id']}").get_json()["title"] == study["title"]
    response = client.delete(f"/studies/{study['id']}", headers={**auth, "If-Match": f"W/{tag}, W/\"x\""})
    assert_problem(response, 412)
    response = client.patch(f"/studies/{study['id']}", json={"title": "Changed"},
                            headers={**auth, "If-Match": f"W/{tag}, {tag}"})
    assert response.status_code == 200


def test_if_none_match_still_compares_weakly(client, auth):
    study = create_study(client, auth)
    tag = client.get(f"/studies/{study['id']}").headers["ETag"]
    assert client.get(f"/studies/{study['id']}", headers={"If-None-Match": "W/" + tag}).status_code == 304


# --- a body that cannot be read whole -------------------------------------------------------------


class _BrokenStream:
    """A wsgi.input that fails mid-body, as gunicorn's reader does on a malformed chunk."""

    def __init__(self, head: bytes, error: Exception):
        self.head, self.error = head, error

    def read(self, size=-1):
        if self.head:
            head, self.head = self.head, b""
            return head
        raise self.error

    readline = read


@pytest.mark.parametrize("error", [OSError("connection reset"), ValueError("Invalid chunk size")])
def test_a_body_broken_mid_way_is_400(client, auth, error):
    environ = {"wsgi.input": _BrokenStream(b'{"title": "a', error), "CONTENT_TYPE": "application/json",
               "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}
    response = client.post("/studies", headers=auth, environ_overrides=environ)
    assert_problem(response, 400, "body")
    assert count(client, "/studies") == 0


def _raw_exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


@pytest.mark.parametrize("body, half_close", [
    (b"5\r\n{\"q\":\r\nZZ\r\n\r\n", False),          # a chunk size that is not hexadecimal
    (b"5\r\n{\"q\":XXXXXXXX\r\n0\r\n\r\n", False),   # a chunk longer than it said, no CRLF after it
    (b"ff\r\n{\"q\": \"covid", True),                # the client stops sending mid-chunk
])
def test_a_malformed_chunked_body_through_gunicorn_is_400_problem(tmp_path, body, half_close):
    with _gunicorn(tmp_path) as port:
        head = (b"POST /studies/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        answer = _raw_exchange(port, head + body, half_close=half_close)
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"400", answer[:500]
        headers, _, content = rest.partition(b"\r\n\r\n")
        assert b"application/problem+json" in headers.lower()
        problem_body = json.loads(content)
        assert problem_body["status"] == 400 and "body" in problem_body["errors"]
        # and the worker still serves
        assert _raw_exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             ).startswith(b"HTTP/1.1 200")


# --- dates in imported files outside the range are no date ----------------------------------------


@pytest.mark.parametrize("helper, value", [
    (fields.date, "9999-12-31"), (fields.date, "31/12/1899"), (fields.date, "00010101"),
    (fields.partial_date, "9999/01"), (fields.partial_date, "1899"),
    (trialdata.day, "2101-01-01"), (trialdata.us_day, "4/15/9999 4:11:24 PM"),
    (trialdata.day_or_month, "April 9999"), (trialdata.day_or_month, "0000-01"),
    (trialdata.day_or_month, "1899-12"),
])
def test_file_dates_outside_the_range_are_no_date(helper, value):
    assert helper(value) is None


@pytest.mark.parametrize("helper, value, expected", [
    (fields.date, "2100-12-31", dt.date(2100, 12, 31)), (fields.partial_date, "1900", "1900"),
    (trialdata.us_day, "4/15/2020 4:11:24 PM", "2020-04-15"),
    (trialdata.day_or_month, "April 2020", ("2020-04-01", "month")),
])
def test_file_dates_inside_the_range_are_read(helper, value, expected):
    assert helper(value) == expected


@pytest.mark.parametrize("name", [" ", "\t\n"])
def test_a_blank_study_name_is_refused(client, auth, name):
    assert_problem(client.post("/studies", json=study_body(name=name), headers=auth), 422, "name")
    study = create_study(client, auth)
    assert_problem(client.patch(f"/studies/{study['id']}", json={"name": name}, headers=auth), 422, "name")
    assert client.get(f"/studies/{study['id']}").get_json()["name"] == study["name"]
