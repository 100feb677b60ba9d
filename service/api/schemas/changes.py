"""Schemas of the change feed and of a record's history."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain.changes import ACTIONS, KINDS
from ..paging import MAX_CURSOR_LENGTH
from .common import Instant, Int, QueryArgsSchema, Text, envelope

_CURSOR_DOC = ("Where to go on: the opaque cursor of a `next` or `resume` link (signed; an altered one, or "
               "one from another list or with other filters, is 422). Absent: from the first change. "
               f"At most {MAX_CURSOR_LENGTH:,} characters.")


def _paging() -> dict:
    return {
        "page_size": Int(load_default=100, validate=validate.Range(1, 1000),
                         metadata={"description": "Changes per page, 1–1,000."}),
        "cursor": Text(validate=validate.Length(1, MAX_CURSOR_LENGTH), metadata={"description": _CURSOR_DOC}),
    }


ChangeQueryArgsSchema = QueryArgsSchema.from_dict({
    "since": Instant(metadata={
        "description": "Only the changes made at or after this instant (ISO 8601; a bare date is midnight "
                       "UTC). One in the future answers an empty page (200). Absent: every change, from "
                       "the first.",
        "example": "2026-12-01T00:00:00Z"}),
    "kind": fields.String(validate=validate.OneOf(KINDS), metadata={
        "description": "Only the changes of studies (`study`) or of references (`reference`)."}),
    **_paging(),
}, name="ChangeQueryArgs")

HistoryQueryArgsSchema = QueryArgsSchema.from_dict(_paging(), name="HistoryQueryArgs")


class ChangeSchema(ma.Schema):
    seq = fields.Integer(metadata={"description": "The change's place in the feed: ascending, never reused.",
                                   "example": 1042})
    at = Instant(metadata={"description": "When the change was committed (UTC)."})
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"example": "study"})
    id = fields.Integer(metadata={"description": "The study's or the reference's id.", "example": 12})
    action = fields.String(validate=validate.OneOf(ACTIONS), metadata={
        "description": "`create`, `update`, `delete`, `merge` (a study merged into `merged_into`), or "
                       "`snapshot` (a record already in the register when the feed began: replay it as "
                       "a `create`).",
        "example": "update"})
    actor = fields.String(allow_none=True, metadata={
        "description": "The name of the API token that made the change; null for the command line and "
                       "the register's own upkeep; `migration` for a `snapshot`.",
        "example": "curation"})
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields", metadata={
        "description": "The names of the fields that changed (of the record's state: its columns, a "
                       "study's `registrations` and `references`, a reference's `studies`, each link "
                       "as [id, role, how made]). Empty for a tombstone.",
        "example": ["title", "updated"]})
    values = fields.Dict(allow_none=True, metadata={
        "description": "The new value of each field in `fields`; null for a tombstone. A `create` or "
                       "`snapshot` carries every field.",
        "example": {"title": "A new title", "updated": "2026-12-02T16:00:00"}})
    deleted_at = Instant(allow_none=True, metadata={
        "description": "A tombstone (`delete`, `merge`): when the record went; null otherwise."})
    merged_into = fields.Integer(allow_none=True, metadata={
        "description": "A `merge`: the study this one was merged into (its id answers 308 there)."})


class FieldChangeSchema(ma.Schema):
    # Any JSON value, null included: an untyped schema (OpenAPI 3.0 allows `nullable` only beside a
    # `type`, and a union of every type makes generated clients cast needlessly).
    old = fields.Raw(metadata={"description": "The value before (any JSON value; null: none)."})
    new = fields.Raw(metadata={"description": "The value after (any JSON value; null: none)."})


class HistoryEntrySchema(ChangeSchema):
    changes = fields.Dict(keys=fields.String(), values=fields.Nested(FieldChangeSchema), metadata={
        "description": "For each field that changed, its old and new value (a tombstone: every field's "
                       "last value, new null).",
        "example": {"title": {"old": "An old title", "new": "A new title"}}})


_EXTRA = {"resume": fields.String(required=True, metadata={
    "description": "Where to poll next for what comes after this page: this list with a cursor after "
                   "its last item (after the one given, when the page is empty). Present on every page, "
                   "the last too: keep it, follow it later."})}

ChangePageSchema = envelope(ChangeSchema, "ChangePage", extra_fields=_EXTRA)
HistoryPageSchema = envelope(HistoryEntrySchema, "HistoryPage", extra_fields=_EXTRA)
