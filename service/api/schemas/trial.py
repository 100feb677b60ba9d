"""Schemas of a study's trial data: countries and dissemination."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class CountrySchema(ma.Schema):
    code = fields.String(metadata={"description": "ISO 3166-1 alpha-2 code.", "example": "CN"})
    name = fields.String(metadata={"description": "Its name (ISO 3166 common name where there is one).",
                                   "example": "China"})


class ResultsSchema(ma.Schema):
    results = fields.Boolean(metadata={"description": "Results appeared there."})
    date = fields.Date(allow_none=True, metadata={"description": "The earliest day they did, if known."})


class DisseminationSchema(ma.Schema):
    registry = fields.Nested(ResultsSchema, metadata={
        "description": "Summary results in a trial registry (a record says so, or a linked registry "
                       "summary report has results)."})
    article = fields.Nested(ResultsSchema, metadata={"description": "A linked journal article with results."})
    preprint = fields.Nested(ResultsSchema, metadata={"description": "A linked preprint with results."})
    reported = fields.Boolean(metadata={"description": "Results appeared in at least one of the three."})
    first_results = fields.Date(allow_none=True, metadata={
        "description": "The earliest day results appeared anywhere, if known."})
