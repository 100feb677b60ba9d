"""The evidence map page, /map: its counts agree with GET /studies for every cell and month, it follows
the search and filters the way the API reads them, and a bad query is a 422 page in words."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest

from service.web.evidence_map import month_chart, nice_ticks, shade

from .conftest import assert_problem
from .helpers import count, create_study

CELL = re.compile(r'<a href="(/\?[^"]+)"[^>]*>([\d,]+)</a>')


def _cells(html: str) -> list[tuple[dict, int]]:
    """Every linked matrix cell: its link's query (as a dict of lists) and the number written in it."""
    found = []
    for href, number in CELL.findall(html):
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(urlsplit(unescape(href)).query):
            query.setdefault(key, []).append(value)
        found.append((query, int(number.replace(",", ""))))
    return found


def _api_total(client, query: dict) -> int:
    pairs = [(k, v) for k, values in query.items() for v in values] + [("page_size", "1")]
    response = client.get("/studies", query_string=pairs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["total"]


def _bars(html: str) -> list[int]:
    """The total of each month's bar, read from its accessible name."""
    names = re.findall(r'class="bar" role="img" aria-label="[^:"]+: ([\d,]+) stud', html)
    return [int(n.replace(",", "")) for n in names]


@pytest.mark.parametrize("q", [None, "covid*", "exosomes"])
def test_every_cell_counts_what_the_list_counts(client, seeded, q):
    response = client.get("/map", query_string={"q": q} if q else {})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    cells = _cells(html)
    assert cells, "no linked cell"
    for query, number in cells:
        assert set(query) == ({"study_aim", "study_design", "q"} if q else {"study_aim", "study_design"})
        if q:
            assert query["q"] == [q]
        assert _api_total(client, query) == number, query
    # The linked cells together are every matching study (each has one aim and one design).
    expected = count(client, "/studies?page_size=1" + (f"&q={q}" if q else ""))
    assert sum(number for _, number in cells) == expected
    assert f"{expected:,} {'study' if expected == 1 else 'studies'}" in html


def test_cells_keep_the_current_filters(client, seeded):
    response = client.get("/map?study_type=Interventional&has_results=false")
    assert response.status_code == 200
    cells = _cells(response.get_data(as_text=True))
    assert cells
    for query, number in cells:
        assert query["study_type"] == ["Interventional"] and query["has_results"] == ["false"]
        assert _api_total(client, query) == number
    # A filter on aim is replaced by each cell's own aim, not doubled.
    response = client.get("/map?study_aim=Prevention&study_aim=Treatment+and+Management")
    for query, number in _cells(response.get_data(as_text=True)):
        assert query["study_aim"] in (["Prevention"], ["Treatment and Management"])
        assert _api_total(client, query) == number


def test_month_bars_sum_to_the_studies_with_a_registration_date(client, auth):
    days = ["2020-01-31", "2020-02-01", "2020-02-29", "2020-05-15", "2021-01-03"]
    for index, day in enumerate(days):
        create_study(client, auth, f"NCT0428{index:04d}", registered=day,
                     study_type="Observational" if index % 2 else "Interventional")
    create_study(client, auth, "NCT04289999")  # no registration date
    html = client.get("/map").get_data(as_text=True)
    bars = _bars(html)
    # Every month from 2020 Jan to 2021 Jan, as dates (13 months, zeros included).
    assert len(bars) == 13
    assert sum(bars) == len(days) == count(client, "/studies?page_size=1&registered_from=1900-01-01")
    assert bars[:2] == [1, 2] and bars[4] == 1 and bars[-1] == 1
    assert "2020 Feb: 2 studies (Interventional 1, Observational 1)" in html
    assert "2021 Jan: 1 study (Interventional 1)" in html
    # Filtered: only the observational studies' months.
    html = client.get("/map?study_type=Observational").get_data(as_text=True)
    assert _bars(html) == [1, 0, 0, 1] and "2020 Feb" in html and "2020 May" in html


@pytest.mark.parametrize("query, named", [
    ("q=exosom*+AND", "q"),
    ("q=%28covid", "q"),
    ("study_type=Nonsense", "study_type"),
    ("registered_from=2020-13-01", "registered_from"),
    ("colour=red", "colour"),
])
def test_a_bad_query_is_a_422_page_in_words(client, seeded, query, named):
    response = client.get(f"/map?{query}")
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "The query could not be read" in html and f"<li>{named}: " in html
    assert "Traceback" not in html and 'class="matrix"' not in html


def test_text_is_escaped(client, seeded):
    evil = '<script>alert(1)</script>"'
    response = client.get("/map", query_string={"q": evil})
    html = response.get_data(as_text=True)
    assert "<script>alert" not in html
    assert response.status_code in (200, 422)
    response = client.get("/map", query_string={"q": 'covid "<b>x</b>"', "study_type": "Interventional"})
    assert "<b>x</b>" not in response.get_data(as_text=True)


def test_server_timing_and_no_outside_reference(client, seeded):
    response = client.get("/map")
    assert re.fullmatch(r"app;dur=\d+(\.\d+)?", response.headers["Server-Timing"])
    html = response.get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_an_empty_register_maps_to_nothing_without_error(client):
    response = client.get("/map")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "0 studies" in html and "None of these studies has a registration date" in html
    assert _cells(html) == []


def test_the_drawing_is_pure_and_escaped():
    by_month = {"types": ["Interventional", "<x>"], "dated": 3, "months": [
        {"month": "2020-12", "counts": {"Interventional": 2, "<x>": 1}},
        {"month": "2021-01", "counts": {"Interventional": 0, "<x>": 0}}]}
    svg = str(month_chart(by_month))
    assert "<x>" not in svg and "&lt;x&gt;" in svg
    assert svg.count('class="bar"') == 2 and svg.count("<rect") == 2 + 2  # 2 legend keys, 2 segments
    assert "2020 Dec: 3 studies (Interventional 2, &lt;x&gt; 1)" in svg and "2021 Jan: 0 studies" in svg
    assert month_chart({"types": [], "months": [], "dated": 0}) == ""
    assert nice_ticks(7) == [0, 2, 4, 6, 8] and nice_ticks(10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1234)[-1] >= 1234
    assert shade(0, 10)[0] == "#ffffff" and shade(10, 10) == ("#08306b", "#ffffff")
    assert shade(1, 10) != shade(0, 10)


def test_registered_dates_are_dates(client, auth):
    """Months come from dates, not text: a study registered on the last day of a month counts there."""
    create_study(client, auth, "NCT04280001", registered=dt.date(2020, 3, 31).isoformat())
    create_study(client, auth, "NCT04280002", registered="2020-04-01")
    html = client.get("/map").get_data(as_text=True)
    assert "2020 Mar: 1 study" in html and "2020 Apr: 1 study" in html and _bars(html) == [1, 1]


def test_one_grouped_query_per_chart_whatever_the_size(client, auth):
    from playhouse.test_utils import count_queries

    def queries(path: str) -> int:
        with count_queries() as counter:
            assert client.get(path).status_code == 200
        return counter.count

    create_study(client, auth, "NCT04280001", registered="2020-03-31")
    few = queries("/map"), queries("/map?q=covid*&study_type=Interventional")
    for index in range(2, 12):
        create_study(client, auth, f"NCT042800{index:02d}", registered=f"2020-{index:02d}-01",
                     study_aim="Prevention")
    assert (queries("/map"), queries("/map?q=covid*&study_type=Interventional")) == few
    assert few[0] == 3  # the active notices, then one GROUP BY per chart


@pytest.mark.parametrize("query", ["", "q=covid*", "study_type=Interventional&has_results=false"])
def test_the_json_counts_are_the_pages(client, seeded, query):
    """`/stats/map` (the page's "these counts as JSON" link) answers the numbers the page draws."""
    html = client.get(f"/map?{query}").get_data(as_text=True)
    link = re.search(r'<a href="(/stats/map[^"]*)">these counts as JSON</a>', html).group(1)
    assert urlsplit(unescape(link)).query == query.replace("*", "%2A")
    response = client.get(unescape(link))
    assert response.status_code == 200
    body = response.get_json()
    cells = {(q["study_aim"][0], q["study_design"][0]): n for q, n in _cells(html)}
    assert {(c["study_aim"], c["study_design"]): c["count"]
            for c in body["studies_by_aim_and_design"] if c["count"]} == cells
    assert sum(cells.values()) == body["studies"] == _api_total(client, dict(parse_qsl_lists(query)))
    months = body["studies_registered_by_month_and_type"]
    assert [m["count"] for m in months] == _bars(html)
    assert sum(m["count"] for m in months) == body["registered"]
    assert all(m["count"] == sum(t["count"] for t in m["study_type"]) for m in months)


def parse_qsl_lists(query: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in parse_qsl(query):
        found.setdefault(key, []).append(value)
    return found


def test_the_json_counts_refuse_a_bad_query(client):
    assert_problem(client.get("/stats/map?q=%28covid"), 422, "q")
    assert_problem(client.get("/stats/map?page=2"), 422, "page")
