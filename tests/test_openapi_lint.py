"""The served OpenAPI document passes Redocly (`recommended`) and Spectral (`spectral:oas`) with no error
and only the warnings listed here, each with its reason; every operation has a unique operationId and a
description; enum values a generator cannot name get `x-enum-varnames`."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import Counter

import pytest

from service.api.spec import enum_varname
from tests.helpers import node_tool

# (tool, rule, where) -> why it stays a warning
ALLOWED_WARNINGS = {
    ("spectral", "info-contact", "info"): (
        "the register has no public contact address or page; a made-up one would mislead clients."),
}


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    from service import create_app

    directory = tmp_path_factory.mktemp("openapi")
    app = create_app({"DATABASE_URL": f"sqlite:///{directory / 'spec.db'}", "LOG_LEVEL": "WARNING"})
    with app.test_client() as client:
        spec = client.get("/openapi.json").get_json()
    path = directory / "openapi.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path, spec


def _run(command: list[str], cwd) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    return result.stdout


def _check(tool: str, problems: list[tuple[str, str, str, str]]):
    """problems: (severity, rule, where, message)."""
    errors = [p for p in problems if p[0] == "error"]
    assert not errors, "\n".join(map(str, errors))
    unexpected = [p for p in problems if p[0] == "warning" and (tool, p[1], p[2]) not in ALLOWED_WARNINGS]
    assert not unexpected, "\n".join(map(str, unexpected))


def test_redocly_recommended_has_no_error(spec_file):
    path, _ = spec_file
    redocly = node_tool("redocly")
    out = _run([str(redocly), "lint", "--extends=recommended", "--format=json", path.name], path.parent)
    assert "{" in out, out  # Redocly ran and wrote its JSON report
    report = json.loads(out[out.index("{"):])
    assert report["totals"]["errors"] == sum(p["severity"] == "error" for p in report["problems"])
    problems = [(p["severity"], p["ruleId"], p["location"][0]["pointer"], p["message"])
                for p in report["problems"]]
    _check("redocly", problems)


def test_spectral_oas_has_no_error(spec_file):
    path, _ = spec_file
    spectral = node_tool("spectral")
    (path.parent / ".spectral.yaml").write_text('extends: ["spectral:oas"]\n', encoding="utf-8")
    out = _run([str(spectral), "lint", "--ruleset", ".spectral.yaml", "--format=json", "--quiet",
                path.name], path.parent)
    severities = {0: "error", 1: "warning", 2: "info", 3: "hint"}
    assert "[" in out, out  # Spectral ran and wrote its JSON report (`[]` when clean)
    report = json.loads(out[out.index("["):])
    problems = [(severities[p["severity"]], p["code"], ".".join(map(str, p["path"])), p["message"])
                for p in report]
    _check("spectral", problems)


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_every_operation_has_a_unique_operation_id_and_a_description(spec_file):
    _, spec = spec_file
    ids = Counter()
    for path, method, operation in _operations(spec):
        assert operation.get("operationId"), (method, path)
        assert operation["operationId"].isidentifier(), operation["operationId"]
        assert operation.get("description", "").strip(), (method, path)
        ids[operation["operationId"]] += 1
    assert [name for name, n in ids.items() if n > 1] == []
    assert spec["paths"]["/studies/{study_id}"]["get"]["operationId"] == "get_study_by_id"


def test_public_operations_say_so_and_writes_need_a_bearer_token_without_scopes(spec_file):
    _, spec = spec_file
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, method, operation in _operations(spec):
        assert "security" in operation, (method, path)
        for requirement in operation["security"]:
            assert requirement == {"bearerAuth": []}, (method, path)
    assert spec["paths"]["/studies"]["get"]["security"] == []
    assert spec["paths"]["/studies"]["post"]["x-token-scope"] == "studies"


def test_sort_values_have_names_for_generated_clients(spec_file):
    _, spec = spec_file
    sort = next(p for p in spec["paths"]["/studies"]["get"]["parameters"] if p["name"] == "sort")["schema"]
    names = dict(zip(sort["enum"], sort["x-enum-varnames"], strict=True))
    assert names["-updated"] == "UPDATED_DESC" and names["updated"] == "UPDATED"
    assert names["relevance"] == "RELEVANCE"
    assert enum_varname("-first_published") == "FIRST_PUBLISHED_DESC"


def test_error_examples_match_their_status_and_the_problem_schema(spec_file):
    _, spec = spec_file
    problem = spec["components"]["schemas"]["Problem"]
    for name, response in spec["components"]["responses"].items():
        media = response.get("content", {}).get("application/problem+json")
        if media is None or name == "DEFAULT_ERROR":
            continue
        example = media["example"]
        assert example["status"] == int(next(
            code for code, r in _response_refs(spec) if r == name)), name
        assert set(example) - set(problem["properties"]) == set(), name
    assert "database" in problem["properties"]  # a 503's member


def _response_refs(spec):
    for _path, _method, operation in _operations(spec):
        for code, response in operation["responses"].items():
            ref = response.get("$ref", "")
            if ref.startswith("#/components/responses/"):
                yield code, ref.rsplit("/", 1)[1]


def test_no_list_parameter_has_a_default_an_export_refuses(spec_file):
    """Swagger UI's "Try it out" and generated clients send every default: `page_size` has none in the
    spec (20 when absent), so `format=ris` from the docs page is not refused."""
    _, spec = spec_file
    for path in ("/studies", "/references"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        for name in ("page", "page_size", "cursor"):
            assert "default" not in params[name]["schema"], (path, name)


def test_answer_schemas_list_required_members(spec_file):
    _, spec = spec_file
    schemas = spec["components"]["schemas"]
    assert {"id", "name", "title", "registrations", "updated"} <= set(schemas["Study"]["required"])
    assert "references" not in schemas["Study"]["required"]  # lists embed them only when asked
    assert {"items", "total", "page", "page_size", "next", "prev"} <= set(schemas["StudyPage"]["required"])
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail"]
    assert "x-optional" not in json.dumps(spec)


def test_every_read_answers_what_the_docs_page_sends_by_default(client, seeded):
    """Swagger UI's "Try it out" (and a generated client) sends each parameter's `default`, and a
    required one's first enum value: no read without path parameters refuses that (with `format=` of
    each export too)."""
    spec = client.get("/openapi.json").get_json()
    for path, method, operation in _operations(spec):
        if method != "get" or "{" in path:
            continue
        params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        query = {p["name"]: p["schema"]["default"] for p in params if "default" in p["schema"]}
        choices = {p["name"]: p["schema"].get("enum", []) for p in params
                   if p.get("required") or p["name"] == "format"}  # every format a user may pick
        assert all(choices.values()), (path, choices)
        for values in itertools.product(*choices.values()):
            answer = client.get(path, query_string={**query, **dict(zip(choices, values, strict=True))})
            body = answer.get_data(as_text=True)  # an export streams as its body is read
            assert answer.status_code == 200, (path, query, values, body[:300])


def _missing_required(spec: dict, schema: dict, value, where: str, missing: set[str]) -> None:
    """Walk ``value`` along ``schema`` and collect `Schema.member` for each required member absent."""
    schemas = spec["components"]["schemas"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        _missing_required(spec, schemas[name], value, name, missing)
        return
    for part in schema.get("allOf", []):
        _missing_required(spec, part, value, where, missing)
    if isinstance(value, dict):
        missing.update(f"{where}.{name}" for name in schema.get("required", []) if name not in value)
        for key, item in value.items():
            if key in schema.get("properties", {}) and item is not None:
                _missing_required(spec, schema["properties"][key], item, f"{where}.{key}", missing)
        if isinstance(schema.get("additionalProperties"), dict):
            for item in value.values():
                _missing_required(spec, schema["additionalProperties"], item, where, missing)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _missing_required(spec, schema["items"], item, where, missing)


def test_answers_hold_every_member_their_schema_requires(client, auth, seeded):
    """`required` is true of real answers: reads of the seeded register (lists with every `include` and
    facet, single reads, a saved search and a notice) lack no member their schema requires."""
    spec = client.get("/openapi.json").get_json()
    notice = client.post("/notices", json={"message": "Holiday delay"}, headers=auth).get_json()
    search = client.post("/searches", json={"name": "s", "q": "covid"}, headers=auth).get_json()
    study_ids = [s["id"] for s in client.get("/studies?page_size=100").get_json()["items"]]
    reference_ids = [r["id"] for r in client.get("/references?page_size=100").get_json()["items"]]
    reads = {
        "/studies": ["include=references&include=citing&include=facet_sources",
                     "facets=" + ",".join(spec_enum(spec, "/studies", "facets")), "q=covid"],
        "/references": ["facets=" + ",".join(spec_enum(spec, "/references", "facets")), "q=covid"],
        "/stats": [""], "/stats/map": ["", "q=covid"], "/vocabularies": [""],
        "/vocabularies/{name}": [""], "/health": [""],
        "/version": [""], "/notices": ["status=all"], "/searches": [""], "/suggestions": [""],
        "/studies/duplicates": [""], "/studies/merged": [""], "/searches/{search_id}": [""],
        "/searches/{search_id}/results": [""], "/studies/{study_id}": [""],
        "/studies/{study_id}/references": [""], "/references/{reference_id}": [""],
        "/references/{reference_id}/suggestions": [""], "/registrations/{identifier}": [""],
        "/changes": ["", "since=2000-01-01T00:00:00Z"], "/studies/{study_id}/history": [""],
        "/references/{reference_id}/history": [""], "/notices/{notice_id}": [""],
    }
    json_reads = {path for path, operations in spec["paths"].items()
                  if "application/json" in operations.get("get", {}).get("responses", {}).get("200", {})
                  .get("content", {})}
    assert json_reads - set(reads) == set(), "a JSON read this test does not check"
    values = {"name": ["study_type"], "search_id": [search["id"]], "notice_id": [notice["id"]],
              "study_id": study_ids, "reference_id": reference_ids[:40], "identifier": ["ChiCTR2000030261"]}
    missing: set[str] = set()
    for template, queries in reads.items():
        found = re.search(r"\{(\w+)\}", template)
        name = found.group(1) if found else None
        for value in values[name] if name else [None]:
            path = template.replace(f"{{{name}}}", str(value)) if name else template
            for query in queries:
                answer = client.get(f"{path}?{query}")
                assert answer.status_code == 200, (path, query, answer.get_data(as_text=True)[:200])
                schema = spec["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]
                _missing_required(spec, schema["schema"], answer.get_json(), template, missing)
    assert missing == set()


def spec_enum(spec: dict, path: str, name: str) -> list[str]:
    param = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name)
    schema = param["schema"]
    return schema.get("items", schema)["enum"]


def test_export_operations_answer_downloads_and_refuse_paging(client, seeded):
    answer = client.get("/references/export?format=ris&type=preprint&sort=-id")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.mimetype == "application/x-research-info-systems"
    assert body.count("TY  - ") == int(answer.headers["X-Total-Count"]) > 0
    assert client.get("/references?format=ris&type=preprint&sort=-id").get_data(as_text=True) == body
    for query, name in (("", "format"), ("?format=csv&page_size=20", "page_size"),
                        ("?format=ris", "format"), ("?format=csv&facets=study_type", "facets")):
        refused = client.get(f"/studies/export{query}")
        assert refused.status_code == 422 and name in refused.get_json()["errors"], (query, refused.json)
