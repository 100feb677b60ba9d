"""The first schema: studies, references, links, registrations, notices, API tokens.

The models are frozen here as they were at this version, so later changes to service/models.py
never change what this migration creates.
"""

from peewee import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from service.db import IdField


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Study(Base):
        id = IdField()
        name = CharField(max_length=200, index=True)
        title = TextField()
        study_type = CharField(max_length=40, index=True)
        study_aim = CharField(max_length=40, index=True)
        study_design = CharField(max_length=40, index=True)
        intervention_assignment = CharField(max_length=40, index=True)
        first_published = DateField(index=True)
        created = DateTimeField()
        updated = DateTimeField(index=True)

    class Reference(Base):
        id = IdField()
        type = CharField(max_length=40, index=True)
        title = TextField()
        authors = TextField(default="[]")
        abstract = TextField(null=True)
        source = CharField(max_length=500, null=True)
        year = IntegerField(null=True, index=True)
        published = CharField(max_length=10, null=True)
        volume = CharField(max_length=50, null=True)
        issue = CharField(max_length=50, null=True)
        pages = CharField(max_length=50, null=True)
        doi = CharField(max_length=300, null=True, index=True)
        pmid = CharField(max_length=12, null=True, index=True)
        url = CharField(max_length=2000, null=True)
        registration_id = CharField(max_length=100, null=True, index=True)
        has_results = BooleanField(default=False, index=True)
        notes = TextField(null=True)
        first_published = DateField(index=True)
        created = DateTimeField()
        updated = DateTimeField(index=True)

    class StudyReference(Base):
        id = IdField()
        study = ForeignKeyField(Study, on_delete="CASCADE")
        reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
        link = CharField(max_length=10, default="manual")
        identifier = CharField(max_length=100, null=True)
        created = DateTimeField()

        class Meta:
            indexes = ((("study", "reference"), True),)

    class Registration(Base):
        id = IdField()
        study = ForeignKeyField(Study, on_delete="CASCADE", index=True)
        registry = CharField(max_length=40, index=True)
        identifier = CharField(max_length=100, unique=True)

    class Notice(Base):
        id = IdField()
        message = TextField()
        starts = DateTimeField(null=True, index=True)
        ends = DateTimeField(null=True, index=True)
        created = DateTimeField()
        updated = DateTimeField()

    class ApiToken(Base):
        id = IdField()
        name = CharField(max_length=200)
        prefix = CharField(max_length=12)
        token_hash = CharField(max_length=64, unique=True)
        scopes = CharField(max_length=200)
        created = DateTimeField()
        last_used = DateTimeField(null=True)
        revoked = DateTimeField(null=True)

    db.create_tables([Study, Reference, StudyReference, Registration, Notice, ApiToken])
