"""Importing WHO ICTRP trial lists (real excerpts in tests/fixtures) with `study-register import`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from service.importing import ictrp

FIXTURES = Path(__file__).parent / "fixtures"
WHO = FIXTURES / "ictrp_who_export_2020-04-15_excerpt.csv"  # the WHO export's 40 columns
TRACKER = FIXTURES / "ictrp_trialstracker_2020-12-16_excerpt.csv"  # with cross_registrations
DIRECCT = FIXTURES / "ictrp_direcct_2021-07-01_excerpt.csv"
BRIDGED = FIXTURES / "ictrp_direcct_2021-07-01_bridged_excerpt.csv"  # the other records of TRACKER's trials


def _import(runner, path, *extra):
    result = runner.invoke(args=["import", str(path), "--format", "ictrp-csv", *extra])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _rows(path) -> int:
    return sum(1 for _ in ictrp.rows(open(path, encoding="utf-8", newline="")))


@pytest.mark.parametrize("path", [WHO, TRACKER, DIRECCT], ids=["who-40", "trialstracker", "direcct"])
def test_each_layout_imports_every_row_as_a_study_with_its_registry_record(client, runner, path):
    result, report = _import(runner, path)
    assert result.exit_code == 0, result.output
    rows = _rows(path)
    assert report["studies"]["created"] + len(report["rejected"]) == rows
    assert report["rejected"] == []
    listing = client.get("/studies?page_size=100&include=references").get_json()
    assert listing["total"] == rows
    for study in listing["items"]:
        records = [r for r in study["references"] if r["type"] == "trial_registry_record"]
        assert [r["registration_id"] for r in records] == [study["name"]]
        assert records[0]["link"] == "auto"  # linked by its own identifier


def test_the_who_export_maps_fields_and_facets(client, runner):
    _import(runner, WHO)
    study = client.get("/studies?registration=NCT04246242&include=references").get_json()["items"][0]
    assert study["title"].startswith("A Randomized Multicenter Controlled Clinical Trial of Arbidol")
    assert study["study_type"] == "Interventional"
    assert study["intervention_assignment"] == "Randomised"
    record = study["references"][0]
    assert record["source"] == "ClinicalTrials.gov"
    assert record["url"] == "https://clinicaltrials.gov/show/NCT04246242"
    assert record["published"] == "2020-01-27"
    observational = client.get("/studies?study_type=Observational").get_json()["items"]
    assert observational and all(s["intervention_assignment"] == "Not applicable" for s in observational)
    # found by words of its registry record, like any study
    assert "NCT04246242" in [s["name"] for s in client.get("/studies?q=arbidol").get_json()["items"]]


@pytest.mark.parametrize(("words", "kind", "design", "aim", "assignment"), [
    ("Interventional clinical trial of medicinal product", "Interventional", None, None, None),
    ("Observational study", "Observational", None, None, "Not applicable"),
    ("Interventional", "Interventional",
     "Allocation: Randomized. Intervention model: Parallel Assignment. Primary purpose: Treatment.",
     "Treatment and Management", "Randomised"),
    ("Interventional study", "Interventional", "Non-randomized single arm trial", None, "Non-randomised"),
    ("Interventional", "Interventional", "Allocation: N/A. Intervention model: Single Group Assignment. "
     "Primary purpose: Prevention.", "Prevention", "Unclear"),
    ("Diagnostic test", "Diagnostic", "Purpose: Diagnosis", "Diagnosis", "Unclear"),
    ("Basic Science", "Unclear", "Factorial", None, "Unclear"),
    ("", "Unclear", "", None, "Unclear"),
])
def test_facet_rules(words, kind, design, aim, assignment):
    assert ictrp.study_type(words) == kind
    assert ictrp.assignment(design, kind) == (assignment or "Unclear")
    assert ictrp.study_aim(design) == (aim or "Unclear")


def test_design_rules():
    assert ictrp.study_design("Randomized parallel controlled trial") == "Parallel/Crossover"
    assert ictrp.study_design("Intervention model: Single Group Assignment") == "Single arm"
    assert ictrp.study_design("2x2 factorial") == "Factorial"
    assert ictrp.study_design("Prospective cohort") == "Cohort"
    assert ictrp.study_design("Sequential") == "Unclear"


def test_bridging_two_records_of_one_trial_make_one_study(client, runner):
    _, first = _import(runner, TRACKER)
    study = client.get("/studies?registration=EUCTR2020-001262-11-ES").get_json()["items"][0]
    assert [r["identifier"] for r in study["registrations"]] == ["2020-001262-11", "NCT04392531"]
    result, second = _import(runner, BRIDGED)
    assert result.exit_code == 0, result.output
    again = client.get("/studies?registration=NCT04392531&include=references").get_json()
    assert again["total"] == 1 and again["items"][0]["id"] == study["id"]
    records = sorted(r["registration_id"] for r in again["items"][0]["references"])
    assert records == ["2020-001262-11", "NCT04392531"]  # both registry records under one study
    assert second["studies"]["created"] == 0  # every row of the second file joined a known trial
    assert client.get("/studies").get_json()["total"] == first["studies"]["created"]


def test_importing_twice_changes_nothing(client, runner):
    _, first = _import(runner, WHO)
    before = client.get("/studies?page_size=100&include=references").get_json()["items"]
    result, second = _import(runner, WHO)
    assert result.exit_code == 0
    assert second["studies"] == {"created": 0, "updated": 0, "unchanged": first["studies"]["created"]}
    assert client.get("/studies?page_size=100&include=references").get_json()["items"] == before


def test_gzip_and_windows_1252_and_bom(client, runner, tmp_path):
    text = WHO.read_text(encoding="utf-8")
    zipped = tmp_path / "who.csv.gz"
    zipped.write_bytes(gzip.compress(text.encode("utf-8")))
    result, report = _import(runner, zipped)
    assert result.exit_code == 0 and report["studies"]["created"] == _rows(WHO)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(DIRECCT.read_text(encoding="utf-8").replace(
        "Comparative study", "Étude comparée").encode("cp1252"))
    result, report = _import(runner, latin)
    assert result.exit_code == 0, result.output
    assert report["encoding"] == "cp1252"
    assert client.get("/studies?q=etude").get_json()["items"][0]["title"].startswith("Étude comparée")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + TRACKER.read_bytes())
    result, report = _import(runner, bom)
    assert result.exit_code == 0 and report["encoding"] == "utf-8-sig"


def test_malformed_files_are_refused_and_nothing_written(client, runner, tmp_path):
    wrong = tmp_path / "articles.csv"
    wrong.write_text("pmid,title\n1,x\n", encoding="utf-8")
    result, _ = _import(runner, wrong)
    assert result.exit_code != 0 and "TrialID" in result.output
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(WHO.read_bytes())[:-200])
    result, _ = _import(runner, truncated)
    assert result.exit_code != 0 and "refused" in result.output
    bad_utf8 = tmp_path / "bad.csv"
    bad_utf8.write_bytes(WHO.read_bytes()[:2000] + b"\xff\xfe" + WHO.read_bytes()[2000:])
    result, _ = _import(runner, bad_utf8, "--encoding", "utf-8")
    assert result.exit_code != 0 and "--encoding" in result.output
    assert client.get("/studies").get_json()["total"] == 0


def test_rows_that_cannot_be_loaded_are_rejected_with_their_line(client, runner, tmp_path):
    lines = DIRECCT.read_text(encoding="utf-8").splitlines()
    lines[2] = "NOT-AN-ID-123," + lines[2].split(",", 1)[1]  # an identifier no registry uses
    lines[4] = "too,few,fields"
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, report = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert [r["line"] for r in report["rejected"]] == [3, 5]
    assert "registry" in report["rejected"][0]["reason"] and "fields" in report["rejected"][1]["reason"]
    assert report["studies"]["created"] == len(lines) - 1 - 2


def test_dry_run(client, runner):
    result, report = _import(runner, DIRECCT, "--dry-run")
    assert result.exit_code == 0 and report["studies"]["created"] == _rows(DIRECCT)
    assert client.get("/studies").get_json()["total"] == 0


def test_a_big_postgres_import_is_vacuumed_and_analysed(client, runner, backend, monkeypatch):
    from service import cli

    monkeypatch.setattr(cli, "VACUUM_AFTER", 5)
    result = runner.invoke(args=["import", str(WHO), "--format", "ictrp-csv"])
    assert result.exit_code == 0, result.output
    assert ("VACUUM ANALYZE" in result.stderr) == (backend == "postgres")
    if backend == "postgres":
        from service.db import database

        with database.connection_context():
            analysed = database.execute_sql(
                "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = 'study'").fetchone()[0]
        assert analysed
