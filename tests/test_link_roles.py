"""Every link says what the reference is to the study (`reports` / `cites`), how sure the rules are and why;
study-based answers count reports only; a curator's role is kept."""

from __future__ import annotations

import json

import pytest

from service.domain import evidence
from service.domain.evidence import Facts
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study

STATEMENT = "TRIAL REGISTRATION: Chinese Clinical Trial Registry, ChiCTR2000030261."


def _links(client, study_id, role=None):
    path = f"/studies/{study_id}/references" + (f"?role={role}" if role else "")
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return {r["id"]: r for r in response.get_json()}


# -- the rules, through the module ------------------------------------------------------------------------


def _assess(title, found, *, type="journal_article", publication_types=(), titles=None):
    owner = {identifier: index for index, (identifier, _) in enumerate(found, 1)}
    facts = Facts(type=type, title=title, publication_types=tuple(publication_types))
    return evidence.assess(facts, found, owner, titles or {})


def _items(*kinds):
    return [{"kind": k, "field": "abstract", "text": "", "start": 0, "end": 1} for k in kinds]


def test_find_tells_a_registration_statement_from_a_mention_and_reads_file_claims():
    abstract = ("Earlier work (NCT04280705) showed little.\nTRIAL REGISTRATION: ClinicalTrials.gov "
                "Identifier: NCT04292899, NCT04292730.")
    found = evidence.find({
        "title": "A trial", "abstract": abstract,
        "notes": "ClinicalTrials.gov records listing this article: NCT04320615.\n"
                 "Trial identifiers found in the text by DIRECCT: NCT04401579."})
    kinds = {identifier: [item["kind"] for item in items] for identifier, _, items in found}
    assert kinds == {"NCT04280705": ["text"], "NCT04292899": ["registration_statement"],
                     "NCT04292730": ["registration_statement"], "NCT04320615": ["registry_listing"],
                     "NCT04401579": ["full_text"]}
    items = {identifier: items[0] for identifier, _, items in found}
    stated = items["NCT04292899"]
    assert stated["field"] == "abstract" and "Identifier: NCT04292899" in stated["text"]
    assert abstract[stated["start"]:stated["end"]] == "NCT04292899"
    assert items["NCT04320615"]["source"] == "regCOVID publication lists"
    assert "lists the article" in items["NCT04320615"]["claim"]


def test_rules_decide_roles():
    # A registration statement reports; the other trial it only mentions, it cites.
    decided = _assess("Favipiravir in mild COVID-19", [
        ("NCT04292899", _items("registration_statement")), ("NCT04280705", _items("text"))])
    assert {s: (d.role, d.rule) for s, d in decided.items()} == {
        1: ("reports", "own_registration"), 2: ("cites", "other_study")}
    assert decided[1].confidence > decided[2].confidence > 0.5
    # A review cites every study, even those a file says are its own, but a trial its text says it is
    # registered as (a pooled analysis, a trial report PubMed also types Review).
    review = _assess("Remdesivir for COVID-19: a systematic review and meta-analysis",
                     [("NCT04292899", _items("databank", "text")),
                      ("NCT04280705", _items("registration_statement"))])
    assert (review[1].role, review[1].rule) == ("cites", "review")
    assert (review[2].role, review[2].rule) == ("reports", "own_registration")
    # ... but not the many trials a review lists under "Clinical Trial Registration:", unless its title
    # is a study's ("a pooled analysis of four randomised trials").
    listed = [(f"NCT0428070{i}", _items("registration_statement")) for i in range(5)]
    assert {d.role for d in _assess("Challenges for drug repurposing", listed,
                                    publication_types=["Review"]).values()} == {"cites"}
    assert {d.role for d in _assess("Booster timing: a pooled analysis of four randomised trials", listed,
                                    publication_types=["Meta-Analysis"]).values()} == {"reports"}
    assert _assess("Remdesivir results", [("NCT04292899", _items("text"))],
                   publication_types=["Journal Article", "Review"])[1].role == "cites"
    # More than three studies named without a statement: all cited.
    many = _assess("Trials of tocilizumab", [(f"NCT0428070{i}", _items("text")) for i in range(5)])
    assert {d.role for d in many.values()} == {"cites"} and {d.rule for d in many.values()} == {"many_named"}
    # ... unless the title names one of them by its acronym.
    found = [(f"NCT0428070{i}", _items("full_text")) for i in range(5)]
    titles = {i: [f"Trial number {i} of tocilizumab"] for i in range(1, 6)}
    titles[3] = ["Tocilizumab in COVID-19 Pneumonia (TOCIVID-19)"]
    acronym = _assess("Tocilizumab for COVID-19 pneumonia. The TOCIVID-19 phase 2 trial", found,
                      titles=titles)
    assert [s for s, d in acronym.items() if d.role == "reports"] == [3]
    assert acronym[3].rule == "title_match"
    # A registry record listing the article, and nothing else: cited; with a mention too: reported.
    assert _assess("Background", [("NCT04292899", _items("registry_listing"))])[1].rule == "listing_only"
    both = _assess("Results", [("NCT04292899", _items("registry_listing", "text"))])
    assert both[1].role == "reports" and both[1].rule == "listed_and_named"
    # A registry record reports its own study and those whose numbers it names (secondary ids).
    record = _assess("Record", [("NCT04292899", _items("registration_id")),
                                ("ChiCTR2000030261", _items("text"))], type="trial_registry_record")
    assert [d.role for d in record.values()] == ["reports", "reports"]
    assert record[1].confidence == 1.0 > record[2].confidence


def test_a_full_text_mention_alone_reports_only_a_clinical_study_title_or_a_like_title():
    studies = {1: ["Spironolactone in Covid-19 induced ARDS"]}
    found = [("NCT04292899", _items("full_text"))]

    def decided(title):
        return _assess(title, found, titles=studies)[1]

    assert decided("Use of spironolactone in Covid-19 ARDS").role == "reports"       # a like title
    assert decided("Spironolactone: a randomised trial in ARDS").role == "reports"   # a clinical study
    why = decided("Why ARDS matters in the pandemic")                                 # neither
    assert (why.role, why.rule) == ("cites", "full_text_only")
    # Two trials in a full text, neither ahead by its title: both discussed, neither reported.
    two = _assess("A randomised trial of steroids", [("NCT04292899", _items("full_text")),
                                                     ("NCT04280705", _items("full_text"))],
                  titles={1: ["Dexamethasone in ARDS"], 2: ["Methylprednisolone in ARDS"]})
    assert {(d.role, d.rule) for d in two.values()} == {("cites", "full_text_only")}


# -- through the API --------------------------------------------------------------------------------------


def test_links_show_role_confidence_and_evidence_and_counts_use_reports(client, auth):
    study = create_study(client, auth)  # ChiCTR2000030261
    other = create_study(client, auth, "NCT04280705", title="Adaptive COVID-19 Treatment Trial")
    report = create_reference(client, auth, abstract="RESULTS: As in ACTT (NCT04280705), ...\n" + STATEMENT)
    review = create_reference(client, auth, title="Stem cells for COVID-19: a systematic review",
                              abstract="Trials: ChiCTR2000030261, NCT04280705.", has_results=False)
    record = client.get(f"/studies/{study['id']}").get_json()
    assert record["reference_count"] == 1 and record["cited_by_count"] == 1
    assert [r["id"] for r in record["references"]] == [report["id"]]
    assert [r["id"] for r in record["citing"]] == [review["id"]]
    shown = record["references"][0]
    assert (shown["role"], shown["link"], shown["link_identifier"], shown["rule"]) == (
        "reports", "auto", "ChiCTR2000030261", "own_registration")
    assert shown["confidence"] >= 0.95 and shown["role_curated"] is False
    assert shown["evidence"][0]["kind"] == "registration_statement"
    assert shown["evidence"][0]["text"].startswith("TRIAL REGISTRATION")
    assert record["citing"][0]["rule"] == "review"
    # The other trial the report mentions: cited, not reported.
    assert client.get(f"/studies/{other['id']}").get_json()["reference_count"] == 0
    assert set(_links(client, other["id"], "cites")) == {report["id"], review["id"]}
    assert set(_links(client, study["id"])) == {report["id"], review["id"]}
    assert set(_links(client, study["id"], "reports")) == {report["id"]}
    # The reference says which studies it reports and which it cites.
    shown_review = client.get(f"/references/{review['id']}").get_json()
    assert shown_review["study_ids"] == [] and shown_review["cited_study_ids"] == sorted(
        [study["id"], other["id"]])
    # Study-based answers: filters, facets, the queue, search.
    def total(path):
        return client.get(path).get_json()["total"]
    assert total("/studies?has_results=true") == 1
    assert total("/studies?reference_type=journal_article") == 1
    facets = client.get("/studies?facets=reference_type").get_json()["facets"]["reference_type"]
    assert {f["value"]: f["count"] for f in facets}["journal_article"] == 1
    queue = {r["id"] for r in client.get("/references?linked=false").get_json()["items"]}
    assert review["id"] in queue and report["id"] not in queue
    assert total("/studies?q=%22systematic+review%22") == 0
    listed = client.get("/studies?include=citing").get_json()["items"]
    assert {s["id"]: len(s["citing"]) for s in listed} == {study["id"]: 1, other["id"]: 2}
    assert all("references" not in s for s in listed)


def test_the_seeded_study_keeps_exactly_its_two_reports(client, seeded):
    found = client.get("/studies?registration=ChiCTR2000030261").get_json()["items"]
    record = client.get(f"/studies/{found[0]['id']}").get_json()
    assert record["reference_count"] == 2
    assert sorted(r["type"] for r in record["references"]) == ["journal_article", "trial_registry_record"]
    assert all(r["role"] == "reports" for r in record["references"])


def test_a_curator_sets_the_role_and_automation_keeps_it(client, auth, runner):
    study = create_study(client, auth)
    ref = create_reference(client, auth)
    path = f"/studies/{study['id']}/references/{ref['id']}"
    response = client.patch(path, json={"role": "cites"}, headers=auth)
    assert response.status_code == 200, response.get_json()
    link = response.get_json()
    assert (link["role"], link["role_curated"], link["link"], link["rule"], link["confidence"]) == (
        "cites", True, "manual", "curator", 1.0)
    assert link["evidence"][0]["kind"] == "registration_statement"
    # Relinking (a text change, the CLI) never undoes it.
    client.patch(f"/references/{ref['id']}", json={"abstract": STATEMENT + " Again."}, headers=auth)
    shown = _links(client, study["id"])[ref["id"]]
    assert (shown["role"], shown["role_curated"]) == ("cites", True)
    assert runner.invoke(args=["relink"]).exit_code == 0
    assert _links(client, study["id"])[ref["id"]]["role"] == "cites"
    assert client.get(f"/studies/{study['id']}").get_json()["reference_count"] == 0
    # ... nor does a text that no longer names the study: the link is the curator's now.
    client.patch(f"/references/{ref['id']}", json={"abstract": "Nothing."}, headers=auth)
    assert _links(client, study["id"])[ref["id"]]["role"] == "cites"
    back = client.patch(path, json={"role": "reports"}, headers=auth).get_json()
    assert back["role"] == "reports" and back["role_curated"] is True
    assert client.get(f"/studies/{study['id']}").get_json()["reference_count"] == 1


def test_bad_roles_are_refused_and_change_nothing(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth)
    unlinked = create_reference(client, auth, title="Unlinked", abstract="Nothing.")
    before = client.get(f"/studies/{study['id']}").get_json()
    path = f"/studies/{study['id']}/references/{ref['id']}"
    problem = assert_problem(client.patch(path, json={"role": "describes"}, headers=auth), 422, "role")
    assert "reports" in json.dumps(problem)
    assert_problem(client.patch(path, json={}, headers=auth), 422, "role")
    assert_problem(client.patch(path, json={"role": "cites", "confidence": 1}, headers=auth), 422)
    assert_problem(client.patch(f"/studies/{study['id']}/references/{unlinked['id']}",
                                json={"role": "cites"}, headers=auth), 404)
    assert_problem(client.patch(f"/studies/{study['id']}/references/999999", json={"role": "cites"},
                                headers=auth), 404)
    assert client.patch(path, json={"role": "cites"}).status_code == 401
    assert_problem(client.get(f"/studies/{study['id']}/references?role=all"), 422, "role")
    assert client.get(f"/studies/{study['id']}").get_json() == before


@pytest.mark.parametrize("role", ["cites", "reports"])
def test_ndjson_round_trip_keeps_curated_roles(client, auth, runner, tmp_path, role):
    study = create_study(client, auth)
    ref = create_reference(client, auth)
    client.patch(f"/studies/{study['id']}/references/{ref['id']}", json={"role": role}, headers=auth)
    exported = client.get("/studies?format=ndjson").get_data(as_text=True)
    path = tmp_path / "export.ndjson"
    path.write_text(exported, encoding="utf-8")
    client.delete(f"/studies/{study['id']}", headers=auth)
    client.delete(f"/references/{ref['id']}", headers=auth)
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet"])
    assert result.exit_code == 0, result.output
    again = client.get("/studies?registration=ChiCTR2000030261").get_json()["items"][0]
    links = list(_links(client, again["id"]).values())
    assert [(r["role"], r["role_curated"], r["link"]) for r in links] == [(role, True, "manual")]


def test_search_reaches_a_study_through_its_reports_only(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth, title="Nebulised exosomes: the Zephyrine trial")

    def found():
        return [s["id"] for s in client.get("/studies?q=zephyrine").get_json()["items"]]

    assert found() == [study["id"]]
    client.patch(f"/studies/{study['id']}/references/{ref['id']}", json={"role": "cites"}, headers=auth)
    assert found() == []
    client.patch(f"/studies/{study['id']}/references/{ref['id']}", json={"role": "reports"}, headers=auth)
    assert found() == [study["id"]]
    # A text edit that makes an automatic report a mere mention takes it out of the study's words too.
    other = create_reference(client, auth, title="Quorvalent dosing",
                             abstract="Patients as in ChiCTR2000030261 were given quorvalent.")
    assert [s["id"] for s in client.get("/studies?q=quorvalent").get_json()["items"]] == [study["id"]]
    client.patch(f"/references/{other['id']}", json={"title": "Quorvalent dosing: a systematic review"},
                 headers=auth)
    assert client.get("/studies?q=quorvalent").get_json()["items"] == []
