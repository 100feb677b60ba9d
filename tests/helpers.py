"""Small builders shared by the scenario tests: real-looking records, created through the API."""

from __future__ import annotations

CHICTR_TITLE = ("A study for the key technology of mesenchymal stem cells exosomes atomization in the "
                "treatment of novel coronavirus pneumonia (COVID-19)")


def study_body(identifier: str = "ChiCTR2000030261", **overrides) -> dict:
    body = {"title": CHICTR_TITLE, "registrations": [{"identifier": identifier}],
            "study_type": "Interventional", "study_aim": "Treatment and Management",
            "study_design": "Parallel/Crossover", "intervention_assignment": "Unclear"}
    body.update(overrides)
    return body


def reference_body(**overrides) -> dict:
    body = {"type": "journal_article",
            "title": "Nebulization Therapy with Umbilical Cord Mesenchymal Stem Cell-Derived "
                     "Exosomes for COVID-19 Pneumonia",
            "authors": ["Chu M", "Wang H", "Bian L", "Huang J", "Wu D", "Zhang R", "Fei F",
                        "Chen Y", "Xia J"],
            "abstract": "TRIAL REGISTRATION: Chinese Clinical Trial Registry, ChiCTR2000030261.",
            "has_results": True}
    body.update(overrides)
    return body


def create_study(client, auth, identifier: str = "ChiCTR2000030261", **overrides) -> dict:
    response = client.post("/studies", json=study_body(identifier, **overrides), headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_reference(client, auth, **overrides) -> dict:
    response = client.post("/references", json=reference_body(**overrides), headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count(client, path: str) -> int:
    return client.get(path).get_json()["total"]
