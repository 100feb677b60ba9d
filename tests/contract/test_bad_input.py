"""Every bad input gets a clear 4xx problem+json naming what is wrong, and changes nothing."""

from __future__ import annotations

import pytest

from service.vocabularies import STUDY_TYPE
from tests.conftest import assert_problem, make_token
from tests.helpers import create_reference, create_study, study_body


@pytest.fixture
def snapshot(client):
    """The register's visible state; a bad request must leave it exactly as it was."""

    def take():
        return (client.get("/studies?page_size=100&include=references").get_json(),
                client.get("/references?page_size=100").get_json(),
                client.get("/notices?status=all").get_json())

    return take


@pytest.fixture
def study(client, auth):
    return create_study(client, auth)


def test_malformed_json_is_400(client, auth, study, snapshot):
    before = snapshot()
    for body in ("{", '{"title": }', "\xff\xfe", '{"title": "a"'):
        response = client.post("/studies", data=body, headers={**auth, "Content-Type": "application/json"})
        assert_problem(response, 400, "body")
        response = client.patch(f"/studies/{study['id']}", data=body,
                                headers={**auth, "Content-Type": "application/json"})
        assert_problem(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize("body, field", [
    ({"title": 5}, "title"),
    ({"title": "x", "registrations": "NCT04280705"}, "registrations"),
    ({"title": "x", "registrations": [{"identifier": 42}]}, "registrations.0.identifier"),
    ({"title": "x", "name": "n", "first_published": "2020-13-01"}, "first_published"),
    ({"title": "x", "name": "n", "updated": "yesterday"}, "updated"),
    ({"title": None, "name": "n"}, "title"),
    ({"title": ["a"], "name": "n"}, "title"),
])
def test_wrong_types_are_422_naming_the_field(client, auth, snapshot, body, field):
    before = snapshot()
    assert_problem(client.post("/studies", json=body, headers=auth), 422, field)
    assert snapshot() == before


def test_deeply_nested_json_and_lone_surrogates_are_4xx(client, auth, snapshot):
    before = snapshot()
    json_headers = {**auth, "Content-Type": "application/json"}
    assert_problem(client.post("/studies", data="[" * 100_000, headers=json_headers), 400, "body")
    assert_problem(client.post("/studies", data='{"title": "\\ud800", "name": "x"}', headers=json_headers),
                   422, "title")
    assert_problem(client.post("/studies", data=b'{"title": "\xe9"}', headers=json_headers), 400)
    assert snapshot() == before


def test_body_that_is_not_an_object_is_422(client, auth, snapshot):
    before = snapshot()
    for body in ([], "text", 3, None):
        response = client.post("/studies", json=body, headers=auth)
        assert response.status_code in (400, 422)
        assert_problem(response, response.status_code)
    assert snapshot() == before


def test_unknown_fields_are_422(client, auth, study, snapshot):
    before = snapshot()
    assert_problem(client.post("/studies", json=study_body("NCT04280705", colour="red"), headers=auth),
                   422, "colour")
    assert_problem(client.patch(f"/studies/{study['id']}", json={"id": 7}, headers=auth), 422, "id")
    assert_problem(client.post("/references", json={"type": "preprint", "title": "t", "doi_url": "x"},
                               headers=auth), 422, "doi_url")
    assert snapshot() == before


def test_over_long_strings_are_422(client, auth, snapshot):
    before = snapshot()
    assert_problem(client.post("/studies", json=study_body(name="n" * 201), headers=auth), 422, "name")
    assert_problem(client.post("/studies", json=study_body(title="t" * 5001), headers=auth), 422, "title")
    assert_problem(client.post("/references", json={"type": "preprint", "title": "t",
                                                    "abstract": "a" * 100_001}, headers=auth),
                   422, "abstract")
    assert_problem(client.get("/studies?registration=" + "N" * 101), 422, "registration")
    assert snapshot() == before


def test_control_characters_are_422(client, auth, snapshot):
    before = snapshot()
    assert_problem(client.post("/studies", json=study_body(title="bad\x00title"), headers=auth),
                   422, "title")
    assert_problem(client.get("/studies?registration=NCT%00"), 422, "registration")
    assert snapshot() == before


def test_facet_value_outside_vocabulary_lists_allowed_values(client, auth, snapshot):
    before = snapshot()
    body = assert_problem(client.post("/studies", json=study_body(study_type="Randomised trial"),
                                      headers=auth), 422, "study_type")
    for value in STUDY_TYPE:
        assert value in " ".join(body["errors"]["study_type"])
    body = assert_problem(client.get("/studies?study_type=Trial"), 422, "study_type.0")
    assert "Interventional" in body["detail"]
    assert_problem(client.get("/references?type=article"), 422, "type.0")
    assert snapshot() == before


def test_unknown_query_parameter_names_it_and_lists_allowed(client):
    body = assert_problem(client.get("/studies?studytype=Interventional"), 422, "studytype")
    assert "studytype" in body["detail"]
    assert "study_type" in body["detail"] and "page_size" in body["detail"]
    assert_problem(client.get("/references?q=x&foo=1"), 422, "foo")
    assert_problem(client.get("/notices?active=1"), 422, "active")


def test_repeated_single_value_parameter_is_422(client):
    assert_problem(client.get("/studies?page=1&page=2"), 422, "page")


@pytest.mark.parametrize("query, field", [
    ("page_size=0", "page_size"), ("page_size=10000", "page_size"), ("page_size=-5", "page_size"),
    ("page=-1", "page"), ("page=0", "page"), ("page=99999999999999999999", "page"),
    ("page=1.5", "page"), ("page=abc", "page"), ("page=200&page_size=100", "page"),
    ("cursor=garbage", "cursor"), ("cursor=eyJ2IjoxfQ", "cursor"), ("cursor=%F0%9F%98%80", "cursor"),
    ("sort=colour", "sort"), ("sort=--id", "sort"), ("format=xml", "format"),
    ("has_results=maybe", "has_results"), ("first_published_from=2020-02-30", "first_published_from"),
    ("updated_since=tomorrow", "updated_since"), ("include=everything", "include.0"),
    ("facets=", "facets"), ("facets=,", "facets"), ("recruitment_status=Ongoing", "recruitment_status.0"),
    ("country=Atlantis", "country.0"), ("results_in=somewhere", "results_in.0"),
    ("registered_to=2020-02-30", "registered_to"),
])
def test_bad_paging_and_filter_values_are_422(client, query, field):
    body = assert_problem(client.get("/studies?" + query), 422, field)
    assert field.split(".")[0] in body["detail"]


def test_page_and_cursor_together_are_422(client):
    assert_problem(client.get("/studies?page=1&cursor=*"), 422, "page")


@pytest.mark.parametrize("path", ["/studies/99999999999999999999", "/studies/abc", "/studies/-1",
                                  "/studies/0", "/studies/1.5", "/references/99999999999999999999",
                                  "/notices/2147483648", "/studies/2147483647"])
def test_bad_or_huge_ids_are_404(client, path):
    assert_problem(client.get(path), 404)


def test_missing_or_wrong_token_is_401_and_changes_nothing(client, auth, study, snapshot):
    before = snapshot()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": "Bearer "}, {"Authorization": "bearer sr_" + "x" * 43}):
        response = client.post("/studies", json=study_body("NCT04280705"), headers=headers)
        body = assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in body["detail"].lower() or "authorization" in body["detail"].lower()
        assert_problem(client.delete(f"/studies/{study['id']}", headers=headers), 401)
    assert snapshot() == before


def test_token_without_scope_is_403(client, study, snapshot):
    before = snapshot()
    notices_only = {"Authorization": f"Bearer {make_token('notices')}"}
    assert_problem(client.patch(f"/studies/{study['id']}", json={"title": "x"}, headers=notices_only), 403)
    assert_problem(client.post("/references", json={"type": "preprint", "title": "t"},
                               headers=notices_only), 403)
    assert snapshot() == before


def test_auth_is_checked_before_the_body(client):
    assert_problem(client.post("/studies", data="{", headers={"Content-Type": "application/json"}), 401)


def test_non_json_body_is_415(client, auth, snapshot):
    before = snapshot()
    response = client.post("/studies", data="title=x", headers={**auth, "Content-Type": "text/plain"})
    assert_problem(response, 415)
    assert snapshot() == before


def test_body_over_the_limit_is_413(client, auth, snapshot):
    before = snapshot()
    response = client.post("/references", json={"type": "preprint", "title": "t",
                                                 "abstract": "a" * 1_100_000}, headers=auth)
    assert_problem(response, 413)
    assert snapshot() == before


def test_stale_if_match_is_412_and_changes_nothing(client, auth, study, snapshot):
    ref = create_reference(client, auth, study_ids=[study["id"]])
    before = snapshot()
    stale = {**auth, "If-Match": '"0000"'}
    assert_problem(client.patch(f"/studies/{study['id']}", json={"title": "x"}, headers=stale), 412)
    assert_problem(client.delete(f"/studies/{study['id']}", headers=stale), 412)
    assert_problem(client.patch(f"/references/{ref['id']}", json={"title": "x"}, headers=stale), 412)
    assert_problem(client.delete(f"/references/{ref['id']}", headers=stale), 412)
    assert snapshot() == before


def test_reference_rules(client, auth, snapshot):
    before = snapshot()
    base = {"type": "journal_article", "title": "t"}
    assert_problem(client.post("/references", json={**base, "published": "2021-02-30"}, headers=auth),
                   422, "published")
    assert_problem(client.post("/references", json={**base, "published": "21-02"}, headers=auth),
                   422, "published")
    assert_problem(client.post("/references", json={**base, "published": "2021", "year": 2020},
                               headers=auth), 422, "year")
    assert_problem(client.post("/references", json={**base, "doi": "not a doi"}, headers=auth), 422, "doi")
    assert_problem(client.post("/references", json={**base, "pmid": "12a"}, headers=auth), 422, "pmid")
    assert_problem(client.post("/references", json={**base, "year": 2.5}, headers=auth), 422, "year")
    assert_problem(client.post("/references", json={**base, "study_ids": [4242]}, headers=auth),
                   422, "study_ids")
    assert_problem(client.post("/references", json={**base, "url": "javascript:alert(1)"},
                               headers=auth), 422, "url")
    assert snapshot() == before


def test_empty_patch_is_422(client, auth, study):
    assert_problem(client.patch(f"/studies/{study['id']}", json={}, headers=auth), 422, "body")


def test_unknown_route_and_method_are_problems(client):
    assert_problem(client.get("/nowhere"), 404)
    response = client.put("/studies")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
