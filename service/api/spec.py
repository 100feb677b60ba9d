"""What makes the served OpenAPI document one clients can rely on, in one place, for every endpoint:

* an ``operationId`` for every operation that has none, from its view (``OperationIds``, an apispec
  plugin: its ``operation_helper`` sees each Flask rule as flask-smorest documents it);
* ``security: []`` on every operation that needs no token (Redocly's `security-defined`);
* ``required`` on every schema only answers use (``finish``): each property unless its field says
  ``metadata={"x-optional": True}`` (a member not every answer has); a schema also used by a request
  keeps the fields' own ``required``;
* ``x-enum-varnames`` on string enums a generator cannot name (``-updated`` becomes ``UPDATED_DESC``
  rather than ``VALUE_0``), which openapi-python-client reads;
* an example per error response that matches its status;
* the JSON 200 of an operation taking `fields` is `anyOf` the whole schema and its `…Fields` variant
  (only `id` required), so that the whole one keeps its required members.

apispec has no hook after the document is assembled, so ``finish`` runs on ``APISpec.to_dict``'s
result (``FinishedSpec``); the rest is written here, not taken from a library (apispec and
flask-smorest derive none of it).
"""

from __future__ import annotations

import copy
import http
import re

from apispec import APISpec, BasePlugin

OPTIONAL = "x-optional"
PROBLEM_JSON = "application/problem+json"


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def operation_id(endpoint: str, method: str) -> str:
    """`studies.StudyById` + `get` -> `get_study_by_id`: the method and the view's name."""
    view = endpoint.rpartition(".")[2]
    return f"{method}_{snake(view)}"


class OperationIds(BasePlugin):
    """Gives each operation without one an operationId from its view, unique in the document (a view
    name two blueprints share is prefixed with its blueprint's name), and ``security: []`` when it
    declares none (public)."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            operation.setdefault("security", [])
            if "operationId" in operation or rule is None:
                continue
            name = operation_id(rule.endpoint, method)
            owner = self.seen.get(name)
            if owner is not None and owner != f"{rule.endpoint} {method}":
                name = f"{rule.endpoint.partition('.')[0]}_{name}"
            self.seen[name] = f"{rule.endpoint} {method}"
            operation["operationId"] = name


def _schema_refs(node, schemas: dict, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                if name not in found and name in schemas:
                    found.add(name)
                    _schema_refs(schemas[name], schemas, found)
            else:
                _schema_refs(value, schemas, found)
    elif isinstance(node, list):
        for value in node:
            _schema_refs(value, schemas, found)


def _operations(spec: dict):
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method != "parameters" and isinstance(operation, dict):
                yield path, method, operation


def _answer_only_schemas(spec: dict) -> set[str]:
    schemas = spec.get("components", {}).get("schemas", {})
    answers: set[str] = set()
    requests: set[str] = set()
    _schema_refs(spec.get("components", {}).get("responses", {}), schemas, answers)
    for _path, _method, operation in _operations(spec):
        _schema_refs(operation.get("responses", {}), schemas, answers)
        _schema_refs(operation.get("requestBody", {}), schemas, requests)
        _schema_refs(operation.get("parameters", []), schemas, requests)
    return answers - requests


def _strip_optional(node):
    if isinstance(node, dict):
        node.pop(OPTIONAL, None)
        for value in node.values():
            _strip_optional(value)
    elif isinstance(node, list):
        for value in node:
            _strip_optional(value)


def _require_properties(schema: dict) -> None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    required = [name for name, prop in properties.items()
                if not (isinstance(prop, dict) and prop.get(OPTIONAL))]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)


def enum_varname(value: str) -> str:
    """A Python-friendly member name for an enum value: `-updated` is `UPDATED_DESC`."""
    descending = value.startswith("-")
    words = re.sub(r"[^0-9A-Za-z]+", "_", value.lstrip("-")).strip("_").upper() or "EMPTY"
    if words[0].isdigit():
        words = f"VALUE_{words}"
    return f"{words}_DESC" if descending else words


def _name_enums(node) -> None:
    if isinstance(node, dict):
        values = node.get("enum")
        if (isinstance(values, list) and "x-enum-varnames" not in node
                and all(isinstance(v, str) for v in values)
                and any(not v or not v[0].isalpha() for v in values)):
            names = [enum_varname(v) for v in values]
            if len(set(names)) == len(names):
                node["x-enum-varnames"] = names
        for value in node.values():
            _name_enums(value)
    elif isinstance(node, list):
        for value in node:
            _name_enums(value)


# What each error status's example says (others: the status phrase). The detail is what the service
# answers in such a case.
ERROR_DETAILS = {
    400: ("The request body cannot be used — Invalid JSON body: Expecting value (line 1, column 1).",
          {"body": ["Invalid JSON body: Expecting value (line 1, column 1)."]}),
    401: ("Send `Authorization: Bearer <token>`: this operation needs a token.", None),
    403: ("The token lacks the `studies` scope.", None),
    404: ("No study 999999.", None),
    405: ("DELETE is not allowed on /studies.", None),
    406: ("Cannot answer in any media type the Accept header names.", None),
    409: ("Registration ChiCTR2000030261 belongs to study 1.", None),
    412: ("The study changed since your copy (ETag mismatch): read it again.", None),
    413: ("The body is over the limit (MAX_CONTENT_LENGTH).", None),
    414: ("The request line is over 8,190 bytes: send a long search strategy as a POST to `/search`.",
          None),
    415: ("Send the body as application/json.", None),
    422: ("Invalid query parameter — page_size: Must be greater than or equal to 1 and less than or "
          "equal to 1000.", {"page_size": ["Must be greater than or equal to 1 and less than or equal to "
                                           "1000."]}),
    429: ("Too many writes with this token; retry after the seconds in `Retry-After`.", None),
    500: ("The server met an unexpected error; it has been logged.", None),
    503: ("The database is unreachable; try again shortly.", None),
}
ERROR_EXTRA = {409: {"owner_study_id": 1}, 429: {"limit": "writes"}, 503: {"database": "unreachable"},
               308: {"merged_into": 2}}


def problem_example(status: int) -> dict:
    phrase = http.HTTPStatus(status).phrase
    detail, errors = ERROR_DETAILS.get(status, (f"{phrase}.", None))
    if status == 308:
        detail = "Study 1 was merged into study 2: see `Location`."
    example = {"type": "about:blank", "title": phrase, "status": status, "detail": detail}
    if errors:
        example["errors"] = errors
    example.update(ERROR_EXTRA.get(status, {}))
    return example


def _error_examples(spec: dict) -> None:
    for name, response in spec.get("components", {}).get("responses", {}).items():
        media = response.get("content", {}).get(PROBLEM_JSON)
        status = getattr(http.HTTPStatus, name, None)
        if media is None or "example" in media:
            continue
        media["example"] = problem_example(status.value if status is not None else 500)


def _every_operation_may_answer(spec: dict, status: int) -> None:
    """Document ``status`` on every operation: the before_request hooks that answer it run for all
    (a request line too long is 414: api/limits.py)."""
    name = http.HTTPStatus(status).name
    responses = spec.setdefault("components", {}).setdefault("responses", {})
    responses.setdefault(name, {"description": http.HTTPStatus(status).phrase, "content": {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    for _path, _method, operation in _operations(spec):
        operation.setdefault("responses", {}).setdefault(str(status), {
            "$ref": f"#/components/responses/{name}"})


def _drop_unused_schemas(spec: dict) -> None:
    """flask-smorest always registers `PaginationMetadata` (for its own paging, which we do not use)."""
    schemas = spec.get("components", {}).get("schemas", {})
    used: set[str] = set()
    _schema_refs({k: v for k, v in spec.items() if k != "components"}, schemas, used)
    _schema_refs(spec.get("components", {}).get("responses", {}), schemas, used)
    for name in set(schemas) - used:
        del schemas[name]


def _lists_point_to_their_exports(spec: dict) -> None:
    """A list `P` with an export operation `P/export` documents `format=json` only, and the JSON page
    only: a generated client parses a list's 200 as JSON whatever `format` asked for (and would crash
    on CSV), so its exports are the export operation's, whose 200 is text. (The list still answers
    `format=csv`..., as the contract says.)"""
    paths = spec.get("paths", {})
    for path, item in paths.items():
        export = paths.get(f"{path}/export", {}).get("get")
        listing = item.get("get")
        if export is None or listing is None:
            continue
        for param in listing.get("parameters", []):
            if param.get("in") == "query" and param.get("name") == "format":
                param["schema"] = {"type": "string", "enum": ["json"], "default": "json"}
                param["description"] = (f"`json` (default): the paged envelope. Exports: "
                                        f"`GET {path}/export` (`{export['operationId']}`), "
                                        f"which takes the same filters and `sort`.")
        ok = listing.get("responses", {}).get("200", {})
        content = ok.get("content", {})
        for media in [m for m in content if m != "application/json"]:
            del content[media]
        for header in ("Content-Disposition", "X-Total-Count"):
            ok.get("headers", {}).pop(header, None)
        if ok.get("description", "").startswith("The page (`format=json`)"):
            ok["description"] = "The page."


_SCHEMAS = "#/components/schemas/"


def _takes_fields(operation: dict, schemas: dict) -> bool:
    """Whether the operation takes `fields` (a query parameter, or a member of its JSON body)."""
    if any(p.get("in") == "query" and p.get("name") == "fields" for p in operation.get("parameters", [])):
        return True
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    name = body.get("$ref", "").removeprefix(_SCHEMAS)
    return "fields" in schemas.get(name, {}).get("properties", {})


def _fields_variant(name: str, schemas: dict) -> str:
    """`<name>Fields`: the schema ``name`` as `fields=` answers it: a record of which only `id` is sure
    to be there, or a page (``items``) of such records; made once."""
    variant = f"{name}Fields"
    if variant not in schemas:
        schema = copy.deepcopy(schemas[name])
        items = schema.get("properties", {}).get("items", {})
        item = items.get("items", {}).get("$ref", "") if items.get("type") == "array" else ""
        if item.startswith(_SCHEMAS):  # a page: its items are the records
            items["items"]["$ref"] = _SCHEMAS + _fields_variant(item.removeprefix(_SCHEMAS), schemas)
            schema["description"] = (f"A {name} answered with `fields=`: each item holds `id` and the "
                                     "members asked for, and no other.")
        else:
            for member, prop in schema.get("properties", {}).items():
                if member != "id" and isinstance(prop, dict):
                    prop[OPTIONAL] = True
            schema["description"] = (f"A {name} answered with `fields=`: `id` and the members asked "
                                     "for, and no other.")
        schemas[variant] = schema
    return variant


def _fields_answers(spec: dict) -> None:
    """An operation taking `fields` answers the whole record (or page), or with `fields=` only the
    members asked for: its JSON 200 is `anyOf` the two, the whole one first. The whole one stays as it
    was, every member required, so a generated client's types for it do not change."""
    schemas = spec.get("components", {}).get("schemas", {})
    for _path, _method, operation in _operations(spec):
        media = operation.get("responses", {}).get("200", {}).get("content", {}).get("application/json")
        if not media or not _takes_fields(operation, schemas):
            continue
        name = media.get("schema", {}).get("$ref", "").removeprefix(_SCHEMAS)
        if name in schemas:
            media["schema"] = {"anyOf": [{"$ref": _SCHEMAS + name},
                                         {"$ref": _SCHEMAS + _fields_variant(name, schemas)}]}


def finish(spec: dict) -> dict:
    """The assembled document, made fit for clients (the module's docstring says how)."""
    spec = copy.deepcopy(spec)
    _every_operation_may_answer(spec, 414)
    _lists_point_to_their_exports(spec)
    _drop_unused_schemas(spec)
    _fields_answers(spec)
    schemas = spec.get("components", {}).get("schemas", {})
    for name in _answer_only_schemas(spec):
        _require_properties(schemas[name])
    _strip_optional(spec)
    _name_enums(spec)
    _error_examples(spec)
    return spec


class FinishedSpec(APISpec):
    """The APISpec whose ``to_dict`` is the finished document (served, and written by `openapi write`)."""

    def to_dict(self) -> dict:
        return finish(super().to_dict())
