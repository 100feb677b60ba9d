"""Links a reviewer can trust: every link's role (`reports` or `cites`), how sure the rules are of it and
why (the evidence: where each identifier was found, with its text), a curator's role kept apart from the
rules'; the publication types a source gives a reference; suggested studies for unlinked references.

Every existing link keeps its kind (`manual` stays manual); once the upgrade is complete (`RELINK_AFTER`),
the references are scanned again by the rules of `domain/evidence.py`, which give each automatic link its
role, confidence and evidence, and each manual link its evidence (a curator's link keeps `reports`).
Manual unlinks stay remembered. Search documents are rebuilt (`REINDEX_AFTER`): a study's words come from
its reports only.
"""

from peewee import (
    CharField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    Model,
    PostgresqlDatabase,
    TextField,
)

from service.db import IdField

RELINK_AFTER = True
REDERIVE_AFTER = True
REINDEX_AFTER = True


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Study(Base):
        id = IdField()

    class Reference(Base):
        id = IdField()

    class Suggestion(Base):
        id = IdField()
        reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
        study = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        score = DoubleField()
        reasons = TextField(default="[]")
        status = CharField(max_length=10, default="open", index=True)
        created = DateTimeField()
        decided = DateTimeField(null=True)

        class Meta:
            indexes = ((("reference", "study"), True),)

    # Plain ALTER TABLE ... ADD COLUMN (m0004 says why: SQLite's migrator would rebuild the table, and
    # dropping the old one cascades).
    postgres = isinstance(db, PostgresqlDatabase)
    false = "BOOLEAN NOT NULL DEFAULT false" if postgres else "INTEGER NOT NULL DEFAULT 0"
    real = "DOUBLE PRECISION" if postgres else "REAL"
    for table, name, kind in (
            ("study_reference", "role", "VARCHAR(10) NOT NULL DEFAULT 'reports'"),
            ("study_reference", "role_curated", false),
            ("study_reference", "confidence", real),
            ("study_reference", "evidence", "TEXT NOT NULL DEFAULT '[]'"),
            ("reference_identifier", "evidence", "TEXT NOT NULL DEFAULT '[]'"),
            ("reference", "publication_types", "TEXT NOT NULL DEFAULT '[]'")):
        db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}')
    db.execute_sql('CREATE INDEX "study_reference_role" ON "study_reference" ("role")')
    db.create_tables([Suggestion])
