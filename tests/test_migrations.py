"""Schema versioning: migrations build exactly the models' schema and upgrade in place, keeping data."""

from __future__ import annotations

from service import migrations
from service.db import database, is_postgres
from service.models import MODELS, Study, StudyReference


def _columns(table):
    return {(c.name, c.null) for c in database.get_columns(table)}


def _model_columns(model):
    return {(f.column_name, f.null) for f in model._meta.sorted_fields}


def _indexes(table):
    return {(tuple(sorted(i.columns)), i.unique) for i in database.get_indexes(table)}


def _insert(table: str, **values) -> int:
    """A row written with exactly these columns (the models of today know columns an old schema lacks)."""
    names = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join([database.param] * len(values))
    cursor = database.execute_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks}) RETURNING id',
                                  list(values.values()))
    return cursor.fetchone()[0]


STUDY = dict(study_type="Unclear", study_aim="Unclear", study_design="Unclear",
             intervention_assignment="Unclear", first_published="2020-04-01", created="2020-04-01",
             updated="2020-04-01")


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
        _insert("study", name="NCT04280705", title="kept", **STUDY)
        assert migrations.upgrade() == [m for m in migrations.available() if m.version > 1]
        assert migrations.upgrade() == []
        assert Study.get(Study.name == "NCT04280705").title == "kept"


def test_upgrading_to_linking_links_the_references_already_there(empty_db):
    with database.connection_context():
        migrations.upgrade(target=1)
        study_id = _insert("study", name="ChiCTR2000030261", title="t", **STUDY)
        _insert("registration", study_id=study_id, registry="ChiCTR", identifier="ChiCTR2000030261")
        ref_id = _insert("reference", type="journal_article", title="Nebulization", authors="[]",
                         has_results=False, first_published="2020-04-01",
                         abstract="TRIAL REGISTRATION: ChiCTR2000030261.", created="2020-04-01",
                         updated="2020-04-01")
        migrations.upgrade()
        link = StudyReference.get(StudyReference.reference == ref_id)
        assert (link.study_id, link.link, link.identifier) == (study_id, "auto", "ChiCTR2000030261")


def test_upgrading_to_search_indexes_the_records_already_there(empty_db):
    with database.connection_context():
        migrations.upgrade(target=2)
        study_id = _insert("study", name="ChiCTR2000030261", title="Stem cells", **STUDY)
        ref_id = _insert("reference", type="journal_article", title="Nebulization therapy", authors="[]",
                         has_results=False, first_published="2020-04-01", created="2020-04-01",
                         updated="2020-04-01")
        _insert("study_reference", study_id=study_id, reference_id=ref_id, link="manual",
                created="2020-04-01")
        migrations.upgrade()
    client = empty_db.test_client()
    found = client.get("/studies?q=nebulization").get_json()
    assert [s["id"] for s in found["items"]] == [study_id]
    assert client.get("/references?q=nebulization").get_json()["items"][0]["id"] == ref_id


def test_upgrading_to_trial_data_keeps_values_and_derives_dates_and_results(empty_db):
    with database.connection_context():
        migrations.upgrade(target=3)
        study_id = _insert("study", name="NCT04280705", title="ACTT-1", **{
            **STUDY, "study_type": "Interventional", "intervention_assignment": "Randomised",
            "first_published": "2026-11-01"})
        _insert("registration", study_id=study_id, registry="ClinicalTrials.gov", identifier="NCT04280705")
        for values in (
                dict(type="trial_registry_record", title="ACTT-1", published="2020-02-21",
                     registration_id="NCT04280705"),
                dict(type="journal_article", title="Remdesivir for the Treatment of Covid-19",
                     published="2020-10-08", abstract="ClinicalTrials.gov number, NCT04280705.")):
            ref_id = _insert("reference", authors="[]", has_results=True, first_published="2026-11-01",
                             created="2026-11-01", updated="2026-11-01", **values)
            _insert("study_reference", study_id=study_id, reference_id=ref_id, link="auto",
                    identifier="NCT04280705", created="2026-11-01")
        migrations.upgrade()
        study = Study.get_by_id(study_id)
        assert StudyReference.select().where(StudyReference.study == study_id).count() == 2
    assert (study.study_type, study.intervention_assignment, study.title) == (
        "Interventional", "Randomised", "ACTT-1")
    assert (str(study.registered), str(study.first_published)) == ("2020-02-21", "2020-02-21")
    assert (study.results_registry, study.results_article, str(study.results_article_date)) == (
        True, True, "2020-10-08")


def test_upgrading_to_link_roles_gives_roles_and_evidence_and_keeps_manual_decisions(empty_db):
    with database.connection_context():
        migrations.upgrade(target=4)
        trial = _insert("study", name="NCT04280705", title="Adaptive COVID-19 Treatment Trial", **STUDY)
        other = _insert("study", name="ChiCTR2000030261", title="Exosomes", **STUDY)
        _insert("registration", study_id=trial, registry="ClinicalTrials.gov", identifier="NCT04280705")
        _insert("registration", study_id=other, registry="ChiCTR", identifier="ChiCTR2000030261")
        ref = dict(authors="[]", has_results=False, first_published="2026-11-01", created="2026-11-01",
                   updated="2026-11-01")
        report = _insert("reference", type="journal_article", title="Remdesivir for Covid-19",
                         abstract="As ChiCTR2000030261 did ...\nClinicalTrials.gov number, NCT04280705.",
                         **ref)
        by_hand = _insert("reference", type="journal_article", title="Found by a curator", **ref)
        unlinked = _insert("reference", type="journal_article", title="Unlinked by a curator",
                           abstract="ClinicalTrials.gov number, NCT04280705.", **ref)
        for reference_id, study_id, link in ((report, trial, "auto"), (report, other, "auto"),
                                             (by_hand, other, "manual")):
            _insert("study_reference", study_id=study_id, reference_id=reference_id, link=link,
                    identifier=None if link == "manual" else "NCT04280705", created="2026-11-01")
        _insert("link_suppression", study_id=trial, reference_id=unlinked, created="2026-11-01")
        migrations.upgrade()
        links = {(r.reference_id, r.study_id): r for r in StudyReference.select()}
    assert set(links) == {(report, trial), (report, other), (by_hand, other)}  # the unlink kept
    assert (links[(report, trial)].role, links[(report, other)].role) == ("reports", "cites")
    assert '"registration_statement"' in links[(report, trial)].evidence
    assert links[(report, trial)].confidence > 0.9
    assert (links[(by_hand, other)].link, links[(by_hand, other)].role) == ("manual", "reports")


def test_upgrading_to_carried_search_columns_fills_them_in_place_and_keeps_them_in_step(empty_db):
    """m0014 on a register whose search rows the previous code wrote (no carried columns, no trigger):
    the rows are kept, their columns filled from the references; later writes are carried."""
    from service.search import index

    with database.connection_context():
        migrations.upgrade(target=13)
        refs = [_insert("reference", type=kind, title=title, authors="[]", has_results=False, year=year,
                        first_published="2020-04-01", created="2020-04-01", updated="2020-04-0" + day)
                for kind, title, year, day in (("journal_article", "Intensive care of adults", 2020, "1"),
                                               ("preprint", "Intensive care of children", 2021, "2"))]
        with database.atomic():
            index.rebuild()
        if is_postgres():  # the layout of migration 13: search rows without the carried columns
            database.execute_sql('DROP TRIGGER "reference_search_carry" ON "reference"')
            dropped = ", ".join(f'DROP COLUMN "{c}"' for c in index.CARRIED)
            database.execute_sql(f'ALTER TABLE "{index.REFERENCE_TABLE}" {dropped}')
        migrations.upgrade()
        if is_postgres():
            carried = database.execute_sql(
                f'SELECT id, type, year, has_results, updated FROM "{index.REFERENCE_TABLE}" ORDER BY id'
            ).fetchall()
            assert [(i, t, y, h, str(u)) for i, t, y, h, u in carried] == [
                (refs[0], "journal_article", 2020, False, "2020-04-01 00:00:00"),
                (refs[1], "preprint", 2021, False, "2020-04-02 00:00:00")]
        database.execute_sql(f"UPDATE \"reference\" SET type = 'preprint', updated = '2020-04-03' "
                             f"WHERE id = {refs[0]}")
    client = empty_db.test_client()
    body = client.get('/references?q="intensive care"&facets=type,year').get_json()
    assert [r["id"] for r in body["items"]] == [refs[0], refs[1]]  # equally relevant: updated first
    assert {v["value"]: v["count"] for v in body["facets"]["type"] if v["count"]} == {"preprint": 2}
    assert {v["value"]: v["count"] for v in body["facets"]["year"]} == {2021: 1, 2020: 1}


def test_cli_upgrade_and_status(empty_db):
    runner = empty_db.test_cli_runner()
    before = runner.invoke(args=["db", "status"])
    assert "schema version 0 of" in before.output and "pending" in before.output
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "applied m0001_initial" in result.output
    again = runner.invoke(args=["db", "upgrade"])
    assert "nothing to do" in again.output
    assert "pending" not in runner.invoke(args=["db", "status"]).output
