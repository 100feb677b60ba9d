"""FHIR R4 through HTTP: ResearchStudy and DocumentReference reads, streamed Bundles, and the `Accept`
negotiation every endpoint follows (406 problem+json). Every resource is validated with fhir.resources'
R4B models (R4B left ResearchStudy, DocumentReference and Bundle as R4 has them); the codes of required
bindings, which the models do not check, are checked against the R4 value sets here."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.researchstudy import ResearchStudy
from playhouse.test_utils import count_queries

from service.api.negotiation import FHIR_JSON, JSON, best_match
from service.db import database
from service.domain import exports
from service.formats import fhir
from service.models import Study
from service.vocabularies import PHASE, RECRUITMENT_STATUS, REGISTRIES
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study

FHIR_TYPE = "application/fhir+json; fhirVersion=4.0"
ACCEPT_FHIR = {"Accept": "application/fhir+json"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# R4 value sets of required bindings (hl7.org/fhir/R4/valueset-research-study-status.html, ...).
R4_STUDY_STATUS = {"active", "administratively-completed", "approved", "closed-to-accrual",
                   "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
                   "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
                   "withdrawn"}
R4_PHASES = {"n-a", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2", "phase-2-phase-3", "phase-3",
             "phase-4"}
R4_PURPOSES = {"treatment", "prevention", "diagnostic", "supportive-care", "screening",
               "health-services-research", "basic-science", "device-feasibility"}
R4_ARTIFACT_TYPES = {"documentation", "justification", "citation", "predecessor", "successor",
                     "derived-from", "depends-on", "composed-of"}
R4_IDENTIFIER_USES = {"usual", "official", "temp", "secondary", "old"}


def _no_empty(value, path="$"):
    """FHIR JSON has no empty arrays, objects or strings, and no nulls."""
    assert value is not None and value != [] and value != {} and value != "", path
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_empty(item, f"{path}[{index}]")


def _identifiers(resource: dict) -> None:
    for identifier in resource["identifier"]:
        assert identifier["use"] in R4_IDENTIFIER_USES and identifier["system"] and identifier["value"]


def valid_study(resource: dict) -> dict:
    ResearchStudy.model_validate(resource)
    _no_empty(resource)
    _identifiers(resource)
    if "status" in resource:
        assert resource["status"] in R4_STUDY_STATUS
    else:
        assert resource["_status"]["extension"][0]["valueCode"] == "unknown"
    if "phase" in resource:
        assert resource["phase"]["coding"][0] == {"system": fhir.PHASE_SYSTEM,
                                                  "code": resource["phase"]["coding"][0]["code"]}
        assert resource["phase"]["coding"][0]["code"] in R4_PHASES
    if "primaryPurposeType" in resource:
        assert resource["primaryPurposeType"]["coding"][0]["code"] in R4_PURPOSES
    for artifact in resource.get("relatedArtifact", []):
        assert artifact["type"] in R4_ARTIFACT_TYPES
    return resource


def valid_document(resource: dict) -> dict:
    DocumentReference.model_validate(resource)
    _no_empty(resource)
    _identifiers(resource)
    assert resource["status"] == "current" and resource["docStatus"] in ("preliminary", "final")
    return resource


def valid_bundle(response, resource_type: str) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == FHIR_TYPE
    body = json.loads(response.get_data(as_text=True))
    Bundle.model_validate(body)
    _no_empty(body)
    assert body["type"] == "searchset"
    if "X-Total-Count" in response.headers:  # the streamed exports
        assert body["total"] == int(response.headers["X-Total-Count"])
    entries = body.get("entry", [])
    assert len(entries) == body["total"]
    check = valid_study if resource_type == "ResearchStudy" else valid_document
    for entry in entries:
        assert entry["resource"]["resourceType"] == resource_type and entry["search"] == {"mode": "match"}
        assert entry["fullUrl"].endswith(f"/{entry['resource']['id']}")
        check(entry["resource"])
    assert len({e["fullUrl"] for e in entries}) == len(entries)
    return [e["resource"] for e in entries]


def _codes(concepts: list[dict]) -> dict[str, str]:
    return {c["coding"][0]["system"].rsplit("/", 1)[1]: c["coding"][0]["code"] for c in concepts}


# ------------------------------------------------------------------------------------ single reads

def test_seeded_study_is_a_research_study(client, seeded):
    response = client.get("/studies/1", headers=ACCEPT_FHIR)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == FHIR_TYPE
    assert "Accept" in response.headers["Vary"]
    study = valid_study(response.get_json())
    assert study["id"] == "1" and study["title"].startswith("A study for the key technology")
    assert study["identifier"][0] == {"use": "official", "system": "http://www.chictr.org.cn",
                                      "value": "ChiCTR2000030261"}
    assert _codes(study["category"]) == {
        "study_type": "Interventional", "study_aim": "Treatment and Management",
        "study_design": "Parallel/Crossover", "intervention_assignment": "Unclear"}
    assert study["primaryPurposeType"]["coding"][0] == {"system": fhir.PURPOSE_SYSTEM, "code": "treatment"}
    assert "phase" not in study  # Unclear
    assert study["meta"]["lastUpdated"] == "2022-07-04T00:00:00Z"
    # its two reports: the registry record and Chu M et al., each linking to its DocumentReference
    artifacts = {a["document"]["url"]: a for a in study["relatedArtifact"]}
    assert artifacts.keys() == {"/references/1", "/references/2"}
    assert artifacts["/references/1"]["citation"].startswith("Chu M, Wang H")
    for url in artifacts:
        document = valid_document(client.get(url, headers=ACCEPT_FHIR).get_json())
        assert document["context"]["related"] == [{"reference": "/studies/1", "type": "ResearchStudy"}]
    registry_record = client.get("/references/2?format=fhir").get_json()
    assert {"use": "official", "system": "http://www.chictr.org.cn",
            "value": "ChiCTR2000030261"} in registry_record["identifier"]
    assert registry_record["category"][0]["coding"][0]["code"] == "No Results"


def test_format_fhir_is_the_same_as_accept(client, seeded):
    by_accept = client.get("/studies/1", headers=ACCEPT_FHIR)
    by_format = client.get("/studies/1?format=fhir", headers={"Accept": "application/json"})  # format wins
    assert by_format.headers["Content-Type"] == FHIR_TYPE
    assert by_accept.get_json() == by_format.get_json()
    assert client.get("/studies/1?format=json", headers=ACCEPT_FHIR).headers["Content-Type"] == JSON


def test_fhir_has_its_own_etag(client, seeded):
    as_json = client.get("/studies/1")
    as_fhir = client.get("/studies/1", headers=ACCEPT_FHIR)
    assert as_json.headers["ETag"] != as_fhir.headers["ETag"]
    again = client.get("/studies/1", headers={**ACCEPT_FHIR, "If-None-Match": as_fhir.headers["ETag"]})
    assert again.status_code == 304
    other = client.get("/studies/1", headers={**ACCEPT_FHIR, "If-None-Match": as_json.headers["ETag"]})
    assert other.status_code == 200 and other.headers["Content-Type"] == FHIR_TYPE


def test_status_phase_registries_and_absolute_urls(app, client, auth):
    app.config["PUBLIC_URL"] = "https://register.example.org"
    study = create_study(client, auth, "NCT04280705", registrations=[
        {"identifier": "NCT04280705"}, {"identifier": "EUCTR2020-001052-18-DE"},
        {"identifier": "ISRCTN83971151"}])
    reference = create_reference(client, auth, doi="10.1056/NEJMoa2007764", pmid="32445440",
                                 type="preprint", source="N Engl J Med", year=2020, volume="383",
                                 issue="19", pages="1813-1826", published="2020-11-05",
                                 abstract="TRIAL REGISTRATION: NCT04280705.")
    with database.connection_context():
        Study.update(recruitment_status="Completed", phase="Phase 3", sponsor="NIAID",
                     countries='["US", "DE"]').where(Study.id == study["id"]).execute()
    resource = valid_study(client.get(f"/studies/{study['id']}", headers=ACCEPT_FHIR).get_json())
    assert resource["status"] == "completed"
    assert resource["phase"]["coding"][0]["code"] == "phase-3"
    assert resource["identifier"] == [
        {"use": "official", "system": "https://clinicaltrials.gov", "value": "NCT04280705"},
        {"use": "secondary", "system": "https://www.clinicaltrialsregister.eu", "value": "2020-001052-18"},
        {"use": "secondary", "system": "https://www.isrctn.com", "value": "ISRCTN83971151"},
        {"use": "usual", "system": "https://register.example.org/studies", "value": str(study["id"])}]
    assert resource["sponsor"] == {"display": "NIAID"}
    assert [c["coding"][0]["code"] for c in resource["location"]] == ["US", "DE"]
    for concept in resource["category"]:
        assert concept["coding"][0]["system"].startswith("https://register.example.org/vocabularies/")
    artifact, = resource["relatedArtifact"]
    assert artifact["url"] == "https://doi.org/10.1056/nejmoa2007764"
    assert artifact["document"]["url"] == f"https://register.example.org/references/{reference['id']}"
    assert "2020;383(19):1813-1826" in artifact["citation"]
    document = valid_document(client.get(artifact["document"]["url"].removeprefix(
        "https://register.example.org"), headers=ACCEPT_FHIR).get_json())
    assert document["masterIdentifier"] == {"system": fhir.DOI_SYSTEM, "value": "10.1056/nejmoa2007764"}
    assert {"use": "secondary", "system": fhir.PMID_SYSTEM, "value": "32445440"} in document["identifier"]
    assert document["docStatus"] == "preliminary"  # a preprint
    assert document["content"][0]["attachment"]["creation"] == "2020-11-05"
    assert document["context"]["related"] == [
        {"reference": f"https://register.example.org/studies/{study['id']}", "type": "ResearchStudy"}]


@pytest.mark.parametrize("status", list(RECRUITMENT_STATUS))
def test_every_recruitment_status_maps_to_r4(status):
    resource = fhir.research_study({"id": 1, "title": "T", "recruitment_status": status}, "")
    valid_study(resource)
    assert ("status" in resource) is (status not in ("Unknown", "Unclear"))


def test_every_registry_has_its_own_system():
    assert set(fhir.REGISTRY_SYSTEMS) == set(REGISTRIES)
    assert len(set(fhir.REGISTRY_SYSTEMS.values())) == len(REGISTRIES)
    assert all(s.startswith(("https://", "http://")) for s in fhir.REGISTRY_SYSTEMS.values())
    assert fhir.registry_system("Somewhere") == fhir.ICTRP_SYSTEM


def test_every_phase_maps_to_r4():
    assert set(fhir.PHASES) == set(PHASE) - {"Unclear"}
    assert set(fhir.PHASES.values()) <= R4_PHASES


def test_missing_and_merged_study(client, auth):
    missing = client.get("/studies/999999", headers=ACCEPT_FHIR)
    assert_problem(missing, 404)
    assert_problem(client.get("/references/999999?format=fhir"), 404)
    a = create_study(client, auth, "NCT04280705")
    b = create_study(client, auth, "ISRCTN83971151")
    merged = client.post(f"/studies/{a['id']}/merge", json={"from": b["id"]}, headers=auth)
    assert merged.status_code == 200, merged.get_json()
    moved = client.get(f"/studies/{b['id']}", headers=ACCEPT_FHIR)  # as JSON does: a redirect
    assert moved.status_code == 308 and moved.headers["Location"] == f"/studies/{a['id']}"
    moved = client.get(f"/studies/{b['id']}?format=fhir")
    assert moved.status_code == 308 and moved.headers["Location"] == f"/studies/{a['id']}?format=fhir"
    survivor = client.get(moved.headers["Location"])
    identifiers = {i["value"] for i in valid_study(survivor.get_json())["identifier"]}
    assert {"NCT04280705", "ISRCTN83971151"} <= identifiers


def test_bad_format_on_a_read_is_422(client, seeded):
    body = assert_problem(client.get("/studies/1?format=xml"), 422, "format")
    assert "json, fhir" in body["errors"]["format"][0]


# ------------------------------------------------------------------------------------------ Bundles

def test_every_seeded_record_as_a_bundle(client, seeded, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 7)  # several batches, joined by commas
    studies = valid_bundle(client.get("/studies?format=fhir"), "ResearchStudy")
    assert len(studies) == client.get("/studies").get_json()["total"] > 7
    assert [s["id"] for s in studies] == sorted((s["id"] for s in studies), key=int)
    references = valid_bundle(client.get("/references?format=fhir"), "DocumentReference")
    assert len(references) == client.get("/references").get_json()["total"] > 7
    # every report a study links to is a DocumentReference of the references' Bundle, and back
    documents = {f"/references/{r['id']}": r for r in references}
    for study in studies:
        for artifact in study.get("relatedArtifact", []):
            related = documents[artifact["document"]["url"]]["context"]["related"]
            assert {"reference": f"/studies/{study['id']}", "type": "ResearchStudy"} in related


def test_bundle_filters_disposition_and_accept(client, seeded):
    response = client.get("/studies?format=fhir&study_type=Interventional")
    studies = valid_bundle(response, "ResearchStudy")
    assert all(_codes(s["category"])["study_type"] == "Interventional" for s in studies)
    assert response.headers["Content-Disposition"].endswith('.fhir.json"')
    assert int(response.headers["X-Total-Count"]) == len(studies) > 0
    assert response.get_json()["link"] == [
        {"relation": "self", "url": "/studies?format=fhir&study_type=Interventional"}]
    by_accept = client.get("/references?study_id=1", headers=ACCEPT_FHIR)
    assert [r["id"] for r in valid_bundle(by_accept, "DocumentReference")] == ["1", "2"]


def test_empty_bundle_has_no_entry(client, seeded):
    response = client.get("/studies?format=fhir&registration=NCT99999999")
    valid_bundle(response, "ResearchStudy")
    assert "entry" not in response.get_json() and response.get_json()["total"] == 0


def test_a_studys_references_as_a_bundle(client, seeded):
    study = client.get("/studies/1", headers=ACCEPT_FHIR).get_json()
    documents = valid_bundle(client.get("/studies/1/references", headers=ACCEPT_FHIR), "DocumentReference")
    assert {f"/references/{d['id']}" for d in documents} == {
        a["document"]["url"] for a in study["relatedArtifact"]}
    assert documents == valid_bundle(client.get("/studies/1/references?format=fhir&role=reports"),
                                     "DocumentReference")
    empty = client.get("/studies/1/references?format=fhir&role=cites")
    assert valid_bundle(empty, "DocumentReference") == [] and "entry" not in empty.get_json()
    assert_problem(client.get("/studies/1/references?format=ris"), 422, "format")
    assert_problem(client.get("/studies/999999/references", headers=ACCEPT_FHIR), 404)


@pytest.mark.parametrize(("path", "per_batch"), [
    ("/references?format=fhir", 3),  # rows, their study ids, identifiers found (as the NDJSON export)
    ("/studies?format=fhir", 5),  # rows, registrations, references, their study ids, identifiers
])
def test_bundle_streams_in_fixed_queries_per_batch(client, seeded, monkeypatch, path, per_batch, backend):
    total = int(client.get(path).headers["X-Total-Count"])
    declare = 1 if backend == "postgres" else 0  # Postgres: the server-side cursor's DECLARE, then FETCHes
    for size in (4, total):
        monkeypatch.setattr(exports, "BATCH_SIZE", size)
        full, rest = divmod(total, size)
        with count_queries() as counter:
            response = client.get(path)
            text = response.get_data(as_text=True)  # the stream runs its batches as the body is read
        assert counter.count == 1 + declare + per_batch * full + (per_batch if rest else 1), size
        assert len(json.loads(text)["entry"]) == total
    assert database.is_closed()  # the stream gave its connection back


def test_bundle_is_streamed_head_first(client, seeded, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 5)
    response = client.get("/studies?format=fhir", buffered=False)
    chunks = iter(response.response)
    head = next(chunks).decode()
    assert head.startswith('{"resourceType":"Bundle","type":"searchset","total":')
    assert head.endswith('"entry":[')
    first = next(chunks).decode()
    assert first.count('"resourceType":"ResearchStudy"') == 5 and not first.startswith(",")
    assert next(chunks).decode().startswith(',{"fullUrl":')  # the next batch continues the array
    assert not database.is_closed()  # the stream holds its connection while the client reads
    response.close()
    assert database.is_closed()


def test_bundles_are_not_paged(client, seeded):
    assert_problem(client.get("/studies?format=fhir&page_size=5"), 422, "page_size")
    assert_problem(client.get("/references?cursor=*", headers=ACCEPT_FHIR), 422, "cursor")


# -------------------------------------------------------------------------------------- negotiation

@pytest.mark.parametrize(("accept", "expected"), [
    (None, JSON), ("", JSON), ("*/*", JSON), ("application/*", JSON), (BROWSER, JSON),
    ("application/json", JSON), ("application/fhir+json", FHIR_JSON),
    ("application/fhir+json; fhirVersion=4.0", FHIR_JSON),
    ("application/fhir+json;fhirversion=4.0.1", FHIR_JSON),
    ("application/json;q=0.5, application/fhir+json;q=0.9", FHIR_JSON),
    ("application/json;q=0, */*", FHIR_JSON), ("application/fhir+json;q=0.1, */*;q=0.5", JSON),
    ("*", JSON), ("text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", JSON),  # Java's default
    ("application/json;q=abc", JSON), (",", JSON),
    ("application/xml", None), ("text/html", None), ("application/json;q=0", None), ("garbage", None),
    ("application/fhir+json; fhirVersion=5.0", None), ("application/*;q=0, */*", None),
])
def test_best_match(accept, expected):
    assert best_match((JSON, FHIR_JSON), accept) == expected


def test_406_on_every_kind_of_endpoint(client, seeded):
    for path in ("/studies", "/studies/1", "/references/1", "/vocabularies", "/health", "/openapi.json",
                 "/studies/1/references"):
        body = assert_problem(client.get(path, headers={"Accept": "application/xml"}), 406)
        assert "application/xml" in body["detail"] and "application/json" in body["detail"], path
    body = assert_problem(client.get("/vocabularies", headers=ACCEPT_FHIR), 406)
    assert "produces: application/json" in body["detail"]
    assert_problem(client.get("/studies/1", headers={"Accept": "application/fhir+json;fhirVersion=5.0"}), 406)
    assert_problem(client.post("/studies", json={}, headers={"Accept": "text/html"}), 406)
    assert_problem(client.patch("/studies/1", json={"title": "T"}, headers=ACCEPT_FHIR), 406)  # writes: JSON
    for odd in (";", "/json", "é/ü".encode().decode("latin-1"), "a" * 4000, "*/*;q=", "application/json;;;"):
        assert client.get("/studies/1", headers={"Accept": odd}).status_code in (200, 406), odd


def test_browsers_and_wildcards_get_json(client, seeded):
    for accept in (BROWSER, "*/*", "application/*", "application/json;q=0.9, text/html"):
        for path in ("/studies/1", "/studies", "/vocabularies"):
            if "text/html" in accept and path == "/studies/1":
                continue  # a study offers HTML too: its record page (tests/test_pages.py)
            response = client.get(path, headers={"Accept": accept})
            assert response.status_code == 200 and response.headers["Content-Type"] == JSON, (accept, path)
    for accept in (BROWSER, "application/json;q=0.9, text/html"):  # HTML preferred: the record page
        page = client.get("/studies/1", headers={"Accept": accept})
        assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert client.get("/docs", headers={"Accept": BROWSER}).status_code == 200


def test_format_decides_an_export_whatever_accept_says(client, seeded):
    response = client.get("/references?format=csv", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
