"""Walking lists: exact totals, no empty last page, Link headers, cursor stability, the depth cap."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from service.db import database
from service.models import Study
from tests.conftest import assert_problem


def _bulk_studies(n: int, start: int = 0) -> None:
    """Insert ``n`` studies directly (fast), with distinct names and a few equal dates."""
    day = dt.date(2020, 1, 1)
    rows = [{"name": f"S{start + i:06d}", "title": f"Study {start + i}", "study_type": "Unclear",
             "study_aim": "Unclear", "study_design": "Unclear", "intervention_assignment": "Unclear",
             "first_published": day + dt.timedelta(days=(start + i) % 7),
             "created": dt.datetime(2020, 1, 1), "updated": dt.datetime(2021, 1, 1 + (start + i) % 5)}
            for i in range(n)]
    with database.connection_context(), database.atomic():
        for chunk in range(0, n, 500):
            Study.insert_many(rows[chunk:chunk + 500]).execute()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


def _walk(client, url: str) -> tuple[list[int], list[dict]]:
    ids, pages = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages.append(body)
        assert body["items"], "never a link to an empty page"
        ids += [item["id"] for item in body["items"]]
        if body["next"]:
            assert f'<{body["next"]}>; rel="next"' in response.headers["Link"]
        url = body["next"] and _path(body["next"])
    return ids, pages


@pytest.mark.parametrize("sort", ["id", "-id", "first_published", "-updated", "name"])
def test_page_walk_covers_every_record_once(client, sort):
    _bulk_studies(45)
    ids, pages = _walk(client, f"/studies?page_size=10&sort={sort}")
    assert len(ids) == 45 and len(set(ids)) == 45
    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]
    assert all(p["total"] == 45 for p in pages)
    assert pages[-1]["next"] is None and pages[0]["prev"] is None
    assert pages[1]["prev"].endswith("page=1")


def test_exactly_full_last_page_has_no_next(client):
    _bulk_studies(20)
    body = client.get("/studies?page_size=10&page=2").get_json()
    assert len(body["items"]) == 10 and body["next"] is None


def test_page_past_the_end_is_empty_with_prev_to_last_page(client):
    _bulk_studies(15)
    body = client.get("/studies?page_size=10&page=7").get_json()
    assert body["items"] == [] and body["total"] == 15 and body["next"] is None
    assert body["prev"].endswith("page=2")


@pytest.mark.parametrize("sort", ["id", "-first_published", "updated", "-name"])
def test_cursor_walk_matches_page_walk(client, sort):
    _bulk_studies(37)
    by_page, _ = _walk(client, f"/studies?page_size=10&sort={sort}")
    by_cursor, pages = _walk(client, f"/studies?page_size=10&sort={sort}&cursor=*")
    assert by_cursor == by_page
    assert all(p["page"] is None and p["prev"] is None and p["total"] == 37 for p in pages)
    assert all("cursor=" in p["next"] for p in pages[:-1])


def test_cursor_is_stable_while_records_change(client, auth):
    _bulk_studies(30)
    first = client.get("/studies?page_size=10&sort=id&cursor=*").get_json()
    # A record already seen is deleted and new ones are added while the walk goes on.
    client.delete(f"/studies/{first['items'][0]['id']}", headers=auth)
    _bulk_studies(5, start=100)
    rest, _ = _walk(client, _path(first["next"]))
    assert rest == list(range(11, 36))


def test_depth_cap_switches_next_to_a_cursor(client):
    _bulk_studies(10_050)
    body = client.get("/studies?page_size=100&page=100").get_json()
    assert body["page"] == 100 and len(body["items"]) == 100
    assert "cursor=" in body["next"] and "page=" not in body["next"]
    rest, _ = _walk(client, _path(body["next"]))
    assert len(rest) == 50 and rest[0] == body["items"][-1]["id"] + 1
    assert_problem(client.get("/studies?page_size=100&page=101"), 422, "page")


def test_cursor_rejects_other_filters_or_sort(client):
    _bulk_studies(12)
    url = _path(client.get("/studies?page_size=10&cursor=*").get_json()["next"])
    assert_problem(client.get(url + "&study_type=Unclear"), 422, "cursor")
    assert_problem(client.get(url.replace("cursor=", "sort=-id&cursor=")), 422, "cursor")
    assert client.get(url).status_code == 200


def test_link_header_and_envelope(client):
    _bulk_studies(25)
    response = client.get("/studies?page_size=10&page=2&study_type=Unclear")
    body = response.get_json()
    assert set(body) == {"items", "total", "page", "page_size", "next", "prev"}
    links = response.headers["Link"]
    assert 'rel="next"' in links and 'rel="prev"' in links and 'rel="first"' in links
    assert "study_type=Unclear" in body["next"] and "page=3" in body["next"]
    assert body["next"].startswith("/studies?")  # relative: no PUBLIC_URL, and never from `Host`
