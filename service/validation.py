"""Validation of incoming records, shared by the HTTP API (its request bodies) and the register's own
NDJSON import (``formats.ndjson``): field types, and what creating or changing a study or a reference
accepts. It sits below both, so neither the formats nor the domain import the API."""

from __future__ import annotations

import datetime as dt
import re

import marshmallow as ma
import pycountry
from marshmallow import fields, validate, validates_schema

from .vocabularies import (
    FACETS,
    PHASE,
    RECRUITMENT_STATUS,
    REFERENCE_TYPES,
    REGISTRIES,
    UNCLEAR,
    canonical_value,
)

# Study fields a curator may set by hand (PATCH): derivation from the sources then leaves them alone.
CURATABLE = ("title", "study_type", "study_aim", "study_design", "intervention_assignment", "registered",
             "recruitment_status", "phase", "target_size", "sponsor", "start_date", "primary_completion_date",
             "countries", "first_published")

# C0 controls other than tab/newline/carriage return, and DEL: never meaningful in a record.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

class Text(fields.String):
    """A string without control characters (Postgres cannot store NUL; the rest is noise)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if _CONTROL.search(text):
            raise ma.ValidationError("Must not contain control characters.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ma.ValidationError("Must be valid Unicode (no lone surrogates).") from None
        return text


class Vocab(fields.String):
    """A controlled-vocabulary value, matched case-insensitively, stored as the vocabulary spells it."""

    def __init__(self, vocabulary, **kwargs):
        self.vocabulary = list(vocabulary)
        kwargs.setdefault("validate", validate.OneOf(self.vocabulary))
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        known = canonical_value(self.vocabulary, text)
        if known is None:
            raise ma.ValidationError(
                f"{text!r} is not an allowed value. Allowed values: {', '.join(self.vocabulary)}.")
        return known


# Every date and instant the register takes in (bodies, query filters, imported files) lies in this range.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2100, 12, 31)
_RANGE = f"between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
# Integers travel as signed 64-bit values at most (Postgres BIGINT, SQLite INTEGER).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def within_range(day: dt.date | dt.datetime | None) -> bool:
    """Whether ``day`` lies in the register's date range (None: no date, so no)."""
    if day is None:
        return False
    if isinstance(day, dt.datetime):
        day = day.date()
    return EARLIEST <= day <= LATEST


class Instant(fields.DateTime):
    """An ISO 8601 instant, answered in UTC with a `Z`; a bare date means midnight UTC."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not value.isascii():
            raise ma.ValidationError("Not a valid datetime: use ASCII digits (ISO 8601).")
        if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
            try:
                parsed = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise ma.ValidationError("Not a valid date.") from None
        else:
            parsed = super()._deserialize(value, attr, data, **kwargs)
        # Checked before the offset is applied: 9999-12-31T23:59:59-23:59 overflows datetime in UTC.
        if not EARLIEST.year - 1 <= parsed.year <= LATEST.year + 1:
            raise ma.ValidationError(f"Must be {_RANGE}.")
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        if not within_range(parsed):
            raise ma.ValidationError(f"Must be {_RANGE} (in UTC).")
        return parsed


class Day(fields.Date):
    """An ISO 8601 day within the register's date range."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not value.isascii():
            raise ma.ValidationError("Not a valid date: use ASCII digits (YYYY-MM-DD).")
        day = super()._deserialize(value, attr, data, **kwargs)
        if not within_range(day):
            raise ma.ValidationError(f"Must be {_RANGE}.")
        return day


_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")


class PartialDate(Text):
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD`, kept at the precision given (never padded)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        match = _PARTIAL_DATE.fullmatch(text)
        if not match:
            raise ma.ValidationError("Use YYYY, YYYY-MM or YYYY-MM-DD.")
        year, month, day = (int(g) if g else None for g in match.groups())
        try:
            dt.date(year, month or 1, day or 1)
        except ValueError:
            raise ma.ValidationError("Not a real date.") from None
        if not EARLIEST.year <= year <= LATEST.year:
            raise ma.ValidationError(f"Must be {_RANGE}.")
        return text


class Int(fields.Integer):
    """An integer within 64 bits. As text (a query parameter) only ASCII digits with an optional sign
    (no `1_000`, no full-width or other scripts' digits, no spaces); in JSON a number, never a boolean.
    With ``strict`` (JSON bodies) only a JSON number."""

    def __init__(self, *, strict: bool = False, **kwargs):
        super().__init__(strict=strict, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str):
            if self.strict or not _ASCII_INTEGER.fullmatch(value):
                raise self.make_error("invalid")
            value = int(value)
        elif not isinstance(value, int):
            raise self.make_error("invalid")
        if not INT_MIN <= value <= INT_MAX:
            raise ma.ValidationError("Must be a 64-bit integer.")
        return value


class Bool(fields.Boolean):
    """Only `true` or `false`: the words in a query string, JSON true/false in a body (with ``strict``,
    only JSON true/false). `1`, `yes`, `on`, `True` are refused."""

    default_error_messages = {"invalid": "Not a valid boolean: give `true` or `false`."}

    def __init__(self, *, strict: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.strict = strict

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if not self.strict and value in ("true", "false"):
            return value == "true"
        raise self.make_error("invalid")


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class Country(fields.String):
    """A country as an ISO 3166-1 alpha-2 or alpha-3 code or an ISO name, loaded as its alpha-2 code."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        found = None
        if 0 < len(text) <= 100:
            try:
                found = pycountry.countries.lookup(text)
            except LookupError:
                found = None
        if found is None:
            raise ma.ValidationError(f"{text[:100]!r} is not an ISO 3166-1 country code or name "
                                     f"(e.g. `DE`, `DEU`, `Germany`).")
        return found.alpha_2


FACET_DOC = {
    "study_type": "Study type (vocabulary `study_type`).",
    "study_aim": "Study aim (vocabulary `study_aim`).",
    "study_design": "Study design (vocabulary `study_design`).",
    "intervention_assignment": "Intervention assignment (vocabulary `intervention_assignment`).",
}


class RegistrationSchema(ma.Schema):
    registry = Vocab(REGISTRIES, metadata={
        "description": "Registry code; derived from the identifier's pattern when omitted.",
        "example": "ChiCTR"})
    identifier = Text(required=True, validate=[validate.Length(1, 100), not_blank], metadata={
        "description": "Registration identifier, stored in canonical form (upper-case prefix, no "
                       "spaces, EudraCT without `EUCTR` and country suffix). Unique across studies.",
        "example": "ChiCTR2000030261"})


def _facet_input(name: str, **kwargs) -> Vocab:
    return Vocab(FACETS[name], metadata={
        "description": FACET_DOC[name] + " Matched case-insensitively.", "example": UNCLEAR}, **kwargs)


class StudyPatchSchema(ma.Schema):
    name = Text(validate=[validate.Length(1, 200), not_blank], metadata={
        "description": "Heading label; defaults to the first registration identifier on create."})
    title = Text(validate=validate.Length(1, 5000))
    registrations = fields.List(fields.Nested(RegistrationSchema), validate=validate.Length(max=50),
                                metadata={"description": "On PATCH, replaces the whole list."})
    study_type = _facet_input("study_type")
    study_aim = _facet_input("study_aim")
    study_design = _facet_input("study_design")
    intervention_assignment = _facet_input("intervention_assignment")
    first_published = Day(metadata={"description": "Defaults to the day of creation.",
                                    "example": "2020-04-01"})
    registered = Day(allow_none=True, metadata={"description": "Registration date (null: not known)."})
    start_date = Day(allow_none=True, metadata={"description": "Start date (null: not known)."})
    primary_completion_date = Day(allow_none=True, metadata={
        "description": "Primary completion date (null: not known)."})
    recruitment_status = Vocab(RECRUITMENT_STATUS, metadata={
        "description": "Recruitment status (vocabulary `recruitment_status`), matched case-insensitively.",
        "example": "Completed"})
    phase = Vocab(PHASE, metadata={"description": "Phase (vocabulary `phase`), matched case-insensitively.",
                                   "example": "Phase 3"})
    target_size = Int(strict=True, allow_none=True, validate=validate.Range(0, 100_000_000),
                                 metadata={
        "description": "Target number of participants.", "example": 100})
    sponsor = Text(allow_none=True, validate=validate.Length(1, 500),
                   metadata={"description": "Primary sponsor."})
    countries = fields.List(Country(), validate=validate.Length(max=300), metadata={
        "description": "Countries (ISO 3166-1 alpha-2 or alpha-3 code, or name); replaces the list."})
    updated = Instant(metadata={"description": "Set only when importing a record that carries its "
                                               "own date; otherwise the service sets it."})

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data and self.partial:
            raise ma.ValidationError("Give at least one field to change.", "body")


class StudyCreateSchema(StudyPatchSchema):
    title = Text(required=True, validate=validate.Length(1, 5000))
    registrations = fields.List(fields.Nested(RegistrationSchema), load_default=list,
                                validate=validate.Length(max=50))
    study_type = _facet_input("study_type", load_default=UNCLEAR)
    study_aim = _facet_input("study_aim", load_default=UNCLEAR)
    study_design = _facet_input("study_design", load_default=UNCLEAR)
    intervention_assignment = _facet_input("intervention_assignment", load_default=UNCLEAR)


def _optional(length: int, **metadata) -> Text:
    return Text(allow_none=True, validate=validate.Length(max=length), metadata=metadata)


class ReferencePatchSchema(ma.Schema):
    type = Vocab(REFERENCE_TYPES, metadata={"description": "Reference type code.",
                                            "example": "journal_article"})
    title = Text(validate=validate.Length(1, 5000))
    authors = fields.List(Text(validate=validate.Length(1, 300)), validate=validate.Length(max=2000),
                          metadata={"description": "Authors in order, as written (\"Chu M\")."})
    abstract = _optional(100_000)
    source = _optional(500, description="Journal or registry name.")
    year = Int(strict=True, allow_none=True, validate=validate.Range(EARLIEST.year, LATEST.year),
                          metadata={"description": "Defaults to the year of `published`."})
    published = PartialDate(allow_none=True, metadata={
        "description": "YYYY, YYYY-MM or YYYY-MM-DD, at the precision known.", "example": "2022-06"})
    volume = _optional(50)
    issue = _optional(50)
    pages = _optional(50)
    doi = Text(allow_none=True, validate=[validate.Length(max=300), validate.Regexp(
        r"^(?:(?:https?://(?:dx\.)?doi\.org/)|doi:)?10\.\d{4,9}/\S+$", flags=re.IGNORECASE,
        error="Not a DOI (10.NNNN/...).")], metadata={"example": "10.1007/s12015-022-10398-w"})
    pmid = Text(allow_none=True, validate=validate.Regexp(r"^[1-9]\d{0,9}$", error="Not a PMID."),
                metadata={"example": "32445440"})
    url = Text(allow_none=True, validate=[validate.Length(max=2000), validate.URL(
        schemes={"http", "https"}, require_tld=False)])
    registration_id = Text(allow_none=True, validate=[validate.Length(max=100), not_blank], metadata={
        "description": "For a trial registry record: its identifier."})
    has_results = Bool(strict=True, metadata={"description": "Whether it reports results."})
    publication_types = fields.List(
        Text(validate=validate.Length(1, 100)), validate=validate.Length(max=50), metadata={
            "description": "Publication types as its bibliographic source gives them (PubMed's \"Review\", "
                           "\"Randomized Controlled Trial\", ...). A review, meta-analysis, guideline, "
                           "editorial or comment cites the studies it names (link role `cites`).",
            "example": ["Journal Article", "Randomized Controlled Trial"]})
    notes = _optional(10_000)
    first_published = Day(metadata={"description": "Defaults to the day of creation."})
    updated = Instant(metadata={"description": "Set only when importing a record that carries its "
                                               "own date; otherwise the service sets it."})

    @validates_schema
    def _consistent(self, data, **kwargs):
        if not data and self.partial:
            raise ma.ValidationError("Give at least one field to change.", "body")
        published, year = data.get("published"), data.get("year")
        if published and year is not None and int(published[:4]) != year:
            raise ma.ValidationError("Does not match the year of `published`.", "year")


class ReferenceCreateSchema(ReferencePatchSchema):
    type = Vocab(REFERENCE_TYPES, required=True, metadata={"example": "journal_article"})
    title = Text(required=True, validate=validate.Length(1, 5000))
    authors = fields.List(Text(validate=validate.Length(1, 300)), load_default=list,
                          validate=validate.Length(max=2000))
    has_results = Bool(strict=True, load_default=False)
    study_ids = fields.List(Int(strict=True, validate=validate.Range(1, 2_147_483_647)),
                            validate=validate.Length(max=100), metadata={
                                "description": "Studies to link this reference to by hand."})


