"""api/dumping.py: a planned dump gives exactly what marshmallow's Schema.dump gives."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
import pytest
from marshmallow import fields

from service.api.dumping import dumper
from service.api.schemas.references import LinkedReferenceSchema, ReferencePageSchema, ReferenceSchema
from service.api.schemas.studies import StudyPageSchema, StudySchema
from service.db import database
from service.domain import records
from service.models import Reference


def test_every_seeded_record_dumps_as_marshmallow_dumps_it(app, seeded):
    with database.connection_context():
        studies = list(records.studies_with_counts())
        study_records = records.study_dicts(studies, include_references=True, include_sources=True,
                                            include_citing=True)
        reference_records = records.reference_dicts(list(Reference.select()))
    assert len(study_records) > 5 and any(r["references"] for r in study_records)
    for schema in (StudySchema(), StudySchema(exclude=("references",))):
        planned = dumper(schema)
        for record in study_records:
            assert planned(record) == schema.dump(record)
            assert list(planned(record)) == list(schema.dump(record))  # the same keys in the same order
    planned = dumper(ReferenceSchema())
    for record in reference_records:
        assert planned(record) == ReferenceSchema().dump(record)
    for schema, items in ((StudyPageSchema(), study_records), (ReferencePageSchema(), reference_records)):
        for envelope in ({"items": items, "total": len(items), "page": 1, "page_size": 20, "next": "n",
                          "prev": None},
                         {"items": items[:1], "total": 1, "page": None, "page_size": 5, "next": None,
                          "prev": None, "query": "covid", "facets": {"type": [{"value": "x", "count": 2}]}}):
            assert dumper(schema)(envelope) == schema.dump(envelope)
            assert list(dumper(schema)(envelope)) == list(schema.dump(envelope))
    linked = [ref for record in study_records for ref in record["references"]]
    assert linked and all(dumper(LinkedReferenceSchema())(ref) == LinkedReferenceSchema().dump(ref)
                          for ref in linked)


class Inner(ma.Schema):
    code = fields.String()
    size = fields.Integer(allow_none=True)


class Odd(ma.Schema):
    name = fields.String(allow_none=True)
    renamed = fields.String(data_key="label")
    sourced = fields.String(attribute="elsewhere")
    dotted = fields.String(attribute="inner.code")
    count = fields.Integer()
    as_text = fields.Integer(as_string=True)
    ratio = fields.Float()
    flag = fields.Boolean()
    day = fields.Date()
    day_custom = fields.Date(format="%d/%m/%Y")
    instant = fields.DateTime()
    tags = fields.List(fields.String())
    numbers = fields.List(fields.Integer(), allow_none=True)
    inner = fields.Nested(Inner, allow_none=True)
    inners = fields.List(fields.Nested(Inner))
    many = fields.Nested(Inner, many=True)
    raw = fields.Raw()
    defaulted = fields.String(dump_default="none given")
    method = fields.Method("shout")

    def shout(self, obj):
        return str(obj.get("name")).upper()


@pytest.mark.parametrize("record", [
    {},
    {"name": None, "renamed": 5, "elsewhere": "x", "inner": {"code": 7, "size": "12"}, "count": "3",
     "as_text": 4, "ratio": 2, "flag": 1, "day": dt.datetime(2020, 3, 1, 12, 30),
     "day_custom": dt.date(2020, 3, 1), "instant": dt.datetime(2020, 3, 1, 12, 30), "tags": [1, "b"],
     "numbers": None, "inners": [{"code": "a"}, {}], "many": [{"size": 1}], "raw": {"k": [1]}},
    {"name": "ü", "count": 7, "ratio": 0.5, "flag": "yes", "day": None, "tags": [], "inner": None,
     "defaulted": None, "numbers": [True, 2.0]},
    {"name": "a", "flag": "maybe", "count": True},
    {"tags": [None, "x", 3], "numbers": [None, 3, "4", False]},
])
def test_odd_records_dump_as_marshmallow_dumps_them(record):
    assert dumper(Odd())(record) == Odd().dump(record)


def test_an_object_that_is_not_a_dict_and_a_schema_with_hooks_go_through_marshmallow():
    class Row:
        name, renamed, count = "n", "r", 3

    assert dumper(Odd(only=("name", "renamed", "count")))(Row()) == {"name": "n", "label": "r", "count": 3}

    class Hooked(ma.Schema):
        name = fields.String()

        @ma.post_dump
        def upper(self, data, **kwargs):
            return {k: v.upper() for k, v in data.items()}

    assert dumper(Hooked())({"name": "x"}) == {"name": "X"}
    with pytest.raises(ValueError, match="one record"):
        dumper(Odd(many=True))
