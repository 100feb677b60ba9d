"""Schema versioning: migrations build exactly the models' schema and upgrade in place, keeping data."""

from __future__ import annotations

import pytest

from service import create_app, migrations
from service.db import close_all, database
from service.models import MODELS, Reference, Registration, Study, StudyReference


@pytest.fixture
def empty_db(backend, request, tmp_path):
    """A database with no tables at all, bound to the shared handle."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with database.connection_context():
        if backend == "postgres":
            database.execute_sql("DROP SCHEMA public CASCADE")
            database.execute_sql("CREATE SCHEMA public")
    yield app
    with database.connection_context():
        if backend == "postgres":  # leave the shared test database as the other tests expect it
            database.execute_sql("DROP SCHEMA public CASCADE")
            database.execute_sql("CREATE SCHEMA public")
    from tests import conftest

    conftest._migrated.discard(url)
    close_all(database.obj)


def _columns(table):
    return {(c.name, c.null) for c in database.get_columns(table)}


def _model_columns(model):
    return {(f.column_name, f.null) for f in model._meta.sorted_fields}


def _indexes(table):
    return {(tuple(sorted(i.columns)), i.unique) for i in database.get_indexes(table)}


def test_upgrade_builds_the_models_schema(empty_db):
    with database.connection_context():
        applied = migrations.upgrade()
        assert [m.version for m in applied] == [m.version for m in migrations.available()]
        assert migrations.current_version() == migrations.latest_version()
        for model in MODELS:
            table = model._meta.table_name
            assert _columns(table) == _model_columns(model), table
            wanted = set()
            for field in model._meta.sorted_fields:
                if field.unique or field.index:
                    wanted.add(((field.column_name,), bool(field.unique)))
            for fields, unique in model._meta.indexes:
                columns = tuple(sorted(model._meta.fields[f].column_name for f in fields))
                wanted.add((columns, unique))
            assert wanted <= _indexes(table), table


def test_upgrade_is_idempotent_and_keeps_data(empty_db):
    with database.connection_context():
        migrations.upgrade(target=1)
        Study.create(name="NCT04280705", title="kept", study_type="Unclear", study_aim="Unclear",
                     study_design="Unclear", intervention_assignment="Unclear",
                     first_published="2020-04-01")
        assert migrations.upgrade() == [m for m in migrations.available() if m.version > 1]
        assert migrations.upgrade() == []
        assert Study.get(Study.name == "NCT04280705").title == "kept"


def test_upgrading_to_linking_links_the_references_already_there(empty_db):
    with database.connection_context():
        migrations.upgrade(target=1)
        study_id = Study.insert(name="ChiCTR2000030261", title="t", study_type="Unclear",
                                study_aim="Unclear", study_design="Unclear",
                                intervention_assignment="Unclear", first_published="2020-04-01",
                                created="2020-04-01", updated="2020-04-01").execute()
        Registration.insert(study=study_id, registry="ChiCTR", identifier="ChiCTR2000030261").execute()
        ref_id = Reference.insert(type="journal_article", title="Nebulization", first_published="2020-04-01",
                                  abstract="TRIAL REGISTRATION: ChiCTR2000030261.", created="2020-04-01",
                                  updated="2020-04-01").execute()
        migrations.upgrade()
        link = StudyReference.get(StudyReference.reference == ref_id)
        assert (link.study_id, link.link, link.identifier) == (study_id, "auto", "ChiCTR2000030261")


def test_upgrading_to_search_indexes_the_records_already_there(empty_db):
    with database.connection_context():
        migrations.upgrade(target=2)
        study_id = Study.insert(name="ChiCTR2000030261", title="Stem cells", study_type="Unclear",
                                study_aim="Unclear", study_design="Unclear",
                                intervention_assignment="Unclear", first_published="2020-04-01",
                                created="2020-04-01", updated="2020-04-01").execute()
        ref_id = Reference.insert(type="journal_article", title="Nebulization therapy",
                                  first_published="2020-04-01", created="2020-04-01",
                                  updated="2020-04-01").execute()
        StudyReference.insert(study=study_id, reference=ref_id, link="manual",
                              created="2020-04-01").execute()
        migrations.upgrade()
    client = empty_db.test_client()
    found = client.get("/studies?q=nebulization").get_json()
    assert [s["id"] for s in found["items"]] == [study_id]
    assert client.get("/references?q=nebulization").get_json()["items"][0]["id"] == ref_id


def test_cli_upgrade_and_status(empty_db):
    runner = empty_db.test_cli_runner()
    before = runner.invoke(args=["db", "status"])
    assert "schema version 0 of" in before.output and "pending" in before.output
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "applied m0001_initial" in result.output
    again = runner.invoke(args=["db", "upgrade"])
    assert "nothing to do" in again.output
    assert "pending" not in runner.invoke(args=["db", "status"]).output
