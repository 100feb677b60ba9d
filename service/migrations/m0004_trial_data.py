"""Trial data: what each source says of a registration (`source_record`), the study fields derived from
all of a study's sources (dates, status, phase, size, sponsor, countries, dissemination, where each value
came from, what a curator set), and the bookkeeping of merged studies and rejected duplicate candidates.

Existing studies keep every value they have: derivation only replaces a value with what a source states,
and no source record exists before the first import after the upgrade. Once the upgrade is complete
(`REDERIVE_AFTER`), every study's derived fields are computed from what the register already holds (its
registry records' dates, its references' results).
"""

from peewee import (
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    PostgresqlDatabase,
    TextField,
)

from service.db import IdField

REDERIVE_AFTER = True


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Study(Base):
        id = IdField()

    class StudyCountry(Base):
        id = IdField()
        study = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        code = CharField(max_length=2, index=True)

        class Meta:
            indexes = ((("study", "code"), True),)

    class SourceRecord(Base):
        id = IdField()
        identifier = CharField(max_length=100, index=True)
        registry = CharField(max_length=40)
        source = CharField(max_length=80)
        title = TextField(null=True)
        claims = TextField(default="{}")
        imported = DateTimeField()

        class Meta:
            indexes = ((("identifier", "source"), True),)

    class MergedStudy(Base):
        id = IntegerField(primary_key=True)
        into = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        name = CharField(max_length=200)
        merged = DateTimeField(index=True)

    class DuplicateDecision(Base):
        id = IdField()
        low = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        high = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        decision = CharField(max_length=20, default="rejected")
        created = DateTimeField()

        class Meta:
            indexes = ((("low", "high"), True),)

    # Plain ALTER TABLE ... ADD COLUMN with the default: SQLite's migrator would rebuild the study table
    # for a NOT NULL column, and dropping the old table cascades to every registration and link.
    postgres = isinstance(db, PostgresqlDatabase)
    boolean = "BOOLEAN NOT NULL DEFAULT false" if postgres else "INTEGER NOT NULL DEFAULT 0"
    columns = [
        ("registered", "DATE", True), ("start_date", "DATE", True),
        ("recruitment_status", "VARCHAR(40) NOT NULL DEFAULT 'Unclear'", True),
        ("phase", "VARCHAR(20) NOT NULL DEFAULT 'Unclear'", True),
        ("target_size", "INTEGER", False), ("sponsor", "VARCHAR(500)", False),
        ("primary_completion_date", "DATE", False),
        ("results_registry", boolean, True), ("results_registry_date", "DATE", False),
        ("results_article", boolean, True), ("results_article_date", "DATE", False),
        ("results_preprint", boolean, True), ("results_preprint_date", "DATE", False),
        ("countries", "TEXT NOT NULL DEFAULT '[]'", False),
        ("facet_sources", "TEXT NOT NULL DEFAULT '{}'", False),
        ("curated", "TEXT NOT NULL DEFAULT '[]'", False),
    ]
    for name, kind, indexed in columns:
        db.execute_sql(f'ALTER TABLE "study" ADD COLUMN "{name}" {kind}')
        if indexed:
            db.execute_sql(f'CREATE INDEX "study_{name}" ON "study" ("{name}")')
    db.create_tables([StudyCountry, SourceRecord, MergedStudy, DuplicateDecision])
