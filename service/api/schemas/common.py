"""Fields and schemas every resource shares: problems, text, vocabularies, instants, paging arguments."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from marshmallow import fields, pre_load, validate

from ...search.query import MAX_DEPTH, MAX_LENGTH, MAX_TERMS, MIN_PREFIX, QueryError, parse
from ...validation import Bool, Day, Instant, Int, Text, Vocab
from ..paging import MAX_CURSOR_LENGTH

__all__ = ["Bool", "Day", "Instant", "Int", "Text", "Vocab"]  # shared with formats/ (service/validation.py)

_PAGING = ("page", "page_size", "cursor")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000  # machines walking the register (ClinicalTrials.gov and Europe PMC allow 1,000)


def _choices(field: fields.Field) -> list:
    return next((list(v.choices) for v in field.validators if isinstance(v, validate.OneOf)), [])


class SearchText(Text):
    """`q`: a search strategy, loaded as a parsed SearchQuery of the resource's ``fields``."""

    def __init__(self, fields_: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.search_fields = fields_

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse(text, self.search_fields)
        except QueryError as error:
            raise ma.ValidationError(str(error)) from None


def search_field(matches: str, fields_: tuple[str, ...], example: str) -> SearchText:
    tags = ", ".join(f"`{f}:`" for f in fields_)
    return SearchText(fields_, metadata={"description": (
        f"A search strategy over {matches}.\n\n"
        "**Grammar.** `AND`, `OR`, `NOT` (upper-case; lower-case `and`/`or`/`not` are refused rather "
        "than read as words), terms side by side are ANDed; precedence `NOT` > `AND` > `OR` "
        "(`a OR b NOT c` is `a OR (b NOT c)`), parentheses to group (nested up to "
        f"{MAX_DEPTH} deep); `\"a phrase\"`; `-word`, `-\"phrase\"` or `-(group)` excludes from the "
        f"terms beside it; `word*` truncates (at least {MIN_PREFIX} characters before `*`; every "
        "word of the register that begins so, each searched as a word). Field tags before a word, "
        f"phrase, truncation or parenthesised group: {tags}; without one a term searches every "
        "field.\n\n"
        "**Words.** Case- and accent-insensitive, English stemming (`exosomes` finds `exosome`); "
        "English stop words are not searched; in-word punctuation makes a phrase (`covid-19` is "
        "`\"covid 19\"`); a registration identifier in any written form (`NCT 04280705`) is one word.\n\n"
        "**Nothing is silently reinterpreted**: unbalanced parentheses or quotes, a dangling "
        "operator, an unknown field, a short truncation, another database's syntax (`?`, `$`, "
        "`[tiab]`, `#1`), a strategy with nothing to look for, or over the limits are a 422 naming "
        "`q`, with the character position and what was expected. Every answer carries `query`: the "
        "strategy as it was read (operators, groups and fields made explicit), to report word for "
        f"word. At most {MAX_LENGTH:,} characters and {MAX_TERMS:,} terms (use the POST `/search` "
        "form for strategies longer than a URL holds). Sorts by `relevance` unless `sort` is given."),
        "example": example})


class FacetNames(fields.List):
    """Facet names, comma-separated and/or repeated: `facets=a,b` or `facets=a&facets=b`."""

    def __init__(self, names, **kwargs):
        super().__init__(fields.String(validate=validate.OneOf(list(names))), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = [part.strip() for item in value if isinstance(item, str)
                     for part in item.split(",") if part.strip()]
            if not value:
                raise ma.ValidationError(f"Name at least one facet: {', '.join(_choices(self.inner))}.")
        names = super()._deserialize(value, attr, data, **kwargs)
        return list(dict.fromkeys(names))


def _shown(name: str) -> str:
    """A name a client sent, as an error message may quote it."""
    return f"`{name}`" if name.isprintable() and len(name) <= 60 else ascii(name[:60])


class FieldNames(fields.List):
    """`fields=`: the record members an answer keeps, comma-separated and/or repeated (`fields=id,title`
    or `fields=id&fields=title`; in a JSON body an array). Each name is one of ``names`` and given once;
    one wrong name or more is one message naming them all and listing the allowed ones."""

    def __init__(self, names, **kwargs):
        self.names = list(names)
        super().__init__(fields.String(validate=validate.OneOf(self.names)), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return super()._deserialize(value, attr, data, **kwargs)  # fields.List says what is wrong
        names = [part.strip() for item in value for part in item.split(",") if part.strip()]
        allowed = f"Allowed fields: {', '.join(self.names)}."
        if not names:
            raise ma.ValidationError(f"Name at least one field (`id` is always sent). {allowed}")
        unknown = [n for n in dict.fromkeys(names) if n not in self.names]
        repeated = [n for n in dict.fromkeys(names) if names.count(n) > 1 and n in self.names]
        problems = []
        if unknown:
            problems.append(f"Unknown field{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(_shown(n) for n in unknown[:10])}"
                            + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""))
        if repeated:
            problems.append("named more than once: " + ", ".join(_shown(n) for n in repeated))
        if problems:
            message = "; ".join(problems)
            raise ma.ValidationError(f"{message[0].upper()}{message[1:]}. {allowed}")
        return names


def fields_doc(record: str, names, *, single: bool = False, costs: str = "", extra: str = "") -> str:
    """The description of a `fields` argument over ``names``, the members of a ``record``; ``costs`` says
    which members cost queries, ``extra`` is said before the errors."""
    where = ("The `ETag` is that of the representation sent, so `If-None-Match` with it gives 304; "
             "`If-Match` on `PATCH` and `DELETE` needs the ETag of the full record (a read without "
             "`fields`). JSON only: not with `format=fhir` or `Accept: application/fhir+json` (422); a "
             "browser's HTML page ignores it." if single else
             "The envelope (`total`, `page`, `next`, `facets`, `query`...) is unchanged, and `next` and "
             "`prev` keep `fields`. Not with an export (`format` other than `json`: 422): an export "
             "streams whole records.")
    return (f"Only these members of {'the' if single else 'each'} {record}, comma-separated "
            f"(`fields=id,title`) or repeated; `id` is always sent. Members not asked for are not "
            f"read{costs}: the leanest answers for machines. {where}{extra} An unknown or repeated "
            f"name, or none, is 422 naming it and listing the allowed ones: "
            + ", ".join(f"`{n}`" for n in names) + ".")


OPTIONAL = {"x-optional": True}  # a member not every answer has (api/spec.py: not `required`)


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem: every non-2xx answer has this shape (extension members may be added)."""

    class Meta:
        unknown = ma.INCLUDE  # documented as additionalProperties: RFC 9457 allows extension members

    type = fields.String(metadata={"description": "A URI naming the problem type.", "example": "about:blank"})
    title = fields.String(metadata={"description": "The HTTP status phrase."})
    status = fields.Integer(metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What is wrong, in words."})
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "For validation failures: the messages for each field or query "
                                 "parameter at fault, keyed by its name (nested body fields as "
                                 "dotted paths, e.g. `registrations.0.identifier`).", **OPTIONAL})
    owner_study_id = fields.Integer(metadata={
        "description": "On a 409 for a registration: the study that owns the identifier.", **OPTIONAL})
    merged_into = fields.Integer(metadata={
        "description": "On a 308 (and a 409 merging an already merged study): the study it was merged "
                       "into.", **OPTIONAL})
    limit = fields.String(metadata={
        "description": "On a 429: the limit reached (`auth`, `writes`, `exports` or `searches`).",
        "example": "writes", **OPTIONAL})
    database = fields.String(validate=validate.OneOf(["busy", "timeout", "unreachable"]), metadata={
        "description": "On a 503: what the database did: `busy` (locked, or every connection in use), "
                       "`timeout` (did not answer in time) or `unreachable`.", "example": "unreachable",
        **OPTIONAL})


class QueryArgsSchema(ma.Schema):
    """Query arguments that reject unknown and repeated parameters, naming the allowed ones."""

    class Meta:
        unknown = ma.RAISE

    @pre_load
    def _strict(self, data, **kwargs):
        allowed = {f.data_key or name: f for name, f in self.fields.items()}
        errors = {}
        for key in request.args:
            field = allowed.get(key)
            if field is None:
                errors[key] = [f"Unknown query parameter. Allowed parameters: "
                               f"{', '.join(sorted(allowed))}."]
            elif not isinstance(field, fields.List) and len(request.args.getlist(key)) > 1:
                errors[key] = ["Given more than once; this parameter takes one value."]
        export = request.args.get("format", "json")
        if export != "json" and "format" in allowed and export in _choices(allowed["format"]):
            for key in _PAGING:
                if key in request.args:
                    errors[key] = [f"An export (`format={export}`) is not paged: it streams every "
                                   f"matching record. Drop `{key}`."]
            if "fields" in allowed and "fields" in request.args:
                errors["fields"] = [f"An export (`format={export}`) streams whole records: `fields` "
                                    "selects members of the JSON page only. Drop `fields`."]
        if "bom" in allowed and "bom" in request.args and export != "csv":
            errors["bom"] = ["`bom` applies to CSV exports only (`format=csv`)."]
        if errors:
            raise ma.ValidationError(errors)
        return data


BOM_DOC = (
    "CSV exports only: `true` starts the file with the UTF-8 byte order mark, which Excel on Windows "
    "needs to read UTF-8 (without it, accented names show as mojibake); default `false`, which is what "
    "scripts expect (Python's `csv` with `encoding=\"utf-8\"` keeps a BOM in the first column name; "
    "use `utf-8-sig`). Identifier columns (`id`, `study_ids`, `pmid`, ...) are always quoted text, but "
    "pandas still infers numbers from quoted cells (a PMID column with blanks becomes float): read "
    "with `pd.read_csv(url, dtype=str)` (or `dtype={\"pmid\": str, \"study_ids\": str}`).")


def paging_fields(sorts, default_sort: str, *, relevance: bool = False,
                  formats: dict[str, str] | None = None) -> dict[str, fields.Field]:
    """The page, page_size, cursor, sort and format arguments every list endpoint takes.

    ``formats`` maps each export format the endpoint offers to its description.
    """
    choices = sorted(list(sorts) + [f"-{s}" for s in sorts]) + (["relevance"] if relevance else [])
    sort_doc = (f"Sort field, `-` prefix for descending; ties are broken by `id`. Default "
                f"`{default_sort}`.")
    if relevance:
        sort_doc = (f"Sort field, `-` prefix for descending; ties are broken by `id`. `relevance` "
                    f"(only with `q`, and its default) puts the best matches first, equally "
                    f"relevant ones most recently updated first. Default `{default_sort}` without `q`.")
    formats = formats or {}
    format_doc = "Response format. `json` (default): the paged envelope."
    if formats:
        format_doc += (" Exports stream *every* matching record, unpaged, in the order of `sort`, "
                       "as a download (`Content-Disposition: attachment`) with the exact count in "
                       "`X-Total-Count`; not with `page`, `page_size` or `cursor`. "
                       + " ".join(f"`{name}`: {doc}" for name, doc in formats.items()))
    return {
        "page": Int(
            validate=validate.Range(1, 10_000),
            metadata={"description": "Page number, from 1. `page` × `page_size` may not exceed "
                                     "10,000: walk further with `cursor`. Not with `cursor`."}),
        # Default 20, but not as the spec's `default`: clients and Swagger UI's "Try it out" send a
        # spec default, and an export (`format=csv`...) refuses `page_size`.
        "page_size": Int(
            load_default=lambda: DEFAULT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE),
            metadata={"description": f"Records per page, 1–{MAX_PAGE_SIZE:,}; default {DEFAULT_PAGE_SIZE}. "
                                     "`page` × `page_size` may not exceed 10,000 (at 1,000 a page: "
                                     "`page` 1–10; walk further with `cursor`). Not with an export "
                                     "(`format` other than `json`)."}),
        "cursor": Text(
            validate=validate.Length(1, MAX_CURSOR_LENGTH),
            metadata={"description": "Keyset paging for machines walking the whole register: "
                                     "`*` starts at the first record; then follow `next`, whose "
                                     "opaque cursor is stable while records change and has no "
                                     "depth limit. Keep the same filters and sort. Not with "
                                     "`page`. Cursors are signed and serve only the list (and "
                                     "filters and sort) they came from; an altered one is 422. "
                                     f"At most {MAX_CURSOR_LENGTH:,} characters."}),
        "sort": fields.String(validate=validate.OneOf(choices), metadata={"description": sort_doc}),
        "format": fields.String(
            load_default="json", validate=validate.OneOf(["json", *formats]),
            metadata={"description": format_doc}),
        **({"bom": Bool(metadata={"description": BOM_DOC})} if "csv" in formats else {}),
    }


class FacetCountSchema(ma.Schema):
    # A string, boolean, integer or null: OpenAPI 3.0 allows `nullable` only beside a `type`.
    value = fields.Raw(metadata={
        "anyOf": [{"type": "string", "nullable": True}, {"type": "integer"}, {"type": "boolean"}],
        "description": "A facet value: a vocabulary label or code, `true`/`false` for "
                       "`has_results`, a year (or `null`: no year) for `year`.",
        "example": "Interventional"})
    count = fields.Integer(metadata={"description": "Records in the filtered set with this value.",
                                     "example": 12})


QUERY_DOC = ("The strategy as parsed, normalised (operators, fields and precedence made explicit), to "
             "report word for word (PRISMA-S); absent without `q`.")


def envelope(item_schema, name: str, *, facets: tuple[str, ...] = (), searched: bool = False,
             extra_fields: dict[str, fields.Field] | None = None):
    """A list envelope schema: items, exact total, page, page_size, next and prev links; with
    ``searched``, the `query` a `q` was read as."""
    extra = {}
    if searched:
        extra["query"] = fields.String(metadata={"description": QUERY_DOC, **OPTIONAL,
                                                 "example": "nebulization exosomes"})
    if facets:
        extra["facets"] = fields.Dict(
            keys=fields.String(validate=validate.OneOf(facets)),
            values=fields.List(fields.Nested(FacetCountSchema)), metadata={
                **OPTIONAL,
                "description": "Only with `facets=`: for each facet asked, every value of its "
                               "vocabulary in vocabulary order (also at count 0), counted over the "
                               "whole filtered set (every filter and `q` applied), not just this "
                               "page.",
                "example": {"study_type": [{"value": "Interventional", "count": 12},
                                           {"value": "Observational", "count": 0}]}})
    return ma.Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True, metadata={
            "description": "Exact number of records matching the filters."}),
        "page": fields.Integer(allow_none=True, metadata={
            "description": "This page's number; null when walking with `cursor`."}),
        "page_size": fields.Integer(required=True),
        "next": fields.String(allow_none=True, metadata={
            "description": "URL of the next page; null when no record follows (never an empty "
                           "page). Past page-number depth it carries a `cursor`."
                           + (" After a `POST …/search`: that endpoint with `?page=` or `?cursor=` "
                              "(which overrides the body's): POST the same body to it." if searched
                              else "")}),
        "prev": fields.String(allow_none=True, metadata={
            "description": "URL of the previous page; null on the first page and in cursor mode."}),
        **extra,
        **(extra_fields or {}),
    }, name=name)
