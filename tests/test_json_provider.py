"""The orjson provider (service/jsonprovider.py) says what Flask's default provider says, as JSON values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from service.jsonprovider import OrjsonProvider


@dataclasses.dataclass
class Point:
    x: int
    on: dt.date


VALUES = [
    {"when": dt.datetime(2020, 1, 2, 3, 4, 5), "day": dt.date(2020, 1, 2),
     "aware": dt.datetime(2020, 1, 2, tzinfo=dt.UTC), "amount": decimal.Decimal("1.10"),
     "id": uuid.UUID(int=7), 7: "int key", 2.5: "float key", False: "bool key", None: "null key",
     "text": "é — 中", "point": Point(1, dt.date(2021, 1, 1)), "float": 0.1,
     "nested": [(1, 2), {"z": 1, "a": 2}]},
    {"big": 2**70},  # beyond orjson's 64 bits: the default provider writes it
    {"surrogate": "\ud800"},  # orjson refuses lone surrogates: the default provider writes it
    1e300, "x", None, [], {},
]


@pytest.fixture
def providers():
    app = Flask(__name__)
    default, fast = DefaultJSONProvider(app), OrjsonProvider(app)
    default.sort_keys = fast.sort_keys = False
    with app.app_context():
        yield default, fast


@pytest.mark.parametrize("value", VALUES)
def test_same_values_as_the_default_provider(providers, value):
    default, fast = providers
    assert json.loads(fast.dumps(value)) == json.loads(default.dumps(value))
    assert json.loads(fast.response(value).get_data()) == json.loads(default.response(value).get_data())
    assert list(json.loads(fast.dumps({"b": 1, "a": 2}))) == ["b", "a"]  # key order as given


def test_arguments_and_errors_are_the_default_providers(providers):
    default, fast = providers
    spec = {"title": "é", "paths": {"b": 1, "a": [1, 2]}}
    assert fast.dumps(spec, indent=2, sort_keys=False) == default.dumps(spec, indent=2, sort_keys=False)
    for value in ({1, 2}, dt.time(1, 2), object()):
        with pytest.raises(TypeError):
            fast.dumps(value)
    assert fast.loads('{"a": 1}') == {"a": 1}
    with pytest.raises(json.JSONDecodeError):
        fast.loads("{")


def test_sorted_keys_when_asked(providers):
    _, fast = providers
    fast.sort_keys = True
    assert fast.dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_the_app_uses_it(app):
    assert isinstance(app.json, OrjsonProvider) and app.json.sort_keys is False
