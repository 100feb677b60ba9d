"""Parser-level: what each registry format states about a study, as claims (formats.Claim), on small
fixtures of real rows (tests/fixtures/make_claims_fixtures.py and the import fixtures)."""

from __future__ import annotations

import io
from pathlib import Path

import ftfy
import pytest

from service.formats import STRUCTURED, TABLE, TEXT, aact, ctgov, direcct, facets, ictrp, trialdata, xlsx
from service.formats.reading import csv_rows

FIXTURES = Path(__file__).parent / "fixtures"
INTERVENTIONAL = facets.INTERVENTIONAL_DESIGNS
OBSERVATIONAL = facets.OBSERVATIONAL_DESIGNS


def records(parse, name, mode="r"):
    opened = (
        open(FIXTURES / name, "rb") if mode == "rb" else open(FIXTURES / name, encoding="utf-8", newline="")
    )
    with opened as stream:
        return {row.record.identifier: row.record for row in parse(stream, {}) if row.record is not None}


def said(claim):
    return (claim.value, claim.field, claim.strength)


@pytest.fixture(scope="module")
def who():
    return records(ictrp.parse, "claims_who.csv")


@pytest.fixture(scope="module")
def tracker():
    return records(ictrp.parse, "claims_trialstracker.csv")


def test_who_design_fields_state_the_aim_assignment_and_design(who):
    anzctr = who["ACTRN12620000470998"].claims  # "Purpose: Prevention; Allocation: Non-randomised trial;"
    assert said(anzctr["study_aim"]) == ("Prevention", "Study design", TABLE)
    assert said(anzctr["intervention_assignment"]) == ("Non-randomised", "Study design", TABLE)
    irct = who[
        "IRCT20200316046792N1"
    ].claims  # "Randomization: Randomized, ... Randomization description: ..."
    assert [irct[f].value for f in facets.FACETS] == [
        "Interventional",
        "Treatment and Management",
        "Parallel/Crossover",
        "Randomised",
    ]
    eu = who["2020-001162-12"].claims  # EU CTR yes/no form
    assert (eu["study_design"].value, eu["intervention_assignment"].value) == (
        "Parallel/Crossover",
        "Randomised",
    )
    isrctn = who["ISRCTN16912075"].claims  # "Adaptive (group-sequential), ... randomised ... (Treatment)"
    assert said(isrctn["study_aim"]) == ("Treatment and Management", "Study design", TABLE)
    assert said(isrctn["study_design"]) == ("Platform/Adaptive", "Study design", TEXT)
    assert who["jRCTs041190120"].claims["study_aim"].rule == "design text says treatment purpose"
    assert who["DRKS00021134"].claims["study_aim"].value == "Prognosis"  # "Study design purpose: Prognosis"


def test_a_design_never_contradicts_the_study_type(who, tracker):
    # ChiCTR writes "Factorial" / "Single arm" for observational studies and "Cohort study" for interventional
    assert "study_design" not in who["ChiCTR2000029953"].claims
    assert "study_design" not in who["ChiCTR2000029437"].claims
    assert "study_design" not in who["ChiCTR2000030773"].claims
    for record in [*who.values(), *tracker.values()]:
        kind, design = record.study["study_type"], record.claims.get("study_design")
        if design and kind in facets.NOT_INTERVENTIONAL:
            assert design.value not in INTERVENTIONAL, record.identifier
        if design and kind == "Interventional":
            assert design.value not in OBSERVATIONAL, record.identifier
        if kind == "Observational":
            assert record.claims["intervention_assignment"].value == "Not applicable"


def test_titles_state_randomisation_when_the_design_does_not(who, tracker):
    # NTR writes "Randomized: No" and "Type: 2 or more arms, randomized": the design text says neither
    ntr = who["NL8490"].claims["intervention_assignment"]
    assert said(ntr) == ("Randomised", "Scientific title", TEXT) and ntr.rule == "title says randomised"
    assert said(who["ChiCTR2000030987"].claims["intervention_assignment"]) == (
        "Randomised",
        "Public title",
        TEXT,
    )
    single = tracker["ChiCTR2000029935"].claims["intervention_assignment"]  # "A Single-arm Clinical Trial..."
    assert (single.value, single.field, single.span) == ("Non-randomised", "public_title", "Single-arm")
    # an observational study's title saying "Randomized" does not make it randomised
    assert tracker["NCT04324047"].claims["intervention_assignment"].value == "Not applicable"
    # the record's own facets come from its type and design only (titles are weighed by the domain)
    assert who["NL8490"].study["intervention_assignment"] == "Unclear"


def test_who_status_fields(who):
    chictr = who["ChiCTR2000030987"].claims
    assert (chictr["phase"].value, chictr["phase"].span) == ("Phase 2/3", "2-3")
    assert (chictr["target_size"].value, chictr["target_size"].rule) == (150, "sum of 3 groups")
    assert who["ChiCTR2000029850"].claims["phase"].value == "Early phase 1"  # ChiCTR's "0"
    assert "phase" not in who["ChiCTR2000029949"].claims  # "Retrospective study"
    assert who["2020-001162-12"].claims["phase"].value == "Phase 2/3"  # EU CTR yes/no phases
    assert who["NCT03808922"].claims["countries"].value == ["US", "AU", "KR", "TW"]  # Korea, Republic of
    start = who["NCT04312997"].claims["start_date"]  # "April 2020"
    assert (start.value, start.rule, start.span) == (
        "2020-04-01",
        "first day of the month given",
        "April 2020",
    )
    nct = who["NCT04312997"].claims
    assert said(nct["recruitment_status"]) == (
        trialdata.recruitment_status(nct["recruitment_status"].span),
        "Recruitment Status",
        TABLE,
    )
    assert said(nct["registered"]) == ("2020-03-16", "Date registration", STRUCTURED)
    assert said(nct["record_updated"])[1:] == ("Last Refreshed on", STRUCTURED)
    assert nct["sponsor"].field == "Primary sponsor"


def test_trialstracker_status_and_results(tracker):
    jrct = tracker["jRCTs041190120"].claims
    assert said(jrct["results_registry"]) == (True, "results_type", TABLE)
    assert said(jrct["results_registry_date"]) == ("2020-08-31", "results_publication_date", STRUCTURED)
    assert said(tracker["ChiCTR2000029947"].claims["results_registry"]) == (False, "results_type", TABLE)
    world = tracker["ISRCTN80453162"].claims[
        "countries"
    ]  # "..., Korea, South, ..., Virgin Islands, British, ..."
    assert {"KR", "KP", "VG", "VI", "FM"} <= set(world.value) and "Kosovo" in world.rule


def test_no_title_an_import_writes_is_changed_by_ftfy(who, tracker):
    assert (
        tracker["ChiCTR2000030254"]
        .study["title"]
        .startswith("the Efficacy and Safety of Favipiravir for novel coronavirus\u2013infected")
    )
    xl = records(xlsx.parse, "ictrp_who_7jul2020.xlsx", "rb")
    aa = records(aact.parse, "ctgov_aact_studies.csv")
    for record in [*who.values(), *tracker.values(), *xl.values(), *aa.values()]:
        for text in (
            record.study["title"],
            record.reference["title"],
            record.reference.get("abstract") or "",
        ):
            assert ftfy.fix_encoding(text) == text, record.identifier


def test_aact_columns_state_status_dates_and_results():
    rows = records(aact.parse, "ctgov_aact_studies.csv")
    novartis = rows["NCT04382053"].claims
    assert said(novartis["recruitment_status"]) == ("Completed", "overall_status", STRUCTURED)
    assert said(novartis["phase"]) == ("Phase 2", "phase", STRUCTURED)
    assert said(novartis["target_size"]) == (143, "enrollment", STRUCTURED)
    assert said(novartis["sponsor"]) == ("Novartis", "source", STRUCTURED)
    assert said(novartis["registered"]) == ("2020-05-08", "study_first_submitted_date", STRUCTURED)
    assert said(novartis["start_date"]) == ("2020-05-27", "start_date", STRUCTURED)
    assert said(novartis["primary_completion_date"]) == ("2020-12-10", "primary_completion_date", STRUCTURED)
    assert said(novartis["record_updated"]) == ("2021-11-30", "last_update_posted_date", STRUCTURED)
    assert said(novartis["results_registry"]) == (True, "results_first_posted_date", STRUCTURED)
    assert said(novartis["results_registry_date"]) == ("2021-11-30", "results_first_posted_date", STRUCTURED)
    assert said(novartis["intervention_assignment"]) == ("Randomised", "official_title", TEXT)
    assert all(c.value != "Unclear" for r in rows.values() for c in r.claims.values())


def test_ctgov_json_claims():
    study = {
        "protocolSection": {
            "identificationModule": {
                "nctId": "NCT04382053",
                "briefTitle": "Study of Efficacy and Safety of DV890 in Patients With COVID-19 Pneumonia",
            },
            "statusModule": {
                "overallStatus": "COMPLETED",
                "studyFirstSubmitDate": "2020-05-08",
                "startDateStruct": {"date": "2020-05"},
                "lastUpdatePostDateStruct": {"date": "2021-11-30"},
                "resultsFirstPostDateStruct": {"date": "2021-11-30"},
            },
            "designModule": {
                "studyType": "INTERVENTIONAL",
                "phases": ["PHASE2", "PHASE3"],
                "enrollmentInfo": {"count": 143, "type": "ACTUAL"},
                "designInfo": {
                    "allocation": "RANDOMIZED",
                    "interventionModel": "PARALLEL",
                    "primaryPurpose": "TREATMENT",
                    "maskingInfo": {"masking": "NONE"},
                },
            },
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Novartis"}},
            "contactsLocationsModule": {
                "locations": [{"country": "Italy"}, {"country": "Russia"}, {"country": "Italy"}]
            },
        }
    }
    claims = ctgov.map_study(study).claims
    assert said(claims["intervention_assignment"]) == (
        "Randomised",
        "designModule.designInfo.allocation",
        STRUCTURED,
    )
    assert said(claims["phase"]) == ("Phase 2/3", "designModule.phases", STRUCTURED)
    assert claims["countries"].value == ["IT", "RU"]
    assert (claims["start_date"].value, claims["start_date"].span) == ("2020-05-01", "2020-05")
    assert claims["results_registry"].value is True and claims["recruitment_status"].value == "Completed"


def test_direcct_registry_scrape_rows_are_registry_statuses():
    with open(FIXTURES / "direcct_registries.csv", encoding="utf-8", newline="") as stream:
        rows = list(direcct.parse_registries(stream, {}))
    first = rows[0].record
    assert (first.identifier, first.registry) == ("NCT04292899", "ClinicalTrials.gov")
    assert said(first.claims["recruitment_status"]) == ("Completed", "trial_status", TABLE)
    assert said(first.claims["primary_completion_date"]) == ("2020-04-09", "pcd", STRUCTURED)
    assert said(first.claims["results_registry"]) == (True, "tabular_results", STRUCTURED)
    assert rows[1].record.claims["recruitment_status"].value == "Completed"  # EudraCT "['Completed']"


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("Not Recruiting", "Not recruiting"),
        ("Not recruiting", "Not recruiting"),
        ("Recruiting", "Recruiting"),
        ("Authorised", None),
        ("Authorised-recruitment may be ongoing or finished", None),
        ("Pending", "Not yet recruiting"),
        ("Completed", "Completed"),
        ("Withdrawn", "Withdrawn"),
        ("Suspended", "Suspended"),
        ("Terminated", "Terminated"),
        ("Active, not recruiting", "Active, not recruiting"),
        ("ACTIVE_NOT_RECRUITING", "Active, not recruiting"),
        ("Ongoing", "Recruiting"),
        ("Prematurely Ended", "Terminated"),
        ("No Status Given", None),
        ("['Completed', 'GB - no longer in EU/EEA', 'Ongoing']", "Recruiting"),
        ("['GB - no longer in EU/EEA']", None),
    ],
)
def test_recruitment_status_spellings(value, label):
    assert trialdata.recruitment_status(value) == label


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("Phase 2/Phase 3", "Phase 2/3"),
        ("2-3", "Phase 2/3"),
        ("Phase II", "Phase 2"),
        ("Phase 0", "Early phase 1"),
        ("N/A", "Not applicable"),
        ("Not applicable", "Not applicable"),
        ("Retrospective study", None),
        ("Phase 1/ Phase 2", "Phase 1/2"),
        ("Phase 3/ Phase 4", None),
        ("New Treatment Measure Clinical Study", None),
        (
            "Human pharmacology (Phase I): no\nTherapeutic exploratory (Phase II): yes\n"
            "Therapeutic confirmatory - "
            "(Phase III): no\nTherapeutic use (Phase IV): no",
            "Phase 2",
        ),
        ("Early Phase 1", "Early phase 1"),
        ("II-III", "Phase 2/3"),
        ("Phase-3", "Phase 3"),
        ("IIb", "Phase 2"),
        ("", None),
    ],
)
def test_phase_spellings(value, label):
    assert trialdata.phase(value) == label


def test_one_row_loop_serves_every_csv_format():
    seen = []
    text = "a,b\r\n1,2\r\n\r\n3,4,5\r\n6\r\n7,8\r\n"
    out = list(csv_rows(io.StringIO(text, newline=""), seen.append))
    assert seen == [["a", "b"]]
    assert out == [
        (2, ["1", "2"], None),
        (4, None, "has 3 fields where the header has 2."),
        (5, None, "has 1 fields where the header has 2."),
        (6, ["7", "8"], None),
    ]
