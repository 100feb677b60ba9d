"""The committed openapi/openapi.json is what the app serves, and it documents every operation."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

COMMITTED = ROOT / "openapi" / "openapi.json"
NOT_API = {"/docs", "/openapi.json", "/static/<path:filename>", "/docs/assets/<path:filename>"}


def test_committed_spec_equals_served_spec(client):
    served = client.get("/openapi.json").get_json()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert served == committed, "openapi/openapi.json is stale: run `make openapi`"


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule)


def test_every_route_is_documented(app, client):
    spec = client.get("/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if rule.rule in NOT_API or rule.endpoint.startswith("web."):  # the pages for people (web/)
            continue
        path = _spec_path(rule.rule)
        assert path in spec["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (method, path)


def test_operations_document_their_errors_and_examples(client):
    spec = client.get("/openapi.json").get_json()
    problem = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]
    assert list(problem) == ["application/problem+json"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method == "parameters":
                continue
            assert op.get("summary"), (method, path)
            codes = set(op["responses"])
            if "{" in path:
                assert "404" in codes, (method, path)
            if method == "post" and path.endswith("/search"):  # a read with a long body: public
                assert op["security"] == [] and "401" not in codes, (method, path)
            elif method in ("post", "patch", "put", "delete"):
                assert {"401", "403"} <= codes and op["security"], (method, path)
            if method in ("patch", "delete") and path.startswith(("/studies/{study_id}",
                                                                  "/references/{")):
                if path.count("{") == 1:
                    assert "412" in codes
                    assert any(p["name"] == "If-Match" for p in op.get("parameters", []))
            if "requestBody" in op:
                content = op["requestBody"]["content"]["application/json"]
                assert content.get("example"), (method, path)
                assert {"400", "415", "422"} <= codes, (method, path)
            if any(p["in"] == "query" for p in op.get("parameters", [])):
                assert "422" in codes
                for param in op["parameters"]:
                    assert param.get("description") or param["in"] == "path", (path, param["name"])


def test_docs_page_is_served_with_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
