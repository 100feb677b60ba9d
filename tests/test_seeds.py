"""The seed records: ChiCTR2000030261 exactly as the register shows it, real studies, idempotent loading."""

from __future__ import annotations

import json

from tests.conftest import SEEDS

SEED_PAGE_TITLE = ("A study for the key technology of mesenchymal stem cells exosomes atomization in the "
                   "treatment of novel coronavirus pneumonia (COVID-19)")
ARTICLE_TITLE = ("Nebulization Therapy with Umbilical Cord Mesenchymal Stem Cell-Derived Exosomes for "
                 "COVID-19 Pneumonia")
HOLIDAY = ("Register update: there will be a delay adding new records during our holiday period "
           "(Dec 17 - Jan 4)")


def _everything(client) -> dict:
    studies = client.get("/studies?page_size=100&include=references").get_json()
    references = client.get("/references?page_size=100").get_json()
    notices = client.get("/notices?status=all").get_json()
    return {"studies": studies, "references": references, "notices": notices}


def test_chictr2000030261_is_as_on_the_register(client, seeded):
    found = client.get("/studies?registration=ChiCTR2000030261").get_json()
    assert found["total"] == 1
    study = client.get(f"/studies/{found['items'][0]['id']}").get_json()
    assert study["name"] == "ChiCTR2000030261"
    assert study["title"] == SEED_PAGE_TITLE
    assert (study["study_type"], study["study_aim"], study["study_design"],
            study["intervention_assignment"]) == (
        "Interventional", "Treatment and Management", "Parallel/Crossover", "Unclear")
    assert study["first_published"] == "2020-04-01"
    assert study["updated"] == "2022-07-04T00:00:00Z"
    assert study["registrations"] == [{"registry": "ChiCTR", "identifier": "ChiCTR2000030261"}]
    assert study["reference_count"] == 2
    by_type = {r["type"]: r for r in study["references"]}
    article, record = by_type["journal_article"], by_type["trial_registry_record"]
    assert article["title"] == ARTICLE_TITLE and article["type_label"] == "Journal article"
    assert article["authors"] == ["Chu M", "Wang H", "Bian L", "Huang J", "Wu D", "Zhang R", "Fei F",
                                  "Chen Y", "Xia J"]
    assert article["has_results"] is True
    assert article["abstract"].startswith("BACKGROUND: Scientists have been facing numerous challenges")
    assert article["abstract"].endswith("TRIAL REGISTRATION: Chinese Clinical Trial Registry, "
                                        "ChiCTR2000030261. Registered on 26 February 2020")
    assert record["title"] == SEED_PAGE_TITLE and record["type_label"] == "Trial registry record"
    assert record["registration_id"] == "ChiCTR2000030261" and record["has_results"] is False
    assert record["abstract"].startswith("Study type: Interventional study Study design: Parallel")


def test_holiday_notice_and_real_studies_are_seeded(client, seeded):
    messages = [n["message"] for n in client.get("/notices?status=all").get_json()["items"]]
    assert HOLIDAY in messages
    total = client.get("/studies").get_json()["total"]
    assert 21 <= total <= 51
    for identifier in ("NCT04280705", "ChiCTR2000029308", "KCT0005105", "ISRCTN40302986"):
        assert client.get(f"/studies?registration={identifier}").get_json()["total"] == 1, identifier
    # A cross-registered trial is one study holding both registrations.
    korean = client.get("/studies?registration=NCT04330586").get_json()["items"]
    assert [r["identifier"] for r in korean[0]["registrations"]].count("KCT0005105") == 1


def test_seeding_twice_changes_nothing(client, seeded, runner):
    first = _everything(client)
    result = runner.invoke(args=["seed", "--dir", str(SEEDS)])
    assert result.exit_code == 0, result.output
    assert "0 created" in result.output
    assert _everything(client) == first
    skipped = runner.invoke(args=["seed", "--dir", str(SEEDS), "--if-empty"])
    assert "not empty" in skipped.output and _everything(client) == first


def test_a_bad_seed_file_loads_nothing(client, runner, tmp_path):
    good = json.loads((SEEDS / "ccsr-seed.json").read_text(encoding="utf-8"))
    (tmp_path / "a.json").write_text(json.dumps(good), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"studies": [{"title": "no name, no registration",
                                                              "study_type": "Trial"}]}), encoding="utf-8")
    result = runner.invoke(args=["seed", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "nothing loaded" in result.output and "study_type" in result.output
    assert client.get("/studies").get_json()["total"] == 0
    assert client.get("/notices?status=all").get_json()["total"] == 0


def test_records_with_the_same_title_stay_apart(client, seeded):
    # ACTT-1 and ACTT-2 have jRCT records with one title and year: identified records never merge.
    for identifier in ("jRCT2031190264", "jRCT2031200035"):
        found = client.get(f"/references?registration_id={identifier}").get_json()
        assert found["total"] == 1, identifier
