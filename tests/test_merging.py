"""Duplicate studies through HTTP: candidates and their reasons, rejecting, merging, splitting, the
redirects of merged ids and the feed of them."""

from __future__ import annotations

import json

import pytest
from playhouse.test_utils import count_queries

from service.db import database
from service.domain import merging
from service.domain.errors import Conflict
from service.models import LinkSuppression, Study, StudyCountry
from tests.conftest import assert_problem, make_token
from tests.helpers import create_reference, create_study

# The real register's CRASH-19: one trial, two registrations held by two studies.
CRASH = "Coronavirus Response - Active Support for Hospitalised Covid-19 Patients (CRASH-19)"
NCT, PACTR = "NCT04343001", "PACTR202006473370201"


def crash_pair(client, auth, *, article=True):
    """Two studies of CRASH-19 (one per registry, each with its registry record) and, optionally, an
    article whose abstract cites both registrations."""
    a = create_study(client, auth, NCT, title=CRASH)
    b = create_study(client, auth, PACTR, title="CRASH-19 trial", study_type="Unclear")
    create_reference(client, auth, type="trial_registry_record", title=CRASH, registration_id=NCT,
                     abstract=None, has_results=False)
    create_reference(client, auth, type="trial_registry_record", title=CRASH.upper() + ".",
                     registration_id=PACTR, abstract=None, has_results=False)
    ref = None
    if article:
        ref = create_reference(client, auth, title="Aspirin, losartan and simvastatin in COVID-19",
                               abstract=f"Trial registration: {NCT}; {PACTR}.")
    return a, b, ref


def duplicates(client, query=""):
    response = client.get("/studies/duplicates" + query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def merge(client, auth, into, other, **headers):
    return client.post(f"/studies/{into}/merge", json={"from": other}, headers={**auth, **headers})


def etag(client, study_id):
    return client.get(f"/studies/{study_id}").headers["ETag"]


def test_crash_19_is_proposed_then_merged(client, auth):
    a, b, article = crash_pair(client, auth)
    page = duplicates(client)
    assert page["total"] == 1 and page["page"] == 1 and page["next"] is None
    candidate = page["items"][0]
    assert candidate["study_ids"] == [a["id"], b["id"]] and candidate["status"] == "open"
    assert candidate["score"] == 0.79
    kinds = {r["kind"]: r for r in candidate["reasons"]}
    assert kinds["same_title"]["title"] == CRASH
    assert kinds["article_cites_both"] == {"kind": "article_cites_both", "reference_id": article["id"],
                                           "studies_named": 2}
    assert [s["name"] for s in candidate["studies"]] == [NCT, PACTR]
    assert candidate["studies"][1]["registrations"] == [{"registry": "PACTR", "identifier": PACTR}]

    before = client.get(f"/studies/{a['id']}").get_json()
    response = merge(client, auth, a["id"], b["id"], **{"If-Match": etag(client, a["id"])})
    assert response.status_code == 200, response.get_json()
    merged = response.get_json()
    assert merged == client.get(f"/studies/{a['id']}").get_json()
    assert response.headers["ETag"] == etag(client, a["id"])
    assert [r["identifier"] for r in merged["registrations"]] == [NCT, PACTR]
    assert merged["reference_count"] == 3 and merged["name"] == NCT and merged["title"] == CRASH
    assert merged["updated"] > before["updated"]
    assert client.get(f"/references/{article['id']}").get_json()["study_ids"] == [a["id"]]
    assert client.get(f"/studies?registration={PACTR.lower()}").get_json()["items"][0]["id"] == a["id"]
    assert client.get(f"/registrations/{PACTR}").get_json()["id"] == a["id"]
    assert [s["id"] for s in client.get("/studies").get_json()["items"]] == [a["id"]]
    assert [s["id"] for s in client.get("/studies?q=losartan").get_json()["items"]] == [a["id"]]
    since = before["updated"]
    assert [s["id"] for s in client.get(f"/studies?updated_since={since}").get_json()["items"]] == [a["id"]]

    gone = client.get(f"/studies/{b['id']}")
    body = assert_problem(gone, 308)
    assert gone.headers["Location"] == f"/studies/{a['id']}"
    assert body["merged_into"] == a["id"] and str(a["id"]) in body["detail"]
    feed = client.get(f"/studies/merged?since={since}").get_json()
    assert feed["total"] == 1
    assert feed["items"] == [{"id": b["id"], "into": a["id"], "name": PACTR,
                              "merged": feed["items"][0]["merged"]}]
    assert feed["items"][0]["merged"] >= since
    assert duplicates(client)["total"] == 0


def test_merged_id_redirects_everywhere(client, auth):
    a, b, article = crash_pair(client, auth)
    assert merge(client, auth, a["id"], b["id"]).status_code == 200
    old, new = f"/studies/{b['id']}", f"/studies/{a['id']}"
    cases = [
        (client.get(old), new),
        (client.get(old + "?include=references"), new + "?include=references"),
        (client.patch(old, json={"title": "Changed"}, headers=auth), new),
        (client.delete(old, headers=auth), new),
        (client.get(old + "/references"), new + "/references"),
        (client.put(f"{old}/references/{article['id']}", headers=auth), f"{new}/references/{article['id']}"),
        (client.delete(f"{old}/references/{article['id']}", headers=auth),
         f"{new}/references/{article['id']}"),
        (client.post(old + "/merge", json={"from": 999}, headers=auth), new + "/merge"),
        (client.post(old + "/split", json={"registrations": [NCT]}, headers=auth), new + "/split"),
    ]
    for response, location in cases:
        body = assert_problem(response, 308)
        assert response.headers["Location"] == location
        assert body["merged_into"] == a["id"]
    survivor = client.get(new).get_json()
    assert survivor["title"] == CRASH and survivor["reference_count"] == 3


def test_merge_moves_links_keeping_manual_and_curators_unlinks(client, auth):
    a = create_study(client, auth, "NCT04280705", title="Survivor study")
    b = create_study(client, auth, "ISRCTN40302986", title="Merged study")
    both = create_reference(client, auth, title="Cites both", abstract="NCT04280705 and ISRCTN40302986")
    assert client.put(f"/studies/{b['id']}/references/{both['id']}", headers=auth).status_code == 201
    only_b = create_reference(client, auth, title="Cites the merged one", abstract="ISRCTN40302986")
    unlinked_by_b = create_reference(client, auth, title="Wrongly cites", abstract="ISRCTN40302986 typo")
    assert client.delete(f"/studies/{b['id']}/references/{unlinked_by_b['id']}",
                         headers=auth).status_code == 204
    manual_a = create_reference(client, auth, title="Linked by hand to the survivor")
    assert client.put(f"/studies/{a['id']}/references/{manual_a['id']}", headers=auth).status_code == 201
    unlinked_by_a = create_reference(client, auth, title="Unlinked from survivor", abstract="NCT04280705")
    assert client.delete(f"/studies/{a['id']}/references/{unlinked_by_a['id']}",
                         headers=auth).status_code == 204
    assert client.put(f"/studies/{b['id']}/references/{unlinked_by_a['id']}", headers=auth).status_code == 201
    reference_before = client.get(f"/references/{only_b['id']}").get_json()

    assert merge(client, auth, a["id"], b["id"]).status_code == 200
    links = {r["id"]: (r["link"], r["link_identifier"])
             for r in client.get(f"/studies/{a['id']}/references").get_json()}
    assert links == {both["id"]: ("manual", None), only_b["id"]: ("auto", "ISRCTN40302986"),
                     manual_a["id"]: ("manual", None)}
    moved = client.get(f"/references/{only_b['id']}").get_json()
    assert moved["study_ids"] == [a["id"]] and moved["updated"] > reference_before["updated"]
    # Both curators' unlinks hold for the survivor: a relink never brings them back.
    with database.connection_context():
        unlinked = {s.reference_id for s in LinkSuppression.select()}
        assert unlinked == {unlinked_by_a["id"], unlinked_by_b["id"]}
        assert {s.study_id for s in LinkSuppression.select()} == {a["id"]}
    client.patch(f"/references/{unlinked_by_b['id']}", json={"notes": "ISRCTN40302986 again"}, headers=auth)
    assert client.get(f"/references/{unlinked_by_b['id']}").get_json()["study_ids"] == []


def test_merge_copies_what_only_the_other_curator_set(client, auth):
    a = create_study(client, auth, "NCT04280705", title="Survivor", study_aim="Prevention", countries=["GB"])
    b = create_study(client, auth, "ISRCTN40302986", title="Other", study_aim="Treatment and Management",
                     study_type="Observational", countries=["NG", "KE"])
    with database.connection_context():
        Study.update(curated=json.dumps(["study_aim"])).where(Study.id == a["id"]).execute()
        Study.update(curated=json.dumps(["study_aim", "study_type", "countries"])).where(
            Study.id == b["id"]).execute()
    body = merge(client, auth, a["id"], b["id"]).get_json()
    assert body["study_aim"] == "Prevention" and body["study_type"] == "Observational"
    assert [c["code"] for c in body["countries"]] == ["KE", "NG"]
    with database.connection_context():
        assert json.loads(Study.get_by_id(a["id"]).curated) == ["study_aim", "study_type", "countries"]
        assert {c.code for c in StudyCountry.select().where(StudyCountry.study == a["id"])} == {"NG", "KE"}


def test_merge_chains_and_moves_duplicate_decisions(client, auth):
    a = create_study(client, auth, "NCT04280705", title="A")
    b = create_study(client, auth, "ISRCTN40302986", title="B")
    c = create_study(client, auth, "DRKS00021305", title="C")
    d = create_study(client, auth, "ChiCTR2000029308", title="D")
    assert client.post("/studies/duplicates/reject", json={"study_ids": [d["id"], b["id"]]},
                       headers=auth).status_code == 201
    assert client.post("/studies/duplicates/reject", json={"study_ids": [a["id"], b["id"]]},
                       headers=auth).status_code == 201
    assert merge(client, auth, b["id"], a["id"]).status_code == 200
    assert merge(client, auth, c["id"], b["id"]).status_code == 200
    for old in (a, b):
        response = client.get(f"/studies/{old['id']}")
        assert_problem(response, 308)
        assert response.headers["Location"] == f"/studies/{c['id']}"
    feed = client.get("/studies/merged").get_json()
    assert [(m["id"], m["into"], m["name"]) for m in feed["items"]] == [
        (a["id"], c["id"], "NCT04280705"), (b["id"], c["id"], "ISRCTN40302986")]
    rejected = duplicates(client, "?status=rejected")["items"]
    assert [r["study_ids"] for r in rejected] == [sorted([c["id"], d["id"]])]
    assert len(client.get(f"/studies/{c['id']}").get_json()["registrations"]) == 3


def test_merge_refuses_bad_input_and_changes_nothing(client, auth):
    a, b, _ = crash_pair(client, auth, article=False)
    c = create_study(client, auth, "DRKS00021305", title="Another")
    assert merge(client, auth, c["id"], b["id"]).status_code == 200  # b is now merged into c
    before = {i: client.get(f"/studies/{i}").get_json() for i in (a["id"], c["id"])}

    assert_problem(merge(client, auth, a["id"], a["id"]), 422, "from")
    unknown = assert_problem(merge(client, auth, a["id"], 9999), 404, "from")
    assert "9999" in unknown["detail"]
    again = assert_problem(merge(client, auth, a["id"], b["id"]), 409, "from")
    assert again["merged_into"] == c["id"]
    assert_problem(client.post(f"/studies/{a['id']}/merge", json={}, headers=auth), 422, "from")
    assert_problem(client.post(f"/studies/{a['id']}/merge", headers=auth), 422, "from")
    assert_problem(client.post(f"/studies/{a['id']}/merge", data="from=2", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"}), 415)
    for bad in ("abc", "2", 2.5, None, True, 0, -1, 2**40, [c["id"]]):
        response = client.post(f"/studies/{a['id']}/merge", json={"from": bad}, headers=auth)
        assert_problem(response, 422, "from")
    assert_problem(client.post(f"/studies/{a['id']}/merge", json={"from": c["id"], "into": 1}, headers=auth),
                   422, "into")
    assert_problem(client.post(f"/studies/{a['id']}/merge", data="{", headers={
        **auth, "Content-Type": "application/json"}), 400)
    assert_problem(client.post(f"/studies/{a['id']}/merge", json=[1], headers=auth), 422)
    assert_problem(merge(client, auth, a["id"], c["id"], **{"If-Match": '"stale"'}), 412)
    assert_problem(merge(client, auth, 9999, c["id"]), 404)
    assert_problem(client.post(f"/studies/{a['id']}/merge", json={"from": c["id"]}), 401)
    other_scope = {"Authorization": f"Bearer {make_token('references')}"}
    assert_problem(client.post(f"/studies/{a['id']}/merge", json={"from": c["id"]}, headers=other_scope), 403)
    assert {i: client.get(f"/studies/{i}").get_json() for i in (a["id"], c["id"])} == before


def test_merge_failing_midway_changes_nothing(client, auth, monkeypatch):
    a, b, article = crash_pair(client, auth)
    before = {i: client.get(f"/studies/{i}").get_json() for i in (a["id"], b["id"])}
    listed = duplicates(client)

    def fail(*args, **kwargs):
        raise Conflict("Injected failure after every row was written.")

    # The last step of a merge, after registrations, links, the tombstone and the delete were written.
    monkeypatch.setattr(merging.studies, "touch_references", fail)
    assert_problem(merge(client, auth, a["id"], b["id"]), 409)
    monkeypatch.undo()
    assert {i: client.get(f"/studies/{i}").get_json() for i in (a["id"], b["id"])} == before
    assert client.get("/studies/merged").get_json()["total"] == 0
    assert client.get(f"/references/{article['id']}").get_json()["study_ids"] == [a["id"], b["id"]]
    assert duplicates(client) == listed
    assert merge(client, auth, a["id"], b["id"]).status_code == 200


def test_signals_and_their_limits(client, auth):
    title = "Hydroxychloroquine for the prevention of COVID-19 in health care workers"
    a = create_study(client, auth, "NCT04280705", title=title)
    same_registry = create_study(client, auth, "NCT04292899", title=title.upper())
    other_registry = create_study(client, auth, "ISRCTN40302986", title=f" {title}! ")
    create_study(client, auth, "DRKS00021305", title="Untitled trial registered as DRKS00021305")
    create_study(client, auth, "DRKS00021306", title="Untitled trial registered as DRKS00021306")
    create_study(client, auth, "ChiCTR2000029308", title="COVID-19")
    create_study(client, auth, "CTRI/2020/04/024775", title="Covid 19")
    s1 = create_study(client, auth, "ACTRN12620000445976", title="One")
    s2 = create_study(client, auth, "IRCT20200310046736N1", title="Two")
    s3 = create_study(client, auth, "KCT0005234", title="Three")
    s4 = create_study(client, auth, "TCTR20200401002", title="Four")
    create_reference(client, auth, title="Three trials",
                     abstract="ACTRN12620000445976, IRCT20200310046736N1, KCT0005234")
    create_reference(client, auth, title="A review of four", abstract="ACTRN12620000445976 "
                     "IRCT20200310046736N1 KCT0005234 TCTR20200401002")
    two_ncts = create_study(client, auth, "NCT04252664", title="Mild")
    create_study(client, auth, "NCT04257656", title="Severe")
    create_reference(client, auth, title="Two trials reported together", abstract="NCT04252664, NCT04257656")
    create_reference(client, auth, type="trial_registry_record", title="A registry record",
                     registration_id="TCTR20200401002", abstract="Secondary id: ACTRN12620000445976")
    pairs = {tuple(c["study_ids"]): c for c in duplicates(client)["items"]}
    three = [s1["id"], s2["id"], s3["id"]]
    # A registry record citing another registry's identifier is linked to both studies: its title is
    # then a title of both (a cross-registration), but the review naming four studies is no signal.
    expected = {(a["id"], other_registry["id"]), (same_registry["id"], other_registry["id"]),
                *((x, y) for i, x in enumerate(three) for y in three[i + 1:]), (s1["id"], s4["id"])}
    assert set(pairs) == expected
    assert pairs[(a["id"], other_registry["id"])]["score"] == 0.7
    assert pairs[(a["id"], other_registry["id"])]["reasons"] == [{"kind": "same_title", "title": title}]
    assert pairs[(s1["id"], s2["id"])]["score"] == 0.1
    assert pairs[(s1["id"], s2["id"])]["reasons"][0]["studies_named"] == 3
    # Several articles naming the same three trials do not add up to a duplicate.
    create_reference(client, auth, title="Three trials again",
                     abstract="ACTRN12620000445976; IRCT20200310046736N1; KCT0005234")
    again = {tuple(c["study_ids"]): c for c in duplicates(client)["items"]}
    assert again[(s1["id"], s2["id"])]["score"] == 0.1
    assert pairs[(s1["id"], s4["id"])]["reasons"] == [{"kind": "same_title", "title": "A registry record"}]
    assert all(two_ncts["id"] not in key for key in pairs)


def test_reject_and_list_by_status_and_pages(client, auth):
    a, b, _ = crash_pair(client, auth)
    title = "Hydroxychloroquine for the prevention of COVID-19 in health care workers"
    c = create_study(client, auth, "NCT04280705", title=title)
    d = create_study(client, auth, "ISRCTN40302986", title=title)
    first = duplicates(client, "?page_size=1")
    assert first["total"] == 2 and first["items"][0]["study_ids"] == [a["id"], b["id"]]
    assert first["next"].endswith("page_size=1&page=2") and first["prev"] is None
    second = client.get(first["next"])
    assert second.get_json()["items"][0]["study_ids"] == [c["id"], d["id"]]
    assert second.get_json()["next"] is None and second.get_json()["prev"].endswith("page=1")
    assert 'rel="prev"' in second.headers["Link"]
    assert duplicates(client, "?page=3")["items"] == []

    path = "/studies/duplicates/reject"
    assert_problem(client.post(path, json={"study_ids": [a["id"], b["id"]]}), 401)
    response = client.post(path, json={"study_ids": [b["id"], a["id"]]}, headers=auth)
    assert response.status_code == 201
    assert response.get_json()["study_ids"] == [a["id"], b["id"]]
    assert response.get_json()["status"] == "rejected"
    assert client.post(path, json={"study_ids": [a["id"], b["id"]]}, headers=auth).status_code == 200
    assert [c_["study_ids"] for c_ in duplicates(client)["items"]] == [[c["id"], d["id"]]]
    rejected = duplicates(client, "?status=rejected")["items"]
    assert [r["study_ids"] for r in rejected] == [[a["id"], b["id"]]]
    assert rejected[0]["status"] == "rejected" and rejected[0]["decided"] and rejected[0]["score"] == 0.79
    assert duplicates(client, "?status=all")["total"] == 2

    for body, field in (({"study_ids": [a["id"]]}, "study_ids"),
                        ({"study_ids": [a["id"], a["id"]]}, "study_ids"),
                        ({"study_ids": [a["id"], 9999]}, "study_ids.1"), ({}, "study_ids"),
                        ({"study_ids": [a["id"], "x"]}, "study_ids.1"),
                        ({"study_ids": [a["id"], b["id"]], "why": "no"}, "why")):
        assert_problem(client.post(path, json=body, headers=auth), 422, field)
    assert_problem(client.get("/studies/duplicates?status=closed"), 422, "status")
    assert_problem(client.get("/studies/duplicates?sort=score"), 422, "sort")
    assert_problem(client.get("/studies/duplicates?page_size=0"), 422, "page_size")
    assert merge(client, auth, c["id"], d["id"]).status_code == 200
    merged = assert_problem(client.post(path, json={"study_ids": [a["id"], d["id"]]}, headers=auth),
                            422, "study_ids.1")
    assert "merged into" in merged["errors"]["study_ids.1"][0]


def test_merged_feed_pages_and_filters(client, auth):
    survivor = create_study(client, auth, "NCT04280705", title="Survivor")
    ids = []
    for identifier in ("ISRCTN40302986", "DRKS00021305", "ChiCTR2000029308"):
        other = create_study(client, auth, identifier, title=identifier)
        assert merge(client, auth, survivor["id"], other["id"]).status_code == 200
        ids.append(other["id"])
    first = client.get("/studies/merged?page_size=2").get_json()
    assert [m["id"] for m in first["items"]] == ids[:2] and first["total"] == 3
    assert [m["id"] for m in client.get(first["next"]).get_json()["items"]] == ids[2:]
    walk = client.get("/studies/merged?cursor=*&page_size=2").get_json()
    assert [m["id"] for m in client.get(walk["next"]).get_json()["items"]] == ids[2:]
    last = first["items"][1]["merged"]
    assert [m["id"] for m in client.get(f"/studies/merged?since={last}").get_json()["items"]] == ids[1:]
    assert client.get("/studies/merged?since=2100-12-31").get_json()["items"] == []
    assert_problem(client.get("/studies/merged?since=yesterday"), 422, "since")
    assert_problem(client.get("/studies/merged?into=1"), 422, "into")


def split_setup(client, auth):
    study = create_study(client, auth, NCT, title="CRASH-19",
                         registrations=[{"identifier": NCT}, {"identifier": PACTR}])
    nct_record = create_reference(client, auth, type="trial_registry_record", title=CRASH,
                                  registration_id=NCT, abstract=None, has_results=False)
    pactr_record = create_reference(client, auth, type="trial_registry_record", title="CRASH-19 in Africa",
                                    registration_id=PACTR, abstract=None, has_results=False)
    cites_both = create_reference(client, auth, title="Both", abstract=f"{NCT} {PACTR}")
    cites_pactr = create_reference(client, auth, title="Only the PACTR one", abstract=PACTR)
    manual = create_reference(client, auth, title="By hand", abstract=PACTR)
    assert client.put(f"/studies/{study['id']}/references/{manual['id']}", headers=auth).status_code == 201
    return study, {"nct": nct_record, "pactr": pactr_record, "both": cites_both, "pactr_only": cites_pactr,
                   "manual": manual}


def test_split_moves_registrations_and_their_references(client, auth):
    study, refs = split_setup(client, auth)
    before = client.get(f"/studies/{study['id']}")
    response = client.post(f"/studies/{study['id']}/split", json={"registrations": ["pactr 202006473370201"]},
                           headers={**auth, "If-Match": before.headers["ETag"]})
    assert response.status_code == 201, response.get_json()
    new = response.get_json()
    assert response.headers["Location"] == f"/studies/{new['id']}"
    assert new["name"] == PACTR and new["title"] == "CRASH-19 in Africa"
    assert new["registrations"] == [{"registry": "PACTR", "identifier": PACTR}]
    assert new["study_type"] == "Unclear" and new["study_aim"] == "Unclear"
    moved = {refs[k]["id"] for k in ("pactr", "both", "pactr_only", "manual")}
    assert {r["id"] for r in new["references"]} == moved
    old = client.get(f"/studies/{study['id']}").get_json()
    assert old["registrations"] == [{"registry": "ClinicalTrials.gov", "identifier": NCT}]
    links = {r["id"]: r["link"] for r in old["references"]}
    assert links == {refs["nct"]["id"]: "auto", refs["both"]["id"]: "auto", refs["manual"]["id"]: "manual"}
    assert old["updated"] > before.get_json()["updated"]
    assert client.get(f"/references/{refs['pactr_only']['id']}").get_json()["study_ids"] == [new["id"]]
    # Not proposed again as a duplicate pair: the split remembered it as rejected.
    assert duplicates(client)["total"] == 0
    rejected = duplicates(client, "?status=rejected")["items"]
    assert [c["study_ids"] for c in rejected] == [[study["id"], new["id"]]]
    assert client.get(f"/registrations/{PACTR}").get_json()["id"] == new["id"]


def test_split_takes_the_old_title_and_renames_when_its_name_moves(client, auth):
    study = create_study(client, auth, NCT, title="CRASH-19",
                         registrations=[{"identifier": NCT}, {"identifier": PACTR}])
    response = client.post(f"/studies/{study['id']}/split", json={"registrations": [NCT.lower()]},
                           headers=auth)
    assert response.status_code == 201
    assert response.get_json()["title"] == "CRASH-19" and response.get_json()["name"] == NCT
    assert client.get(f"/studies/{study['id']}").get_json()["name"] == PACTR


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"registrations": [NCT, PACTR]}, 422, "registrations"),
    ({"registrations": [PACTR, "pactr202006473370201", NCT]}, 422, "registrations"),
    ({"registrations": ["ISRCTN40302986"]}, 422, "registrations.0"),
    ({"registrations": [PACTR, "NCT 04280705"]}, 422, "registrations.1"),
    ({"registrations": []}, 422, "registrations"),
    ({}, 422, "registrations"),
    ({"registrations": PACTR}, 422, "registrations"),
    ({"registrations": [""]}, 422, "registrations.0"),
    ({"registrations": [5]}, 422, "registrations.0"),
    ({"registrations": [PACTR], "name": "x"}, 422, "name"),
    ({"registrations": [PACTR] * 51}, 422, "registrations"),
    ({"registrations": ["x" * 101]}, 422, "registrations.0"),
])
def test_split_refuses_bad_input_and_changes_nothing(client, auth, body, status, field):
    study, _ = split_setup(client, auth)
    before = client.get(f"/studies/{study['id']}").get_json()
    assert_problem(client.post(f"/studies/{study['id']}/split", json=body, headers=auth), status, field)
    assert client.get(f"/studies/{study['id']}").get_json() == before
    assert client.get("/studies").get_json()["total"] == 1


def test_split_needs_a_current_etag_and_a_token(client, auth):
    study, _ = split_setup(client, auth)
    path = f"/studies/{study['id']}/split"
    stale = client.post(path, json={"registrations": [PACTR]}, headers={**auth, "If-Match": '"x"'})
    assert_problem(stale, 412)
    assert_problem(client.post(path, json={"registrations": [PACTR]}), 401)
    assert_problem(client.post("/studies/9999/split", json={"registrations": [PACTR]}, headers=auth), 404)
    assert client.get("/studies").get_json()["total"] == 1


def test_candidates_take_six_queries_whatever_their_number(client, auth):
    def queries():
        with count_queries() as counter:
            assert client.get("/studies/duplicates?status=all").status_code == 200
        return counter.count

    crash_pair(client, auth)
    few = queries()
    title = "Hydroxychloroquine for the prevention of COVID-19 in health care workers"
    for i, (x, y) in enumerate((("NCT04280705", "ISRCTN40302986"), ("NCT04292899", "DRKS00021305"))):
        create_study(client, auth, x, title=f"{title} {i}")
        create_study(client, auth, y, title=f"{title} {i}")
    assert duplicates(client)["total"] == 3
    # studies, registrations, registry records' titles, source records' titles, references' cited
    # studies, decisions
    assert few == queries() == 6
