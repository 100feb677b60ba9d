"""Schemas of notices, vocabularies, health and version."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from ...domain.notices import NOTICE_SORTS
from .common import Instant, QueryArgsSchema, Text, envelope, paging_fields


class NoticeSchema(ma.Schema):
    id = fields.Integer()
    message = fields.String(metadata={"example": "Register update: there will be a delay adding new "
                                                 "records during our holiday period (Dec 17 - Jan 4)"})
    starts = Instant(allow_none=True, metadata={"description": "In force from (null: always was)."})
    ends = Instant(allow_none=True, metadata={"description": "In force until (null: no end)."})
    created = Instant()
    updated = Instant()


class NoticePatchSchema(ma.Schema):
    message = Text(validate=validate.Length(1, 2000))
    starts = Instant(allow_none=True)
    ends = Instant(allow_none=True)

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data and self.partial:
            raise ma.ValidationError("Give at least one field to change.", "body")


class NoticeCreateSchema(NoticePatchSchema):
    message = Text(required=True, validate=validate.Length(1, 2000))


NoticeQueryArgsSchema = QueryArgsSchema.from_dict({
    "status": fields.String(load_default="active", validate=validate.OneOf(
        ["active", "upcoming", "expired", "all"]), metadata={
        "description": "`active` (default): in force now; `upcoming`, `expired` or `all`."}),
    **paging_fields(NOTICE_SORTS, "id"),
}, name="NoticeQueryArgs")

NoticePageSchema = envelope(NoticeSchema, "NoticePage")


class TermSchema(ma.Schema):
    value = fields.String(metadata={"description": "The value as stored and filtered.",
                                    "example": "Interventional"})
    label = fields.String(metadata={"description": "Display label.", "example": "Interventional"})
    definition = fields.String()


class VocabularySchema(ma.Schema):
    name = fields.String(metadata={"example": "study_type"})
    description = fields.String()
    values = fields.List(fields.Nested(TermSchema))


class VocabulariesSchema(ma.Schema):
    items = fields.List(fields.Nested(VocabularySchema))


class HealthSchema(ma.Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})


class VersionSchema(ma.Schema):
    version = fields.String(metadata={"description": "Service version.", "example": "0.1.0"})
    api_version = fields.String(metadata={"description": "HTTP contract version.", "example": "1"})
    schema_version = fields.Integer(metadata={"description": "Applied database migration.", "example": 1})
    database = fields.String(metadata={"description": "`sqlite` or `postgresql`.", "example": "sqlite"})
    commit = fields.String(allow_none=True, metadata={"description": "Build commit, when known."})
