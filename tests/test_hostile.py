"""The project's own hostile-input test: from the served OpenAPI document, every operation, and for each
of its parameters (path, query, header) and JSON body fields, values from every hostile family (huge,
negative and non-ASCII integers, far dates, instants that overflow in UTC, NUL, lone surrogates, blank and
huge strings, wrong JSON types, bad booleans, tampered-looking cursors). None may answer 5xx; every 4xx
is problem+json. Both databases."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import pytest

from tests.helpers import create_reference, create_study, reference_body, study_body

pytestmark = pytest.mark.slow


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# Query/path/header values, as text (what a URL carries).
TEXT_FAMILIES = {
    "huge integer": "9" * 40,
    "64-bit overflow": str(2**63),
    "negative": "-1",
    "negative overflow": str(-(2**63) - 1),
    "full-width digit": "\uff11",
    "arabic-indic digit": "\u0661\u0662",
    "underscored": "1_000",
    "exponent": "1e308",
    "float": "1.5",
    "far future date": "9999-12-31",
    "far past date": "0001-01-01",
    "just out of range": "2101-01-01",
    "overflow instant": "9999-12-31T23:59:59-23:59",
    "underflow instant": "0001-01-01T00:00:00+23:59",
    "nul": "a\x00b",
    "control": "\x01\x1f",
    "lone surrogate": "\udcff",
    "blank": " ",
    "empty": "",
    "huge string": "x" * 5000,
    "bad boolean yes": "yes",
    "bad boolean 0": "0",
    "bad boolean True": "True",
    "nan": "NaN",
    "infinity": "-Infinity",
    "cursor huge key": _cursor({"k": [10**400], "f": "x"}),
    "cursor negative key": _cursor({"k": [-(2**70)], "f": "x"}),
    "cursor infinite key": base64.urlsafe_b64encode(b'{"k": [Infinity], "f": "x"}').decode(),
    "cursor surrogate key": base64.urlsafe_b64encode(b'{"k": ["\\udcff"], "f": "x"}').decode(),
    "cursor not base64": "!!!*",
    "cursor nested": _cursor([[[[[[[[[[]]]]]]]]]]),
    "sql": "1' OR '1'='1",
}

# JSON body values (wrong types as well as hostile texts).
JSON_FAMILIES = {
    **{name: value for name, value in TEXT_FAMILIES.items() if not name.startswith("cursor")},
    "integer 2^63": 2**63,
    "integer -2^63-1": -(2**63) - 1,
    "integer 4000 digits": int("9" * 4000),
    "float": 1.5,
    "negative integer": -1,
    "true": True,
    "false": False,
    "null": None,
    "list": [1, "a", None],
    "list of nul": ["\x00"],
    "object": {"a": {"b": []}},
    "huge list": list(range(5000)),
}

# Raw JSON members Python's json module cannot produce on purpose.
RAW_JSON_FAMILIES = {"NaN": "NaN", "Infinity": "Infinity", "integer 5000 digits": "9" * 5000,
                     "nul escape": '"\\u0000"', "surrogate escape": '"\\ud800"'}

HEADER_FAMILIES = {"weak etag": 'W/"x"', "garbage": "garbage", "huge": '"' + "a" * 4000 + '"',
                   "list": '"a", W/"b", ,', "quote": '"'}


@pytest.fixture
def spec(app, client):
    # No rate limits here: 11,000 requests from one address and one token would soon be 429s that
    # reach no endpoint (tests/test_rate_limits.py tests the limits).
    app.extensions["rate_limits"].enabled = False
    return client.get("/openapi.json").get_json()


@pytest.fixture
def records(client, auth):
    """A record of every kind, so hostile values also reach operations on real rows."""
    study = create_study(client, auth)
    reference = create_reference(client, auth, study_ids=[study["id"]])
    notice = client.post("/notices", json={"message": "m"}, headers=auth).get_json()
    search = client.post("/searches", json={"name": "s", "q": "covid"}, headers=auth).get_json()
    return {"study_id": study["id"], "reference_id": reference["id"], "notice_id": notice["id"],
            "search_id": search["id"], "suggestion_id": 1, "identifier": "ChiCTR2000030261",
            "name": "study_type"}


# Bodies that pass validation, so a hostile field also reaches code past the schema.
GOOD_BODIES = {
    ("post", "/studies"): lambda: study_body("NCT04280705"),
    ("post", "/references"): reference_body,
    ("post", "/notices"): lambda: {"message": "m"},
    ("post", "/searches"): lambda: {"name": "n", "q": "covid"},
}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("parameters", "summary", "description"):
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            yield method, path, op, params, body


# Never a valid value anywhere: refused, never stored.
ALWAYS_REFUSED = {"nul", "control", "lone surrogate", "list of nul", "nul escape", "surrogate escape",
                  "NaN", "Infinity", "integer 5000 digits"}


def _check(response, what: str, *, refused: bool = False) -> None:
    text = response.get_data(as_text=True)[:300]
    assert response.status_code < 500, f"{what}: {response.status_code} {text}"
    if refused:
        assert response.status_code >= 400, f"{what} was accepted: {response.status_code} {text}"
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json", f"{what}: {response.mimetype}"
        body = response.get_json()
        assert body["status"] == response.status_code and body["detail"], what


def _url(path: str, values: dict) -> str:
    return re.sub(r"{(\w+)}", lambda m: quote(str(values[m.group(1)]), safe=""), path)


def _send(client, method, url, *, headers, query=None, data=None):
    kwargs = {"headers": headers}
    if data is not None:
        kwargs["data"] = data
        kwargs["headers"] = {**headers, "Content-Type": "application/json"}
    query_string = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}"
                            for k, v in (query or {}).items())
    return client.open(url + ("?" + query_string if query_string else ""), method=method.upper(), **kwargs)


def test_no_hostile_value_makes_a_server_error(client, auth, spec, records):
    checked = 0
    operations = list(_operations(spec))
    assert len(operations) >= 40  # the document lists every operation
    for method, path, _op, params, body_schema in operations:
        if method == "delete":
            continue  # below, last: they would remove the records the others use
        checked += _hostile_operation(client, auth, spec, records, method, path, params, body_schema)
    for method, path, _op, params, body_schema in operations:
        if method == "delete":
            checked += _hostile_operation(client, auth, spec, records, method, path, params, body_schema)
    assert checked > 2000


def _hostile_operation(client, auth, spec, records, method, path, params, body_schema) -> int:
    checked = 0
    url = _url(path, records)
    for param in params:
        name, where = param["name"], param["in"]
        families = HEADER_FAMILIES if where == "header" else TEXT_FAMILIES
        for family, value in families.items():
            what = f"{method.upper()} {path} {where} {name}={family}"
            if where == "path":
                if "\x00" in value or "\udcff" in value:
                    target = url.replace(quote(str(records[name]), safe=""),
                                         quote(value, safe="", errors="surrogatepass"), 1)
                else:
                    target = _url(path, {**records, name: value})
                response = _send(client, method, target, headers=auth)
            elif where == "query":
                response = _send(client, method, url, headers=auth, query={name: value})
                _check(response, what, refused=family in ("nul", "control"))
            else:
                response = _send(client, method, url, headers={**auth, name: value})
            _check(response, what)
            checked += 1
    if body_schema is not None:
        schema = _resolve(spec, body_schema)
        good = GOOD_BODIES.get((method, path), dict)
        bases = ({}, good()) if (method, path) in GOOD_BODIES else ({},)
        for name in schema.get("properties", {}):
            for family, value in JSON_FAMILIES.items():
                for base in bases:
                    data = json.dumps({**base, name: value})
                    _check(_send(client, method, url, headers=auth, data=data),
                           f"{method.upper()} {path} body {name}={family}", refused=family in ALWAYS_REFUSED)
                    checked += 1
            for family, raw in RAW_JSON_FAMILIES.items():
                data = "{" + json.dumps(name) + ": " + raw + "}"
                _check(_send(client, method, url, headers=auth, data=data),
                       f"{method.upper()} {path} raw body {name}={family}", refused=True)
                checked += 1
        for family, value in JSON_FAMILIES.items():  # the body as a whole of the wrong type
            _check(_send(client, method, url, headers=auth, data=json.dumps(value)),
                   f"{method.upper()} {path} whole body={family}")
            checked += 1
    return checked
