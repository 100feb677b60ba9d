"""Schema of /stats."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from .common import FacetCountSchema, Instant


class MonthCountSchema(ma.Schema):
    month = fields.String(metadata={"description": "`YYYY-MM`.", "example": "2020-04"})
    count = fields.Integer(metadata={"example": 3})


def _facet_map(description: str, example: dict) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(FacetCountSchema)),
                       metadata={"description": description, "example": example})


class StatsSchema(ma.Schema):
    studies = fields.Integer(metadata={"description": "Studies in the register.", "example": 36})
    references = fields.Integer(metadata={"description": "References in the register.", "example": 107})
    study_facets = _facet_map(
        "Studies per value of each study facet (as `GET /studies?facets=`).",
        {"study_type": [{"value": "Interventional", "count": 35}]})
    reference_facets = _facet_map(
        "References per value of each reference facet (as `GET /references?facets=`).",
        {"type": [{"value": "journal_article", "count": 60}]})
    studies_first_published_by_month = fields.List(fields.Nested(MonthCountSchema), metadata={
        "description": "Studies per month of `first_published` (when each first appeared in its "
                       "sources), oldest first, without gaps."})
    studies_registered_by_month = fields.List(fields.Nested(MonthCountSchema), metadata={
        "description": "Studies per month of `registered` (the earliest registration date of their "
                       "records), oldest first, without gaps; studies without one are not counted."})
    last_updated = Instant(allow_none=True, metadata={
        "description": "The latest `updated` of any study; null when the register is empty."})
