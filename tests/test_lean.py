"""The lean path for machines (issue 16): `page_size` up to 1,000 on every list."""

from __future__ import annotations

import datetime as dt

import pytest

from service.db import database
from service.models import Study
from tests.conftest import assert_problem

LISTS = ["/studies", "/references", "/notices?status=all", "/searches", "/studies/duplicates",
         "/suggestions"]


def _add_studies(n: int) -> None:
    """``n`` plain studies, written straight to the table (a thousand API writes would be slow)."""
    with database.connection_context():
        Study.insert_many([{"name": f"S{i:05d}", "title": f"Study {i}", "study_type": "Interventional",
                            "study_aim": "Unclear", "study_design": "Unclear",
                            "intervention_assignment": "Unclear", "first_published": dt.date(2020, 1, 1)}
                           for i in range(n)]).execute()


def test_a_page_of_1000(client):
    _add_studies(1001)
    body = client.get("/studies?page_size=1000").get_json()
    assert (len(body["items"]), body["total"], body["page_size"]) == (1000, 1001, 1000)
    last = client.get(body["next"]).get_json()
    assert [s["name"] for s in last["items"]] == ["S01000"] and last["next"] is None
    posted = client.post("/studies/search", json={"page_size": 1000}).get_json()
    assert posted["items"] == body["items"] and "page=2" in posted["next"]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_takes_1000_and_refuses_1001(client, path):
    join = "&" if "?" in path else "?"
    response = client.get(f"{path}{join}page_size=1000")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["page_size"] == 1000
    body = assert_problem(client.get(f"{path}{join}page_size=1001"), 422, "page_size")
    assert "1000" in body["detail"]


@pytest.mark.parametrize("path", ["/studies/search", "/references/search"])
def test_search_bodies_take_1000_and_refuse_1001(client, path):
    assert client.post(path, json={"page_size": 1000}).get_json()["page_size"] == 1000
    assert_problem(client.post(path, json={"page_size": 1001}), 422, "page_size")


def test_depth_is_still_10000_records(client):
    assert client.get("/studies?page_size=1000&page=10").status_code == 200
    body = assert_problem(client.get("/studies?page_size=1000&page=11"), 422, "page")
    assert "cursor" in body["detail"]
    assert_problem(client.post("/studies/search", json={"page_size": 1000, "page": 11}), 422, "page")
