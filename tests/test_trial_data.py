"""A study from all its sources: facets combined across records, real dates, trial status, dissemination,
placeholder titles, curators' decisions, and the filters, facets and sorts on them (through the CLI and HTTP).

The fixtures are real rows: DIRECCT's cross-registration ChiCTR2000030480 + NCT04293887 (trial_data_*.csv,
copied from ../shared/data), whose ChiCTR record says only "Parallel" while the NCT record says
"Allocation: Randomized. ... Primary purpose: Treatment".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_problem
from tests.helpers import create_study
from tests.test_imports import run_import, study_of

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WHO = FIXTURES / "trial_data_who.csv"
CROSS = FIXTURES / "trial_data_registrations.csv"
SCRAPE = FIXTURES / "trial_data_registries.csv"
AACT = FIXTURES / "ctgov_aact_studies.csv"


def test_facets_come_from_every_record_of_the_study_with_their_sources(runner, client):
    run_import(runner, CROSS, "direcct-registrations")
    run_import(runner, WHO, "ictrp-csv")
    study = study_of(client, "ChiCTR2000030480")
    assert [r["identifier"] for r in study["registrations"]] == ["ChiCTR2000030480", "NCT04293887"]
    assert (study["study_type"], study["study_aim"], study["study_design"],
            study["intervention_assignment"]) == (
        "Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")
    aim = study["facet_sources"]["study_aim"]
    assert (aim["registration"], aim["field"], aim["source"]) == ("NCT04293887", "Study design",
                                                                   "ictrp-csv/who-40")
    # The randomisation is stated by NCT's design field (a table) and by the ChiCTR title (a rule).
    assignment = study["facet_sources"]["intervention_assignment"]
    assert (assignment["registration"], assignment["strength"]) == ("NCT04293887", 2)
    # The two records disagree on the phase: the conflict stays visible.
    phase = study["facet_sources"]["phase"]
    assert phase["conflicts"] and {phase["conflicts"][0]["value"], study["phase"]} == {"Phase 4",
                                                                                        "Early phase 1"}
    # The placeholder title of the cross-registration gave way to the record the study is named by.
    assert study["title"].startswith("Randomized, open, blank controlled trial")
    assert study["facet_sources"]["title"]["registration"] == "ChiCTR2000030480"


def test_in_the_other_import_order_the_two_records_are_two_studies_until_merged(runner, client, auth):
    run_import(runner, WHO, "ictrp-csv")
    report = run_import(runner, CROSS, "direcct-registrations")  # two studies already: merge by hand
    assert "belong to different studies" in report["rejected"][0]["reason"]
    chictr, nct = study_of(client, "ChiCTR2000030480"), study_of(client, "NCT04293887")
    assert (chictr["study_aim"], chictr["intervention_assignment"]) == ("Unclear", "Randomised")
    assert chictr["facet_sources"]["intervention_assignment"]["rule"] == "title says randomised"
    merged = client.post(f"/studies/{chictr['id']}/merge", json={"from": nct["id"]}, headers=auth)
    assert merged.status_code == 200, merged.get_json()
    study = merged.get_json()
    assert study["facet_sources"]["intervention_assignment"]["registration"] == "NCT04293887"
    assert (study["study_aim"], study["registered"]) == ("Treatment and Management", "2020-02-15")
    assert study["phase"] in ("Phase 4", "Early phase 1")


def test_real_dates_status_and_the_filters_on_them(runner, client):
    run_import(runner, CROSS, "direcct-registrations")
    run_import(runner, WHO, "ictrp-csv")
    study = study_of(client, "NCT04293887")
    # registered: the earliest registration date of its records (NCT's 15/02/2020, ChiCTR's 2020-03-03)
    assert (study["registered"], study["first_published"]) == ("2020-02-15", "2020-02-15")
    assert study["start_date"] in ("2020-03-01", "2020-03-03")
    assert study["target_size"] == 328 and [c["code"] for c in study["countries"]] == ["CN"]
    assert study["recruitment_status"] in ("Recruiting", "Not recruiting")
    found = client.get("/studies?registered_from=2020-02-01&registered_to=2020-02-29"
                       "&intervention_assignment=Randomised").get_json()
    assert [s["id"] for s in found["items"]] == [study["id"]]
    assert client.get("/studies?registered_from=2020-03-01").get_json()["total"] == 0
    assert client.get("/studies?country=China").get_json()["total"] == 1
    assert client.get("/studies?country=CHN&country=DE").get_json()["total"] == 1
    assert client.get("/studies?country=DE").get_json()["total"] == 0
    stats = client.get("/stats").get_json()
    assert stats["studies_registered_by_month"] == [{"month": "2020-02", "count": 1}]
    assert stats["studies_first_published_by_month"] == [{"month": "2020-02", "count": 1}]


def test_the_registry_scrape_gives_status_completion_and_dissemination(runner, client):
    run_import(runner, CROSS, "direcct-registrations")
    report = run_import(runner, SCRAPE, "direcct-registries")
    assert report["rejected"] == [] and report["rows"] == 2
    study = study_of(client, "NCT04293887")
    assert study["primary_completion_date"] == "2020-05-30"
    assert study["facet_sources"]["primary_completion_date"]["source"] == "direcct-registries"
    assert study["dissemination"]["registry"]["results"] is False
    assert study["dissemination"]["reported"] is False
    assert client.get("/studies?results_in=none").get_json()["total"] == 1
    assert client.get("/studies?results_in=registry").get_json()["total"] == 0
    facets = client.get("/studies?facets=results_in,recruitment_status,country").get_json()["facets"]
    assert {f["value"]: f["count"] for f in facets["results_in"]}["none"] == 1
    assert sum(f["count"] for f in facets["recruitment_status"]) == 1
    again = run_import(runner, SCRAPE, "direcct-registries")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)


def test_aact_states_status_phase_and_results_and_the_completed_ones_that_never_reported(runner, client):
    run_import(runner, AACT, "ctgov-aact-csv")
    completed = client.get("/studies?recruitment_status=completed&page_size=100").get_json()
    assert completed["total"] > 0
    assert all(s["recruitment_status"] == "Completed" for s in completed["items"])
    silent = client.get("/studies?recruitment_status=Completed&results_in=none&page_size=100").get_json()
    reported = client.get("/studies?recruitment_status=Completed&results_in=registry&page_size=100"
                          ).get_json()
    assert silent["total"] + reported["total"] == completed["total"]
    assert all(not s["dissemination"]["reported"] for s in silent["items"])
    assert all(s["dissemination"]["registry"]["results"] for s in reported["items"])
    by_date = client.get("/studies?sort=-registered&page_size=100").get_json()["items"]
    days = [s["registered"] for s in by_date if s["registered"]]
    assert days == sorted(days, reverse=True) and len(set(days)) > 1


def test_a_curators_values_survive_every_import(runner, client, auth):
    run_import(runner, CROSS, "direcct-registrations")
    study = study_of(client, "ChiCTR2000030480")
    patched = client.patch(f"/studies/{study['id']}", json={
        "study_aim": "Prevention", "recruitment_status": "Completed", "title": "Curated title"}, headers=auth)
    assert patched.status_code == 200, patched.get_json()
    run_import(runner, WHO, "ictrp-csv")
    run_import(runner, SCRAPE, "direcct-registries")
    after = client.get(f"/studies/{study['id']}").get_json()
    assert (after["study_aim"], after["recruitment_status"], after["title"]) == (
        "Prevention", "Completed", "Curated title")
    assert set(after["curated"]) >= {"study_aim", "recruitment_status", "title"}
    assert after["facet_sources"]["study_aim"] == {"rule": "set by a curator"}
    # What the curator did not set is still derived from the sources.
    assert after["intervention_assignment"] == "Randomised"


@pytest.mark.parametrize(("body", "field"), [
    ({"recruitment_status": "Half done"}, "recruitment_status"),
    ({"phase": "Phase 9"}, "phase"),
    ({"countries": ["Narnia"]}, "countries.0"),
    ({"target_size": -1}, "target_size"),
    ({"registered": "2020-13-01"}, "registered"),
])
def test_bad_status_values_in_a_body_are_refused_and_change_nothing(client, auth, body, field):
    study = create_study(client, auth)
    before = client.get(f"/studies/{study['id']}")
    response = client.patch(f"/studies/{study['id']}", json=body, headers=auth)
    assert_problem(response, 422)
    assert field in response.get_json()["errors"]
    after = client.get(f"/studies/{study['id']}")
    assert (after.get_json(), after.headers["ETag"]) == (before.get_json(), before.headers["ETag"])


@pytest.mark.parametrize(("query", "field"), [
    ("recruitment_status=Half%20done", "recruitment_status"),
    ("phase=Phase%209", "phase"),
    ("country=Narnia", "country"),
    ("results_in=journal", "results_in"),
    ("registered_from=2020-02-30", "registered_from"),
    ("sort=start", "sort"),
])
def test_bad_status_filters_are_refused(client, query, field):
    response = client.get(f"/studies?{query}")
    assert_problem(response, 422)
    assert field in {key.split(".")[0] for key in response.get_json()["errors"]}


def test_an_api_study_keeps_what_it_was_given_and_sorts_without_dates_last(client, auth):
    dated = create_study(client, auth, "NCT04280705", registered="2020-02-21", countries=["us", "Mexico"],
                         recruitment_status="completed", phase="phase 3", target_size=1062)
    undated = create_study(client, auth, "NCT04292899")
    assert (dated["registered"], dated["recruitment_status"], dated["phase"]) == ("2020-02-21", "Completed",
                                                                                  "Phase 3")
    assert [c["code"] for c in dated["countries"]] == ["MX", "US"]
    assert undated["registered"] is None and undated["first_published"] == undated["updated"][:10]
    for sort in ("registered", "-registered"):
        ids = [s["id"] for s in client.get(f"/studies?sort={sort}").get_json()["items"]]
        assert ids == [dated["id"], undated["id"]], sort
    walked = client.get("/studies?sort=-registered&page_size=1&cursor=*").get_json()
    second = client.get(walked["next"]).get_json()
    assert [s["id"] for s in walked["items"] + second["items"]] == [dated["id"], undated["id"]]
    assert json.loads(json.dumps(client.get("/vocabularies/recruitment_status").get_json()))["values"]


def test_a_registry_record_reads_the_same_date_from_the_who_list_and_from_clinicaltrials_gov(runner, client):
    """The WHO list dates NCT04382053 by its first submission; AACT also gives its first posting: the
    record is dated by its registration whichever came last."""
    run_import(runner, AACT, "ctgov-aact-csv")
    record = next(r for r in study_of(client, "NCT04382053")["references"]
                  if r["type"] == "trial_registry_record")
    assert record["published"] == study_of(client, "NCT04382053")["registered"] == "2020-05-08"


def test_a_tie_between_two_records_is_broken_the_same_way_on_both_databases(runner, client, tmp_path):
    """DIRECCT's scrape of one day gives two registrations of a trial (named by its EudraCT number, which
    the scrape does not list) two statuses: the registration last in alphabetical order wins, whatever
    order the rows come in (before, it was whichever row the database returned first)."""
    cross = tmp_path / "cross.csv"
    cross.write_text("id,trn,registry,ids_old,resolved\ntri09999,2020-002494-10,EudraCT,NA,NA\n"
                     "tri09999,ISRCTN16393332,ISRCTN,NA,NA\ntri09999,NCT04559074,ClinicalTrials.gov,NA,NA\n",
                     encoding="utf-8")
    header = SCRAPE.read_text(encoding="utf-8").splitlines()[0]
    rows = ["NCT04559074,ClinicalTrials.gov,Recruiting,NA,NA,NA,NA,NA,NA,2021-01-05,NA,FALSE,FALSE,2022-04",
            "ISRCTN16393332,ISRCTN,Completed,NA,NA,NA,NA,NA,NA,2021-01-05,NA,FALSE,FALSE,2022-04"]
    run_import(runner, cross, "direcct-registrations")
    for order in (rows, rows[::-1]):
        scrape = tmp_path / "scrape.csv"
        scrape.write_text("\n".join([header, *order]) + "\n", encoding="utf-8")
        run_import(runner, scrape, "direcct-registries")
        study = study_of(client, "NCT04559074")
        assert (study["name"], study["recruitment_status"]) == ("2020-002494-10", "Recruiting")
        assert study["facet_sources"]["recruitment_status"]["conflicts"][0]["value"] == "Completed"
