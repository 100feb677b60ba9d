"""Exports: `format=csv|ndjson|ris|fhir` on the list endpoints, streamed as a download in constant memory.

Every matching record, unpaged, in the order asked. The rows come from ``domain.exports``' keyset
batches and are serialised batch by batch with the same helpers and schemas as the JSON API
(``records.study_dicts`` / ``records.reference_dicts`` + the marshmallow dump), so an NDJSON line is
exactly the JSON record and a fixed number of queries runs per batch.

At most ``EXPORT_STREAMS`` exports stream at once in a process (``ExportSlots``): one more is answered
503 with ``Retry-After`` before it touches the database, so exports never hold every thread of a worker
and reads keep one (README "Exports under load").

The whole export (the count in ``X-Total-Count`` and every batch) reads one snapshot: a read-only
REPEATABLE READ transaction on Postgres, a read transaction on SQLite (WAL). The stream holds the
request's database connection and gives it back when it ends or the client goes away (the request
teardown, which runs before the body is sent, leaves it alone: see ``db.register_request_hooks``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import orjson
from flask import Response, current_app, g, request

from ..db import database, is_postgres, long_operation
from ..domain import exports, records
from ..domain.ordering import SortKey
from ..formats import fhir, ris
from .dumping import dumper
from .links import link
from .negotiation import FHIR_CONTENT_TYPE
from .problems import problem
from .schemas.references import dump_reference
from .schemas.studies import StudySchema, dump_study

SEPARATOR = "|"  # joins the values of a multi-valued CSV cell
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
_dump_study_row = dumper(StudySchema(exclude=("references",)))


def _studies(rows: Sequence, **options) -> list[dict]:
    return [dump_study(record) for record in records.study_dicts(rows, **options)]


def _references(rows: Sequence) -> list[dict]:
    return [dump_reference(record) for record in records.reference_dicts(rows)]


# ------------------------------------------------------------------------------------------- CSV

# Columns whose cells are written as quoted text even when they look like numbers (README "CSV
# exports"); every other text cell is quoted too (csv.QUOTE_NONNUMERIC), counts and years are bare.
CSV_TEXT_COLUMNS = {"id", "study_ids", "reference_ids", "cited_study_ids", "pmid", "doi", "registrations",
                    "registration_id"}
BOM = "\ufeff"  # `bom=true`: the UTF-8 byte order mark Excel on Windows needs to read UTF-8


def _cell(value, text: bool = False):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return SEPARATOR.join(str(_cell(v)) for v in value)
    if isinstance(value, int | float) and not text:
        return value
    return str(value)


def _csv_chunk(rows: Sequence[Sequence], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    text = [c in CSV_TEXT_COLUMNS for c in columns]
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC).writerows(
        [[_cell(v, t) for v, t in zip(row, text, strict=True)] for row in rows])
    return buffer.getvalue()


def study_csv_rows(studies: Sequence) -> list[list]:
    """One row per study: registrations and their registries as parallel `|`-joined cells (3 queries)."""
    items = [_dump_study_row(record) for record in records.study_dicts(studies)]
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
            for item in _references(references)]


# ------------------------------------------------------------------------------------------- RIS

def reference_ris(references: Sequence) -> str:
    """RIS records of ``references`` (4 queries; tags in ``formats.ris.ris_fields``)."""
    items = _references(references)
    study_keys = exports.registration_ids_of({s for item in items for s in item["study_ids"]})
    return ris.write_records(items, study_keys)


# ---------------------------------------------------------------------------------------- NDJSON

def _ndjson(items: list[dict]) -> bytes:
    """One compact JSON object a line: what ``json.dumps(item, ensure_ascii=False, separators=(",", ":"))``
    writes, in UTF-8, by orjson (a fifth of the time)."""
    return b"".join([orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE) for item in items])


def study_ndjson(studies: Sequence) -> bytes:
    """Each study exactly as `GET /studies/{id}` has it, references embedded (5 queries)."""
    return _ndjson(_studies(studies, include_references=True))


def reference_ndjson(references: Sequence) -> bytes:
    """Each reference exactly as an item of `GET /references` (3 queries)."""
    return _ndjson(_references(references))


# ------------------------------------------------------------------------------------- streaming

@dataclass(frozen=True)
class _Format:
    header: str | Callable[[int], str]  # written once, before the first batch (even when nothing
    # matches); a callable is given the count
    batch: Callable[[Sequence], str | bytes]  # rows of one batch -> their text (or its UTF-8)
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
            items = _studies(rows, include_references=True)
            return _fhir_entries([fhir.research_study(item, base) for item in items],
                                 lambda i: fhir.study_url(base, i))
    else:
        def batch(rows: Sequence) -> str:
            items = _references(rows)
            return _fhir_entries([fhir.document_reference(item, base) for item in items],
                                 lambda i: fhir.reference_url(base, i))
    return _Format(head, batch, separator=",", footer=lambda total: "]}" if total else "}")


_FORMATS: dict[str, dict[str, _Format]] = {
    "studies": {
        "csv": _Format(_csv_chunk([STUDY_CSV_COLUMNS], STUDY_CSV_COLUMNS),
                       lambda rows: _csv_chunk(study_csv_rows(rows), STUDY_CSV_COLUMNS)),
        "ndjson": _Format("", study_ndjson),
    },
    "references": {
        "csv": _Format(_csv_chunk([REFERENCE_CSV_COLUMNS], REFERENCE_CSV_COLUMNS),
                       lambda rows: _csv_chunk(reference_csv_rows(rows), REFERENCE_CSV_COLUMNS)),
        "ndjson": _Format("", reference_ndjson),
        "ris": _Format("", reference_ris),
    },
}


def _snapshot():
    """One consistent read of the whole export, however long it streams."""
    if is_postgres():
        return database.atomic(isolation_level="REPEATABLE READ, READ ONLY")
    return database.atomic()  # SQLite WAL: a deferred read transaction sees one snapshot


class ExportSlots:
    """The export streams this process may serve at once (``EXPORT_STREAMS``): a slot is taken before
    the export opens its snapshot and given back when its stream ends, fails or is closed."""

    def __init__(self, size: int):
        self.size = size
        self._free = threading.BoundedSemaphore(size)

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        self._free.release()


def export_slots() -> ExportSlots:
    """This app's slots (one app per process), made at its first export."""
    slots = current_app.extensions.get("export_slots")
    if slots is None:
        slots = current_app.extensions.setdefault("export_slots",
                                                  ExportSlots(current_app.config["EXPORT_STREAMS"]))
    return slots


def _busy(slots: ExportSlots) -> Response:
    retry = current_app.config["EXPORT_RETRY_AFTER"]
    return problem(503, f"This server is streaming as many exports as it serves at once ({slots.size}); "
                        f"try again in {retry} s. Pages of the list (`format=json`, `cursor=*`) are not "
                        "limited.", headers={"Retry-After": str(retry)}, busy="exports")


def _stream(query, keys: Sequence[SortKey], fmt: _Format, slots: ExportSlots, prefix: str = "") -> Iterator:
    """First yields the count (None when every slot is taken: nothing was read), then the export's text
    in chunks; always gives the slot and the connection back."""
    if not slots.take():
        yield None
        return
    try:
        with long_operation(), _snapshot():  # an export's own, longer limits (DATABASE_LONG_TIMEOUT)
            id_field = query.model._meta.primary_key
            total = query.select(id_field).count()
            yield total
            header = fmt.header(total) if callable(fmt.header) else fmt.header
            if prefix or header:
                yield (prefix + (header or "")).encode()
            # closed here, inside the snapshot, also when the client goes away (its cursor with it)
            with contextlib.closing(exports.keyset_batches(query, keys)) as batches:
                for number, rows in enumerate(batches):
                    text = fmt.batch(rows)
                    if number and fmt.separator:
                        text = fmt.separator + text
                    yield text if type(text) is bytes else text.encode()
            footer = fmt.footer(total) if callable(fmt.footer) else fmt.footer
            if footer:
                yield footer.encode()
    finally:
        slots.give()
        if not database.is_closed():
            database.close()


def export_response(resource: str, format_name: str, query, keys: Sequence[SortKey], *,
                    bom: bool = False) -> Response:
    """A streamed download of every row of the filtered ``query`` in the order of ``keys`` (+ id);
    ``bom``: a CSV starts with the UTF-8 byte order mark."""
    fmt = _fhir_format(resource) if format_name == "fhir" else _FORMATS[resource][format_name]
    slots = export_slots()
    stream = _stream(query, keys, fmt, slots, BOM if bom else "")
    total = next(stream)  # takes a slot, opens the snapshot and counts before the headers go out
    if total is None:
        return _busy(slots)
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
