"""References through HTTP: create, read, update, delete, filters, the unlinked queue."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study


def test_create_read_update_delete(client, auth):
    study = create_study(client, auth)
    response = client.post("/references", json={
        "type": "Journal_Article", "title": "Nebulization Therapy", "authors": ["Chu M", "Wang H"],
        "published": "2022-06", "doi": "https://doi.org/10.1007/S12015-022-10398-W",
        "pmid": "35665467", "source": "Stem Cell Rev Rep", "volume": "18", "issue": "6",
        "pages": "2152-2163", "url": "https://example.org/a", "has_results": True,
        "notes": "Pilot trial.", "study_ids": [study["id"]]}, headers=auth)
    assert response.status_code == 201
    ref = response.get_json()
    assert response.headers["Location"] == f"/references/{ref['id']}"
    assert ref["type"] == "journal_article" and ref["type_label"] == "Journal article"
    assert ref["year"] == 2022 and ref["published"] == "2022-06"  # never padded to a day
    assert ref["doi"] == "10.1007/s12015-022-10398-w"
    assert ref["authors"] == ["Chu M", "Wang H"] and ref["study_ids"] == [study["id"]]

    read = client.get(f"/references/{ref['id']}")
    assert read.get_json() == ref
    assert client.get(f"/references/{ref['id']}",
                      headers={"If-None-Match": read.headers["ETag"]}).status_code == 304

    patched = client.patch(f"/references/{ref['id']}", json={"authors": ["Chu M"], "published": None,
                                                             "year": None},
                           headers={**auth, "If-Match": read.headers["ETag"]})
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["authors"] == ["Chu M"] and body["published"] is None and body["year"] is None

    assert client.delete(f"/references/{ref['id']}", headers=auth).status_code == 204
    assert_problem(client.get(f"/references/{ref['id']}"), 404)
    assert client.get(f"/studies/{study['id']}").get_json()["reference_count"] == 0


def test_filters(client, auth):
    s1 = create_study(client, auth, "NCT04280705")
    article = create_reference(client, auth, doi="10.1056/NEJMoa2007764", pmid="32445440",
                               published="2020-10-08", study_ids=[s1["id"]])
    record = create_reference(client, auth, type="trial_registry_record", title="ACTT",
                              registration_id="nct04280705", has_results=False, published="2020-02-21",
                              study_ids=[s1["id"]])
    preprint = create_reference(client, auth, type="preprint", title="Preprint", published="2021",
                                has_results=False)

    def ids(query):
        response = client.get("/references?" + query)
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["items"]]

    assert ids("type=preprint") == [preprint["id"]]
    assert ids("type=preprint&type=journal_article") == [article["id"], preprint["id"]]
    assert ids("has_results=true") == [article["id"]]
    assert ids(f"study_id={s1['id']}") == [article["id"], record["id"]]
    assert ids("linked=false") == [preprint["id"]]
    assert ids("linked=true") == [article["id"], record["id"]]
    assert ids("doi=10.1056/nejmoa2007764") == [article["id"]]
    assert ids("doi=https://doi.org/10.1056/NEJMOA2007764") == [article["id"]]
    assert ids("pmid=32445440") == [article["id"]]
    assert ids("registration_id=NCT%2004280705") == [record["id"]]
    assert ids("year_from=2021") == [preprint["id"]]
    assert ids("year_to=2020") == [article["id"], record["id"]]
    assert ids("updated_since=2100-12-31") == []
    titles = [r["title"] for r in client.get("/references?sort=-title").get_json()["items"]]
    assert titles == sorted(titles, reverse=True)
    listed = client.get("/references?type=trial_registry_record").get_json()["items"][0]
    assert listed["type_label"] == "Trial registry record"
    assert listed["registration_id"] == "NCT04280705"
