"""Imports through the CLI and POST /imports, on excerpts of the real files (fixtures/make_fixtures.py)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from playhouse.test_utils import count_queries

from service.db import database, is_postgres
from service.domain import imports
from service.models import MODELS, Reference, ReferenceIdentifier, Registration, Study, StudyReference
from tests.conftest import assert_problem, make_token

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WHO = FIXTURES / "ictrp_who_40.csv"
TRIALSTRACKER = FIXTURES / "ictrp_trialstracker_25.csv"
DIRECCT = FIXTURES / "ictrp_direcct_13.csv"
RIS = FIXTURES / "regcovid_articles.ris"
CTGOV = FIXTURES / "ctgov_page.json"


def run_import(runner, path, fmt="ictrp-csv", *extra, ok=True):
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


def test_who_export_maps_every_row_to_a_study_with_its_registry_record(runner, client):
    report = run_import(runner, WHO)
    assert report["layout"] == "who-40" and report["encoding"] == "utf-8"
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (10, 10, [], [])
    assert report["studies"]["created"] == 10 and report["references"]["created"] == 10
    actt = study_of(client, "NCT04280705")
    assert actt["name"] == "NCT04280705" and actt["title"] == "Adaptive COVID-19 Treatment Trial (ACTT)"
    assert (actt["study_type"], actt["study_aim"], actt["study_design"], actt["intervention_assignment"]) == (
        "Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")
    [record] = actt["references"]
    assert record["type"] == "trial_registry_record" and record["registration_id"] == "NCT04280705"
    assert (record["link"], record["link_identifier"]) == ("auto", "NCT04280705")
    assert record["source"] == "ClinicalTrials.gov" and record["url"].endswith("NCT04280705")
    assert record["published"] == "2020-02-20" and record["year"] == 2020 and not record["has_results"]
    assert "<br>" not in (record["abstract"] or "") and "Primary outcome:" in record["abstract"]
    # EU CTR per-country records: the study-level identifier, without EUCTR prefix or country suffix.
    eu = study_of(client, "EUCTR2020-001445-39-ES")
    assert eu["registrations"] == [{"registry": "EudraCT", "identifier": "2020-001445-39"}]
    assert eu["study_type"] == "Interventional" and eu["intervention_assignment"] == "Randomised"


def test_importing_the_same_file_twice_changes_nothing(bookkeeping, runner, client):
    run_import(runner, WHO)
    before = counts()
    dates = {s["id"]: s["updated"] for s in client.get("/studies?page_size=100").get_json()["items"]}
    refs = {r["id"]: r["updated"] for r in client.get("/references?page_size=100").get_json()["items"]}
    again = run_import(runner, WHO)
    assert (again["created"], again["updated"], again["unchanged"], again["linked"]) == (0, 0, 10, 0)
    assert counts() == before
    assert {s["id"]: s["updated"] for s in
            client.get("/studies?page_size=100").get_json()["items"]} == dates
    assert {r["id"]: r["updated"] for r in
            client.get("/references?page_size=100").get_json()["items"]} == refs


def test_a_newer_version_of_a_record_updates_it_and_only_it(runner, client, tmp_path):
    run_import(runner, WHO)
    before = study_of(client, "NCT04315948")
    other = study_of(client, "NCT04280705")
    newer = tmp_path / "newer.csv"
    newer.write_bytes(WHO.read_bytes().replace(
        b'"Trial of Treatments for COVID-19 in Hospitalized Adults"',
        b'"Trial of Treatments for COVID-19 in Hospitalized Adults, amended"'))
    report = run_import(runner, newer)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 9)
    after = study_of(client, "NCT04315948")
    assert after["title"].endswith("Adults, amended") and after["updated"] > before["updated"]
    assert after["references"][0]["title"] == after["title"]
    assert study_of(client, "NCT04280705")["updated"] == other["updated"]


def test_bridging_two_registry_records_of_one_trial_make_one_study(bookkeeping, runner, client):
    tracker = run_import(runner, TRIALSTRACKER)
    assert tracker["layout"] == "trialstracker-25"
    assert tracker["duplicates"] == [{"line": 5, "same_as": 4, "key": "ChiCTR2000029658"}]
    discovery = study_of(client, "NCT04315948")
    assert [r["identifier"] for r in discovery["registrations"]] == ["NCT04315948", "2020-000936-23"]
    direcct = run_import(runner, DIRECCT)
    assert direcct["layout"] == "direcct-13"
    # EudraCT trials have one row per member state: the first is imported, the others are duplicates.
    assert {d["key"] for d in direcct["duplicates"]} == {"2020-000936-23", "2020-001689-12"}
    assert len(direcct["duplicates"]) == 5
    bridged = study_of(client, "EUCTR2020-000936-23-FR")
    assert bridged["id"] == discovery["id"] and bridged["name"] == "NCT04315948"
    records = {r["registration_id"]: r["link_identifier"] for r in bridged["references"]}
    assert records == {"NCT04315948": "NCT04315948", "2020-000936-23": "2020-000936-23"}
    # The record the study is named by keeps its title; the bridged one adds a reference only.
    assert bridged["title"] == discovery["title"]


def test_rows_that_cannot_be_mapped_are_rejected_with_their_line(runner, client, tmp_path):
    text = DIRECCT.read_text(encoding="utf-8").replace("IRCT20180223038837N1,IRCT", "IRCT-BROKEN,IRCT")
    lines = text.splitlines(keepends=True)
    lines.insert(3, "ChiCTR2000029953,ChiCTR,2020-02-17\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines), encoding="utf-8")
    report = run_import(runner, bad)
    assert [r["line"] for r in report["rejected"]] == [2, 4]
    assert "IRCT-BROKEN" in report["rejected"][0]["reason"]
    assert "3 fields" in report["rejected"][1]["reason"]
    assert report["created"] == 6 and counts()["Study"] == 6


@pytest.mark.parametrize("case", ["wrong columns", "truncated gzip", "truncated csv", "not the format",
                                  "utf-16", "empty", "bad utf-8 named"])
def test_a_malformed_file_is_refused_and_nothing_is_written(runner, tmp_path, case):
    path = tmp_path / "file"
    if case == "wrong columns":
        path.write_bytes(RIS.read_bytes())
        fmt, message = "ictrp-csv", "needs the columns"
    elif case == "truncated gzip":
        data = gzip.compress(WHO.read_bytes() * 20)
        path.write_bytes(data[: len(data) * 3 // 4])
        fmt, message = "ictrp-csv", "truncated"
    elif case == "truncated csv":
        data = WHO.read_bytes()
        path.write_bytes(data[: len(data) - 500])
        fmt, message = "ictrp-csv", "truncated"
    elif case == "not the format":
        path.write_bytes(WHO.read_bytes())
        fmt, message = "ctgov-json", "does not start with"
    elif case == "utf-16":
        path.write_bytes(DIRECCT.read_text(encoding="utf-8").encode("utf-16"))
        fmt, message = "ictrp-csv", "UTF-16"
    elif case == "empty":
        path.write_bytes(b"\n\n")
        fmt, message = "ris", "empty"
    else:
        path.write_bytes(WHO.read_text(encoding="utf-8").encode("cp1252"))
        fmt, message = "ictrp-csv", "not valid utf-8"
    extra = ("--encoding", "utf-8") if case == "bad utf-8 named" else ()
    result = run_import(runner, path, fmt, *extra, ok=False)
    assert "refused, nothing imported" in result.output and message.lower() in result.output.lower()
    assert counts() == {"Study": 0, "Registration": 0, "Reference": 0, "StudyReference": 0}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252"])
def test_bom_and_windows_1252_files_are_detected(runner, client, tmp_path, encoding):
    path = tmp_path / "encoded.csv.gz"
    path.write_bytes(gzip.compress(WHO.read_text(encoding="utf-8").encode(encoding)))
    report = run_import(runner, path)
    assert report["encoding"] == {"utf-8-sig": "utf-8 (with BOM)", "cp1252": "windows-1252"}[encoding]
    assert report["created"] == 10 and report["layout"] == "who-40"
    notes = " ".join(r["notes"] or "" for r in client.get("/references?page_size=100").get_json()["items"])
    assert "Institut National de la Santé" in notes
    # The same file in UTF-8 afterwards: nothing differs.
    assert run_import(runner, WHO)["unchanged"] == 10


def test_dry_run_reports_without_writing(runner):
    report = run_import(runner, WHO, "ictrp-csv", "--dry-run")
    assert report["dry_run"] and report["created"] == 10 and report["linked"] == 10
    assert counts()["Study"] == 0
    assert run_import(runner, WHO)["created"] == 10


def test_clinicaltrials_gov_page_single_study_and_ndjson(runner, client, tmp_path):
    report = run_import(runner, CTGOV, "ctgov-json")
    assert (report["layout"], report["created"]) == ("page", 3)
    study = study_of(client, "NCT04382053")
    assert study["study_type"] == "Interventional" and study["references"][0]["has_results"] is True
    # dated by its registration (first submitted), as the WHO lists date it
    assert study["references"][0]["published"] == "2020-05-08"
    studies = json.loads(CTGOV.read_text(encoding="utf-8"))["studies"]
    lines = tmp_path / "studies.ndjson"
    lines.write_text("".join(json.dumps(s) + "\n" for s in studies), encoding="utf-8")
    again = run_import(runner, lines, "ctgov-json")
    assert (again["layout"], again["unchanged"]) == ("ndjson", 3)
    one = tmp_path / "one.json"
    studies[0]["protocolSection"]["identificationModule"]["secondaryIdInfos"] = [
        {"id": "2020-001234-56", "type": "EUDRACT_NUMBER"}, {"id": "CDFV890A12201", "type": "OTHER"}]
    one.write_text(json.dumps(studies[0], indent=2), encoding="utf-8")
    single = run_import(runner, one, "ctgov-json")
    assert (single["layout"], single["updated"], single["registrations_added"]) == ("study", 1, 1)
    assert study_of(client, "EUCTR2020-001234-56")["id"] == study["id"]


def test_ris_articles_link_automatically_and_upsert_by_pmid(bookkeeping, runner, client, tmp_path):
    run_import(runner, WHO)
    report = run_import(runner, RIS, "ris")
    assert report["layout"] == "ris" and report["created"] == 6 and report["rejected"] == []
    articles = client.get("/references?type=journal_article&page_size=100").get_json()["items"]
    assert len(articles) == 6 and all(a["pmid"] and a["source"] and a["abstract"] for a in articles)
    assert all("<AbstractText" not in a["abstract"] for a in articles)
    linked = [a for a in articles if a["study_ids"]]
    assert linked and report["linked"] == sum(len(a["study_ids"]) for a in articles)
    actt = study_of(client, "NCT04280705")
    assert any(r["type"] == "journal_article" and r["link"] == "auto" for r in actt["references"])
    assert run_import(runner, RIS, "ris")["unchanged"] == 6
    # A newer export of the same records with DOIs: matched by PMID, updated, not duplicated.
    pmid = articles[0]["pmid"]
    newer = tmp_path / "newer.ris"
    newer.write_bytes(RIS.read_bytes().replace(
        f"AN  - {pmid}\r\n".encode(), f"AN  - {pmid}\r\nDO  - 10.1000/TEST.{pmid}\r\n".encode()))
    update = run_import(runner, newer, "ris")
    assert (update["created"], update["updated"], update["unchanged"]) == (0, 1, 5)
    assert client.get(f"/references?pmid={pmid}").get_json()["items"][0]["doi"] == f"10.1000/test.{pmid}"


def test_a_manual_unlink_survives_a_reimport(runner, client, auth, tmp_path):
    run_import(runner, WHO)
    run_import(runner, RIS, "ris")
    actt = study_of(client, "NCT04280705")
    article = next(r for r in actt["references"] if r["type"] == "journal_article")
    assert client.delete(f"/studies/{actt['id']}/references/{article['id']}", headers=auth).status_code == 204
    newer = tmp_path / "newer.ris"
    newer.write_text(RIS.read_text(encoding="utf-8").replace("TI  - ", "TI  - [Updated] "), encoding="utf-8")
    assert run_import(runner, newer, "ris")["updated"] == 6
    assert client.get(f"/references/{article['id']}").get_json()["study_ids"] == []


def _register() -> dict:
    """Every study, registration, reference, link and identifier found, field by field, keyed by natural
    keys (a study by its name, a reference by its fields) instead of ids, which are local to a register.
    Only `created` is left out: no export carries it."""
    with database.connection_context():
        studies = {s.id: s for s in Study.select()}
        names = [s.name for s in studies.values()]
        assert len(set(names)) == len(names), "study names are the natural key here"
        references = {}
        for ref in Reference.select():
            references[ref.id] = tuple((name, getattr(ref, name)) for name in (
                "type", "title", "authors", "abstract", "source", "year", "published", "volume", "issue",
                "pages", "doi", "pmid", "url", "registration_id", "has_results", "notes", "first_published",
                "updated"))
        assert len(set(references.values())) == len(references)
        return {
            "studies": sorted(tuple((name, getattr(s, name)) for name in (
                "name", "title", "study_type", "study_aim", "study_design", "intervention_assignment",
                "first_published", "updated")) for s in studies.values()),
            "registrations": sorted((studies[r.study_id].name, r.identifier, r.registry)
                                    for r in Registration.select()),
            "references": sorted(references.values()),
            "links": sorted((studies[link.study_id].name, references[link.reference_id], link.link,
                             link.identifier or "") for link in StudyReference.select()),
            "identifiers_found": sorted((references[f.reference_id], f.identifier, f.registry)
                                        for f in ReferenceIdentifier.select()),
        }


def test_export_then_import_into_an_empty_register_reproduces_it(bookkeeping, runner, client, seeded, auth,
                                                                 tmp_path):
    # A register with seeded and imported records, automatic links, a manual link, and references
    # linked to no study (exported apart: GET /references?linked=false): deleting a study leaves its
    # references waiting, unlinked.
    run_import(runner, WHO)
    run_import(runner, RIS, "ris")
    run_import(runner, CTGOV, "ctgov-json")
    run_import(runner, TRIALSTRACKER)
    run_import(runner, DIRECCT)
    actt = study_of(client, "NCT04280705")
    assert len(actt["references"]) >= 3
    assert client.delete(f"/studies/{actt['id']}", headers=auth).status_code == 204
    unlinked = client.get("/references?linked=false&page_size=100").get_json()["items"]
    assert len(unlinked) == len(actt["references"])
    article = next(r for r in unlinked if r["type"] == "journal_article")
    other = study_of(client, "EUCTR2020-001445-39-ES")
    linked = client.put(f"/studies/{other['id']}/references/{article['id']}", headers=auth)
    assert linked.status_code in (200, 201, 204), linked.get_json()
    before = _register()
    kinds = {link[2] for link in before["links"]}
    assert kinds == {"auto", "manual"} and before["identifiers_found"]

    # (each download read to its end before the next: both would stream on this thread's connection)
    studies = client.get("/studies?format=ndjson")
    assert studies.status_code == 200
    (tmp_path / "studies.ndjson").write_bytes(studies.get_data())
    alone = client.get("/references?format=ndjson&linked=false")
    assert alone.status_code == 200
    (tmp_path / "references.ndjson").write_bytes(alone.get_data())
    assert alone.get_data(as_text=True).count("\n") == len(unlinked) - 1

    with database.connection_context():
        for model in reversed(MODELS[:6]):
            model.delete().execute()
    assert counts() == {"Study": 0, "Registration": 0, "Reference": 0, "StudyReference": 0}
    first = run_import(runner, tmp_path / "studies.ndjson", "ndjson")
    second = run_import(runner, tmp_path / "references.ndjson", "ndjson")
    assert first["rejected"] == second["rejected"] == [] and first["layout"] == "register-ndjson"
    assert first["duplicates"] == second["duplicates"] == []
    after = _register()
    for part in before:
        assert after[part] == before[part], part
    # Importing the export again changes nothing.
    for name in ("studies.ndjson", "references.ndjson"):
        again = run_import(runner, tmp_path / name, "ndjson")
        assert (again["created"], again["updated"]) == (0, 0)
    assert _register() == before


# -- POST /imports ----------------------------------------------------------------------------------------

def test_post_imports_needs_a_token_with_the_imports_scope(client):
    assert_problem(client.post("/imports?format=ictrp-csv", data=WHO.read_bytes(),
                               content_type="text/csv"), 401)
    studies_only = {"Authorization": f"Bearer {make_token('studies', 'references')}"}
    assert_problem(client.post("/imports?format=ictrp-csv", data=WHO.read_bytes(), content_type="text/csv",
                               headers=studies_only), 403)
    assert counts()["Study"] == 0


def test_post_imports_multipart_and_raw_body_answer_the_report(client, auth):
    upload = client.post("/imports", headers=auth, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(gzip.compress(WHO.read_bytes())), "who.csv.gz")})
    assert upload.status_code == 200, upload.get_json()
    assert upload.get_json()["created"] == 10 and upload.get_json()["format"] == "ictrp-csv"
    raw = client.post("/imports?dry_run=true", headers=auth, data=RIS.read_bytes(),
                      content_type="application/x-research-info-systems")
    assert raw.status_code == 200 and raw.get_json()["created"] == 6 and raw.get_json()["dry_run"]
    assert counts()["Reference"] == 10
    ndjson = client.post("/imports?format=ctgov-json&encoding=utf-8", headers=auth,
                         data=CTGOV.read_bytes(), content_type="application/octet-stream")
    assert ndjson.status_code == 200
    assert (ndjson.get_json()["created"], ndjson.get_json()["updated"]) == (1, 2)


def test_post_imports_bad_input_is_a_problem(app, client, auth):
    assert_problem(client.post("/imports?format=excel", headers=auth, data=b"x", content_type="text/csv"),
                   422, "format")
    assert_problem(client.post("/imports?formt=ris", headers=auth, data=b"x", content_type="text/csv"),
                   422, "formt")
    assert_problem(client.post("/imports", headers=auth, data=b"x", content_type="application/octet-stream"),
                   422, "format")
    assert_problem(client.post("/imports", headers=auth, content_type="multipart/form-data",
                               data={"other": (io.BytesIO(b"x"), "a.csv")}), 422, "file")
    assert_problem(client.post("/imports?format=ris", headers=auth, data=b"\x89PNG",
                               content_type="image/png"), 415)
    refused = assert_problem(client.post("/imports?format=ris", headers=auth, data=WHO.read_bytes(),
                                         content_type="text/csv"), 422)
    assert "not RIS" in refused["detail"]
    app.config["MAX_IMPORT_BYTES"] = 2048
    assert_problem(client.post("/imports?format=ictrp-csv", headers=auth, data=WHO.read_bytes(),
                               content_type="text/csv"), 413)
    assert counts()["Study"] == 0


def test_imports_are_not_limited_by_the_json_body_limit(app, client, auth):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = client.post("/imports", headers=auth, data=WHO.read_bytes(), content_type="text/csv")
    assert response.status_code == 200 and response.get_json()["created"] == 10


def test_a_registry_record_updates_the_seeded_study_it_names(seeded, runner, client):
    before = study_of(client, "ChiCTR2000030261")
    report = run_import(runner, WHO)
    assert report["created"] + report["updated"] == 10 and report["updated"] >= 1
    after = study_of(client, "ChiCTR2000030261")
    # The seed's own registry record is the one updated (same key), not a second one created.
    assert after["reference_count"] == before["reference_count"] == 2
    assert after["study_aim"] == "Treatment and Management"  # Unclear from the file never overwrites


def test_imported_records_are_searchable_at_once(client, runner):
    run_import(runner, WHO)
    found = client.get("/studies?q=prognostic%20predictive%20model").get_json()
    assert "ChiCTR2000029953" in [s["name"] for s in found["items"]]
    assert client.get("/studies?q=ChiCTR2000029953").get_json()["items"][0]["name"] == "ChiCTR2000029953"
    assert client.get("/references?q=prognostic%20predictive%20model").get_json()["total"] >= 1
    run_import(runner, WHO, "ictrp-csv", "--dry-run")  # a dry run leaves the index as it was
    assert client.get("/studies?q=ChiCTR2000029953").get_json()["total"] == 1


def _search_rows():
    """Every row of both search indexes and the vocabulary, as text."""
    from service.search.index import WEIGHTS, WORD_TABLE

    with database.connection_context():
        queries = []
        for table, fields in WEIGHTS.items():
            columns = ", ".join(f'"{f}"::text' if is_postgres() else f'"{f}"' for f in fields)
            if is_postgres():
                queries.append(f"SELECT id, document::text, heading::text, {columns} FROM {table} "
                               f"ORDER BY id")
            else:
                queries.append(f"SELECT rowid, {columns} FROM {table} ORDER BY rowid")
        queries.append(f"SELECT word FROM {WORD_TABLE} ORDER BY word")
        return [database.execute_sql(query).fetchall() for query in queries]


def test_imports_leave_the_search_index_as_a_rebuild_would(runner, client, seeded, tmp_path):
    from service.search.index import rebuild

    run_import(runner, WHO)
    newer = tmp_path / "newer.csv"
    newer.write_text(WHO.read_text(encoding="utf-8").replace("Adaptive COVID-19 Treatment Trial",
                                                             "Adaptive Treatment Trial"), encoding="utf-8")
    assert run_import(runner, newer)["updated"] == 1
    run_import(runner, RIS, "ris")
    run_import(runner, TRIALSTRACKER)
    run_import(runner, DIRECCT)
    written = _search_rows()
    assert all(written) and len(written[1]) == counts()["Reference"]
    with database.connection_context(), database.atomic():
        rebuild()
    rebuilt = _search_rows()
    assert rebuilt[:2] == written[:2]
    # the vocabulary keeps the words of replaced text (they expand to terms matching nothing)
    assert set(rebuilt[2]) <= set(written[2])


def test_a_long_import_on_postgres_refreshes_the_statistics_it_plans_on(app, client, monkeypatch):
    # From VACUUM_AFTER records created on, the import analyses the tables it fills each time that number
    # doubled (inside its transaction). Lowered here, with batches of 3 rows: the WHO fixture's 10 studies
    # and 10 registry records pass 4 records after the first batch (6) and double it after the second (12).
    monkeypatch.setattr(imports, "VACUUM_AFTER", 4)
    with count_queries() as sql, database.connection_context(), WHO.open("rb") as f:
        report = imports.import_file(f, fmt="ictrp-csv", batch_size=3)
    analysed = [q for q in sql.get_queries() if q.msg[0].startswith("ANALYZE ")]
    assert (report.created, report.rejected, report.studies["created"]) == (10, [], 10)
    assert study_of(client, "NCT04280705")["references"][0]["registration_id"] == "NCT04280705"
    assert len(analysed) == (2 if is_postgres() else 0)
