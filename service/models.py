"""The register's tables: studies, references, the links between them, registrations, notices, API tokens."""

from __future__ import annotations

import datetime as dt

from peewee import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from .db import BaseModel, IdField


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime (the form every timestamp column stores)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Study(BaseModel):
    id = IdField()
    name = CharField(max_length=200, index=True)
    title = TextField()
    study_type = CharField(max_length=40, index=True)
    study_aim = CharField(max_length=40, index=True)
    study_design = CharField(max_length=40, index=True)
    intervention_assignment = CharField(max_length=40, index=True)
    first_published = DateField(index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow, index=True)


class Reference(BaseModel):
    id = IdField()
    type = CharField(max_length=40, index=True)
    title = TextField()
    authors = TextField(default="[]")  # JSON array of strings, in the order written
    abstract = TextField(null=True)
    source = CharField(max_length=500, null=True)
    year = IntegerField(null=True, index=True)
    published = CharField(max_length=10, null=True)  # YYYY, YYYY-MM or YYYY-MM-DD
    volume = CharField(max_length=50, null=True)
    issue = CharField(max_length=50, null=True)
    pages = CharField(max_length=50, null=True)
    doi = CharField(max_length=300, null=True, index=True)  # lower-cased
    pmid = CharField(max_length=12, null=True, index=True)
    url = CharField(max_length=2000, null=True)
    registration_id = CharField(max_length=100, null=True, index=True)  # canonical form
    has_results = BooleanField(default=False, index=True)
    notes = TextField(null=True)
    first_published = DateField(index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow, index=True)


class StudyReference(BaseModel):
    """A reference reported by a study, and how that link was made."""

    id = IdField()
    study = ForeignKeyField(Study, backref="links", on_delete="CASCADE")
    reference = ForeignKeyField(Reference, backref="links", on_delete="CASCADE", index=True)
    link = CharField(max_length=10, default="manual")  # "manual" or "auto"
    identifier = CharField(max_length=100, null=True)  # the registration that made an auto link
    created = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("study", "reference"), True),)


class Registration(BaseModel):
    """A trial registration identifier owned by one study."""

    id = IdField()
    study = ForeignKeyField(Study, backref="registrations", on_delete="CASCADE", index=True)
    registry = CharField(max_length=40, index=True)
    identifier = CharField(max_length=100, unique=True)  # canonical form (identifiers.normalise)


class ReferenceIdentifier(BaseModel):
    """A registration identifier found in a reference's text: why it is, or is not, linked."""

    id = IdField()
    reference = ForeignKeyField(Reference, backref="identifiers_found", on_delete="CASCADE")
    identifier = CharField(max_length=100, index=True)  # canonical form
    registry = CharField(max_length=40)

    class Meta:
        indexes = ((("reference", "identifier"), True),)


class LinkSuppression(BaseModel):
    """A link a curator removed by hand: automation never makes it again."""

    id = IdField()
    study = ForeignKeyField(Study, on_delete="CASCADE")
    reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
    created = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("study", "reference"), True),)


class Notice(BaseModel):
    id = IdField()
    message = TextField()
    starts = DateTimeField(null=True, index=True)
    ends = DateTimeField(null=True, index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)


class ApiToken(BaseModel):
    id = IdField()
    name = CharField(max_length=200)
    prefix = CharField(max_length=12)  # first characters, to recognise a token in lists and logs
    token_hash = CharField(max_length=64, unique=True)  # sha256 hex of the whole token
    scopes = CharField(max_length=200)  # space-separated
    created = DateTimeField(default=utcnow)
    last_used = DateTimeField(null=True)
    revoked = DateTimeField(null=True)


MODELS = [Study, Reference, StudyReference, Registration, ReferenceIdentifier, LinkSuppression,
          Notice, ApiToken]
