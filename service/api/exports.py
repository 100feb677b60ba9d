"""Exports: `format=csv|ndjson|ris|fhir` on the list endpoints, streamed as a download in constant memory.

Every matching record, unpaged, in the order asked. The rows come from ``domain.exports``' keyset
batches and are serialised batch by batch with the same helpers and schemas as the JSON API
(``records.study_dicts`` / ``records.reference_dicts`` + the marshmallow dump), so an NDJSON line is
exactly the JSON record and a fixed number of queries runs per batch.

The whole export (the count in ``X-Total-Count`` and every batch) reads one snapshot: a read-only
REPEATABLE READ transaction on Postgres, a read transaction on SQLite (WAL). The stream holds the
request's database connection and gives it back when it ends or the client goes away (the request
teardown, which runs before the body is sent, leaves it alone: see ``db.register_request_hooks``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import rispy
from flask import Response, g, request

from ..db import database, is_postgres, long_operation
from ..domain import exports, records
from ..domain.ordering import SortKey
from ..formats import fhir
from .links import link
from .negotiation import FHIR_CONTENT_TYPE
from .schemas.references import ReferenceSchema
from .schemas.studies import StudySchema

SEPARATOR = "|"  # joins the values of a multi-valued CSV cell (and the study ids in RIS C1)
EXPORT_FORMATS = {"studies": ("csv", "ndjson", "fhir"), "references": ("csv", "ndjson", "ris", "fhir")}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "ris": "application/x-research-info-systems",
    "fhir": FHIR_CONTENT_TYPE,
}
FILE_EXTENSIONS = {"fhir": "fhir.json"}  # the download's name: `studies-YYYYMMDD.<extension>`
STUDY_CSV_COLUMNS = (
    "id", "name", "title", "registrations", "registries", "study_type", "study_aim", "study_design",
    "intervention_assignment", "reference_count", "reference_ids", "cited_by_count", "first_published",
    "updated",
)
REFERENCE_CSV_COLUMNS = (
    "study_ids", "id", "type", "title", "authors", "source", "year", "published", "volume", "issue",
    "pages", "doi", "pmid", "url", "registration_id", "has_results", "publication_types", "cited_study_ids",
    "abstract", "notes", "first_published", "updated",
)
# Reference type -> RIS type (DOMAIN.md §3.3). `M3` (type of work) always carries our type's label,
# so the type survives a round trip even where two types share a RIS type.
RIS_TYPES = {
    "journal_article": "JOUR",
    "trial_registry_record": "DBASE",
    "preprint": "UNPB",
    "journal_pre_proof": "INPR",
    "conference_abstract": "ABST",
    "press_release": "NEWS",
    "retraction_notice": "JOUR",
    "expression_of_concern": "JOUR",
    "letter": "JOUR",
    "report": "RPRT",
    "other": "GEN",
}
RESULTS_LABELS = {True: "Report Results", False: "No Results"}
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_PAGE_RANGE = re.compile(r"^\s*([^\s\-–]+)\s*[-–]\s*([^\s\-–]+)\s*$")

_STUDY_SCHEMA = StudySchema(many=True)
_STUDY_ROW_SCHEMA = StudySchema(many=True, exclude=("references",))
_REFERENCE_SCHEMA = ReferenceSchema(many=True)


# ------------------------------------------------------------------------------------------- CSV

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return SEPARATOR.join(_cell(v) for v in value)
    return str(value)


def _csv_chunk(rows: Sequence[Sequence]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def study_csv_rows(studies: Sequence) -> list[list]:
    """One row per study: registrations and their registries as parallel `|`-joined cells (3 queries)."""
    items = _STUDY_ROW_SCHEMA.dump(records.study_dicts(studies))
    reference_ids = exports.reference_ids_of(item["id"] for item in items)
    rows = []
    for item in items:
        item = dict(item, registrations=[r["identifier"] for r in item["registrations"]],
                    registries=[r["registry"] for r in item["registrations"]],
                    reference_ids=reference_ids.get(item["id"], []))
        rows.append([item[c] for c in STUDY_CSV_COLUMNS])
    return rows


def reference_csv_rows(references: Sequence) -> list[list]:
    """One row per reference, its study ids first (as the Cochrane register's export has them)."""
    return [[item[c] for c in REFERENCE_CSV_COLUMNS]
            for item in _REFERENCE_SCHEMA.dump(records.reference_dicts(references))]


# ------------------------------------------------------------------------------------------- RIS

def _one_line(value) -> str:
    """RIS is line-based: a line break inside a value would start a bogus tag or be lost."""
    text = str(value)
    if "\n" in text or "\r" in text:
        text = _LINE_BREAKS.sub(" ", text)
    return text.strip()


def ris_fields(record: dict) -> dict:
    """The rispy fields of one reference as the JSON API serves it (DOMAIN.md §3.3).

    TY type, ID register reference id, TI title, AU authors, PY year, DA date (YYYY/MM/DD at the
    precision known), T2 (+ JO for journal types) source, VL, IS, SP/EP pages, AB abstract, DO DOI,
    UR URL, AN accession (PMID, or for a registry record its registration id) with DB its database,
    M3 type label, N1 notes, C1 study ids (`|`-joined), C2 "Report Results"/"No Results".
    """
    ris_type = RIS_TYPES.get(record["type"], "GEN")
    fields: dict = {"type_of_reference": ris_type, "id": str(record["id"]),
                    "title": record["title"],
                    "authors": [a for a in record["authors"] if a and a.strip()]}
    if record.get("year") is not None:
        fields["year"] = str(record["year"])
    if record.get("published"):
        fields["date"] = record["published"].replace("-", "/")
    source = record.get("source")
    if source and ris_type != "DBASE":
        fields["secondary_title"] = source
        if ris_type in ("JOUR", "INPR"):
            fields["journal_name"] = source
    for name, key in (("volume", "volume"), ("issue", "number"), ("abstract", "abstract"),
                      ("doi", "doi")):
        if record.get(name):
            fields[key] = record[name]
    if record.get("pages"):
        match = _PAGE_RANGE.match(record["pages"])
        if match:
            fields["start_page"], fields["end_page"] = match.groups()
        else:
            fields["start_page"] = record["pages"]
    if record.get("url"):
        fields["urls"] = [record["url"]]
    if ris_type == "DBASE":
        if source:
            fields["name_of_database"] = source
        if record.get("registration_id"):
            fields["accession_number"] = record["registration_id"]
    elif record.get("pmid"):
        fields["name_of_database"] = "PubMed"
        fields["accession_number"] = record["pmid"]
    fields["type_of_work"] = record["type_label"]
    if record.get("notes"):
        fields["notes"] = [record["notes"]]
    if record["study_ids"]:
        fields["custom1"] = SEPARATOR.join(str(s) for s in record["study_ids"])
    fields["custom2"] = RESULTS_LABELS[bool(record["has_results"])]
    return {key: ([_one_line(v) for v in value] if isinstance(value, list) else _one_line(value))
            for key, value in fields.items()}


class _RisWriter(rispy.RisWriter):
    NEWLINE = "\r\n"  # the RIS specification's line ending

    def set_header(self, count: int) -> str:
        return ""  # rispy numbers records ("1.") by default; reference managers expect none


_RIS_WRITER = _RisWriter()


def reference_ris(references: Sequence) -> str:
    """RIS records of ``references`` (3 queries), each ending with `ER  - ` and a blank line."""
    items = _REFERENCE_SCHEMA.dump(records.reference_dicts(references))
    return "".join(_RIS_WRITER.formats([ris_fields(item)]) + "\r\n" for item in items)


# ---------------------------------------------------------------------------------------- NDJSON

def _ndjson(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n" for item in items)


def study_ndjson(studies: Sequence) -> str:
    """Each study exactly as `GET /studies/{id}` has it, references embedded (5 queries)."""
    return _ndjson(_STUDY_SCHEMA.dump(records.study_dicts(studies, include_references=True)))


def reference_ndjson(references: Sequence) -> str:
    """Each reference exactly as an item of `GET /references` (3 queries)."""
    return _ndjson(_REFERENCE_SCHEMA.dump(records.reference_dicts(references)))


# ------------------------------------------------------------------------------------- streaming

@dataclass(frozen=True)
class _Format:
    header: str | Callable[[int], str]  # written once, before the first batch (even when nothing
    # matches); a callable is given the count
    batch: Callable[[Sequence], str]  # rows of one batch -> their text
    separator: str = ""  # written between two batches
    footer: str | Callable[[int], str] = ""  # written once, after the last batch; a callable is given
    # the count


# ------------------------------------------------------------------------------------------ FHIR

def _fhir_entries(resources: list[dict], url_of: Callable[[int], str]) -> str:
    return ",".join(json.dumps(fhir.bundle_entry(r, url_of(int(r["id"])), search_mode="match"),
                               ensure_ascii=False, separators=(",", ":")) for r in resources)


def _fhir_format(resource: str) -> _Format:
    """A searchset Bundle streamed entry by entry: its head (with `total`), then each batch's entries.

    Built in the request (the stream runs after it): URLs are on PUBLIC_URL, or relative."""
    base, self_url = link(""), link(request.full_path.rstrip("?"))

    def head(total: int) -> str:  # FHIR JSON has no empty arrays: no match, no `entry`
        text = json.dumps(fhir.bundle_head(total, self_url), ensure_ascii=False, separators=(",", ":"))
        return text[:-1] + ',"entry":[' if total else text[:-1]

    if resource == "studies":
        def batch(rows: Sequence) -> str:
            items = _STUDY_SCHEMA.dump(records.study_dicts(rows, include_references=True))
            return _fhir_entries([fhir.research_study(item, base) for item in items],
                                 lambda i: fhir.study_url(base, i))
    else:
        def batch(rows: Sequence) -> str:
            items = _REFERENCE_SCHEMA.dump(records.reference_dicts(rows))
            return _fhir_entries([fhir.document_reference(item, base) for item in items],
                                 lambda i: fhir.reference_url(base, i))
    return _Format(head, batch, separator=",", footer=lambda total: "]}" if total else "}")


_FORMATS: dict[str, dict[str, _Format]] = {
    "studies": {
        "csv": _Format(_csv_chunk([STUDY_CSV_COLUMNS]), lambda rows: _csv_chunk(study_csv_rows(rows))),
        "ndjson": _Format("", study_ndjson),
    },
    "references": {
        "csv": _Format(_csv_chunk([REFERENCE_CSV_COLUMNS]),
                       lambda rows: _csv_chunk(reference_csv_rows(rows))),
        "ndjson": _Format("", reference_ndjson),
        "ris": _Format("", reference_ris),
    },
}


def _snapshot():
    """One consistent read of the whole export, however long it streams."""
    if is_postgres():
        return database.atomic(isolation_level="REPEATABLE READ, READ ONLY")
    return database.atomic()  # SQLite WAL: a deferred read transaction sees one snapshot


def _stream(query, keys: Sequence[SortKey], fmt: _Format) -> Iterator:
    """First yields the count, then the export's text in chunks; always gives the connection back."""
    try:
        with long_operation(), _snapshot():  # an export's own, longer limits (DATABASE_LONG_TIMEOUT)
            id_field = query.model._meta.primary_key
            total = query.select(id_field).count()
            yield total
            header = fmt.header(total) if callable(fmt.header) else fmt.header
            if header:
                yield header.encode()
            for number, rows in enumerate(exports.keyset_batches(query, keys)):
                text = fmt.batch(rows)
                yield (fmt.separator + text if number and fmt.separator else text).encode()
            footer = fmt.footer(total) if callable(fmt.footer) else fmt.footer
            if footer:
                yield footer.encode()
    finally:
        if not database.is_closed():
            database.close()


def export_response(resource: str, format_name: str, query, keys: Sequence[SortKey]) -> Response:
    """A streamed download of every row of the filtered ``query`` in the order of ``keys`` (+ id)."""
    fmt = _fhir_format(resource) if format_name == "fhir" else _FORMATS[resource][format_name]
    stream = _stream(query, keys, fmt)
    total = next(stream)  # opens the snapshot and counts before the headers go out
    g.stream_holds_connection = True
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    return Response(stream, status=200, content_type=CONTENT_TYPES[format_name], headers={
        "Content-Disposition":
            f'attachment; filename="{resource}-{day}.{FILE_EXTENSIONS.get(format_name, format_name)}"',
        "X-Total-Count": str(total),
    })


_EXPORT_SCHEMAS = {"fhir": {
    "type": "object", "description": "`format=fhir`: a FHIR R4 Bundle of type `searchset` "
    "(`application/fhir+json; fhirVersion=4.0`), every match an entry (`search.mode` `match`): "
    "ResearchStudy resources on /studies, DocumentReference on /references."}}


def export_doc(resource: str) -> dict:
    """OpenAPI for the 200 of a list endpoint: the export formats' content types and headers."""
    return {200: {
        "description": "The page (`format=json`), or the export as a download (other formats).",
        "content": {CONTENT_TYPES[f].split(";")[0]: {"schema": _EXPORT_SCHEMAS.get(f, {"type": "string"})}
                    for f in EXPORT_FORMATS[resource]},
        "headers": {
            "Content-Disposition": {
                "description": f'Exports: `attachment; filename="{resource}-YYYYMMDD.<format>"`.',
                "schema": {"type": "string"}},
            "X-Total-Count": {
                "description": "Exports: the exact number of records streamed.",
                "schema": {"type": "integer"}},
        }}}


def fhir_doc(resource_type: str) -> dict:
    """OpenAPI for the 200 of a single-record GET: its FHIR representation besides the JSON."""
    return {200: {"content": {"application/fhir+json": {"schema": {
        "type": "object", "description": f"`Accept: application/fhir+json` or `format=fhir`: a FHIR R4 "
        f"{resource_type} (`application/fhir+json; fhirVersion=4.0`; README \"FHIR\")."}}}}}
