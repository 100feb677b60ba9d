"""Health, version, vocabularies, and behaviour when the database is away."""

from __future__ import annotations

import logging
import threading

from service import create_app
from service.db import close_all, database, init_database
from service.vocabularies import FACETS, REFERENCE_TYPES
from tests.conftest import assert_problem
from tests.helpers import free_port


def test_health_and_version(client, backend):
    assert client.get("/health").get_json() == {"status": "ok", "database": "ok"}
    version = client.get("/version").get_json()
    assert version["api_version"] == "1" and version["schema_version"] >= 1
    assert version["database"] == ("sqlite" if backend == "sqlite" else "postgresql")


def _unreachable_app():
    """The app bound to a Postgres port nothing listens on."""
    return create_app({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none",
                       "LOG_LEVEL": "CRITICAL"})


def test_unreachable_database_is_503_not_500():
    app = _unreachable_app()
    try:
        client = app.test_client()
        response = client.get("/health")
        body = assert_problem(response, 503)
        assert body["database"] == "unreachable" and response.headers["Retry-After"]
        assert_problem(client.get("/studies"), 503)
    finally:
        close_all(database.obj)


def test_binding_another_database_ends_the_probe_of_the_last_one(tmp_path):
    # A probe left running on the proxy would go on with the next database while its connections are
    # closed under it (on SQLite the driver segfaulted).
    app = _unreachable_app()
    assert_problem(app.test_client().get("/studies"), 503)
    probes = [t for t in threading.enumerate() if t.name == "database probe"]
    assert probes
    init_database(f"sqlite:///{tmp_path}/other.db")
    try:
        assert not any(t.is_alive() for t in probes)
    finally:
        close_all(database.obj)


def test_vocabularies_in_display_order(client):
    body = client.get("/vocabularies").get_json()
    by_name = {v["name"]: v for v in body["items"]}
    for facet, terms in FACETS.items():
        assert [t["value"] for t in by_name[facet]["values"]] == list(terms)
        assert all(t["definition"] for t in by_name[facet]["values"])
        assert by_name[facet]["values"][-1]["value"] == "Unclear"
    assert [t["value"] for t in by_name["reference_type"]["values"]] == list(REFERENCE_TYPES)
    assert by_name["reference_type"]["values"][0]["label"] == "Journal article"
    assert "ChiCTR" in [t["value"] for t in by_name["registry"]["values"]]
    one = client.get("/vocabularies/study_aim").get_json()
    assert one["values"][0]["value"] == "Treatment and Management"
    body = assert_problem(client.get("/vocabularies/colour"), 404)
    assert "study_type" in body["detail"]


def test_an_unexpected_error_is_a_logged_generic_500(app, caplog):
    def boom():
        raise RuntimeError("secret detail /work/main/service SELECT * FROM study")

    app.add_url_rule("/boom", view_func=boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production; TESTING would re-raise
    logger = logging.getLogger("service")  # it logs to stdout without propagating to the root
    logger.addHandler(caplog.handler)
    try:
        response = app.test_client().get("/boom")
    finally:
        logger.removeHandler(caplog.handler)
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True) and "logged" in body["detail"]
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_cross_origin_reads_and_preflight(client):
    response = client.get("/studies", headers={"Origin": "https://map.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Link" in response.headers["Access-Control-Expose-Headers"]
    preflight = client.options("/studies/1", headers={
        "Origin": "https://map.example", "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "Authorization, If-Match"})
    assert preflight.status_code == 200
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "if-match" in preflight.headers["Access-Control-Allow-Headers"].lower()
