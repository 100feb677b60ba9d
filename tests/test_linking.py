"""Automatic linking by registration identifier, both ways, with manual links and unlinks respected."""

from __future__ import annotations

import json

import pytest

from service.db import database
from service.models import ReferenceIdentifier, StudyReference
from tests.conftest import SEEDS, assert_problem
from tests.helpers import create_reference, create_study


def _seed_parts():
    document = json.loads((SEEDS / "ccsr-seed.json").read_text(encoding="utf-8"))
    study = dict(document["studies"][0])
    refs = study.pop("references")
    article = next(r for r in refs if r["type"] == "journal_article")
    return study, article


def _links(client, study_id):
    return {r["id"]: (r["link"], r["link_identifier"])
            for r in client.get(f"/studies/{study_id}").get_json()["references"]}


@pytest.mark.parametrize("study_first", [True, False])
def test_seeded_study_and_its_article_link_in_either_order(client, auth, study_first):
    study_body, article_body = _seed_parts()
    if study_first:
        study = client.post("/studies", json=study_body, headers=auth).get_json()
        article = client.post("/references", json=article_body, headers=auth).get_json()
    else:
        article = client.post("/references", json=article_body, headers=auth).get_json()
        assert article["study_ids"] == [] and article["registration_ids_found"] == ["ChiCTR2000030261"]
        study = client.post("/studies", json=study_body, headers=auth).get_json()
    assert _links(client, study["id"]) == {article["id"]: ("auto", "ChiCTR2000030261")}
    assert client.get(f"/references/{article['id']}").get_json()["study_ids"] == [study["id"]]


def test_found_identifiers_and_the_unlinked_queue(client, auth):
    create_study(client, auth, "NCT04280705")
    cited = create_reference(client, auth, title="ACTT-1", abstract="Funded. ClinicalTrials.gov "
                             "number, NCT 04280705; EudraCT 2020-001052-18.")
    orphan = create_reference(client, auth, title="Another", abstract="Registered as ISRCTN40302986.")
    plain = create_reference(client, auth, title="No identifier", abstract="Nothing here.")
    assert cited["registration_ids_found"] == ["NCT04280705", "2020-001052-18"]
    queue = client.get("/references?linked=false").get_json()["items"]
    assert {r["id"]: r["registration_ids_found"] for r in queue} == {
        orphan["id"]: ["ISRCTN40302986"], plain["id"]: []}


def test_two_studies_cited_link_both_two_registrations_of_one_study_link_once(client, auth):
    one = create_study(client, auth, "NCT04280705", registrations=[
        {"identifier": "NCT04280705"}, {"identifier": "EUCTR2020-001052-18-DE"}])
    two = create_study(client, auth, "ChiCTR2000029308")
    both = create_reference(client, auth, abstract="Trials NCT04280705 and ChiCTR2000029308.")
    assert both["study_ids"] == sorted([one["id"], two["id"]])
    same = create_reference(client, auth, title="Same trial twice",
                            abstract="EudraCT 2020-001052-18, NCT04280705.")
    assert same["study_ids"] == [one["id"]]
    assert _links(client, one["id"])[same["id"]] == ("auto", "2020-001052-18")


def test_a_study_gaining_or_losing_a_registration_gains_or_loses_its_auto_links(client, auth):
    ref = create_reference(client, auth, abstract="TRIAL REGISTRATION: ISRCTN40302986.")
    manual = create_reference(client, auth, title="Linked by hand", abstract="ISRCTN40302986")
    study = create_study(client, auth, "NCT04280705")
    assert client.put(f"/studies/{study['id']}/references/{manual['id']}", headers=auth).status_code == 201
    before = client.get(f"/references/{ref['id']}").get_json()["updated"]
    client.patch(f"/studies/{study['id']}", json={"registrations": [
        {"identifier": "NCT04280705"}, {"identifier": "isrctn 40302986"}]}, headers=auth)
    after = client.get(f"/references/{ref['id']}").get_json()
    assert after["study_ids"] == [study["id"]] and after["updated"] > before
    assert _links(client, study["id"]) == {ref["id"]: ("auto", "ISRCTN40302986"),
                                          manual["id"]: ("manual", None)}
    client.patch(f"/studies/{study['id']}", json={"registrations": [{"identifier": "NCT04280705"}]},
                 headers=auth)
    # The auto link goes with the registration; the manual one stays.
    assert _links(client, study["id"]) == {manual["id"]: ("manual", None)}


def test_editing_a_reference_moves_its_auto_links(client, auth):
    a = create_study(client, auth, "NCT04280705")
    b = create_study(client, auth, "NCT04292899")
    ref = create_reference(client, auth, abstract="Registered: NCT04280705.")
    assert ref["study_ids"] == [a["id"]]
    moved = client.patch(f"/references/{ref['id']}", json={"abstract": "Registered: NCT04292899."},
                         headers=auth).get_json()
    assert moved["study_ids"] == [b["id"]] and moved["registration_ids_found"] == ["NCT04292899"]
    own = client.patch(f"/references/{ref['id']}", json={"abstract": None, "type": "trial_registry_record",
                                                         "registration_id": "nct 04280705"},
                       headers=auth).get_json()
    assert own["study_ids"] == [a["id"]] and own["registration_id"] == "NCT04280705"


def test_manual_unlink_is_remembered_and_manual_link_is_never_removed(client, auth):
    study = create_study(client, auth, "NCT04280705")
    ref = create_reference(client, auth, abstract="NCT04280705")
    assert client.delete(f"/studies/{study['id']}/references/{ref['id']}", headers=auth).status_code == 204
    client.patch(f"/references/{ref['id']}", json={"abstract": "Again: NCT04280705."}, headers=auth)
    client.patch(f"/studies/{study['id']}", json={"title": "Renamed", "registrations": [
        {"identifier": "NCT04280705"}]}, headers=auth)
    assert client.get(f"/references/{ref['id']}").get_json()["study_ids"] == []
    assert client.put(f"/studies/{study['id']}/references/{ref['id']}", headers=auth).status_code == 201
    client.patch(f"/references/{ref['id']}", json={"abstract": "No identifier any more."}, headers=auth)
    assert _links(client, study["id"]) == {ref["id"]: ("manual", None)}


def test_registrations_resolve_any_written_form(client, auth):
    study = create_study(client, auth, "NCT04280705", registrations=[
        {"identifier": "NCT04280705"}, {"identifier": "EUCTR2020-001052-18"},
        {"identifier": "CTRI/2020/12/029986"}, {"identifier": "JPRN-UMIN000040341"}])
    for written in ("NCT04280705", "nct%2004280705", "NCT%2304280705", "EUCTR2020-001052-18-FR",
                    "2020-001052-18", "CTRI/2020/12/029986", "JPRN-UMIN000040341", "umin000040341"):
        response = client.get(f"/registrations/{written}")
        assert response.status_code == 200, written
        assert response.get_json()["id"] == study["id"] and response.headers["ETag"]
    body = assert_problem(client.get("/registrations/NCT09999999"), 404)
    assert "NCT09999999" in body["detail"]
    assert_problem(client.get("/registrations/" + "N" * 200), 404)


def test_relink_command_restores_links(client, auth, runner):
    study = create_study(client, auth, "NCT04280705")
    for i in range(3):
        create_reference(client, auth, title=f"Report {i}", abstract="NCT04280705")
    with database.connection_context():
        StudyReference.delete().execute()
        ReferenceIdentifier.delete().execute()
    result = runner.invoke(args=["relink"])
    assert result.exit_code == 0, result.output
    assert "3 link(s) added" in result.output
    assert client.get(f"/studies/{study['id']}").get_json()["reference_count"] == 3
    assert "0 link(s) added" in runner.invoke(args=["relink"]).output
