"""The JSON body of `POST /studies/search` and `POST /references/search`: a GET's query parameters as
members, in their JSON types, `q` as a long strategy; and how a GET's `q` says where a long one goes."""

from __future__ import annotations

import copy

import marshmallow as ma
from marshmallow import fields, pre_load

from ...config import MAX_REQUEST_LINE
from ...search.query import MAX_LENGTH
from .common import QueryArgsSchema, SearchText, paging_fields

STRATEGY_MAX_LENGTH = MAX_LENGTH  # `q` in a POST search's body: a strategy pasted whole (as in a GET)


def _long_form_text(search_path: str) -> str:
    return (f" A GET's request line (method, URL percent-encoded, protocol) may be at most "
            f"{MAX_REQUEST_LINE:,} bytes; a longer one is answered 414: send a long strategy as JSON to "
            f"`POST {search_path}` (`q` up to {STRATEGY_MAX_LENGTH:,} characters there).")


def long_form_note(field: fields.Field, search_path: str) -> fields.Field:
    """Tell a GET's `q` where a strategy too long for a URL goes (``field`` is changed and returned)."""
    field.metadata["description"] = field.metadata.get("description", "") + _long_form_text(search_path)
    return field


def _json_type_error(field: fields.Field, value) -> str | None:
    """What is wrong with the JSON type of ``value`` for ``field`` (None: the field judges the rest)."""
    if value is None:
        return None  # the field says it may not be null
    if isinstance(field, fields.List):
        if not isinstance(value, list):
            return "Not a valid list: give a JSON array."
        if isinstance(field.inner, fields.String) and not all(isinstance(v, str) for v in value):
            return "Every item must be a string."
    elif isinstance(field, fields.Boolean) and not isinstance(value, bool):
        return "Not a valid boolean: give `true` or `false`."
    elif isinstance(field, fields.Integer) and (isinstance(value, bool) or not isinstance(value, int)):
        return "Not a valid integer: give a JSON number without a fraction."
    return None


class SearchBodySchema(ma.Schema):
    """List arguments sent as a JSON object: each member is the GET's query parameter of the same name,
    in its JSON type (a parameter a GET repeats is an array). Unknown members and wrong JSON types are
    refused, naming the member and the allowed ones."""

    class Meta:
        unknown = ma.RAISE

    error_messages = {"type": "Must be a JSON object."}

    @pre_load
    def _strict(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # the schema refuses it: "Must be a JSON object."
        allowed = {f.data_key or name: f for name, f in self.fields.items()}
        errors = {}
        for key, value in data.items():
            field = allowed.get(key)
            if field is None:
                errors[key] = [f"Unknown member. Allowed members: {', '.join(sorted(allowed))}."]
            elif (message := _json_type_error(field, value)) is not None:
                errors[key] = [message]
        if errors:
            raise ma.ValidationError(errors)
        return data


def search_body(query_schema: type[ma.Schema], name: str, *, search_path: str,
                without: tuple[str, ...] = ("format",)) -> type[SearchBodySchema]:
    """The JSON body of ``POST {search_path}``: the members of the GET's ``query_schema`` but ``without``
    (exports), `q` as a long strategy."""
    members = {key: copy.deepcopy(field) for key, field in query_schema._declared_fields.items()
               if key not in without}
    if "q" in members:
        description = members["q"].metadata.get("description", "").replace(_long_form_text(search_path), "")
        members["q"] = SearchText(members["q"].search_fields, metadata={
            **members["q"].metadata, "description": (
            description + f" Here, in the body, up to {STRATEGY_MAX_LENGTH:,} characters: paste a whole "
                          "strategy.")})
    return SearchBodySchema.from_dict(members, name=name)


def search_paging_args(name: str, *, search_path: str) -> type[QueryArgsSchema]:
    """The query string of ``POST {search_path}``: `page` or `cursor`, which override the body's (the
    answer's `next` is the same endpoint with one of them: POST the same body to it)."""
    paging = paging_fields({}, "id")
    note = (" In the query string it overrides the body's `page` and `cursor`: the answer's `next` is "
            f"`{search_path}?page=…` or `?cursor=…`; POST the same body to it.")
    members = {}
    for key in ("page", "cursor"):
        members[key] = copy.deepcopy(paging[key])
        members[key].metadata["description"] += note
    return QueryArgsSchema.from_dict(members, name=name)
