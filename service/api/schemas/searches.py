"""Schemas of saved searches: what saving one accepts (validated as `POST /studies/search` validates its
body), the saved search with its runs, and its results' arguments and answer."""

from __future__ import annotations

import copy

import marshmallow as ma
from marshmallow import fields, validate, validates, validates_schema

from ...domain.facets import STUDY_FACETS
from ...domain.searches import SEARCH_SORTS
from ...domain.studies import STUDY_FILTERS, STUDY_SORTS
from .common import OPTIONAL, Instant, QueryArgsSchema, Text, envelope, paging_fields
from .search_body import SearchBodySchema
from .studies import StudyQueryArgsSchema, StudySchema, StudySearchSchema

LAST_RUN = "last_run"
STRATEGY = StudySearchSchema().fields["q"]  # `q` of POST /studies/search: a saved `q` is read by it

# The filters a saved search keeps: those of POST /studies/search's body, validated the same way.
StudyFiltersSchema = SearchBodySchema.from_dict(
    {name: copy.deepcopy(StudySearchSchema._declared_fields[name]) for name in STUDY_FILTERS},
    name="StudyFilters")

_FILTERS_DOC = ("The study filters, a JSON object with the members of `POST /studies/search`'s body "
                "that filter (" + ", ".join(f"`{f}`" for f in STUDY_FILTERS) + "), each in its JSON "
                "type and validated the same way; stored with values as the register spells them "
                "(`interventional` becomes `Interventional`, `Germany` `DE`).")


class SavedSearchPatchSchema(ma.Schema):
    name = Text(validate=validate.Length(1, 200), metadata={
        "description": "What the review calls the search.",
        "example": "Living review: convalescent plasma, weekly"})
    q = Text(metadata={
        "description": "The strategy, as `q` of `POST /studies/search` takes it (a boolean strategy, "
                       "up to 20,000 characters); kept as written, and validated as that body's `q` is: "
                       "a strategy the search would refuse is refused here (422) and nothing is "
                       "stored.",
        "example": '"convalescent plasma" OR "hyperimmune globulin"'})
    filters = fields.Nested(StudyFiltersSchema, metadata={"description": _FILTERS_DOC,
                                                          "example": {"study_type": ["Interventional"]}})

    @validates("q")
    def _a_strategy(self, value, **kwargs):
        if not value.strip():
            raise ma.ValidationError("Give a strategy: `q` is blank.")
        STRATEGY.deserialize(value)  # the POST search's own field: its errors

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data and self.partial:
            raise ma.ValidationError("Give at least one field to change.", "body")


class SavedSearchCreateSchema(SavedSearchPatchSchema):
    name = Text(required=True, validate=validate.Length(1, 200), metadata={
        "description": "What the review calls the search.",
        "example": "Living review: convalescent plasma, weekly"})
    q = copy.deepcopy(SavedSearchPatchSchema._declared_fields["q"])
    q.required = True
    filters = fields.Nested(StudyFiltersSchema, load_default=dict, metadata={
        "description": _FILTERS_DOC + " Default: none.", "example": {"study_type": ["Interventional"]}})


class SearchRunSchema(ma.Schema):
    run_at = Instant(metadata={"description": "When the results were asked for (their first page)."})
    total = fields.Integer(metadata={"description": "How many studies that answer held.", "example": 12})
    since = Instant(allow_none=True, metadata={
        "description": "The `since` the run used (`last_run` as the instant it stood for); null: every "
                       "match."})


class SavedSearchSchema(ma.Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "Living review: convalescent plasma, weekly"})
    q = fields.String(metadata={"description": "The strategy as written when it was saved.",
                                "example": '"convalescent plasma" OR "hyperimmune globulin"'})
    query = fields.String(allow_none=True, metadata={
        "description": "The strategy as parsed, normalised (operators, fields and precedence made "
                       "explicit), to report word for word (PRISMA-S); null if it no longer parses.",
        "example": '"convalescent plasma" or "hyperimmune globulin"'})
    filters = fields.Dict(metadata={"description": "The study filters, as stored.",
                                    "example": {"study_type": ["Interventional"]}})
    results = fields.String(metadata={"description": "URL of its results (`?since=last_run`: what is new).",
                                      "example": "http://127.0.0.1:8000/searches/1/results"})
    created = Instant()
    updated = Instant(metadata={"description": "When its name, strategy or filters last changed (a run "
                                               "does not change it)."})
    run_count = fields.Integer(metadata={"description": "How many times it was run."})
    last_run = fields.Nested(SearchRunSchema, allow_none=True, metadata={
        "description": "Its latest run; null: never run."})
    runs = fields.List(fields.Nested(SearchRunSchema), metadata={
        **OPTIONAL,
        "description": "Every run, newest first (in single reads): when, how many studies, since when."})


SavedSearchPageSchema = envelope(SavedSearchSchema, "SavedSearchPage")

SavedSearchQueryArgsSchema = QueryArgsSchema.from_dict(
    {k: v for k, v in paging_fields(SEARCH_SORTS, "id").items() if k != "format"},
    name="SavedSearchQueryArgs")


class Since(Text):
    """`last_run`, a day or an RFC 3339 instant."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if text == LAST_RUN:
            return LAST_RUN
        try:
            return Instant().deserialize(text)
        except ma.ValidationError:
            raise ma.ValidationError("Give `last_run`, a day (`2026-11-01`, midnight UTC) or an RFC 3339 "
                                     "instant (`2026-11-01T09:30:00Z`).") from None


_RESULTS_ARGS = {name: copy.deepcopy(StudyQueryArgsSchema._declared_fields[name])
                 for name in ("facets", "include", "fields")}
SavedSearchResultsArgsSchema = QueryArgsSchema.from_dict({
    "since": Since(metadata={
        "description": "Only the studies that appeared or changed at or after this instant: first in the "
                       "register then (`created`), or `updated` since (the study, its registrations, or "
                       "its set of references changed: a newly linked report counts). `last_run`: since "
                       "this search's latest run (none yet: every match, and the answer says `since: "
                       "null`). Or a day (`2026-11-01`, midnight UTC) or an RFC 3339 instant. Without "
                       "it: every match. The answer's links carry the instant it stood for.",
        "example": LAST_RUN}),
    **_RESULTS_ARGS,
    **{k: v for k, v in paging_fields(STUDY_SORTS, "id", relevance=True).items() if k != "format"},
}, name="SavedSearchResultsArgs")

SavedSearchResultsSchema = envelope(StudySchema, "SavedSearchResults", facets=STUDY_FACETS, searched=True,
                                    extra_fields={
    "since": Instant(allow_none=True, metadata={
        "description": "The instant `since` stood for (for `last_run`, the latest run's); null: every "
                       "match (no `since`, or no run before)."}),
    "run": fields.Nested(SearchRunSchema, allow_none=True, metadata={
        "description": "The run this answer recorded (a first page: `page` 1 or `cursor=*`); null on "
                       "later pages."}),
})
