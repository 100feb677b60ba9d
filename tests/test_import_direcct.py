"""DIRECCT's link files through the CLI and POST /imports, on excerpts of the real files
(fixtures/make_direcct_fixtures.py): cross-registrations, results linked through them, the registry scrape
refused."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from service.db import database
from service.models import Reference, Registration, Study, StudyReference
from tests.conftest import assert_problem

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REGISTRATIONS = FIXTURES / "direcct_registrations.csv"
RESULTS = FIXTURES / "direcct_results.csv"
REGISTRIES = FIXTURES / "direcct_registries.csv"
ICTRP = FIXTURES / "ictrp_direcct_13.csv"
RIS = FIXTURES / "regcovid_articles.ris"


def run_import(runner, path, fmt, *extra, ok=True):
    result = runner.invoke(args=["import", str(path), "--format", fmt, "--quiet", *extra])
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)
    assert result.exit_code != 0
    return result


def import_results(runner, path=RESULTS, trial_ids=REGISTRATIONS):
    return run_import(runner, path, "direcct-results", "--trial-ids", str(trial_ids))


def counts():
    with database.connection_context():
        return {m.__name__: m.select().count() for m in (Study, Registration, Reference, StudyReference)}


def study_of(client, identifier):
    response = client.get(f"/registrations/{identifier}")
    assert response.status_code == 200, identifier
    return response.get_json()


def identifiers(study):
    return [r["identifier"] for r in study["registrations"]]


def by_doi(study, doi):
    [found] = [r for r in study["references"] if r["doi"] == doi]
    return found


def dates(client):
    studies = {s["id"]: s["updated"] for s in client.get("/studies?page_size=100").get_json()["items"]}
    references = {r["id"]: r["updated"] for r in client.get("/references?page_size=100").get_json()["items"]}
    return studies, references


# -- cross-registrations ------------------------------------------------------------------------------------

def test_the_registrations_of_one_trial_make_one_study(runner, client):
    report = run_import(runner, REGISTRATIONS, "direcct-registrations")
    assert report["layout"] == "direcct-registrations"
    # One row of the report per trial (31 lines, 10 trials), at the line of its first registration.
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (10, 10, [], [])
    assert report["registrations_added"] == 31 and report["references"]["created"] == 0
    discovery = study_of(client, "NCT04315948")
    assert identifiers(discovery) == ["NCT04315948", "2020-000936-23"]
    assert study_of(client, "EUCTR2020-000936-23-FR")["id"] == discovery["id"]
    assert discovery["name"] == "NCT04315948" and discovery["references"] == []
    assert discovery["title"] == ("Untitled trial registered as NCT04315948, EudraCT 2020-000936-23 "
                                  "(title not given by DIRECCT)")
    assert {discovery[f] for f in ("study_type", "study_aim", "study_design", "intervention_assignment")} \
        == {"Unclear"}
    # The two rows of tri06094 are apart in the file; the first row names the study.
    split = study_of(client, "NCT04522466")
    assert split["name"] == "2020-001281-11" and identifiers(split) == ["2020-001281-11", "NCT04522466"]
    # Registry names mapped onto the register's codes; a JPRN- prefix is not part of the jRCT number.
    registries = {r["identifier"]: r["registry"] for r in study_of(client, "NCT04369469")["registrations"]}
    assert registries == {"NCT04369469": "ClinicalTrials.gov", "jRCT2031200126": "jRCT",
                          "2020-001497-30": "EudraCT"}
    assert len(identifiers(study_of(client, "LBCTR2020043495"))) == 13
    assert registries == {r["identifier"]: r["registry"]
                          for r in study_of(client, "JPRN-jRCT2031200126")["registrations"]}
    # A registry list imported afterwards finds its studies and names their titles.
    ictrp = run_import(runner, ICTRP, "ictrp-csv")
    assert ictrp["rejected"] == [] and ictrp["studies"]["created"] == 0 and ictrp["registrations_added"] == 0
    discovery = study_of(client, "NCT04315948")
    assert discovery["title"] == "Trial of Treatments for COVID-19 in Hospitalized Adults"
    assert {r["registration_id"] for r in discovery["references"]} == {"NCT04315948", "2020-000936-23"}


def test_registrations_join_the_study_that_owns_one_and_conflicts_are_rejected(runner, client):
    run_import(runner, ICTRP, "ictrp-csv")
    before = study_of(client, "ISRCTN15874265")
    assert identifiers(before) == ["ISRCTN15874265"]
    report = run_import(runner, REGISTRATIONS, "direcct-registrations")
    # tri02446: ISRCTN15874265 is registered; its two other registrations are added to that study.
    after = study_of(client, "NCT04292899")
    assert after["id"] == before["id"] and after["name"] == "ISRCTN15874265"
    assert identifiers(after) == ["ISRCTN15874265", "NCT04292899", "2020-000841-15"]
    assert after["title"] == before["title"] and after["study_type"] == before["study_type"]
    # tri02557 and tri03026: each of their registrations is a study of its own (the ICTRP list does not
    # bridge them): rejected with the line and the studies, nothing merged.
    rejected = {r["line"]: r["reason"] for r in report["rejected"]}
    assert sorted(rejected) == [4, 27]
    discovery, eu = study_of(client, "NCT04315948")["id"], study_of(client, "EUCTR2020-000936-23")["id"]
    assert discovery != eu
    assert rejected[27] == (f"trial tri02557: its registrations belong to different studies: "
                            f"NCT04315948 (study {discovery}), 2020-000936-23 (study {eu}); "
                            f"merge them by hand first.")
    assert rejected[4].startswith("trial tri03026: its registrations belong to different studies")
    assert identifiers(study_of(client, "NCT04315948")) == ["NCT04315948"]
    # tri00008 and tri03799 are one registration each, already registered: unchanged.
    assert (report["created"], report["updated"], report["unchanged"]) == (5, 1, 2)
    assert report["studies"] == {"created": 5, "updated": 1} and report["registrations_added"] == 22 + 2


def test_importing_registrations_twice_changes_nothing(runner, client):
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    before, stamps = counts(), dates(client)
    again = run_import(runner, REGISTRATIONS, "direcct-registrations")
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 10, [])
    assert again["registrations_added"] == 0 and again["studies"] == {"created": 0, "updated": 0}
    assert counts() == before and dates(client) == stamps


def test_a_bad_registration_rejects_its_whole_trial(runner, client, tmp_path):
    text = REGISTRATIONS.read_text(encoding="utf-8")
    text = text.replace("tri02445,EUCTR2020-000842-32,EudraCT",
                        "tri02445,EUCTR2020-000842-32,ClinicalTrials.gov")
    text = text.replace("tri01367,JPRN-jRCT2031200126,jRCT", "tri01367,JPRN-jRCT2031200126,Japan registry")
    text = text.replace("tri03799,IRCT20180223038837N1", "tri03799,IRCT-BROKEN")
    text += "tri09999,NCT04315948,ClinicalTrials.gov,tri09999,NA\n"
    path = tmp_path / "registrations.csv"
    path.write_text(text, encoding="utf-8")
    report = run_import(runner, path, "direcct-registrations")
    reasons = {r["line"]: r["reason"] for r in report["rejected"]}
    assert sorted(reasons) == [18, 21, 31, 33]
    assert "line 19 names the registry 'Japan registry'" in reasons[18]
    assert "'EUCTR2020-000842-32' is a EudraCT number, but its registry column says 'ClinicalTrials.gov'" \
        in reasons[21]
    assert "'IRCT-BROKEN' is not one of a known registry" in reasons[31]
    assert reasons[33] == ("trial tri09999: line 33 registration NCT04315948 is already one of trial "
                           "tri02557 (line 27). The trial is not imported.")
    assert report["created"] == 7
    assert client.get("/registrations/NCT04292730").status_code == 404
    assert client.get("/registrations/NCT04369469").status_code == 404


# -- results -----------------------------------------------------------------------------------------------

def test_results_become_references_linked_to_the_study_of_their_trial(runner, client):
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    report = import_results(runner)
    assert report["layout"] == "direcct-results"
    # 23 rows: 1 trial not in the map, 3 rows merged into the reference of an earlier row (same DOI).
    assert report["rejected"] == [{"line": 2, "reason": (
        "trial tri00893 is not in the trial-id map (DIRECCT's registrations file), or its registrations "
        "were rejected there.")}]
    assert (report["rows"], report["created"], report["duplicates"]) == (20, 19, [])
    remdesivir = study_of(client, "NCT04292899")
    assert len(remdesivir["references"]) == 4  # 5 rows: results and protocol are one article
    article = by_doi(remdesivir, "10.1056/nejmoa2015301")
    assert (article["type"], article["has_results"], article["pmid"]) == ("journal_article", True, "32459919")
    assert article["title"] == ("Untitled journal article with full results of NCT04292899: "
                                "doi:10.1056/nejmoa2015301 (title not given by DIRECCT)")
    # DIRECCT lists it twice for the trial (results, and the protocol in its supplement): one reference.
    assert article["notes"].splitlines() == [
        "Full results of the trial registered as NCT04292899, EudraCT 2020-000841-15, ISRCTN15874265 "
        "(DIRECCT trial tri02446: full_results_journal_article, found by auto search).",
        "Protocol of the trial registered as NCT04292899, EudraCT 2020-000841-15, ISRCTN15874265 "
        "(DIRECCT trial tri02446: protocol, found by trn search in pubmed)."]
    assert article["study_ids"] == [remdesivir["id"]] and article["link"] == "auto"
    [summary] = [r for r in remdesivir["references"] if r["type"] == "report"]
    assert summary["has_results"] and summary["doi"] is None and summary["pmid"] is None
    assert summary["url"] == "https://clinicaltrials.gov/ct2/show/results/NCT04292899"
    assert summary["published"] == "2020-12-31"
    other = by_doi(remdesivir, "10.1093/cid/ciaa1041")
    assert (other["type"], other["has_results"]) == ("journal_article", False)
    # Without DOI or PMID: keyed by the URL in its title; a protocol without date has none.
    protocol = [r for r in study_of(client, "NCT04292730")["references"] if r["type"] == "other"]
    assert [(p["url"], p["published"], p["has_results"]) for p in protocol] == [
        ("https://clinicaltrials.gov/ProvidedDocs/30/NCT04292730/Prot_000.pdf", None, False)]
    # A medRxiv DOI makes an "other" publication a preprint.
    assert by_doi(study_of(client, "NCT04322682"), "10.1101/2021.02.24.21252396")["type"] == "preprint"
    # One NEJM report of two trials (DisCoVeRy and SOLIDARITY): one reference linked to both studies.
    solidarity, discovery = study_of(client, "NCT04330690"), study_of(client, "NCT04315948")
    shared = by_doi(discovery, "10.1056/nejmoa2023184")
    assert sorted(shared["study_ids"]) == sorted([solidarity["id"], discovery["id"]])
    assert (shared["type"], shared["has_results"]) == ("journal_article", True)
    assert len(shared["notes"].splitlines()) == 2 and "tri01243" in shared["notes"]
    assert "tri02557" in shared["notes"]


def test_results_link_to_studies_made_later_and_survive_reimport(runner, client):
    first = import_results(runner)
    assert first["linked"] == 0 and counts()["Study"] == 0
    registered = run_import(runner, REGISTRATIONS, "direcct-registrations")
    assert registered["linked"] == 21  # 19 references, one of them about two trials
    before, stamps = counts(), dates(client)
    again = import_results(runner)
    assert (again["created"], again["updated"], again["unchanged"], again["linked"]) == (0, 0, 19, 0)
    assert counts() == before and dates(client) == stamps


def test_an_article_file_gives_a_placeholder_its_title_and_not_the_other_way_round(runner, client):
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    import_results(runner)
    ris = run_import(runner, RIS, "ris")
    # Same PMID: the RIS record updates the DIRECCT reference (its title); the links stay.
    assert ris["references"]["created"] == 1 and ris["updated"] == 5
    article = by_doi(study_of(client, "NCT04292899"), "10.1056/nejmoa2015301")
    assert article["title"] == "Remdesivir for 5 or 10 Days in Patients with Severe Covid-19."
    assert article["has_results"] and article["notes"].startswith("Full results of the trial")
    # The other way round: DIRECCT's results fill in what a stored reference lacks, never replace it.
    again = import_results(runner)
    assert again["updated"] == 0 and again["unchanged"] == 19
    assert by_doi(study_of(client, "NCT04292899"), "10.1056/nejmoa2015301")["title"] == article["title"]


def test_results_complete_an_article_imported_before(runner, client):
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    run_import(runner, RIS, "ris")
    with database.connection_context():
        stored = Reference.get(Reference.pmid == "34534511")
    assert stored.doi is None and not stored.has_results and stored.notes is None
    report = import_results(runner)
    assert report["references"]["updated"] == 5
    with database.connection_context():
        filled = Reference.get(Reference.pmid == "34534511")
    assert filled.title == stored.title and filled.type == "journal_article"
    assert filled.doi == "10.1016/s1473-3099(21)00485-0" and filled.has_results
    assert filled.published == stored.published
    assert filled.notes.startswith("Interim results of the trial registered as NCT04315948, EudraCT")
    again = import_results(runner)
    assert (again["updated"], again["unchanged"]) == (0, 19)


def test_result_rows_that_cannot_be_mapped_are_rejected_with_their_line(runner, client, tmp_path):
    lines = RESULTS.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace(",keywords,other,", ",keywords,letter,")
    lines[5] = lines[5].replace("https://clinicaltrials.gov/ct2/show/results/NCT04292730", "NA")
    lines[6] = lines[6].replace(",NA,NA,https:", ",NA,PMID-x,https:")
    path = tmp_path / "results.csv"
    path.write_text("".join(lines), encoding="utf-8")
    report = import_results(runner, path)
    reasons = {r["line"]: r["reason"] for r in report["rejected"]}
    assert sorted(reasons) == [2, 3, 6, 7]
    assert reasons[3].startswith("publication type 'letter' is not one of full_results_journal_article, ")
    assert reasons[6] == "has no DOI, PMID or URL: nothing says which publication it is."
    assert reasons[7] == "PMID 'PMID-x' is not a number."
    assert report["created"] == 16


def test_a_result_may_name_its_trial_by_an_old_trial_id(runner, client, tmp_path):
    # tri03026 was tri00841 before DIRECCT merged trials (`ids_old`).
    text = RESULTS.read_text(encoding="utf-8").replace("tri03026,registry,full_results_journal_article",
                                                       "tri00841,registry,full_results_journal_article")
    path = tmp_path / "results.csv"
    path.write_text(text, encoding="utf-8")
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    assert import_results(runner, path)["rejected"][0]["line"] == 2
    article = by_doi(study_of(client, "NCT04322682"), "10.1016/s2213-2600(21)00222-8")
    assert "(DIRECCT trial tri00841: full_results_journal_article" in article["notes"]
    assert article["study_ids"] == [study_of(client, "EUCTR2020-001689-12")["id"]]


# -- refused files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "path", "extra", "message"), [
    ("direcct-registrations", RESULTS, (), "It looks like DIRECCT's results file: use the format "
                                           "direcct-results."),
    ("direcct-registrations", ICTRP, (), "lacks 'id'; expected the columns id, trn, registry, ids_old, "
                                         "resolved"),
    ("direcct-results", REGISTRATIONS, ("--trial-ids", str(REGISTRATIONS)),
     "lacks 'pub_type', 'doi', 'pmid', 'url', 'date_publication'"),
    ("direcct-results", RESULTS, (), "give DIRECCT's registrations file as the trial-id map"),
    ("direcct-results", RESULTS, ("--trial-ids", str(RESULTS)),
     "The trial-id map (DIRECCT's registrations file) is refused: The header"),
    ("direcct-registries", REGISTRATIONS, (), "expected the columns trn, registry, trial_status"),
])
def test_a_file_that_is_not_the_format_is_refused_and_nothing_is_written(runner, fmt, path, extra, message):
    result = run_import(runner, path, fmt, *extra, ok=False)
    assert "refused, nothing imported" in result.output and message in result.output
    assert counts() == {"Study": 0, "Registration": 0, "Reference": 0, "StudyReference": 0}


def test_a_truncated_registrations_file_is_refused(runner, tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(REGISTRATIONS.read_bytes())[:-30])
    result = run_import(runner, path, "direcct-registrations", ok=False)
    assert "truncated" in result.output
    cut = tmp_path / "cut.csv"
    cut.write_bytes(REGISTRATIONS.read_bytes()[:-12])
    result = run_import(runner, cut, "direcct-registrations", ok=False)
    assert "ends in the middle of the record" in result.output
    assert counts()["Study"] == 0


def test_trial_ids_is_only_for_results(runner):
    result = run_import(runner, REGISTRATIONS, "direcct-registrations", "--trial-ids", str(REGISTRATIONS),
                        ok=False)
    assert "--trial-ids is only for --format direcct-results" in result.output


# -- POST /imports -------------------------------------------------------------------------------------------

def test_post_imports_takes_the_trial_id_map_as_a_second_part(client, auth):
    registrations = client.post("/imports?format=direcct-registrations", headers=auth,
                                data=REGISTRATIONS.read_bytes(), content_type="text/csv")
    assert registrations.status_code == 200 and registrations.get_json()["created"] == 10
    upload = client.post("/imports?format=direcct-results", headers=auth, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(RESULTS.read_bytes()), "results.csv"),
                               "trial_ids": (io.BytesIO(gzip.compress(REGISTRATIONS.read_bytes())),
                                             "registrations.csv.gz")})
    assert upload.status_code == 200, upload.get_json()
    report = upload.get_json()
    assert (report["format"], report["created"], report["linked"]) == ("direcct-results", 19, 21)
    assert len(study_of(client, "ISRCTN15874265")["references"]) == 4


def test_post_imports_refuses_direcct_files_it_cannot_read(client, auth):
    refused = assert_problem(client.post("/imports?format=direcct-results", headers=auth,
                                         data=RESULTS.read_bytes(), content_type="text/csv"), 422)
    assert "trial-id map" in refused["detail"]
    misplaced = assert_problem(client.post(
        "/imports?format=direcct-registrations", headers=auth, content_type="multipart/form-data",
        data={"file": (io.BytesIO(REGISTRATIONS.read_bytes()), "r.csv"),
              "trial_ids": (io.BytesIO(REGISTRATIONS.read_bytes()), "r.csv")}), 422, "trial_ids")
    assert "only for the format `direcct-results`" in misplaced["detail"]
    scrape = assert_problem(client.post("/imports?format=direcct-registries", headers=auth,
                                        data=REGISTRATIONS.read_bytes(), content_type="text/csv"), 422)
    assert "expected the columns trn, registry, trial_status" in scrape["detail"]
    assert counts() == {"Study": 0, "Registration": 0, "Reference": 0, "StudyReference": 0}


def test_the_registry_scrape_gives_the_studies_status_completion_and_registry_results(runner, client):
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    report = run_import(runner, REGISTRIES, "direcct-registries")
    assert (report["rows"], report["rejected"]) == (3, [])
    study = study_of(client, "NCT04292899")
    assert (study["recruitment_status"], study["primary_completion_date"]) == ("Completed", "2020-04-09")
    assert study["dissemination"]["registry"]["results"] is True
    assert study["facet_sources"]["recruitment_status"]["field"] == "trial_status"
    # EudraCT lists a status per member state; ISRCTN points at the EU register's results.
    eudract = study_of(client, "ISRCTN15874265")
    assert eudract["recruitment_status"] == "Completed"
    again = run_import(runner, REGISTRIES, "direcct-registries")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_a_scrape_row_of_a_registration_no_study_holds_yet_waits_for_the_study(runner, client):
    run_import(runner, REGISTRIES, "direcct-registries")
    assert client.get("/studies").get_json()["total"] == 0
    run_import(runner, REGISTRATIONS, "direcct-registrations")
    study = study_of(client, "NCT04292899")
    assert (study["recruitment_status"], study["primary_completion_date"]) == ("Completed", "2020-04-09")
    # No registry record dates it: the study first appeared when the scrape shows its record updated.
    assert study["first_published"] == "2020-12-31"
    assert study["facet_sources"]["first_published"]["rule"].startswith("the earliest day a source shows")
