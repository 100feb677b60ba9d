"""The lean path for machines (issue 16): `page_size` up to 1,000 on every list, and `fields=` for only
the members asked for."""

from __future__ import annotations

import datetime as dt

import pytest

from service.api.schemas.references import REFERENCE_MEMBERS
from service.api.schemas.studies import STUDY_MEMBERS
from service.db import database, select_rows
from service.models import Reference, Study, StudyReference
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study, queries_of

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


# --- fields= ---

@pytest.fixture
def linked(client, auth):
    """Two studies, the first with a report and a reference citing it."""
    study = create_study(client, auth, "NCT04280705")
    other = create_study(client, auth, "NCT04292899", title="Another trial")
    report = create_reference(client, auth, title="Results of NCT04280705", study_ids=[study["id"]])
    return study, other, report


def _keys(items) -> list[set]:
    return [set(item) for item in items]


def test_lists_answer_only_the_members_asked_for(client, linked):
    study, other, report = linked
    full = client.get("/studies").get_json()
    body = client.get("/studies?fields=title,registrations").get_json()
    assert _keys(body["items"]) == [{"id", "title", "registrations"}] * 2
    assert [{k: s[k] for k in ("id", "title", "registrations")} for s in full["items"]] == body["items"]
    assert {k: v for k, v in body.items() if k != "items"} == {k: v for k, v in full.items() if k != "items"}
    repeated = client.get("/studies?fields=title&fields=registrations").get_json()
    assert repeated == body
    refs = client.get("/references?fields=doi,study_ids").get_json()["items"]
    assert _keys(refs) == [{"id", "doi", "study_ids"}] and refs[0]["study_ids"] == [study["id"]]
    assert _keys(client.get("/references?fields=id").get_json()["items"]) == [{"id"}]


def test_id_is_always_sent(client, linked):
    assert _keys(client.get("/studies?fields=title").get_json()["items"]) == [{"id", "title"}] * 2
    assert set(client.get(f"/studies/{linked[0]['id']}?fields=name").get_json()) == {"id", "name"}
    assert set(client.get(f"/references/{linked[2]['id']}?fields=title").get_json()) == {"id", "title"}


def test_envelope_facets_query_and_total_are_unchanged(client, linked):
    path = "/studies?q=NCT04280705&facets=study_type"
    full, lean = client.get(path).get_json(), client.get(path + "&fields=name").get_json()
    assert lean.pop("items") == [{"id": s["id"], "name": s["name"]} for s in full.pop("items")]
    assert lean == full and "facets" in lean and "query" in lean


def test_every_member_can_be_asked_for(client, linked):
    study, _, report = linked
    for name in STUDY_MEMBERS:
        single = client.get(f"/studies/{study['id']}?fields={name}").get_json()
        assert set(single) == {"id", name}, name
        items = client.get(f"/studies?fields={name}&registration=NCT04280705").get_json()["items"]
        assert set(items[0]) == {"id", name}, name
    for name in REFERENCE_MEMBERS:
        assert set(client.get(f"/references/{report['id']}?fields={name}").get_json()) == {"id", name}
        assert set(client.get(f"/references?fields={name}").get_json()["items"][0]) == {"id", name}
    whole = client.get(f"/studies/{study['id']}").get_json()
    everything = client.get(f"/studies/{study['id']}?fields=" + ",".join(STUDY_MEMBERS))
    assert everything.get_json() == whole


def test_naming_embedded_parts_embeds_them_in_lists(client, linked):
    study, _, report = linked
    items = client.get("/studies?fields=references,curated&registration=NCT04280705").get_json()["items"]
    assert set(items[0]) == {"id", "references", "curated"}
    assert [r["id"] for r in items[0]["references"]] == [report["id"]]
    # `fields` decides what each item holds, whatever `include` says
    items = client.get("/studies?include=references&fields=title").get_json()["items"]
    assert _keys(items) == [{"id", "title"}] * 2


def test_the_search_bodies_take_fields(client, linked):
    body = client.post("/studies/search", json={"q": "NCT04280705", "fields": ["name"]}).get_json()
    assert body["items"] == [{"id": linked[0]["id"], "name": "NCT04280705"}] and body["query"]
    refs = client.post("/references/search", json={"fields": ["title", "type"]}).get_json()["items"]
    assert _keys(refs) == [{"id", "title", "type"}]
    assert client.post("/studies/search", json={"fields": ["id,title"]}).get_json()["items"][0].keys() == {
        "id", "title"}


def test_next_and_prev_keep_fields(client, linked):
    first = client.get("/studies?fields=title&page_size=1").get_json()
    assert "fields=title" in first["next"]
    second = client.get(first["next"]).get_json()
    assert _keys(second["items"]) == [{"id", "title"}] and "fields=title" in second["prev"]
    link = client.get("/studies?fields=title&page_size=1").headers["Link"]
    assert link.count("fields=title") == 2  # next and first
    walk = client.get("/studies?fields=title&page_size=1&cursor=*").get_json()
    assert "fields=title" in walk["next"] and "cursor=" in walk["next"]
    assert _keys(client.get(walk["next"]).get_json()["items"]) == [{"id", "title"}]
    # the same cursor serves the walk without `fields` (it is no filter)
    assert client.get(walk["next"].replace("fields=title&", "")).status_code == 200
    posted = client.post("/studies/search?page=2", json={"fields": ["title"], "page_size": 1}).get_json()
    assert _keys(posted["items"]) == [{"id", "title"}] and posted["prev"].endswith("/studies/search?page=1")


BAD = [("fields=colour", "`colour`"), ("fields=title,colour,size", "`colour`, `size`"),
       ("fields=title,title", "more than once: `title`"), ("fields=title&fields=title", "more than once"),
       ("fields=id,id", "more than once: `id`"), ("fields=", "Name at least one"),
       ("fields=,", "Name at least"), ("fields=%20", "Name at least one")]


@pytest.mark.parametrize("path", ["/studies", "/references", "/studies/{study}", "/references/{report}"])
@pytest.mark.parametrize("query, said", BAD)
def test_bad_names_are_422_naming_them_and_the_allowed(client, linked, path, query, said):
    study, _, report = linked
    url = path.format(study=study["id"], report=report["id"]) + "?" + query
    body = assert_problem(client.get(url), 422, "fields")
    assert said in body["detail"] and said in body["errors"]["fields"][0]
    allowed = STUDY_MEMBERS if path.startswith("/studies") else REFERENCE_MEMBERS
    assert "Allowed fields: " + ", ".join(allowed) + "." in body["errors"]["fields"][0]


@pytest.mark.parametrize("body, said", [
    ({"fields": ["colour"]}, "`colour`"), ({"fields": []}, "Name at least"),
    ({"fields": ["id", "id"]}, "more than once"), ({"fields": "id,title"}, "JSON array"),
    ({"fields": [5]}, "string")])
def test_bad_names_in_a_search_body_are_422(client, linked, body, said):
    problem = assert_problem(client.post("/studies/search", json=body), 422, "fields")
    assert said in problem["errors"]["fields"][0]
    assert_problem(client.post("/references/search", json=body), 422, "fields")


def test_a_bad_fields_changes_nothing(client, auth, linked):
    """Not even a saved search's run, which its first page of results records."""
    saved = client.post("/searches", json={"name": "NCT", "q": "NCT04280705"}, headers=auth).get_json()
    before = client.get(f"/searches/{saved['id']}").get_json()
    assert_problem(client.get(f"/searches/{saved['id']}/results?fields=colour"), 422, "fields")
    assert_problem(client.get(f"/searches/{saved['id']}/results?fields="), 422, "fields")
    assert client.get(f"/searches/{saved['id']}").get_json() == before == {**before, "runs": []}


def test_not_with_exports_or_fhir(client, linked):
    study, _, report = linked
    for path in ("/studies?format=csv", "/studies?format=ndjson", "/references?format=ris",
                 "/references?format=fhir"):
        body = assert_problem(client.get(path + "&fields=title"), 422, "fields")
        assert "export" in body["detail"]
    assert_problem(client.get("/studies?fields=title", headers={"Accept": "application/fhir+json"}), 422,
                   "fields")
    assert_problem(client.get(f"/studies/{study['id']}?fields=title&format=fhir"), 422, "fields")
    assert_problem(client.get(f"/references/{report['id']}?fields=title",
                              headers={"Accept": "application/fhir+json"}), 422, "fields")
    # the export operations do not take it at all
    assert_problem(client.get("/studies/export?format=csv&fields=title"), 422, "fields")
    # a browser's study page is the page
    page = client.get(f"/studies/{study['id']}?fields=title", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"


def test_a_projected_read_has_its_own_etag_and_304(client, auth, linked):
    study = linked[0]
    whole = client.get(f"/studies/{study['id']}")
    lean = client.get(f"/studies/{study['id']}?fields=title")
    assert lean.headers["ETag"] != whole.headers["ETag"]
    assert lean.headers["Last-Modified"] == whole.headers["Last-Modified"]
    path = f"/studies/{study['id']}?fields=title"
    again = client.get(path, headers={"If-None-Match": lean.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == lean.headers["ETag"]
    other = client.get(f"/studies/{study['id']}?fields=name", headers={"If-None-Match": lean.headers["ETag"]})
    assert other.status_code == 200
    # If-Match needs the whole record's ETag
    stale = client.patch(f"/studies/{study['id']}", json={"title": "Renamed"},
                         headers={**auth, "If-Match": lean.headers["ETag"]})
    assert_problem(stale, 412)
    ok = client.patch(f"/studies/{study['id']}", json={"title": "Renamed"},
                      headers={**auth, "If-Match": whole.headers["ETag"]})
    assert ok.status_code == 200
    changed = client.get(path, headers={"If-None-Match": lean.headers["ETag"]})
    assert changed.status_code == 200 and changed.get_json() == {"id": study["id"], "title": "Renamed"}
    reference = linked[2]
    lean = client.get(f"/references/{reference['id']}?fields=title")
    again = client.get(f"/references/{reference['id']}?fields=title",
                       headers={"If-None-Match": lean.headers["ETag"]})
    assert again.status_code == 304


def test_fewer_fields_run_fewerqueries_of(client, linked):
    study, _, report = linked
    single, single_lean = queries_of(client, f"/studies/{study['id']}"), queries_of(
        client, f"/studies/{study['id']}?fields=id,title")
    assert single_lean < single and single_lean == 1
    assert queries_of(client, "/studies?fields=id,title") < queries_of(client, "/studies")
    assert (queries_of(client, "/studies?fields=id,title&include=references")
            < queries_of(client, "/studies?include=references"))
    assert queries_of(client, f"/references/{report['id']}?fields=id,title") == 1
    assert queries_of(client, "/references?fields=id,title") < queries_of(client, "/references")


def test_saved_search_results_take_fields(client, auth, linked):
    saved = client.post("/searches", json={"name": "NCT", "q": "NCT04280705"}, headers=auth)
    assert saved.status_code == 201, saved.get_json()
    body = client.get(f"/searches/{saved.get_json()['id']}/results?fields=name").get_json()
    assert body["items"] == [{"id": linked[0]["id"], "name": "NCT04280705"}] and body["run"]


def test_the_search_page_does_not_take_fields(client, linked):
    page = client.get("/?fields=title")
    assert page.status_code == 422 and page.mimetype == "text/html"


# --- rows read without peewee's per-column converters (db.lean_rows) ---

def _typed(rows) -> list:
    return [[(type(value), value) for value in row] for row in rows]


def test_lean_rows_are_peewee_rows(client, auth):
    study = create_study(client, auth, "NCT04280705")
    create_reference(client, auth, title="Results of NCT04280705", study_ids=[study["id"]])
    with database.connection_context():
        for model in (Study, Reference, StudyReference):
            query = model.select().namedtuples()
            assert _typed(select_rows(query)) == _typed(list(query))
            assert [row._fields for row in select_rows(query)] == [row._fields for row in query]
