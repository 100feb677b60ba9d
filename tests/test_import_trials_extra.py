"""Imports of ClinicalTrials.gov studies in AACT CSV (`ctgov-aact-csv`) and of the WHO ICTRP export as an
Excel workbook (`ictrp-xlsx`), through the CLI and POST /imports, on excerpts of the real files
(fixtures/make_trials_extra_fixtures.py); every expected value below was read in the source rows."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from service.db import database
from service.formats.xlsx import cell_text
from service.models import Reference, Registration, Study, StudyReference
from tests.conftest import assert_problem

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AACT = FIXTURES / "ctgov_aact_studies.csv"
XLSX = FIXTURES / "ictrp_who_7jul2020.xlsx"
CTGOV = FIXTURES / "ctgov_page.json"
WHO = FIXTURES / "ictrp_who_40.csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def run_import(runner, path, fmt, *extra, ok=True):
    result = runner.invoke(args=["import", str(path), "--format", fmt, "--quiet", *extra])
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)
    assert result.exit_code != 0
    return result


def counts():
    with database.connection_context():
        return {m.__name__: m.select().count() for m in (Study, Registration, Reference, StudyReference)}


def study_of(client, identifier):
    response = client.get(f"/registrations/{identifier}")
    assert response.status_code == 200, identifier
    return response.get_json()


def record_of(client, identifier):
    [record] = [r for r in study_of(client, identifier)["references"] if r["type"] == "trial_registry_record"]
    return record


def facets(study):
    return (study["study_type"], study["study_aim"], study["study_design"], study["intervention_assignment"])


def snapshot(client):
    """Every study's and reference's `updated`, by id."""
    studies = client.get("/studies?page_size=100").get_json()["items"]
    references = client.get("/references?page_size=100").get_json()["items"]
    return ({s["id"]: s["updated"] for s in studies}, {r["id"]: r["updated"] for r in references})


def _visible(study: dict) -> dict:
    """A study as a reader sees it: its values, not where each came from."""
    return {k: v for k, v in study.items() if k != "facet_sources"}


def _same_study(study: dict) -> tuple:
    return (study["id"], study["name"], study["title"], study["registrations"], facets(study))


# -- ctgov-aact-csv -----------------------------------------------------------------------------------------

def test_aact_rows_map_like_clinicaltrials_gov_studies(runner, client):
    report = run_import(runner, AACT, "ctgov-aact-csv")
    assert report["layout"] == "aact-studies" and report["encoding"] == "utf-8"
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (24, 24, [], [])
    # NCT04382053 (line 2): Interventional, Phase 2, Completed, 143 Actual, Novartis, posted 5/11/2020,
    # results first posted 11/30/2021.
    novartis = study_of(client, "NCT04382053")
    assert novartis["title"] == "Study of Efficacy and Safety of DV890 in Patients With COVID-19 Pneumonia"
    # Its official title ("Phase 2, Randomized, Controlled, Open Label ...") states the assignment.
    assert facets(novartis) == ("Interventional", "Unclear", "Unclear", "Randomised")
    assert novartis["facet_sources"]["intervention_assignment"]["field"] == "official_title"
    assert (novartis["recruitment_status"], novartis["phase"], novartis["target_size"]) == (
        "Completed", "Phase 2", 143)
    assert novartis["registered"] == "2020-05-08" and novartis["dissemination"]["registry"] == {
        "results": True, "date": "2021-11-30"}
    assert novartis["registrations"] == [{"registry": "ClinicalTrials.gov", "identifier": "NCT04382053"}]
    record = record_of(client, "NCT04382053")
    assert (record["published"], record["year"], record["has_results"]) == ("2020-05-08", 2020, True)
    assert record["url"] == "https://clinicaltrials.gov/study/NCT04382053"
    assert record["notes"] == ("Study type: INTERVENTIONAL\nPhase: PHASE2\nOverall status: COMPLETED\n"
                               "Enrollment: 143\nLead sponsor: Novartis")
    assert record["abstract"].startswith("Official title: Phase 2, Randomized, Controlled, Open Label")
    # A patient registry is an observational study (the API's OBSERVATIONAL + patientRegistry).
    registry = study_of(client, "NCT04898166")
    assert facets(registry) == ("Observational", "Unclear", "Unclear", "Not applicable")
    assert record_of(client, "NCT04898166")["notes"].startswith("Study type: OBSERVATIONAL\nOverall status")
    assert record_of(client, "NCT04898166")["has_results"]  # results first posted 8/2/2021
    assert not record_of(client, "NCT05097677")["has_results"]  # `NA`
    assert facets(study_of(client, "NCT05097677"))[0] == "Observational"
    # AACT display values become the API's enum values.
    assert "Phase: PHASE2, PHASE3\n" in record_of(client, "NCT04422561")["notes"]
    assert "Phase: EARLY_PHASE1\n" in record_of(client, "NCT05118737")["notes"]
    assert "Phase: NA\n" in record_of(client, "NCT04484207")["notes"]
    assert "Overall status: ACTIVE_NOT_RECRUITING\n" in record_of(client, "NCT04372186")["notes"]
    assert "Overall status: ENROLLING_BY_INVITATION\n" in record_of(client, "NCT05178290")["notes"]


def test_aact_mojibake_is_repaired(runner, client):
    run_import(runner, AACT, "ctgov-aact-csv")
    # source cell: `HÃ´pital EuropÃ©en Marseille`
    assert record_of(client, "NCT04525911")["notes"].endswith("Lead sponsor: Hôpital Européen Marseille")
    # official_title: `... Placebo-controlled Phase â…\xa0/â…¡ Clinical Study ...`
    assert "Placebo-controlled Phase Ⅰ/Ⅱ Clinical Study" in record_of(client, "NCT05148091")["abstract"]
    assert "Universitätsklinikum Hamburg-Eppendorf" in record_of(client, "NCT04895449")["notes"]
    assert not any("Ã" in (record_of(client, i)["notes"] or "") for i in ("NCT04315948", "NCT04525911"))


def test_aact_import_twice_changes_nothing(runner, client):
    run_import(runner, AACT, "ctgov-aact-csv")
    before, dates = counts(), snapshot(client)
    again = run_import(runner, AACT, "ctgov-aact-csv")
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 24, [])
    assert counts() == before and snapshot(client) == dates


def test_a_study_from_ctgov_json_then_aact_is_the_same_study(runner, client):
    run_import(runner, CTGOV, "ctgov-json")
    json_studies = {i: study_of(client, i) for i in ("NCT04382053", "NCT04280705", "NCT04315948")}
    report = run_import(runner, AACT, "ctgov-aact-csv")
    # the 3 studies of ctgov_page.json (made from the same AACT rows) are the same studies; the one
    # change is the sponsor name the JSON carries with its mojibake, repaired from AACT.
    # AACT states more than the slim JSON made from its rows (start, completion and results dates): the
    # three studies gain it, and stay the same studies with the same classifications.
    assert (report["created"], report["updated"], report["unchanged"]) == (21, 3, 0)
    assert counts()["Study"] == 24 and counts()["Reference"] == 24
    for identifier in ("NCT04382053", "NCT04280705"):
        after = study_of(client, identifier)
        assert _same_study(after) == _same_study(json_studies[identifier])
        assert after["start_date"] and not json_studies[identifier]["start_date"]
    inserm = study_of(client, "NCT04315948")
    assert inserm["id"] == json_studies["NCT04315948"]["id"] and facets(inserm) == facets(
        json_studies["NCT04315948"])
    assert inserm["references"][0]["notes"] == json_studies["NCT04315948"]["references"][0]["notes"].replace(
        "SantÃ© Et de la Recherche MÃ©dicale", "Santé Et de la Recherche Médicale")


def test_a_study_from_aact_then_ctgov_json_is_the_same_study(runner, client):
    run_import(runner, AACT, "ctgov-aact-csv")
    aact = {i: study_of(client, i) for i in ("NCT04382053", "NCT04280705")}
    report = run_import(runner, CTGOV, "ctgov-json")
    # The JSON says nothing AACT had not said: the studies are unchanged, though their sources list both.
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 2)
    assert {i: _visible(study_of(client, i)) for i in aact} == {i: _visible(s) for i, s in aact.items()}
    assert counts()["Study"] == 24


def test_a_curated_classification_survives_an_aact_import(runner, client, auth):
    """AACT's `studies` table has no design details: its `Unclear` never overwrites a classification."""
    run_import(runner, AACT, "ctgov-aact-csv")
    study = study_of(client, "NCT04382053")
    tag = client.get(f"/studies/{study['id']}").headers["ETag"]
    response = client.patch(f"/studies/{study['id']}", headers={**auth, "If-Match": tag},
                            json={"study_aim": "Treatment and Management",
                                  "study_design": "Parallel/Crossover"})
    assert response.status_code == 200, response.get_json()
    again = run_import(runner, AACT, "ctgov-aact-csv")
    assert again["unchanged"] == 24
    assert facets(study_of(client, "NCT04382053")) == (
        "Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")


def test_aact_wrong_columns_and_bad_rows(runner, client, tmp_path):
    refused = run_import(runner, WHO, "ctgov-aact-csv", ok=False)
    assert "is not an AACT `studies` table" in refused.output and "nct_id" in refused.output
    assert counts()["Study"] == 0
    lines = AACT.read_bytes().split(b"\r\n")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\r\n".join([lines[0], lines[1].replace(b"NCT04382053,", b"NCT0438,", 1),
                                     lines[1].replace(b",5/8/2020,", b",13/45/2020,", 1), b""]))
    report = run_import(runner, broken, "ctgov-aact-csv")
    # the Novartis record spans lines 2-4 (its IPD description holds line breaks)
    assert report["created"] == 0 and [r["line"] for r in report["rejected"]] == [2, 5]
    assert "has no valid `nct_id` (got 'NCT0438')" in report["rejected"][0]["reason"]
    assert "`study_first_submitted_date` '13/45/2020' is not a date" in report["rejected"][1]["reason"]


# -- ictrp-xlsx ---------------------------------------------------------------------------------------------

def test_xlsx_rows_map_like_the_who_csv(runner, client):
    report = run_import(runner, XLSX, "ictrp-xlsx")
    assert report["layout"] == "who-40-xlsx" and report["encoding"] == "binary"
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (29, 29, [], [])
    actt = study_of(client, "NCT04280705")
    assert facets(actt) == ("Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")
    record = record_of(client, "NCT04280705")
    # `Date registration` is the date cell 2020-02-20; `Target size` the number 800.
    assert (record["published"], record["year"]) == ("2020-02-20", 2020)
    assert "\nTarget size: 800\n" in record["notes"] and "\nPhase: Phase 3\n" in record["notes"]
    # `Phase` `1-2` that Excel turned into the date 2020-02-01; `Target size` as text.
    chictr = record_of(client, "ChiCTR2000029990")
    assert "\nPhase: 1-2\n" in chictr["notes"]
    assert "\nTarget size: experimental group:60;control group:60;\n" in chictr["notes"]
    assert chictr["published"] == "2020-02-18"
    assert "\nPhase: 2-3\n" in record_of(client, "IRCT20200310046736N1")["notes"]
    # Mac Roman mojibake (`IFN-a2√ü`, `Fondation M√©diterran√©e Infection`) repaired.
    assert study_of(client, "NCT04293887")["title"] == (
        "Efficacy and Safety of IFN-a2ß in the Treatment of Novel Coronavirus Patients")
    assert record_of(client, "EUCTR2020-000890-25-FR")["notes"].endswith(
        "Primary sponsor: Fondation Méditerranée Infection (FMI) - IHU Méditerranée Infection")
    # the workbook's `_x000D_` line breaks are decoded before the `<br>` cleaning, like the CSV's `\r`.
    assert "_x000D_" not in json.dumps(client.get("/references?page_size=100").get_json())


def test_a_trial_from_the_who_csv_and_the_xlsx_is_the_same_study(runner, client):
    run_import(runner, WHO, "ictrp-csv")
    unchanged = ["ChiCTR2000029953", "ChiCTR2000029949", "ChiCTR2000030261", "EUCTR2020-001250-21-FR",
                 "NL8491", "EUCTR2020-001445-39-ES"]
    before = {i: study_of(client, i) for i in unchanged}
    report = run_import(runner, XLSX, "ictrp-xlsx")
    # 10 trials of the April CSV are in the July workbook: 6 unchanged since, 4 changed by their registry
    # (ACTT's primary outcome, DisCoVeRy's interventions, ...).
    assert (report["created"], report["updated"], report["unchanged"]) == (19, 4, 6)
    assert {i: _visible(study_of(client, i)) for i in unchanged} == {
        i: _visible(s) for i, s in before.items()}
    assert counts()["Study"] == 29
    assert "Primary outcome: Time to recovery" in record_of(client, "NCT04280705")["abstract"]


def test_xlsx_import_twice_changes_nothing(runner, client):
    run_import(runner, XLSX, "ictrp-xlsx")
    before, dates = counts(), snapshot(client)
    again = run_import(runner, XLSX, "ictrp-xlsx")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 29)
    assert counts() == before and snapshot(client) == dates


@pytest.mark.parametrize("case", ["csv", "gzip", "empty", "other-sheet", "zip-not-xlsx"])
def test_a_file_that_is_not_a_who_workbook_is_refused(runner, tmp_path, case):
    path = tmp_path / "trials.xlsx"
    if case == "csv":
        path.write_bytes(WHO.read_bytes())
        expected = "is not an xlsx workbook"
    elif case == "gzip":
        path.write_bytes(gzip.compress(XLSX.read_bytes()))
        expected = "gzip-compressed"
    elif case == "empty":
        path.write_bytes(b"")
        expected = "empty"
    elif case == "other-sheet":
        workbook = Workbook()
        workbook.active.append(["nct_id", "brief_title", "study_type"])
        workbook.active.append(["NCT04382053", "Study of Efficacy and Safety of DV890", "Interventional"])
        workbook.save(path)
        expected = "has no sheet with the WHO ICTRP export's header"
    else:
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "not a workbook")
        expected = "not a readable xlsx workbook"
    result = run_import(runner, path, "ictrp-xlsx", ok=False)
    assert "refused, nothing imported" in result.output and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert counts()["Study"] == 0


@pytest.mark.parametrize(("value", "column", "text"), [
    # the workbook's own cells, as openpyxl reads them (date-formatted cells come as datetimes)
    (dt.datetime(2020, 2, 20), "date registration", "2020-02-20"),
    (dt.datetime(2020, 6, 7, 17, 53, 51), "export date", "2020-06-07 17:53:51"),
    (20200220, "date registration3", "20200220"),
    (800, "target size", "800"),
    (dt.datetime(2020, 3, 2), "phase", "2-3"),
    (False, "bridging flag truefalse", "False"),
    ("Exclusion criteria: 1. Patients with respiratory failure;_x000D_<br>2. Pregnant", "exclusion criteria",
     "Exclusion criteria: 1. Patients with respiratory failure;\r<br>2. Pregnant"),
    # the same serial numbers in a date column whose cell lost its date format (SOURCES.md: 43857)
    (43857, "date registration", "2020-01-27"),
    (43989.745729166664, "export date", "2020-06-07 17:53:51"),
    (0.1, "inclusion agemin", "0.1"),
])
def test_xlsx_cells_read_as_the_who_csv_writes_them(value, column, text):
    assert cell_text(value, column) == text


def test_xlsx_refuses_an_encoding(runner):
    result = run_import(runner, XLSX, "ictrp-xlsx", "--encoding", "utf-8", ok=False)
    assert "has no text encoding" in result.output


# -- POST /imports ------------------------------------------------------------------------------------------

def test_post_imports_takes_both_formats(client, auth):
    dry = client.post("/imports?dry_run=true", headers=auth, data=XLSX.read_bytes(), content_type=XLSX_TYPE)
    assert dry.status_code == 200 and dry.get_json()["dry_run"] and dry.get_json()["created"] == 29
    assert counts()["Study"] == 0
    upload = client.post("/imports", headers=auth, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(XLSX.read_bytes()), "COVID19-web.xlsx")})
    assert upload.status_code == 200, upload.get_json()
    assert (upload.get_json()["format"], upload.get_json()["created"]) == ("ictrp-xlsx", 29)
    raw = client.post("/imports", headers=auth, data=XLSX.read_bytes(), content_type=XLSX_TYPE)
    assert raw.status_code == 200 and raw.get_json()["unchanged"] == 29
    aact = client.post("/imports?format=ctgov-aact-csv", headers=auth, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(gzip.compress(AACT.read_bytes())), "studies.csv.gz")})
    assert aact.status_code == 200, aact.get_json()
    # NCT04280705 and NCT04315948 are in both files: the same studies, their records now AACT's view.
    assert (aact.get_json()["created"], aact.get_json()["updated"]) == (22, 2)
    assert counts()["Study"] == 29 + 22


def test_post_imports_refuses_a_csv_named_as_xlsx(client, auth):
    body = assert_problem(client.post("/imports", headers=auth, content_type="multipart/form-data",
                                      data={"file": (io.BytesIO(WHO.read_bytes()), "who.xlsx")}), 422)
    assert "is not an xlsx workbook" in body["detail"]
    body = assert_problem(client.post("/imports?format=ctgov-aact-csv", headers=auth,
                                      data=XLSX.read_bytes(), content_type="application/octet-stream"), 422)
    assert "UTF-16 or binary" in body["detail"]
    body = assert_problem(client.post("/imports?format=ictrp-xlsx", headers=auth,
                                      data=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
                                      content_type="application/vnd.ms-excel"), 422)
    assert "Excel 97-2003 workbook (.xls)" in body["detail"]
    assert counts()["Study"] == 0
