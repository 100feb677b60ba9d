"""Importing a file into the register: one transaction, idempotent upserts in batches, and a report.

Rules (the issue's, made explicit):

* Keys: a registry record is its canonical registration identifier; an article its DOI, then PMID, then
  normalised title + year (a title match never joins two records whose DOI or PMID differ).
* A registry record becomes a study named by its identifier, with that registration and every secondary
  identifier it names (bridging: two records of one trial make one study with two registrations), plus its
  `trial_registry_record` reference. What the record says of its study (``formats.Claim``) is kept as
  the registration's source record for this file (`source_record`); at the end of each batch every study
  the batch touched takes its title, facets, dates and status from all its sources (`derive`), so no
  single record, and no import order, decides them; a curator's values are never changed.
* Registrations are only added by imports, never taken away; a row whose identifiers belong to two different
  studies is rejected (merging studies is a curator's decision).
* A record equal to what is stored counts as unchanged and is not written, so `updated` stays. Values a
  format does not carry (an empty cell) leave the stored value alone, except in the register's own NDJSON,
  where the line is the whole record.
* A later row with the key of an earlier row of the same file is a duplicate (reported, not imported).
* Linking is the domain's (`linking.relink_references`, batched): references created or whose text changed,
  and references citing a registration the import added, get their automatic links; manual links and
  remembered manual unlinks are respected; both ends of a changed link are touched.

Speed (bench/import_bench.py): lookups and writes are raw SQL over whole batches (on Postgres one array
parameter per column), the file is read, parsed and scanned for identifiers one batch ahead in a
thread while the previous batch is written, and the search index is rewritten once, at the end, in chunks.
Memory does not grow with the file: what the import remembers of every row (keys seen, the register's
title index, dates to restore) moves to a scratch file past 20,000 entries, and the ids it touched are
bitmaps (`scratch`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import orjson
import peewee

from ..db import any_of, database, insert_rows, is_postgres, select_in, update_rows, write_transaction
from ..formats import (
    AddedLines,
    ArticleRecord,
    CrossRegistrations,
    ExportedStudy,
    FormatError,
    KeepStored,
    RegistryRecord,
    RegistryStatus,
    Row,
    parser_for,
)
from ..formats.reading import READ_ERRORS, Bounds, TooLarge, describe_read_error, open_input
from ..models import (
    Reference,
    ReferenceIdentifier,
    Registration,
    SourceRecord,
    Study,
    StudyReference,
    utcnow,
)
from ..search import index as search_index
from ..vocabularies import UNCLEAR
from . import changes, derive, evidence, linking, suggestions
from .errors import DomainError
from .references import normalise_doi
from .scratch import IdSet, SpillingMap
from .studies import write_countries

BATCH_SIZE = 500
FACET_FIELDS = ("study_type", "study_aim", "study_design", "intervention_assignment")
REFERENCE_COLUMNS = ("type", "title", "authors", "abstract", "source", "year", "published", "volume", "issue",
                     "pages", "doi", "pmid", "url", "registration_id", "has_results", "publication_types",
                     "notes", "first_published", "updated")
VACUUM_AFTER = 1000  # records written: after a load this big, Postgres statistics are refreshed
CONTAINER_LAYOUTS = ("ctgov-json",)  # formats whose layout is only how the records are packed
FILLED = (Study, Registration, Reference, StudyReference, ReferenceIdentifier)  # the tables imports fill


class ImportRefused(DomainError):
    """The file is not the format named, or cannot be read: nothing was imported."""

    status = 422


class ImportConflict(DomainError):
    """The database refused a write as breaking one of its constraints (a unique key): nothing was
    imported (rows are checked first, so this means a concurrent write or a bug, never a row's fault)."""

    status = 409


class ImportTooLarge(ImportRefused):
    """The file unpacks to more than the configured bounds (a decompression bomb): nothing was imported."""

    status = 413


def _database_refusal(error: peewee.DatabaseError, line: int) -> DomainError:
    """The domain error reporting a database error met in the batch ending at ``line``: a broken
    constraint is a conflict (409), data the database refuses a 422."""
    said = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    where = f" in the rows up to line {line}" if line else ""
    if isinstance(error, peewee.IntegrityError):
        return ImportConflict(f"The database refused a write{where} ({said}); nothing was imported.")
    return ImportRefused(f"The database refused the data{where} ({said}); nothing was imported.")


@dataclass
class ImportReport:
    format: str
    dry_run: bool = False
    layout: str | None = None
    encoding: str | None = None
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    rejected: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    studies: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0})
    references: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0})
    registrations_added: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def import_file(stream: BinaryIO, *, fmt: str, encoding: str | None = None, dry_run: bool = False,
                on_read: Callable[[int], None] | None = None, on_rows: Callable[[int], None] | None = None,
                batch_size: int = BATCH_SIZE, options: dict[str, Any] | None = None,
                suggest: bool = True, bounds: Bounds | None = None) -> ImportReport:
    """Import ``stream`` (a file in format ``fmt``, gzip or not) in one transaction and report on it.

    Raises ImportRefused, with nothing written, when the file cannot be read as ``fmt``.
    ``dry_run`` does everything but commit. ``on_read`` is told the bytes read, as they are read, and
    ``on_rows`` the rows done so far after each batch. ``options`` are handed to the parser (in its
    ``info``), e.g. ``trial_ids``: the trial-id map of ``direcct-results``. Once committed, the references
    it wrote that report no study get suggested studies (``suggest``; `domain.suggestions`).

    A gzip file or an xlsx workbook unpacking past ``bounds`` raises ImportTooLarge (413). A write the
    database refuses raises ImportConflict (409, a broken constraint) or ImportRefused (422); rows are
    checked first (`row_problem`), so a row the database could not store is a rejected row instead.
    Operational database errors (locked, unreachable, timed out) are raised as they are. In every one of
    these cases the transaction is rolled back: nothing is written.
    """
    started = time.perf_counter()
    report = ImportReport(format=fmt, dry_run=dry_run)
    info: dict[str, Any] = dict(options or {})
    info.setdefault("bounds", bounds)
    touched_references: list[int] = []
    line = 0
    try:
        with open_input(stream, fmt=fmt, encoding=encoding, on_read=on_read, bounds=bounds) as (text, used):
            report.encoding = used
            rows = parser_for(fmt)(text, info)
            with contextlib.suppress(_DryRun), write_transaction():
                engine = _Engine(report, utcnow())
                try:
                    for batch, ahead in _read_ahead(_batches(rows, batch_size), engine.prepare):
                        report.layout = info.get("layout")
                        line = batch[-1].line
                        engine.run(batch, ahead)
                        if on_rows is not None:
                            on_rows(report.rows)
                    engine.finish()
                    if not dry_run:
                        engine.refresh_search()
                        # One change per record created or changed (the studies linked to those
                        # references joined study_ids above), written in bulk at commit.
                        changes.note(studies=engine.study_ids, references=engine.reference_ids)
                        touched_references = list(engine.reference_ids)
                except READ_ERRORS as error:
                    raise ImportRefused(describe_read_error(error, used, line)) from None
                finally:
                    engine.close()
                if dry_run:
                    raise _DryRun  # leaves the transaction: everything is rolled back
    except FormatError as error:
        raise (ImportTooLarge if isinstance(error, TooLarge) else ImportRefused)(str(error)) from None
    except (peewee.IntegrityError, peewee.DataError, peewee.ProgrammingError, peewee.NotSupportedError) \
            as error:
        # Everything was rolled back with the transaction. Operational errors (the database locked,
        # unreachable, a timeout) go on up: the HTTP layer answers them 503 with Retry-After.
        raise _database_refusal(error, line) from None
    report.layout = info.get("layout")
    if suggest and not dry_run and touched_references:
        # Candidate studies for the references it wrote that report none, once it has committed (a
        # batch over the whole register: seconds; `study-register suggest` recomputes every reference).
        suggestions.compute_after_import(touched_references)
    # Not inside a caller's transaction (a POST with an Idempotency-Key): VACUUM cannot run in one.
    if (not dry_run and is_postgres() and report.created + report.updated >= VACUUM_AFTER
            and not database.in_transaction()):
        # A freshly loaded table without statistics made an exact count 10x slower.
        for model in FILLED:
            database.execute_sql(f'VACUUM ANALYZE "{model._meta.table_name}"')
    report.seconds = round(time.perf_counter() - started, 3)
    return report


INT_LIMIT = 2_147_483_647  # an IntegerField is 32 bits on Postgres
INT64 = 2**63 - 1  # the largest integer SQLite, Postgres (bigint) and orjson take


_LIMITS: dict[type, dict[str, tuple[bool, int]]] = {}


def _limits(model) -> dict[str, tuple[bool, int]]:
    """The bounded columns of ``model``: name -> (is text, limit): a CharField's length, an integer's
    largest value."""
    if model not in _LIMITS:
        _LIMITS[model] = {
            name: (isinstance(column, peewee.CharField),
                   column.max_length if isinstance(column, peewee.CharField) else INT_LIMIT)
            for name, column in model._meta.fields.items()
            if isinstance(column, peewee.CharField) and column.max_length
            or isinstance(column, peewee.IntegerField) and not isinstance(column, peewee.AutoField)}
    return _LIMITS[model]


def _columns_problem(model, values: dict[str, Any]) -> str | None:
    """Why one of ``values`` cannot be stored in its column of ``model`` (too long, too large), or None."""
    for name, (text, limit) in _limits(model).items():
        value = values.get(name)
        if value is None:
            continue
        if text and isinstance(value, str) and len(value) > limit:
            return f"`{name}` is longer than {limit:,} characters ({len(value):,})."
        if not text and isinstance(value, int) and not -limit <= value <= limit:
            digits = str(value)
            return f"`{name}` is out of range ({digits if len(digits) <= 20 else digits[:20] + '...'})."
    return None


def _text_problem(value: Any, where: str) -> str | None:
    """Why some value inside ``value`` (nested dicts, lists, dataclasses) cannot be stored: text with a NUL
    character (Postgres refuses it) or a lone surrogate (not encodable as UTF-8), an integer past 64 bits;
    or None."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value <= INT64:
        return f"`{where}` is out of range (a number of {len(str(abs(value)))} digits)."
    if isinstance(value, str):
        if "\x00" in value:
            return f"`{where}` holds a NUL character."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"`{where}` is not valid Unicode (a lone surrogate)."
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    elif hasattr(value, "__dataclass_fields__"):
        items = ((name, getattr(value, name)) for name in value.__dataclass_fields__)
    else:
        return None
    for key, item in items:
        found = _text_problem(item, f"{where}.{key}" if where else str(key))
        if found is None and isinstance(key, str):
            found = _text_problem(key, where)
        if found:
            return found
    return None


def _listed(value: Any) -> list:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError


def _may_hold_bad_values(record: Any) -> bool:
    """False when ``record`` surely holds no NUL, lone surrogate or integer past 64 bits: orjson writes it
    (it refuses surrogates and such integers) without a NUL. Ten times faster than walking it; the walk
    (`_text_problem`) then names the field."""
    try:
        return b"\\u0000" in orjson.dumps(record, default=_listed)
    except (orjson.JSONEncodeError, TypeError):
        return True


def row_problem(record: Any) -> str | None:
    """Why the database would refuse to store ``record`` (a row of any format), or None: text it cannot
    hold, or a value too long or too large for its column. Checked before a batch is written, so such a
    row is rejected with its line instead of aborting the import."""
    found = _text_problem(record, "") if _may_hold_bad_values(record) else None
    if found:
        return found
    references: list[dict] = []
    studies: list[dict] = []
    registrations: list[tuple[str, str]] = []
    if isinstance(record, RegistryRecord):
        studies.append(record.study)
        references.append(record.reference)
        registrations += [(record.identifier, record.registry), *record.secondary]
    elif isinstance(record, ArticleRecord):
        references.append(record.reference)
    elif isinstance(record, ExportedStudy):
        studies.append(record.study)
        references += [values for values, _, _ in record.references]
        registrations += record.registrations
    elif isinstance(record, CrossRegistrations):
        studies.append(record.study)
        registrations += record.identifiers
    elif isinstance(record, RegistryStatus):
        registrations.append((record.identifier, record.registry))
    claims = getattr(record, "claims", None) or {}
    said = {name: claims[name].value for name in _limits(Study) if name in claims}
    for values in [*studies, said]:
        if found := _columns_problem(Study, values):
            return found
    for values in references:
        if found := _columns_problem(Reference, values):
            return found
    for identifier, registry in registrations:
        if not identifier or not str(identifier).strip():
            return "a registration identifier is blank."
        if found := _columns_problem(Registration, {"identifier": identifier, "registry": registry}):
            return found
    return None


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _read_ahead(batches: Iterator[list[Row]], prepare: Callable[[list[Row]], dict]
                ) -> Iterator[tuple[list[Row], dict]]:
    """``batches``, each with what ``prepare`` makes of it, read, parsed and prepared one batch ahead in a
    thread while this one writes the previous batch (the driver lets the other thread run while it waits
    for the database: on two cores the parsing costs next to nothing). At most two batches wait, so
    memory stays flat; an error reading or parsing is raised here, in its place among the batches."""
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                ready.put(((batch, prepare(batch)), None))
            ready.put((done, None))
        except BaseException as error:  # noqa: BLE001 -- handed over to the importing thread
            ready.put((None, error))

    worker = threading.Thread(target=produce, name="import-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked put through, so the reader ends before its file closes
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        worker.join()


def title_key(title: str, year: int | None) -> bytes:
    """Normalised title + year (accents, case, punctuation and spacing ignored), hashed to stay small."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()
    words = re.sub(r"[^0-9a-z]+", " ", folded).split()
    return hashlib.blake2b(f"{' '.join(words)}|{year or ''}".encode(), digest_size=12).digest()


def reference_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Incoming reference values in the form the columns store (as domain.references does)."""
    out = {k: values[k] for k in REFERENCE_COLUMNS if k in values}
    for name in ("authors", "publication_types"):
        if name in out:
            out[name] = json.dumps(out[name] or [], ensure_ascii=False)
    if out.get("doi"):
        out["doi"] = normalise_doi(out["doi"])
    if out.get("registration_id"):
        out["registration_id"] = linking.canonical_identifier(out["registration_id"])
    if out.get("published") and out.get("year") is None:
        out["year"] = int(out["published"][:4])
    return out


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == "[]"


class _Engine:
    """The state of one import: keys seen so far, records touched, dates to restore at the end."""

    def __init__(self, report: ImportReport, now: dt.datetime):
        self.report, self.now = report, now
        self.supplements: set[int] = set()  # lines of supplementary records (ArticleRecord.supplement)
        # What grows with the file or the register is kept in SpillingMaps (memory stays flat).
        self.seen_records = SpillingMap()  # registry record identifier -> line
        self.seen_keys = SpillingMap()     # article key -> (line, reference id)
        self.title_ids = SpillingMap()     # title key -> the first one's (DOI, PMID)
        self.titles: SpillingMap | None = None  # title key -> (id, DOI, PMID) of the register's references
        # Studies whose search documents are rewritten at the end; those touched in the current batch are
        # derived from their sources at its end (with those whose sources changed, `derive_ids`).
        self.study_ids = _Touched()
        self.derive_ids = _Touched()
        self.pending_outcomes: list[tuple[str, int]] = []  # (outcome, study id) of the batch's records
        self.reference_ids = IdSet()
        self.dates = SpillingMap()  # (table, id) -> the `updated` a record carries, restored at the end
        # Records this import created with `updated` = now: touching them again would change nothing.
        self.fresh: dict[type, IdSet] = {Study: IdSet(), Reference: IdSet()}
        # References the current batch created: they have no identifiers stored yet (those of earlier
        # batches have, and are replaced when their text changes again).
        self.created_references: set[int] = set()
        # The last batch created or changed references (read by the reader thread, which then scans the
        # next batch ahead; not at first: an import of records all unchanged would scan for nothing).
        self.scanning = False
        self.ahead: dict[int, list[linking.Found]] = {}
        self.analyzed_at = 0  # records created when the tables were last analysed (Postgres)

    # -- one batch ---------------------------------------------------------------------------------------

    def prepare(self, rows: list[Row]) -> dict[int, list[linking.Found]]:
        """In the reader thread, for the batch after the one being written: the identifiers found in each
        reference the batch may create or change (keyed by the id of its values), while the last batch
        created or changed references (a re-import changes none: it would be work for nothing). First,
        each row the database would refuse (`row_problem`) is made a rejected row."""
        for row in rows:
            if row.error is None and row.record is not None:
                problem = row_problem(row.record)
                if problem is not None:
                    row.error, row.record = problem, None
        if not self.scanning:
            return {}
        found = {}
        for row in rows:
            values = getattr(row.record, "reference", None)
            if isinstance(values, dict):
                found[id(values)] = linking.identifiers_in(reference_columns(values))
        return found

    def run(self, rows: list[Row], ahead: dict[int, list[linking.Found]] | None = None) -> None:
        self.ahead = ahead or {}
        touched = self.report.references["created"] + self.report.references["updated"]
        registry, articles, studies, cross, status = [], [], [], [], []
        for row in rows:
            self.report.rows += 1
            if row.error is not None:
                self._reject(row.line, row.error)
            elif isinstance(row.record, RegistryRecord):
                registry.append((row.line, row.record))
            elif isinstance(row.record, ArticleRecord):
                articles.append((row.line, row.record))
            elif isinstance(row.record, ExportedStudy):
                studies.append((row.line, row.record))
            elif isinstance(row.record, CrossRegistrations):
                cross.append((row.line, row.record))
            elif isinstance(row.record, RegistryStatus):
                status.append((row.line, row.record))
        self.found: dict[int, list[linking.Found]] = {}  # references whose text changed -> identifiers
        self.redecide: set[int] = set()  # references whose type, title or publication types changed
        self.new_identifiers: list[str] = []
        self.changed_references: set[int] = set()
        self.created_references = set()
        if registry:
            self._registry_records(registry)
        if cross:
            self._cross_registrations(cross)
        if status:
            self._registry_status(status)
        if articles:
            self.supplements.update(line for line, r in articles if r.supplement)
            results = self._upsert_references([(line, r.reference, r.complete) for line, r in articles])
            for _, outcome in results:
                self._count(outcome)
        if studies:
            self._exported_studies(studies)
        self._link()
        self._derive()
        self.scanning = self.report.references["created"] + self.report.references["updated"] > touched
        self._keep_statistics()

    def _keep_statistics(self) -> None:
        """On Postgres, analyse the tables the import fills each time the records it created have doubled
        (from VACUUM_AFTER on). Planned on the statistics of the tables as they were when it began (empty,
        for a first load), each line's lookups of a register NDJSON became scans of all it had written:
        20,000 lines took 2.2x the time of 10,000. ANALYZE in the import's transaction counts its own rows."""
        created = self.report.studies["created"] + self.report.references["created"]
        if is_postgres() and created >= VACUUM_AFTER and created >= 2 * self.analyzed_at:
            database.execute_sql("ANALYZE " + ", ".join(f'"{model._meta.table_name}"' for model in FILLED))
            self.analyzed_at = created

    def _reject(self, line: int, reason: str) -> None:
        self.report.rejected.append({"line": line, "reason": reason})

    def _count(self, outcome: str) -> None:
        if outcome in ("created", "updated", "unchanged"):
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)

    # -- registry records --------------------------------------------------------------------------------

    def _first_seen(self, items: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """The items whose registration identifier no earlier row of the file had; the others are
        reported as duplicates of the first."""
        kept = []
        for line, record in items:
            first = self.seen_records.get(record.identifier)
            if first is not None:
                self.report.duplicates.append({"line": line, "same_as": first, "key": record.identifier})
                continue
            self.seen_records[record.identifier] = line
            kept.append((line, record))
        return kept

    def _registry_records(self, items: list[tuple[int, RegistryRecord]]) -> None:
        kept = self._first_seen(items)
        if not kept:
            return
        every = {i for _, r in kept for i in [r.identifier, *(s for s, _ in r.secondary)]}
        owner: dict[str, Any] = dict(select_in("SELECT identifier, study_id FROM registration WHERE {where}",
                                               "identifier", every))
        new_studies: list[dict] = []
        new_registrations: list[tuple[Any, str, str]] = []
        outcome: dict[int, str] = {}
        accepted = []
        for line, record in kept:
            mine = [(record.identifier, record.registry), *record.secondary]
            owners = {owner[i] for i, _ in mine if i in owner}
            if len(owners) > 1:
                named = ", ".join(f"{i} (study {owner[i]})" for i, _ in mine if i in owner
                                  and not isinstance(owner[i], tuple))
                self._reject(line, f"its registrations belong to different studies: {named}; "
                                   f"merge them by hand first.")
                continue
            accepted.append((line, record))
            if owners:
                study = owners.pop()
                outcome[line] = "unchanged"
            else:
                study = ("new", len(new_studies))
                new_studies.append({"name": record.identifier, **record.study,
                                    "first_published": self.now.date(),
                                    "created": self.now, "updated": self.now})
                outcome[line] = "created"
            for identifier, registry in mine:
                if identifier not in owner:
                    owner[identifier] = study
                    new_registrations.append((study, identifier, registry))
                    if outcome[line] == "unchanged":
                        outcome[line] = "updated"
        ids = self._insert(Study, new_studies)
        resolve = {("new", i): study_id for i, study_id in enumerate(ids)}
        self.report.studies["created"] += len(ids)
        self.study_ids.update(ids)
        rows = [{"study": resolve.get(s, s), "identifier": i, "registry": g} for s, i, g in new_registrations]
        insert_rows(Registration, rows)
        self.report.registrations_added += len(rows)
        self.new_identifiers.extend(r["identifier"] for r in rows)
        self.fresh[Study].update(ids)
        touched = {r["study"] for r in rows} - set(ids)
        if touched:
            self._touch(Study, touched)
            self.study_ids.update(touched)
            self.report.studies["updated"] += len(touched)
        self._write_sources([(r.identifier, r.registry, r.reference.get("title"), r.claims)
                             for _, r in accepted])
        study_of = {line: resolve.get(owner[r.identifier], owner[r.identifier]) for line, r in accepted}
        self.derive_ids.update(study_of.values())
        results = self._upsert_references([(line, r.reference, False) for line, r in accepted])
        for (line, _), (_, ref_outcome) in zip(accepted, results, strict=True):
            if outcome[line] == "unchanged" and ref_outcome != "unchanged":
                outcome[line] = "updated"
            # Counted once the batch's studies are derived: what a record says only changes its study if
            # the study's values change (another source may say it already, or more strongly).
            self.pending_outcomes.append((outcome[line], study_of[line]))

    # -- what sources say of a registration (domain/derive.py combines them per study) ------------------

    def _source_name(self) -> str:
        """The source a record comes from: the format, and its layout where the layout tells one source
        from another (the WHO export, TrialsTracker, DIRECCT); a ClinicalTrials.gov JSON study is the same
        source as a page, a single study or NDJSON."""
        if self.report.format in CONTAINER_LAYOUTS or self.report.layout in (None, self.report.format):
            return self.report.format
        return f"{self.report.format}/{self.report.layout}"

    def _write_sources(self, items: list[tuple[str, str, str | None, dict]], *, others: bool = False
                       ) -> dict[str, str]:
        """Create or update the source records of these registrations from this import's source; for each
        identifier "created", "updated" or "unchanged" (with ``others``, also for a new record saying what
        another source said already)."""
        source = self._source_name()
        wanted = {identifier: (registry, title, orjson.dumps(
            {name: claim.as_dict() for name, claim in sorted(claims.items())}).decode())
            for identifier, registry, title, claims in items}
        stored, said = {}, set()
        # This source's records, and the others' only where one would be new (what they say is compared).
        for row_id, identifier, title, claims in select_in(
                f"SELECT id, identifier, title, claims FROM source_record WHERE source = {database.param} "
                "AND {where}", "identifier", list(wanted), params=[source]):
            stored[identifier] = (row_id, title, claims)
        if others:
            said = set(select_in(
                f"SELECT identifier, title, claims FROM source_record WHERE source <> {database.param} "
                "AND {where}", "identifier", [i for i in wanted if i not in stored], params=[source]))
        new, changes, outcome = [], [], {}
        for identifier, (registry, title, claims) in wanted.items():
            if identifier not in stored:
                new.append({"identifier": identifier, "registry": registry, "source": source,
                            "title": title, "claims": claims, "imported": self.now})
                # A source saying only what another said already changes nothing a reader sees.
                outcome[identifier] = "unchanged" if (identifier, title, claims) in said else "created"
            elif stored[identifier][1:] != (title, claims):
                changes.append((stored[identifier][0], {"title": title, "claims": claims,
                                                         "imported": self.now}))
                outcome[identifier] = "updated"
            else:
                outcome[identifier] = "unchanged"
        insert_rows(SourceRecord, new)
        update_rows(SourceRecord, changes)
        return outcome

    def _registry_status(self, items: list[tuple[int, RegistryStatus]]) -> None:
        """A registry scrape's rows: claims of their registrations, combined into the studies holding them
        (kept for a registration no study holds yet, so the study that gains it later has them)."""
        kept = [record for _, record in self._first_seen(items)]
        if not kept:
            return
        outcome = self._write_sources([(r.identifier, r.registry, None, r.claims) for r in kept], others=True)
        for r in kept:
            self._count(outcome[r.identifier])
        touched = [r.identifier for r in kept if outcome[r.identifier] != "unchanged"]
        owners = [s for (s,) in select_in("SELECT study_id FROM registration WHERE {where}", "identifier",
                                          touched)]
        self.derive_ids.update(owners)

    def _touch(self, model, ids: Iterable[int]) -> None:
        """Set `updated` to now on these records (those this import created have it already)."""
        ids = sorted(i for i in set(ids) if i not in self.fresh[model])
        if ids:
            condition, params = any_of("id", ids)
            database.execute_sql(f'UPDATE "{model._meta.table_name}" SET updated = {database.param} '
                                 f"WHERE {condition}", [model.updated.db_value(self.now), *params])

    def _insert(self, model, rows: list[dict]) -> list[int]:
        """Insert ``rows``; their new ids in the same order."""
        return insert_rows(model, rows, returning=True)

    # -- references --------------------------------------------------------------------------------------

    def _keys(self, values: dict) -> list[Any]:
        if values.get("type") == "trial_registry_record" and values.get("registration_id"):
            return [("registration", values["registration_id"])]
        keys: list[Any] = []
        if values.get("doi"):
            keys.append(("doi", values["doi"]))
        if values.get("pmid"):
            keys.append(("pmid", values["pmid"]))
        if values.get("title"):
            keys.append(("title", title_key(values["title"], values.get("year"))))
        return keys

    def _title_index(self) -> SpillingMap:
        if self.titles is None:
            self.titles = SpillingMap()
            rows = (Reference.select(Reference.id, Reference.title, Reference.year, Reference.doi,
                                     Reference.pmid)
                    .where(Reference.type != "trial_registry_record").order_by(Reference.id)
                    .tuples().iterator())
            for reference_id, title, year, doi, pmid in rows:
                self.titles.setdefault(title_key(title, year), (reference_id, doi, pmid))
        return self.titles

    def _upsert_references(self, items: list[tuple[int, dict, bool]]) -> list[tuple[int | None, str]]:
        """Create or update references; for each item its id and "created", "updated", "unchanged" or
        "duplicate" (its key already came earlier in the file; a reference repeated inside study lines of
        the register's NDJSON is the same reference, not a duplicate)."""
        prepared = []
        for line, values, complete in items:
            columns = reference_columns(values)
            prepared.append((line, columns, complete, self._keys(columns), id(values)))
        wanted: dict[str, set] = {"registration": set(), "doi": set(), "pmid": set()}
        for _, _, _, keys, _ in prepared:
            for kind, value in keys:
                if kind in wanted:
                    wanted[kind].add(value)
        found: dict[Any, Reference] = {}
        conditions, params = [], []
        for kind, column in (("registration", "registration_id"), ("doi", "doi"), ("pmid", "pmid")):
            if wanted[kind]:
                condition, values = any_of(column, sorted(wanted[kind]))
                if kind == "registration":
                    condition = f"({condition} AND type = 'trial_registry_record')"
                conditions.append(condition)
                params.extend(values)
        by_id: dict[int, Reference] = {}
        if conditions:
            where = " OR ".join(conditions)
            for ref in Reference.raw(f'SELECT * FROM "reference" WHERE {where} ORDER BY id', *params):
                by_id[ref.id] = ref
                if ref.type == "trial_registry_record" and ref.registration_id:
                    found.setdefault(("registration", ref.registration_id), ref)
                if ref.doi:
                    found.setdefault(("doi", ref.doi), ref)
                if ref.pmid:
                    found.setdefault(("pmid", ref.pmid), ref)
        results: list[tuple[int | None, str]] = []
        new_rows: list[dict] = []
        pending: list[tuple[int, int, dict]] = []  # (result index, new row index, columns)
        updates: list[tuple[Reference, dict, dict, int]] = []  # (row, diff, columns, id of the values)
        for line, columns, complete, keys, values_id in prepared:
            earlier = self._earlier(keys, columns)
            if earlier is not None and earlier[1] is not None and not complete:
                results.append((earlier[1], "duplicate"))
                self.report.duplicates.append({"line": line, "same_as": earlier[0], "key": _show(keys)})
                continue
            if earlier is not None and earlier[1] is None:
                # repeated within this batch before it was written: resolved below
                results.append((None, f"pending:{earlier[0]}"))
                continue
            row = self._match(keys, found, by_id, columns)
            if row is None:
                new = {"first_published": self.now.date(), "updated": self.now, **columns,
                       "created": self.now}
                for name in ("first_published", "updated"):
                    if new.get(name) is None:
                        new[name] = self.now.date() if name == "first_published" else self.now
                new.setdefault("authors", "[]")
                new.setdefault("publication_types", "[]")
                new.setdefault("has_results", False)
                pending.append((len(results), len(new_rows), columns))
                new_rows.append(new)
                results.append((None, "created"))
                self._seen(keys, columns, line, None)
                continue
            self._seen(keys, columns, line, row.id)
            diff = _supplement_changes(row, columns) if line in self.supplements \
                else _reference_changes(row, columns, complete)
            if diff:
                updates.append((row, diff, columns, values_id))
                results.append((row.id, "updated"))
            else:
                results.append((row.id, "unchanged"))
            if complete and columns.get("updated") is not None:
                self.dates[("reference", row.id)] = columns["updated"]
        ids = self._insert(Reference, new_rows)
        self.created_references.update(ids)
        for (index, row_index, columns), reference_id in zip(pending, ids, strict=True):
            results[index] = (reference_id, "created")
            if new_rows[row_index]["updated"] == self.now:
                self.fresh[Reference].add(reference_id)
            line = prepared[index][0]
            for key in prepared[index][3]:
                if self.seen_keys.get(key, (None, 0))[1] is None:
                    self.seen_keys[key] = (line, reference_id)
            if self.titles is not None and columns.get("type") != "trial_registry_record":
                self.titles.setdefault(title_key(columns["title"], columns.get("year")),
                                       (reference_id, columns.get("doi"), columns.get("pmid")))
            found = self.ahead.get(prepared[index][4])  # found by the reader thread in the same values
            if found is None:
                found = linking.identifiers_in(new_rows[row_index])
            self.found[reference_id] = found
            if prepared[index][2] and columns.get("updated") is not None:
                self.dates[("reference", reference_id)] = columns["updated"]
        for index, (_, outcome) in enumerate(results):
            if outcome.startswith("pending:"):
                line = prepared[index][0]
                first_line = int(outcome.split(":")[1])
                keys = prepared[index][3]
                same = self._earlier(keys, prepared[index][1])[1]
                if prepared[index][2]:
                    results[index] = (same, "unchanged")
                else:
                    results[index] = (same, "duplicate")
                    self.report.duplicates.append({"line": line, "same_as": first_line, "key": _show(keys)})
        update_rows(Reference, [(row.id, {"updated": self.now, **diff}) for row, diff, _, _ in updates])
        for row, diff, columns, values_id in updates:
            if any(name in diff for name in linking.TEXT_FIELDS):
                merged = {name: diff.get(name, getattr(row, name)) for name in linking.TEXT_FIELDS}
                found = self.ahead.get(values_id)  # found by the reader thread, when in the same text
                if found is None or any(merged[name] != columns.get(name) for name in linking.TEXT_FIELDS):
                    found = linking.identifiers_in(merged)
                self.found[row.id] = found
            elif any(name in diff for name in linking.DECIDING_FIELDS):
                self.redecide.add(row.id)  # the same identifiers, perhaps another role
            self.changed_references.add(row.id)
        self.report.references["created"] += len(ids)
        self.report.references["updated"] += len(updates)
        self.reference_ids.update(ids)
        self.reference_ids.update(row.id for row, _, _, _ in updates)
        return results

    def _seen(self, keys, columns: dict, line: int, reference_id: int | None) -> None:
        for key in keys:
            self.seen_keys.setdefault(key, (line, reference_id))
            if key[0] == "title":
                self.title_ids.setdefault(key[1], (columns.get("doi"), columns.get("pmid")))

    def _earlier(self, keys, columns: dict) -> tuple[int, int | None] | None:
        """(line, reference id) of the earlier row of this file with one of ``keys``: a title match does not
        make a record with another DOI or PMID the same one (a preprint and its journal version)."""
        for key in keys:
            if key not in self.seen_keys:
                continue
            if key[0] == "title":
                doi, pmid = self.title_ids.get(key[1], (None, None))
                if (columns.get("doi") and doi and doi != columns["doi"]) or (
                        columns.get("pmid") and pmid and pmid != columns["pmid"]):
                    continue
            return self.seen_keys[key]
        return None

    def _match(self, keys, found, by_id, columns) -> Reference | None:
        for key in keys:
            if key[0] != "title" and key in found:
                return found[key]
        title = next((k for k in keys if k[0] == "title"), None)
        if title is None:
            return None
        hit = self._title_index().get(title[1])
        if hit is None:
            return None
        reference_id, doi, pmid = hit
        if (columns.get("doi") and doi and doi != columns["doi"]) or (
                columns.get("pmid") and pmid and pmid != columns["pmid"]):
            return None  # same title, but another record by its identifiers
        row = by_id.get(reference_id) or Reference.get_or_none(Reference.id == reference_id)
        return row

    # -- the register's own NDJSON: studies with their references ---------------------------------------

    def _exported_studies(self, items: list[tuple[int, ExportedStudy]]) -> None:
        for line, record in items:
            identifiers = [i for i, _ in record.registrations]
            owner = dict(Registration.select(Registration.identifier, Registration.study)
                         .where(Registration.identifier.in_(identifiers)).tuples()) if identifiers else {}
            owners = set(owner.values())
            if len(owners) > 1:
                self._reject(line, "its registrations belong to different studies: "
                                   + ", ".join(f"{i} (study {s})" for i, s in owner.items()))
                continue
            study_id = owners.pop() if owners else None
            if study_id is None and not identifiers:
                match = Study.select(Study.id).where(
                    (Study.name == record.study["name"])
                    & Study.id.not_in(Registration.select(Registration.study))
                ).order_by(Study.id).first() if record.study.get("name") else None
                study_id = match.id if match else None
            outcome = "unchanged"
            countries = record.study.pop("countries", None)
            if countries is not None:
                record.study["countries"] = json.dumps(sorted(set(countries)))
            if study_id is None:
                values = {k: v for k, v in record.study.items() if v is not None}
                values.setdefault("name", identifiers[0] if identifiers
                                  else record.study.get("title", "")[:200])
                for facet in FACET_FIELDS:
                    values.setdefault(facet, UNCLEAR)
                values.setdefault("first_published", self.now.date())
                values.setdefault("updated", self.now)
                values["created"] = self.now
                study_id = self._insert(Study, [values])[0]
                self.report.studies["created"] += 1
                outcome = "created"
            else:
                study = Study.get_by_id(study_id)
                diff = _study_changes(study, record.study, complete=True)
                if diff:
                    Study.update({"updated": self.now, **diff}).where(Study.id == study_id).execute()
                    self.report.studies["updated"] += 1
                    outcome = "updated"
            write_countries(study_id, countries)
            self.study_ids.add(study_id)
            added = [{"study": study_id, "identifier": i, "registry": g}
                     for i, g in record.registrations if i not in owner]
            if added:
                Registration.insert_many(added).execute()
                self.report.registrations_added += len(added)
                self.new_identifiers.extend(r["identifier"] for r in added)
                outcome = "updated" if outcome == "unchanged" else outcome
            references = self._upsert_references([(line, values, True) for values, _, _ in record.references])
            for (reference_id, ref_outcome), (_, link, role) in zip(references, record.references,
                                                                     strict=True):
                if ref_outcome in ("created", "updated") and outcome == "unchanged":
                    outcome = "updated"
                if (link == "manual" or role is not None) and reference_id is not None \
                        and self._manual_link(study_id, reference_id, role):
                    outcome = "updated" if outcome == "unchanged" else outcome
            if record.study.get("updated") is not None:
                self.dates[("study", study_id)] = record.study["updated"]
            self._count(outcome)

    def _manual_link(self, study_id: int, reference_id: int, role: str | None = None) -> bool:
        """A link made by hand in the file stays manual, with the role a curator set (``role``); True when
        it was made or changed."""
        existing = StudyReference.get_or_none(study=study_id, reference=reference_id)
        curated = {"role": role, "role_curated": True, "confidence": evidence.BY_HAND} if role else {}
        if existing is not None and existing.link == "manual" and (
                role is None or (existing.role == role and existing.role_curated)):
            return False
        linking.unsuppress(study_id, reference_id)
        if existing is None:
            StudyReference.create(study=study_id, reference=reference_id, link="manual", created=self.now,
                                  **curated)
        else:
            StudyReference.update(link="manual", identifier=None, **curated).where(
                StudyReference.id == existing.id).execute()
        self.study_ids.add(study_id)
        self.reference_ids.add(reference_id)
        self.redecide.add(reference_id)  # its evidence (and the role of its other links)
        return True

    # -- cross-registrations (DIRECCT): registrations of one study, no record of their own ----------------

    def _cross_registrations(self, items: list[tuple[int, CrossRegistrations]]) -> None:
        """The registrations of each trial join the one study that owns any of them, or a new study named
        by the first; a trial whose registrations belong to different studies is rejected. A stored study
        only gains registrations (its title and facets stay)."""
        every = {i for _, r in items for i, _ in r.identifiers}
        owner: dict[str, Any] = dict(Registration.select(Registration.identifier, Registration.study)
                                     .where(Registration.identifier.in_(list(every))).tuples())
        new_studies: list[dict] = []
        new_registrations: list[tuple[Any, str, str]] = []
        outcomes: list[str] = []
        for line, record in items:
            owners = {owner[i] for i, _ in record.identifiers if i in owner}
            if len(owners) > 1:
                named = ", ".join(f"{i} (study {owner[i]})" if isinstance(owner[i], int)
                                  else f"{i} (a study of this file)"
                                  for i, _ in record.identifiers if i in owner)
                self._reject(line, f"trial {record.key}: its registrations belong to different studies: "
                                   f"{named}; merge them by hand first.")
                continue
            if owners:
                study, outcome = owners.pop(), "unchanged"
            else:
                study, outcome = ("new", len(new_studies)), "created"
                new_studies.append({**record.study, "first_published": self.now.date(),
                                    "created": self.now, "updated": self.now})
            for identifier, registry in record.identifiers:
                if identifier not in owner:
                    owner[identifier] = study
                    new_registrations.append((study, identifier, registry))
                    outcome = "updated" if outcome == "unchanged" else outcome
            outcomes.append(outcome)
        ids = self._insert(Study, new_studies)
        resolve = {("new", i): study_id for i, study_id in enumerate(ids)}
        self.report.studies["created"] += len(ids)
        self.study_ids.update(ids)
        rows = [{"study": resolve.get(s, s), "identifier": i, "registry": g} for s, i, g in new_registrations]
        insert_rows(Registration, rows)
        self.report.registrations_added += len(rows)
        self.new_identifiers.extend(r["identifier"] for r in rows)
        touched = sorted({r["study"] for r in rows} - set(ids))
        for start in range(0, len(touched), BATCH_SIZE):
            Study.update(updated=self.now).where(Study.id.in_(touched[start:start + BATCH_SIZE])).execute()
        self.study_ids.update(touched)
        self.report.studies["updated"] += len(touched)
        for outcome in outcomes:
            self._count(outcome)

    # -- linking -----------------------------------------------------------------------------------------

    def _link(self) -> None:
        linking.remember_identifiers_bulk(self.found, new=self.created_references)
        relink = set(self.found) | self.redecide
        self.redecide = set()
        relink.update(r for (r,) in select_in("SELECT reference_id FROM reference_identifier WHERE {where}",
                                              "identifier", self.new_identifiers))
        added, studies, references = linking.relink_references(relink)
        self.report.linked += added
        # A study's record shows its references in full: it changes when one of them does.
        studies.update(s for (s,) in select_in("SELECT study_id FROM study_reference WHERE {where}",
                                               "reference_id", self.changed_references))
        self._touch(Study, studies)
        self._touch(Reference, references)
        self.study_ids.update(studies)
        self.reference_ids.update(references)

    def _derive(self) -> None:
        """The studies this batch touched, or whose sources it changed, take their fields from all their
        sources; then the batch's registry records are counted (updated when their study changed)."""
        derived = derive.rederive(self.study_ids.take() | self.derive_ids.take(), now=self.now)
        self.study_ids.update(derived, quietly=True)
        for outcome, study_id in self.pending_outcomes:
            self._count("updated" if outcome == "unchanged" and study_id in derived else outcome)
        self.pending_outcomes = []

    def finish(self) -> None:
        # Dates a record carries (register NDJSON) win over the touches of linking, so they are set last.
        for model in (Study, Reference):
            dates = ((record_id, {"updated": updated}) for (table, record_id), updated in self.dates.items()
                     if table == model._meta.table_name)
            while chunk := list(itertools.islice(dates, 5000)):
                update_rows(model, chunk)

    def refresh_search(self) -> None:
        """Rewrite the search documents of every record this import created or changed (and of the studies
        linked to those references), in chunks, just before the import's transaction commits."""
        search_index.refresh_many(self.study_ids, self.reference_ids)

    def close(self) -> None:
        for store in (self.seen_records, self.seen_keys, self.title_ids, self.titles, self.dates):
            if store is not None:
                store.close()


class _Touched(IdSet):
    """Ids touched so far, and those touched since the last ``take()``."""

    def __init__(self):
        super().__init__()
        self.batch: set[int] = set()

    def add(self, value: int) -> None:
        super().add(value)
        self.batch.add(value)

    def update(self, values, *, quietly: bool = False) -> None:
        for value in values:
            IdSet.add(self, value) if quietly else self.add(value)

    def take(self) -> set[int]:
        taken, self.batch = self.batch, set()
        return taken


def _show(keys: list) -> str:
    kind, value = keys[0]
    return "title+year" if kind == "title" else f"{kind} {value}"


# What a whole study line (register NDJSON) restores besides its name, title and classifications.
EXPORTED_COLUMNS = ("registered", "start_date", "recruitment_status", "phase", "target_size", "sponsor",
                    "primary_completion_date", "countries", "results_registry", "results_registry_date",
                    "results_article", "results_article_date", "results_preprint", "results_preprint_date",
                    "facet_sources", "curated")


def _study_changes(study: Study, incoming: dict, *, complete: bool) -> dict:
    diff = {}
    for name in EXPORTED_COLUMNS:
        if complete and name in incoming and incoming[name] != getattr(study, name):
            diff[name] = incoming[name]
    for name in ("name", "title", *FACET_FIELDS, "first_published", "updated"):
        if name not in incoming or incoming[name] is None:
            continue
        if name in ("name", "first_published", "updated") and not complete:
            continue
        if name == "updated":
            continue  # an exported study's own date is restored at the end (finish)
        value, current = incoming[name], getattr(study, name)
        if name in FACET_FIELDS and value == UNCLEAR and current != UNCLEAR and not complete:
            continue  # "we don't know" never overwrites a classification
        if current != value:
            diff[name] = value
    return diff


def _supplement_changes(row: Reference, columns: dict) -> dict:
    """What a supplementary record (ArticleRecord.supplement) changes in a stored reference: empty values
    filled, `has_results` set (never cleared), its lines of `notes` added to the stored ones."""
    diff: dict[str, Any] = {}
    for name, value in columns.items():
        if name in ("updated", "first_published") or _empty(value):
            continue
        current = getattr(row, name)
        if name == "notes":
            have = (current or "").splitlines()
            missing = [line for line in value.splitlines() if line not in have]
            if missing:
                diff[name] = "\n".join([*have, *missing])
        elif name == "has_results":
            if value and not current:
                diff[name] = True
        elif _empty(current):
            diff[name] = value
    return diff


def _reference_changes(row: Reference, columns: dict, complete: bool) -> dict:
    diff = {}
    for name, value in columns.items():
        if name == "updated":
            continue  # restored at the end for whole records; set to now for changed ones
        if _empty(value) and not complete:
            continue
        if name == "first_published" and value is None:
            continue
        current = getattr(row, name)
        if isinstance(value, KeepStored) and not _empty(current):
            continue  # a default or a weaker source's value (formats.KeepStored)
        if isinstance(value, AddedLines):
            value = value.onto(current)  # lines added to the stored ones (formats.AddedLines)
        if current != value:
            diff[name] = value
    return diff
