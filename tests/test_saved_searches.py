"""Saved searches for living reviews: saved once, run weekly for what is new, every run on record."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from service.db import database
from service.models import SavedSearch
from tests.conftest import assert_problem, make_token
from tests.helpers import create_reference, create_study

STRATEGY = '"convalescent plasma" OR "hyperimmune globulin"'


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


@pytest.fixture
def register(client, auth):
    """Three studies: two randomised plasma trials (one found only through its report) and an observational
    plasma study."""
    first = create_study(client, auth, "NCT04280705", title="Convalescent plasma for severe COVID-19")
    second = create_study(client, auth, "NCT04315948", title="Antibodies for COVID-19 pneumonia")
    create_reference(client, auth, title="Hyperimmune globulin in hospitalised adults",
                     abstract="ClinicalTrials.gov number, NCT04315948.", study_ids=[])
    observational = create_study(client, auth, "ChiCTR2000030261", title="Convalescent plasma donors",
                                 study_type="Observational", study_design="Cohort")
    return {"first": first["id"], "second": second["id"], "observational": observational["id"]}


def _save(client, auth, **overrides) -> dict:
    body = {"name": "Plasma, weekly", "q": STRATEGY, "filters": {"study_type": ["interventional"]},
            **overrides}
    response = client.post("/searches", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == f"/searches/{response.get_json()['id']}"
    return response.get_json()


def _ids(answer: dict) -> list[int]:
    return sorted(item["id"] for item in answer["items"])


def test_saved_search_lifecycle(client, auth, register):
    saved = _save(client, auth)
    assert saved["q"] == STRATEGY
    assert saved["query"] == client.get("/studies", query_string={"q": STRATEGY}).get_json()["query"]
    assert saved["filters"] == {"study_type": ["Interventional"]}  # stored as the register spells it
    assert (saved["runs"], saved["last_run"], saved["run_count"]) == ([], None, 0)
    assert _path(saved["results"]) == f"/searches/{saved['id']}/results"

    read = client.get(f"/searches/{saved['id']}")
    assert read.get_json() == saved and read.headers["ETag"]
    assert client.get(f"/searches/{saved['id']}", headers={"If-None-Match": read.headers["ETag"]}
                      ).status_code == 304
    other = _save(client, auth, name="Remdesivir", q="remdesivir", filters={})
    listed = client.get("/searches?page_size=1").get_json()
    assert listed["total"] == 2 and [s["id"] for s in listed["items"]] == [saved["id"]]
    assert "runs" not in listed["items"][0] and listed["items"][0]["run_count"] == 0
    assert client.get(_path(listed["next"])).get_json()["items"][0]["id"] == other["id"]

    stale = {**auth, "If-Match": '"0000"'}
    assert_problem(client.patch(f"/searches/{saved['id']}", json={"name": "x"}, headers=stale), 412)
    patched = client.patch(f"/searches/{saved['id']}", json={"name": "Plasma (update)",
                                                             "filters": {"has_results": False}},
                           headers={**auth, "If-Match": read.headers["ETag"]})
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert (body["name"], body["q"], body["filters"]) == ("Plasma (update)", STRATEGY, {"has_results": False})
    assert body["updated"] > saved["updated"]

    assert client.delete(f"/searches/{saved['id']}", headers=auth).status_code == 204
    for path in (f"/searches/{saved['id']}", f"/searches/{saved['id']}/results"):
        assert_problem(client.get(path), 404)
    assert_problem(client.delete(f"/searches/{saved['id']}", headers=auth), 404)
    assert client.get("/searches").get_json()["total"] == 1


def test_writes_need_a_token_with_the_searches_scope(client, auth, register):
    saved = _save(client, auth)
    body = {"name": "n", "q": "plasma"}
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert_problem(client.post("/searches", json=body, headers=headers), 401)
        assert_problem(client.patch(f"/searches/{saved['id']}", json=body, headers=headers), 401)
        assert_problem(client.delete(f"/searches/{saved['id']}", headers=headers), 401)
    curator = {"Authorization": f"Bearer {make_token('studies', 'references')}"}
    assert_problem(client.post("/searches", json=body, headers=curator), 403)
    reviewer = {"Authorization": f"Bearer {make_token('searches')}"}
    assert client.post("/searches", json=body, headers=reviewer).status_code == 201
    # Reading is public, results included.
    assert client.get(f"/searches/{saved['id']}/results").status_code == 200


@pytest.mark.parametrize("body, member", [
    ({"q": "plasma"}, "name"),
    ({"name": "n"}, "q"),
    ({"name": "n", "q": "   "}, "q"),
    ({"name": "n", "q": "plasma\x00"}, "q"),
    ({"name": "n", "q": 5}, "q"),
    ({"name": "", "q": "plasma"}, "name"),
    ({"name": "n", "q": "plasma", "filters": {"colour": ["red"]}}, "filters.colour"),
    ({"name": "n", "q": "plasma", "filters": {"study_type": "Interventional"}}, "filters.study_type"),
    ({"name": "n", "q": "plasma", "filters": {"study_type": ["Trial"]}}, "filters.study_type.0"),
    ({"name": "n", "q": "plasma", "filters": {"has_results": "yes"}}, "filters.has_results"),
    ({"name": "n", "q": "plasma", "filters": {"page": 2}}, "filters.page"),
    ({"name": "n", "q": "plasma", "filters": ["study_type"]}, "filters"),
    ({"name": "n", "q": "plasma", "sort": "name"}, "sort"),
])
def test_a_bad_strategy_or_filter_is_422_and_nothing_is_stored(client, auth, body, member):
    assert_problem(client.post("/searches", json=body, headers=auth), 422, member)
    assert client.get("/searches").get_json()["total"] == 0


def test_a_strategy_is_saved_when_the_search_takes_it(client, auth):
    long = ("x" * 99 + " ") * 200
    candidates = ["plasma", " ".join(f"word{n}" for n in range(200)), long, long + "x", "x" * 101,
                  '"unbalanced OR (plasma', "-only -exclusions", "OR OR OR", "plasma\n\tOR\r\nglobulin"]
    for q in candidates:
        searched = client.post("/studies/search", json={"q": q})
        saved = client.post("/searches", json={"name": "n", "q": q}, headers=auth)
        if searched.status_code == 200:
            assert saved.status_code == 201, (q[:40], saved.get_json())
            assert saved.get_json()["query"] == searched.get_json()["query"]
        else:
            body = assert_problem(saved, 422, "q")
            assert body["errors"]["q"] == searched.get_json()["errors"]["q"]
    assert client.post("/studies/search", json={"q": long}).status_code == 200
    assert client.post("/studies/search", json={"q": long + "x"}).status_code == 422


def test_patch_validates_as_saving_does(client, auth):
    saved = _save(client, auth)
    assert_problem(client.patch(f"/searches/{saved['id']}", json={}, headers=auth), 422, "body")
    assert_problem(client.patch(f"/searches/{saved['id']}", json={"q": "a\x01"}, headers=auth), 422, "q")
    assert_problem(client.patch(f"/searches/{saved['id']}", json={"filters": {"registry": ["Nowhere"]}},
                                headers=auth), 422, "filters.registry.0")
    assert client.get(f"/searches/{saved['id']}").get_json()["q"] == STRATEGY


def test_results_answer_as_the_post_search_and_every_first_page_is_a_run(client, auth, register):
    saved = _save(client, auth, filters={"study_type": ["Interventional"]})
    results = client.get(f"/searches/{saved['id']}/results?facets=study_aim")
    assert results.status_code == 200, results.get_json()
    answer = results.get_json()
    posted = client.post("/studies/search", json={"q": STRATEGY, "study_type": ["Interventional"],
                                                  "facets": ["study_aim"]}).get_json()
    for key in ("items", "total", "facets", "query"):
        assert answer[key] == posted[key], key
    assert _ids(answer) == [register["first"], register["second"]]  # the second through its report
    assert answer["since"] is None
    assert answer["run"]["total"] == 2 and answer["run"]["since"] is None
    runs = client.get(f"/searches/{saved['id']}").get_json()["runs"]
    assert [(r["total"], r["since"]) for r in runs] == [(2, None)]


def test_since_last_run_answers_only_what_is_new(client, auth, register):
    saved = _save(client, auth)
    results = f"/searches/{saved['id']}/results"
    first = client.get(results + "?since=last_run").get_json()
    assert first["since"] is None and first["total"] == 2  # no run before: every match, and it says so
    assert client.get(results + "?since=last_run").get_json()["total"] == 0  # nothing new since

    new = create_study(client, auth, "ISRCTN86534580", title="Convalescent plasma in outpatients")
    create_study(client, auth, "ISRCTN12345678", title="Convalescent plasma in the observational kind",
                 study_type="Observational", study_design="Cohort")  # new, but not the filters' kind
    create_study(client, auth, "NCT04381936", title="Dexamethasone")  # new, but not the strategy's
    answer = client.get(results + "?since=last_run").get_json()
    assert _ids(answer) == [new["id"]]
    assert answer["since"] == client.get(f"/searches/{saved['id']}").get_json()["runs"][1]["run_at"]

    # A study that gains a report of it (here found by its registration number) has changed: it is new.
    create_reference(client, auth, type="preprint", title="Plasma for severe COVID-19: a preprint",
                     abstract="TRIAL REGISTRATION: ClinicalTrials.gov NCT04280705.")
    assert _ids(client.get(results + "?since=last_run").get_json()) == [register["first"]]
    # So is one whose report changes.
    reference = client.get(f"/studies/{register['second']}").get_json()["references"][0]
    assert client.patch(f"/references/{reference['id']}", json={"has_results": True},
                        headers=auth).status_code == 200
    assert _ids(client.get(results + "?since=last_run").get_json()) == [register["second"]]
    assert client.get(results + "?since=last_run").get_json()["total"] == 0

    runs = client.get(f"/searches/{saved['id']}").get_json()["runs"]
    assert [r["total"] for r in runs] == [0, 1, 1, 1, 0, 2]  # newest first
    assert runs[-1]["since"] is None
    assert all(newer["since"] == older["run_at"] for newer, older in zip(runs, runs[1:], strict=False))
    assert client.get(results).get_json()["total"] == 3  # without since: every match


def test_since_takes_a_day_or_an_instant(client, auth, register):
    saved = _save(client, auth)
    results = f"/searches/{saved['id']}/results"
    assert client.get(results + "?since=2000-01-01").get_json()["total"] == 2
    answer = client.get(results + "?since=2000-01-01T00:00:00%2B02:00").get_json()
    assert answer["since"] == "1999-12-31T22:00:00Z" and answer["total"] == 2
    assert client.get(results + "?since=2100-12-31").get_json()["total"] == 0
    for bad in ("yesterday", "last", "2026-02-30", "2026-11-01T25:00:00Z", ""):
        assert_problem(client.get(results, query_string={"since": bad}), 422, "since")
    assert_problem(client.get(results + "?since=last_run&colour=red"), 422, "colour")
    assert_problem(client.get(results + "?format=csv"), 422, "format")


def test_results_pages_keep_the_instant_and_record_one_run(client, auth):
    for n in range(7):
        create_study(client, auth, f"NCT0{4280700 + n}", title=f"Convalescent plasma trial {n}")
    saved = _save(client, auth)
    results = f"/searches/{saved['id']}/results"
    client.get(results)  # a first run, before which every study was made
    every = client.get(results + "?since=2000-01-01&page_size=3&sort=id").get_json()
    assert every["total"] == 7
    for start in ("", "&cursor=*"):
        seen, url = [], results + "?since=last_run&page_size=3&sort=id" + start
        runs_before = client.get(f"/searches/{saved['id']}").get_json()["run_count"]
        # Nothing is new since the last run: the empty answer; then the same since as an instant.
        assert client.get(url).get_json()["total"] == 0
        url = results + "?since=2000-01-01&page_size=3&sort=id" + start
        while url:
            page = client.get(url).get_json()
            seen += [item["id"] for item in page["items"]]
            url = page["next"] and _path(page["next"])
            if url:
                assert parse_qs(urlsplit(url).query)["since"] == ["2000-01-01T00:00:00Z"]
        assert len(seen) == len(set(seen)) == 7
        assert client.get(f"/searches/{saved['id']}").get_json()["run_count"] == runs_before + 2
    # last_run in a first page becomes, in its links, the instant it stood for.
    create_study(client, auth, "NCT04280799", title="Convalescent plasma trial 8")
    create_study(client, auth, "NCT04280798", title="Convalescent plasma trial 9")
    page = client.get(results + "?since=last_run&page_size=1&sort=id").get_json()
    assert page["total"] == 2 and page["since"] is not None
    assert parse_qs(urlsplit(page["next"]).query)["since"] == [page["since"]]
    second = client.get(_path(page["next"])).get_json()
    assert second["total"] == 2 and second["run"] is None and second["since"] == page["since"]


def test_a_cursor_is_for_its_own_since(client, auth):
    for n in range(3):
        create_study(client, auth, f"NCT0{4280700 + n}", title=f"Convalescent plasma trial {n}")
    saved = _save(client, auth)
    results = f"/searches/{saved['id']}/results"
    page = client.get(results + "?page_size=1&cursor=*&since=2000-01-01").get_json()
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    assert client.get(results + f"?page_size=1&since=2000-01-01&cursor={cursor}").status_code == 200
    assert_problem(client.get(results + f"?page_size=1&since=2001-01-01&cursor={cursor}"), 422, "cursor")
    assert_problem(client.get(results + f"?page_size=1&cursor={cursor}"), 422, "cursor")


def test_unknown_ids_are_404(client, auth):
    for path in ("/searches/1", "/searches/1/results", "/searches/2147483647", "/searches/0/results"):
        assert_problem(client.get(path), 404)
    assert_problem(client.patch("/searches/7", json={"name": "n"}, headers=auth), 404)
    assert_problem(client.get("/searches/99999999999"), 404)


def test_a_saved_search_that_no_longer_validates_says_so(app, client, auth):
    saved = _save(client, auth)
    with database.connection_context():  # as if a vocabulary or the grammar had changed since
        SavedSearch.update(q="plasma\x07", filters='{"study_type": ["Randomised trial"]}').execute()
    assert client.get(f"/searches/{saved['id']}").get_json()["query"] is None
    problem = assert_problem(client.get(f"/searches/{saved['id']}/results"), 409, "q", "study_type.0")
    assert f"PATCH /searches/{saved['id']}" in problem["detail"]
    fixed = client.patch(f"/searches/{saved['id']}", json={"q": "plasma", "filters": {}}, headers=auth)
    assert fixed.status_code == 200 and fixed.get_json()["query"] == "plasma"
    assert client.get(f"/searches/{saved['id']}/results").status_code == 200


def test_lists_of_saved_searches_do_not_grow_with_rows(client, auth):
    from playhouse.test_utils import count_queries

    def queries(path: str) -> int:
        with count_queries() as counter:
            assert client.get(path).status_code == 200
        return counter.count

    first = _save(client, auth)
    client.get(f"/searches/{first['id']}/results")
    few = (queries("/searches?page_size=100"), queries(f"/searches/{first['id']}"))
    for n in range(20):
        saved = _save(client, auth, name=f"search {n}")
        for _ in range(3):
            client.get(f"/searches/{saved['id']}/results")
    assert (queries("/searches?page_size=100"), queries(f"/searches/{first['id']}")) == few
    assert few == (4, 2)  # the page, its count, the runs counted, the latest runs; the search, its runs
