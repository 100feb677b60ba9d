"""POST /studies/search and /references/search: a strategy too long for a URL, answered as the GET is."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

import pytest

from service.config import MAX_REQUEST_LINE
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study


def _query_string(args: dict) -> str:
    """A search body as the GET's query string (arrays repeated, booleans as true/false)."""
    pairs = []
    for key, value in args.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else item))
    return urlencode(pairs)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


STUDY_SEARCHES = [
    {"q": "covid", "facets": ["study_type", "registry"], "page_size": 7},
    {"q": "hydroxychloroquine OR remdesivir", "study_type": ["Interventional", "Observational"],
     "facets": ["study_type"], "include": ["references"]},
    {"q": "randomised -placebo", "registry": ["ClinicalTrials.gov", "EudraCT"], "sort": "-first_published"},
    {"q": '"stem cells"', "has_results": True, "facets": ["has_results", "reference_type"]},
    {"q": "patients", "reference_type": ["journal_article"], "first_published_from": "2020-01-01",
     "page": 2, "page_size": 5},
    {"study_aim": ["Treatment and Management"], "sort": "name", "facets": ["study_aim", "country"]},
]

REFERENCE_SEARCHES = [
    {"q": "covid", "facets": ["type", "has_results", "year"], "page_size": 9},
    {"q": "hydroxychloroquine OR remdesivir", "type": ["journal_article", "preprint"], "linked": True},
    {"q": "trial", "has_results": False, "year_from": 2020, "sort": "-first_published", "page": 3,
     "page_size": 4},
    {"type": ["trial_registry_record"], "facets": ["year"], "sort": "title"},
]


def test_post_studies_answers_as_the_get(client, seeded):
    for body in STUDY_SEARCHES:
        get = client.get("/studies?" + _query_string(body))
        post = client.post("/studies/search", json=body)
        assert get.status_code == post.status_code == 200, post.get_json()
        got, posted = get.get_json(), post.get_json()
        assert posted["total"] > 0, body
        for key in ("items", "total", "page", "page_size", "facets", "query"):
            assert posted.get(key) == got.get(key), (body, key)
        assert ("query" in posted) == ("q" in body)
        for name in ("next", "prev"):  # the same pages, addressed to the POST endpoint
            assert (posted[name] is None) == (got[name] is None), (body, name)
            if posted[name]:
                assert _path(posted[name]).startswith("/studies/search?")
        assert "/studies/search?page=1>" in post.headers["Link"]


def test_post_references_answers_as_the_get(client, seeded):
    for body in REFERENCE_SEARCHES:
        get = client.get("/references?" + _query_string(body))
        post = client.post("/references/search", json=body)
        assert get.status_code == post.status_code == 200, post.get_json()
        got, posted = get.get_json(), post.get_json()
        assert posted["total"] > 0, body
        for key in ("items", "total", "page", "page_size", "facets", "query"):
            assert posted.get(key) == got.get(key), (body, key)


def test_query_echoes_the_strategy_as_parsed(client, seeded):
    body = client.get("/studies?q=Hydroxychloroquine%20OR%20REMDESIVIR%20-title:review").get_json()
    assert body["query"] == "hydroxychloroquine OR (remdesivir NOT title:review)"
    assert "query" not in client.get("/studies").get_json()
    assert "query" not in client.post("/references/search", json={"type": ["preprint"]}).get_json()
    posted = client.post("/references/search", json={"q": "Hydroxychloroquine OR REMDESIVIR"}).get_json()
    assert posted["query"] == client.get("/references?q=hydroxychloroquine+OR+remdesivir").get_json()["query"]


def _walk(client, path: str, body: dict) -> tuple[list[int], list[dict]]:
    ids, pages, url = [], [], path
    while url:
        response = client.post(url, json=body)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        pages.append(page)
        ids += [item["id"] for item in page["items"]]
        url = page["next"] and _path(page["next"])
        if url:
            assert url.startswith(path + "?") and f'<{page["next"]}>; rel="next"' in response.headers["Link"]
    return ids, pages


@pytest.mark.parametrize("start", [{}, {"cursor": "*"}], ids=["pages", "cursor"])
def test_posting_the_body_to_next_walks_every_match_once(client, seeded, start):
    body = {"q": "covid OR trial", "study_type": ["Interventional"], "page_size": 4, "sort": "name", **start}
    ids, pages = _walk(client, "/studies/search", body)
    whole = {k: v for k, v in body.items() if k not in ("cursor", "page_size")}
    every = client.get("/studies?page_size=100&" + _query_string(whole)).get_json()
    assert ids == [item["id"] for item in every["items"]]
    assert len(ids) == len(set(ids)) == pages[0]["total"] > 8
    assert all(page["items"] for page in pages)
    key = "cursor=" if start else "page="
    assert all(key in page["next"] for page in pages[:-1])


def test_references_walk_by_cursor(client, seeded):
    body = {"q": "covid", "page_size": 10, "cursor": "*"}
    ids, pages = _walk(client, "/references/search", body)
    assert len(ids) == len(set(ids)) == pages[0]["total"] == 96


def test_query_string_paging_overrides_the_body(client, seeded):
    body = {"q": "covid", "page": 3, "page_size": 5}
    third = client.post("/studies/search", json=body).get_json()
    second = client.post("/studies/search?page=2", json=body).get_json()
    assert (third["page"], second["page"]) == (3, 2)
    assert second["items"] == client.get("/studies?q=covid&page=2&page_size=5").get_json()["items"]
    walk = client.post("/studies/search?cursor=*", json=body).get_json()  # a cursor replaces the body's page
    assert walk["page"] is None and walk["items"][0] == client.get(
        "/studies?q=covid&page_size=5").get_json()["items"][0]
    assert_problem(client.post("/studies/search?page=2&cursor=*", json=body), 422, "page")
    body = assert_problem(client.post("/studies/search?q=covid", json=body), 422, "q")
    assert "cursor" in body["detail"] and "page" in body["detail"]


def test_a_cursor_is_for_its_own_strategy_and_filters(client, seeded):
    body = {"q": "covid", "page_size": 5, "cursor": "*"}
    next_url = _path(client.post("/studies/search", json=body).get_json()["next"])
    assert client.post(next_url, json=body).status_code == 200
    for other in ({**body, "q": "trial"}, {**body, "study_type": ["Interventional"]},
                  {**body, "sort": "-id"}):
        problem = assert_problem(client.post(next_url, json=other), 422, "cursor")
        assert "cursor" in problem["detail"]
    # A GET's cursor serves the POST of the same search, and the other way round (presentation aside).
    cursor = next_url.split("cursor=")[1]
    via_get = client.get(f"/studies?q=covid&page_size=5&include=references&cursor={cursor}")
    assert via_get.status_code == 200
    get_next = _path(client.get("/studies?q=COVID&page_size=5&cursor=*").get_json()["next"])
    via_post = client.post("/studies/search?cursor=" + get_next.split("cursor=")[1], json=body)
    assert via_post.status_code == 200
    assert via_post.get_json()["items"] == client.post(next_url, json=body).get_json()["items"]


WRONG = [
    ({"colour": "red"}, "colour"),
    ({"q": "covid", "studytype": ["Interventional"]}, "studytype"),
    ({"format": "csv"}, "format"),
    ({"q": 5}, "q"),
    ({"q": ["covid"]}, "q"),
    ({"q": None}, "q"),
    ({"q": "bad\x00text"}, "q"),
    ({"study_type": "Interventional"}, "study_type"),
    ({"study_type": [5]}, "study_type"),
    ({"study_type": ["Trial"]}, "study_type.0"),
    ({"has_results": "true"}, "has_results"),
    ({"has_results": 1}, "has_results"),
    ({"page": "2"}, "page"),
    ({"page": 1.5}, "page"),
    ({"page": True}, "page"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": 1001}, "page_size"),
    ({"page": 200, "page_size": 100}, "page"),
    ({"page": 1, "cursor": "*"}, "page"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": 7}, "cursor"),
    ({"sort": "colour"}, "sort"),
    ({"sort": "relevance"}, "sort"),
    ({"facets": "study_type"}, "facets"),
    ({"facets": ["colour"]}, "facets.0"),
    ({"include": ["everything"]}, "include.0"),
    ({"first_published_from": "2020-02-30"}, "first_published_from"),
    ({"updated_since": 20200101}, "updated_since"),
    ({"registration": {"identifier": "NCT04280705"}}, "registration"),
    ({"country": ["Atlantis"]}, "country.0"),
]


def test_wrong_members_and_types_are_422_naming_them(client):
    for body, member in WRONG:
        problem = assert_problem(client.post("/studies/search", json=body), 422, member)
        assert member.split(".")[0] in problem["detail"], body


def test_unknown_member_lists_the_allowed_ones(client):
    problem = assert_problem(client.post("/references/search", json={"q": "x", "doi_url": "x"}), 422,
                             "doi_url")
    assert "doi" in problem["errors"]["doi_url"][0] and "linked" in problem["errors"]["doi_url"][0]
    assert_problem(client.post("/references/search", json={"linked": "no"}), 422, "linked")
    assert_problem(client.post("/references/search", json={"study_id": "1"}), 422, "study_id")
    assert_problem(client.post("/references/search", json={"include": ["references"]}), 422, "include")


HOSTILE = [
    "null", "[]", "[1, 2]", "3", "-1.5e400", '"covid"', "true", '{"q": {"q": {"q": "covid"}}}',
    '{"study_type": [["Interventional"]]}', '{"facets": [null]}', '{"page_size": 1e400}',
    '{"q": "' + "\\ud800" + '"}', "[" * 100_000, '{"q": "' + "x" * 600_000 + '"}',
    '{"registration": "' + "N" * 50_000 + '"}', '{"cursor": "' + "c" * 10_000 + '"}',
    '{"study_type": [' + ", ".join(['"Interventional"'] * 20_000) + "]}", "{" + '"a": 1, ' * 5000 + '"b": 2}',
]


def test_no_hostile_body_makes_a_500(client):
    for path in ("/studies/search", "/references/search"):
        for data in HOSTILE:
            response = client.post(path, data=data, headers={"Content-Type": "application/json"})
            assert response.status_code in (200, 400, 413, 422), (data[:80], response.get_data()[:300])
            if response.status_code != 200:
                assert_problem(response, response.status_code)


def test_a_body_that_is_not_json_is_refused(client):
    assert_problem(client.post("/studies/search", data="q=covid",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_problem(client.post("/references/search", data="q=covid", headers={"Content-Type": "text/plain"}),
                   415)
    assert_problem(client.post("/studies/search", data="{", headers={"Content-Type": "application/json"}),
                   400, "body")
    assert_problem(client.post("/studies/search", data=b'{"q": "\xe9"}',
                               headers={"Content-Type": "application/json"}), 400)
    assert_problem(client.post("/studies/search", json=[]), 422, "body")
    # No body at all is the empty search: every study, as GET /studies answers.
    assert client.post("/studies/search").get_json()["total"] == client.get("/studies").get_json()["total"]


def test_a_long_strategy_is_taken_whole(client, auth):
    study = create_study(client, auth, title="Convalescent plasma for severe pneumonia")
    create_reference(client, auth, title="Ivermectin in outpatients", abstract="A randomised trial.",
                     study_ids=[study["id"]])
    # A strategy of 20,000 characters (pasted with its line breaks); the body is over 25,000.
    lines = [f'"{"zzq" * 30} {"zzq" * 10} {n}"' for n in range(30)] + ["convalescent", "plasma"]
    strategy = " OR\n".join(lines[:30]) + " OR (convalescent plasma)"
    strategy += " " * (20_000 - len(strategy))
    assert len(strategy) == 20_000
    body = {"q": strategy, "study_type": ["Interventional", "Observational", "Unclear"] * 400,
            "facets": ["study_type"]}
    assert len(json.dumps(body)) > 25_000
    response = client.post("/studies/search", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert [s["id"] for s in answer["items"]] == [study["id"]]
    assert answer["query"].endswith("OR (convalescent AND plasma)")
    found = client.post("/references/search",
                        json={"q": strategy.replace("convalescent plasma", "ivermectin")})
    assert found.status_code == 200 and found.get_json()["total"] == 1


def test_a_body_over_the_limit_is_413(client):
    response = client.post("/studies/search", json={"q": "covid", "registration": "N" * 1_100_000})
    assert_problem(response, 413)


def test_a_request_line_over_the_limit_is_414_pointing_to_post(client):
    url = "/studies?q=" + "a" * (MAX_REQUEST_LINE - len("GET /studies?q= HTTP/1.1") + 1)
    problem = assert_problem(client.get(url), 414)
    assert "POST /studies/search" in problem["detail"]
    problem = assert_problem(client.get("/references?q=" + "b" * 9000), 414)
    assert "POST /references/search" in problem["detail"]
    fits = "/studies?page_size=1&registration=" + "N" * 100 + "&q=" + "abcdefghi " * 99
    assert client.get(fits).status_code == 200
