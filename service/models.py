"""The register's tables: studies, references, the links between them, registrations, saved searches,
notices, API tokens."""

from __future__ import annotations

import datetime as dt

from peewee import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from .db import BaseModel, IdField


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime (the form every timestamp column stores)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Study(BaseModel):
    id = IdField()
    name = CharField(max_length=200, index=True)
    title = TextField()
    study_type = CharField(max_length=40, index=True)
    study_aim = CharField(max_length=40, index=True)
    study_design = CharField(max_length=40, index=True)
    intervention_assignment = CharField(max_length=40, index=True)
    # When the study first appeared in its sources (its earliest record's first public date); an API
    # write without one: the day it was written.
    first_published = DateField(index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow, index=True)
    # Derived from every source record of the study (domain/derive.py), unless a curator set them.
    registered = DateField(null=True, index=True)  # earliest registration date of its records
    start_date = DateField(null=True, index=True)
    recruitment_status = CharField(max_length=40, default="Unclear", index=True)
    phase = CharField(max_length=20, default="Unclear", index=True)
    target_size = IntegerField(null=True)
    sponsor = CharField(max_length=500, null=True)
    primary_completion_date = DateField(null=True)
    # Dissemination: whether (and the earliest day) results appeared in a registry, a journal
    # article, a preprint.
    results_registry = BooleanField(default=False, index=True)
    results_registry_date = DateField(null=True)
    results_article = BooleanField(default=False, index=True)
    results_article_date = DateField(null=True)
    results_preprint = BooleanField(default=False, index=True)
    results_preprint_date = DateField(null=True)
    countries = TextField(default="[]")  # JSON array of ISO 3166-1 alpha-2 codes (StudyCountry: filters)
    # JSON: field -> where its value came from (record and field, or the rule), with conflicts.
    facet_sources = TextField(default="{}")
    # JSON array: the fields a curator set by hand; derivation never changes them.
    curated = TextField(default="[]")

    class Meta:  # covering indexes of the facet counts (domain/facets.py, m0011)
        indexes = ((("study_type", "study_aim", "study_design", "intervention_assignment",
                     "recruitment_status", "phase"), False),
                   (("results_registry", "results_article", "results_preprint"), False))


class StudyCountry(BaseModel):
    """A country where a study recruits (ISO 3166-1 alpha-2), derived with the study's other fields."""

    id = IdField()
    study = ForeignKeyField(Study, backref="country_rows", on_delete="CASCADE", index=True)
    code = CharField(max_length=2, index=True)

    class Meta:
        indexes = ((("study", "code"), True),)


class SourceRecord(BaseModel):
    """What one source file said about one registration (a registry record, or a registry scrape's row):
    its title and its claims (formats.Claim as JSON, by study field). The study owning the registration
    combines them with its other records' (domain/derive.py). One per registration and source: the last
    import of that source wins."""

    id = IdField()
    identifier = CharField(max_length=100, index=True)  # canonical registration identifier
    registry = CharField(max_length=40)
    source = CharField(max_length=80)  # format and layout, e.g. "ictrp-csv/who-40"
    title = TextField(null=True)
    claims = TextField(default="{}")
    imported = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("identifier", "source"), True),)


class MergedStudy(BaseModel):
    """A study merged into another: its id answers with a redirect to the survivor."""

    id = IntegerField(primary_key=True)  # the merged study's former id
    into = ForeignKeyField(Study, on_delete="CASCADE", index=True)
    name = CharField(max_length=200)
    merged = DateTimeField(default=utcnow, index=True)


class DuplicateDecision(BaseModel):
    """A curator's decision on a candidate pair of duplicate studies (``low`` < ``high``)."""

    id = IdField()
    low = ForeignKeyField(Study, on_delete="CASCADE", index=True)
    high = ForeignKeyField(Study, on_delete="CASCADE", index=True)
    decision = CharField(max_length=20, default="rejected")
    created = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("low", "high"), True),)


class Reference(BaseModel):
    id = IdField()
    type = CharField(max_length=40, index=True)
    title = TextField()
    authors = TextField(default="[]")  # JSON array of strings, in the order written
    abstract = TextField(null=True)
    source = CharField(max_length=500, null=True)
    year = IntegerField(null=True, index=True)
    published = CharField(max_length=10, null=True)  # YYYY, YYYY-MM or YYYY-MM-DD
    volume = CharField(max_length=50, null=True)
    issue = CharField(max_length=50, null=True)
    pages = CharField(max_length=50, null=True)
    doi = CharField(max_length=300, null=True, index=True)  # lower-cased
    pmid = CharField(max_length=12, null=True, index=True)
    url = CharField(max_length=2000, null=True)
    registration_id = CharField(max_length=100, null=True, index=True)  # canonical form
    has_results = BooleanField(default=False, index=True)
    # JSON array: the publication types its source gives (PubMed's "Review", "Randomized Controlled
    # Trial", ...), as written there; linking's rules read them (domain/evidence.py).
    publication_types = TextField(default="[]")
    notes = TextField(null=True)
    first_published = DateField(index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow, index=True)


class StudyReference(BaseModel):
    """A reference linked to a study: what it is to the study (``role``), how the link was made, how sure
    the register is of it and why (domain/evidence.py)."""

    id = IdField()
    study = ForeignKeyField(Study, backref="links", on_delete="CASCADE")
    reference = ForeignKeyField(Reference, backref="links", on_delete="CASCADE", index=True)
    link = CharField(max_length=10, default="manual")  # "manual" or "auto"
    identifier = CharField(max_length=100, null=True)  # the registration that made an auto link
    # "reports" (a report of the study) or "cites" (mentions it without reporting it).
    role = CharField(max_length=10, default="reports")  # asked with a study or a reference (m0006)
    role_curated = BooleanField(default=False)  # a curator set the role: automation never changes it
    confidence = DoubleField(null=True)  # 0-1, how sure the rules are of the role (1 for a curator's)
    evidence = TextField(default="[]")  # JSON array: where the identifier was found, with the text
    created = DateTimeField(default=utcnow)

    class Meta:  # (reference, role, study) covers the facets over the whole register (m0011)
        indexes = ((("study", "reference"), True), (("reference", "role", "study"), False))


class Registration(BaseModel):
    """A trial registration identifier owned by one study."""

    id = IdField()
    study = ForeignKeyField(Study, backref="registrations", on_delete="CASCADE", index=True)
    registry = CharField(max_length=40, index=True)
    identifier = CharField(max_length=100, unique=True)  # canonical form (identifiers.normalise)

    class Meta:  # covering: facets count distinct studies per registry in index order (m0011)
        indexes = ((("registry", "study"), False),)


class ReferenceIdentifier(BaseModel):
    """A registration identifier found in a reference's text: why it is, or is not, linked."""

    id = IdField()
    reference = ForeignKeyField(Reference, backref="identifiers_found", on_delete="CASCADE")
    identifier = CharField(max_length=100, index=True)  # canonical form
    registry = CharField(max_length=40)
    evidence = TextField(default="[]")  # JSON array: each place it was found (domain/evidence.py)

    class Meta:
        indexes = ((("reference", "identifier"), True),)


class LinkSuppression(BaseModel):
    """A link a curator removed by hand: automation never makes it again."""

    id = IdField()
    study = ForeignKeyField(Study, on_delete="CASCADE")
    reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
    created = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("study", "reference"), True),)


class Suggestion(BaseModel):
    """A candidate study for a reference with no `reports` link, from what the two share (titles,
    authors, trial acronym, intervention words), scored by domain/suggestions.py; a curator accepts it
    (a manual `reports` link) or rejects it (remembered: never suggested again)."""

    id = IdField()
    reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
    study = ForeignKeyField(Study, on_delete="CASCADE", index=True)
    score = DoubleField()
    reasons = TextField(default="[]")  # JSON array of {"kind", "detail", "score"}
    status = CharField(max_length=10, default="open", index=True)  # open, accepted, rejected
    created = DateTimeField(default=utcnow)
    decided = DateTimeField(null=True)

    class Meta:
        indexes = ((("reference", "study"), True),)


class SavedSearch(BaseModel):
    """A review's search strategy kept by name, to be run again (a living review's weekly search): `q` as
    its author wrote it, and the study filters as validated (JSON, values in their canonical form)."""

    id = IdField()
    name = CharField(max_length=200)
    q = TextField()
    filters = TextField(default="{}")  # JSON object: filter name -> value, as GET /studies takes them
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)


class SearchRun(BaseModel):
    """One run of a saved search (the first page of its results): when, the studies it answered, and the
    `since` it asked for (null: every match)."""

    id = IdField()
    search = ForeignKeyField(SavedSearch, backref="runs", on_delete="CASCADE", index=True)
    run_at = DateTimeField(default=utcnow, index=True)
    total = IntegerField()
    since = DateTimeField(null=True)


class Notice(BaseModel):
    id = IdField()
    message = TextField()
    starts = DateTimeField(null=True, index=True)
    ends = DateTimeField(null=True, index=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)


class ApiToken(BaseModel):
    id = IdField()
    name = CharField(max_length=200)
    prefix = CharField(max_length=12)  # first characters, to recognise a token in lists and logs
    token_hash = CharField(max_length=64, unique=True)  # sha256 hex of the whole token
    scopes = CharField(max_length=200)  # space-separated
    created = DateTimeField(default=utcnow)
    last_used = DateTimeField(null=True)  # kept to the minute (domain/tokens.py: touch)
    revoked = DateTimeField(null=True)
    expires = DateTimeField(null=True)  # none: never


class RegisterState(BaseModel):
    """Settings the register keeps for itself (the cursor-signing key made when no SECRET_KEY is set),
    so every worker and every restart agrees on them."""

    name = CharField(max_length=100, primary_key=True)
    value = TextField()


class IdempotencyKey(BaseModel):
    """A write's `Idempotency-Key` (per token): the request it was first sent with and, once that
    answered, its status, headers and body (stored in the write's own transaction)."""

    id = IdField()
    token = ForeignKeyField(ApiToken, on_delete="CASCADE")
    key = CharField(max_length=255)
    request_hash = CharField(max_length=64)  # sha256 hex of method, path, query and body
    created = DateTimeField(default=utcnow, index=True)
    status = IntegerField(null=True)  # null while the first request is running
    headers = TextField(null=True)  # JSON list of [name, value]
    body = TextField(null=True)

    class Meta:
        indexes = ((("token", "key"), True),)


class Change(BaseModel):
    """One change of a study or a reference, append-only (domain/changes.py writes it in the write's own
    transaction): its place in the feed (`seq`, never reused), when, the record, what happened (`create`,
    `update`, `delete`, `merge`, or `snapshot`: a record already there when the feed began), the acting
    token's name, the names of the fields that changed, and the record's state after it (JSON; null for a
    tombstone). A merged study's tombstone names the study it went into."""

    seq = IdField()
    at = DateTimeField(default=utcnow, index=True)
    kind = CharField(max_length=10)  # "study" or "reference"
    record_id = IntegerField()
    action = CharField(max_length=10)
    actor = CharField(max_length=200, null=True)
    field_names = TextField(default="[]")  # JSON array
    state = TextField(null=True)  # JSON object; null: deleted or merged
    merged_into = IntegerField(null=True)

    class Meta:
        indexes = ((("kind", "record_id", "seq"), False),)


class StudyReportTypes(BaseModel):
    """Kept by triggers in the database (migrations/m0013), never written by the service: for each study
    with a reporting reference, the types of those references and whether one has results, as bits
    (vocabularies.REPORT_TYPE_BITS, HAS_RESULTS_BIT). What the facets `reference_type` and `has_results`
    count (domain/facets.py). Not in MODELS: derived, like the search index."""

    study = ForeignKeyField(Study, primary_key=True, on_delete="CASCADE", column_name="study_id")
    types = IntegerField()

    class Meta:
        table_name = "study_report_types"


MODELS = [Study, Reference, StudyReference, Registration, ReferenceIdentifier, LinkSuppression,
          Notice, ApiToken, StudyCountry, SourceRecord, MergedStudy, DuplicateDecision, Suggestion,
          SavedSearch, SearchRun, RegisterState, IdempotencyKey, Change]
