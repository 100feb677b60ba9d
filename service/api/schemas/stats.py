"""Schema of /stats."""

from __future__ import annotations

import copy

import marshmallow as ma
from marshmallow import fields

from ...domain.studies import STUDY_FILTERS
from .common import FacetCountSchema, Instant, QueryArgsSchema
from .studies import StudyQueryArgsSchema


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


class TypeCountSchema(ma.Schema):
    value = fields.String(metadata={"description": "A study type.", "example": "Interventional"})
    count = fields.Integer(metadata={"example": 12})


class MonthTypeCountSchema(ma.Schema):
    month = fields.String(metadata={"description": "`YYYY-MM`.", "example": "2020-03"})
    count = fields.Integer(metadata={"description": "Studies registered that month.", "example": 14})
    study_type = fields.List(fields.Nested(TypeCountSchema), metadata={
        "description": "The month's studies per study type (the types of `study_types`, in that order)."})


class AimDesignCountSchema(ma.Schema):
    study_aim = fields.String(metadata={"example": "Treatment and Management"})
    study_design = fields.String(metadata={"example": "Parallel/Crossover"})
    count = fields.Integer(metadata={"example": 19})


class EvidenceMapSchema(ma.Schema):
    studies = fields.Integer(metadata={"description": "Studies matching the query.", "example": 36})
    registered = fields.Integer(metadata={
        "description": "Of those, studies with a registration date (in the register's date range): "
                       "what the months add up to.", "example": 35})
    study_types = fields.List(fields.String(), metadata={
        "description": "The study types occurring among the dated studies, in vocabulary order.",
        "example": ["Interventional", "Observational"]})
    studies_registered_by_month_and_type = fields.List(fields.Nested(MonthTypeCountSchema), metadata={
        "description": "Every month from the first to the last registration date, oldest first, "
                       "without gaps (0 where none)."})
    studies_by_aim_and_design = fields.List(fields.Nested(AimDesignCountSchema), metadata={
        "description": "Studies per study aim × study design: every pair of vocabulary values, even at "
                       "0 (aims, then designs, in vocabulary order)."})


# The filters of GET /studies (and `q`), read by the very same fields.
EvidenceMapArgsSchema = QueryArgsSchema.from_dict(
    {name: copy.deepcopy(field) for name, field in StudyQueryArgsSchema._declared_fields.items()
     if name in ("q", *STUDY_FILTERS)}, name="EvidenceMapArgs")
