"""Studies through HTTP: create, read, conditional requests, update, delete, links, filters."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.helpers import CHICTR_TITLE, count, create_reference, create_study, study_body


def test_create_read_conditional_update_delete(client, auth):
    response = client.post("/studies", json=study_body("chictr-2000030261".replace("-", "")),
                           headers=auth)
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"/studies/{created['id']}"
    assert created["name"] == "ChiCTR2000030261"  # defaults to the first registration
    assert created["registrations"] == [{"registry": "ChiCTR", "identifier": "ChiCTR2000030261"}]
    assert created["title"] == CHICTR_TITLE
    assert created["reference_count"] == 0 and created["references"] == []

    read = client.get(f"/studies/{created['id']}")
    assert read.status_code == 200 and read.get_json() == created
    tag = read.headers["ETag"]
    assert read.headers["Last-Modified"]
    assert client.get(f"/studies/{created['id']}", headers={"If-None-Match": tag}).status_code == 304
    assert client.get(f"/studies/{created['id']}",
                      headers={"If-None-Match": '"other"'}).status_code == 200

    patched = client.patch(f"/studies/{created['id']}", json={"study_aim": "prevention"},
                           headers={**auth, "If-Match": tag})
    assert patched.status_code == 200
    assert patched.get_json()["study_aim"] == "Prevention"
    assert patched.headers["ETag"] != tag

    stale = client.patch(f"/studies/{created['id']}", json={"title": "Changed"},
                         headers={**auth, "If-Match": tag})
    assert_problem(stale, 412)
    assert client.get(f"/studies/{created['id']}").get_json()["title"] == CHICTR_TITLE

    assert_problem(client.delete(f"/studies/{created['id']}", headers={**auth, "If-Match": tag}), 412)
    current = client.get(f"/studies/{created['id']}").headers["ETag"]
    assert client.delete(f"/studies/{created['id']}",
                         headers={**auth, "If-Match": current}).status_code == 204
    assert_problem(client.get(f"/studies/{created['id']}"), 404)


def test_delete_keeps_references_unlinked(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth, study_ids=[study["id"]])
    assert client.delete(f"/studies/{study['id']}", headers=auth).status_code == 204
    kept = client.get(f"/references/{ref['id']}").get_json()
    assert kept["study_ids"] == []
    assert count(client, "/references?linked=false") == 1


def test_ids_are_never_reused(client, auth):
    first = create_study(client, auth, "NCT04280705")
    client.delete(f"/studies/{first['id']}", headers=auth)
    second = create_study(client, auth, "NCT04292899")
    assert second["id"] > first["id"]


def test_registration_owned_by_another_study_is_409_naming_owner(client, auth):
    owner = create_study(client, auth, "NCT04280705")
    response = client.post("/studies", json=study_body("nct 04280705"), headers=auth)
    body = assert_problem(response, 409)
    assert body["owner_study_id"] == owner["id"]
    assert "NCT04280705" in body["detail"] and str(owner["id"]) in body["detail"]
    assert count(client, "/studies") == 1
    other = create_study(client, auth, "NCT04292899")
    clash = client.patch(f"/studies/{other['id']}",
                         json={"registrations": [{"identifier": "NCT04280705"}]}, headers=auth)
    assert_problem(clash, 409)
    assert client.get(f"/studies/{other['id']}").get_json()["registrations"][0]["identifier"] == \
        "NCT04292899"


def test_registry_is_derived_or_required(client, auth):
    study = create_study(client, auth, "EUCTR2020-001052-18-FR")
    assert study["registrations"] == [{"registry": "EudraCT", "identifier": "2020-001052-18"}]
    unknown = client.post("/studies", json=study_body("XYZ-12"), headers=auth)
    assert_problem(unknown, 422, "registrations.0.registry")
    given = client.post("/studies", json=study_body("XYZ-12", registrations=[
        {"identifier": "XYZ-12", "registry": "utn"}]), headers=auth)
    assert given.status_code == 201
    assert given.get_json()["registrations"] == [{"registry": "UTN", "identifier": "XYZ-12"}]


def test_single_study_shows_references_newest_first_with_link_kind(client, auth):
    study = create_study(client, auth)
    old = create_reference(client, auth, title="Registry record", type="trial_registry_record",
                           published="2020-02-26", registration_id="ChiCTR2000030261",
                           has_results=False, study_ids=[study["id"]])
    new = create_reference(client, auth, published="2022-06", study_ids=[study["id"]])
    body = client.get(f"/studies/{study['id']}").get_json()
    assert [r["id"] for r in body["references"]] == [new["id"], old["id"]]
    assert body["reference_count"] == 2
    assert all(r["link"] == "manual" and r["link_identifier"] is None for r in body["references"])
    assert body["references"][0]["type_label"] == "Journal article"
    assert body["references"][0]["authors"][0] == "Chu M"
    listed = client.get(f"/studies/{study['id']}/references").get_json()
    assert [r["id"] for r in listed] == [new["id"], old["id"]]


def test_link_and_unlink_by_hand(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth)
    before = client.get(f"/studies/{study['id']}").get_json()["updated"]
    first = client.put(f"/studies/{study['id']}/references/{ref['id']}", headers=auth)
    assert first.status_code == 201 and first.get_json()["link"] == "manual"
    again = client.put(f"/studies/{study['id']}/references/{ref['id']}", headers=auth)
    assert again.status_code == 200
    after = client.get(f"/studies/{study['id']}").get_json()
    assert after["reference_count"] == 1 and after["updated"] > before
    assert client.get(f"/references/{ref['id']}").get_json()["study_ids"] == [study["id"]]

    assert client.delete(f"/studies/{study['id']}/references/{ref['id']}", headers=auth).status_code == 204
    assert_problem(client.delete(f"/studies/{study['id']}/references/{ref['id']}", headers=auth), 404)
    assert_problem(client.put(f"/studies/{study['id']}/references/999", headers=auth), 404)
    assert_problem(client.put(f"/studies/999/references/{ref['id']}", headers=auth), 404)
    assert client.get(f"/studies/{study['id']}").get_json()["reference_count"] == 0


def test_editing_a_reference_updates_its_studies(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth, study_ids=[study["id"]])
    before = client.get(f"/studies/{study['id']}")
    client.patch(f"/references/{ref['id']}", json={"abstract": "Changed."}, headers=auth)
    after = client.get(f"/studies/{study['id']}")
    assert after.get_json()["updated"] > before.get_json()["updated"]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.get_json()["references"][0]["abstract"] == "Changed."


def test_filters(client, auth):
    a = create_study(client, auth, "NCT04280705", study_type="Interventional",
                     intervention_assignment="Randomised", first_published="2020-04-01")
    b = create_study(client, auth, "ChiCTR2000029308", study_type="Observational",
                     study_design="Cohort", first_published="2020-06-01")
    c = create_study(client, auth, "ISRCTN40302986", study_type="Unclear",
                     first_published="2021-01-15")
    create_reference(client, auth, study_ids=[a["id"]], has_results=True)
    create_reference(client, auth, title="Preprint", type="preprint", study_ids=[b["id"]],
                     has_results=False)

    def ids(query):
        response = client.get("/studies?" + query)
        assert response.status_code == 200, response.get_json()
        return [s["id"] for s in response.get_json()["items"]]

    assert ids("study_type=Interventional") == [a["id"]]
    assert ids("study_type=interventional&study_type=OBSERVATIONAL") == [a["id"], b["id"]]
    assert ids("study_type=Observational&study_design=Cohort") == [b["id"]]
    assert ids("study_type=Interventional&study_design=Cohort") == []
    assert ids("intervention_assignment=Randomised") == [a["id"]]
    assert ids("registration=nct%2004280705") == [a["id"]]
    assert ids("registration=chictr2000029308") == [b["id"]]
    assert ids("registry=ISRCTN") == [c["id"]]
    assert ids("registry=ISRCTN&registry=ClinicalTrials.gov") == [a["id"], c["id"]]
    assert ids("reference_type=preprint") == [b["id"]]
    assert ids("has_results=true") == [a["id"]]
    assert ids("has_results=false") == [b["id"], c["id"]]
    assert ids("first_published_from=2020-05-01") == [b["id"], c["id"]]
    assert ids("first_published_to=2020-06-01") == [a["id"], b["id"]]
    assert ids("first_published_from=2020-05-01&first_published_to=2020-12-31") == [b["id"]]
    assert ids("updated_since=2100-12-31") == []
    assert ids("updated_since=2000-01-01T00:00:00Z") == [a["id"], b["id"], c["id"]]
    assert ids("sort=-first_published") == [c["id"], b["id"], a["id"]]
    assert ids("sort=name") == [b["id"], c["id"], a["id"]]
    embedded = client.get("/studies?include=references&registration=NCT04280705").get_json()
    assert embedded["items"][0]["references"][0]["has_results"] is True
    assert "references" not in client.get("/studies").get_json()["items"][0]


def test_updated_date_from_import_is_kept(client, auth):
    study = create_study(client, auth, first_published="2020-04-01", updated="2022-07-04T00:00:00Z")
    assert study["first_published"] == "2020-04-01"
    assert study["updated"] == "2022-07-04T00:00:00Z"
    patched = client.patch(f"/studies/{study['id']}", json={"title": "New"}, headers=auth).get_json()
    assert patched["updated"] > "2022-07-04T00:00:00Z"
