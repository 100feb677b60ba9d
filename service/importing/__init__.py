"""Importing the register's own NDJSON export (`format=ndjson` of /studies and /references).

One transaction for the whole file; each line in a savepoint, so a line that cannot be loaded is
rejected (with its line number and reason) without touching the others. A file that is not this
format at all (not UTF-8, not JSON lines, truncated) is refused and nothing is written.

Records are matched as the seeds are: studies by their registration identifiers (else their
name), references by registration id, DOI, PMID, else title and year. A record equal to the one
stored is left alone (`unchanged`: its `updated` stays); the file's own `first_published` and
`updated` are kept, so export -> import into an empty register reproduces it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import marshmallow as ma

from ..api.schemas.references import ReferenceCreateSchema, ReferenceSchema
from ..api.schemas.studies import StudyCreateSchema, StudySchema
from ..db import changed, write_transaction
from ..domain import records, references, studies
from ..domain.errors import DomainError
from ..domain.linking import canonical_identifier
from ..models import Reference, Study, StudyReference
from ..seeding import _find_reference, _find_study

FORMATS = ("ndjson", "ictrp-csv")
_STUDY_READ_ONLY = {"id", "reference_count", "references"}
_REFERENCE_READ_ONLY = {"id", "type_label", "study_ids", "registration_ids_found", "link",
                        "link_identifier"}


class FileRefused(ValueError):
    """The file is not one this importer reads; nothing was written."""


class _Rollback(Exception):
    pass


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    lines: int = 0
    studies: Counts = field(default_factory=Counts)
    references: Counts = field(default_factory=Counts)
    linked: int = 0
    rejected: list[dict] = field(default_factory=list)
    encoding: str = "utf-8"

    def as_dict(self) -> dict:
        return asdict(self)


def _comparable(record: dict, *, study: bool) -> dict:
    """A record as exported, without what is local to one register (ids) or, for a reference on
    its own, to where it was listed (its link to one study)."""
    drop = {"id", "study_ids", "reference_count"} | (set() if study else {"link", "link_identifier"})
    record = {k: v for k, v in record.items() if k not in drop}
    if study:
        record["references"] = sorted(
            ({k: v for k, v in r.items() if k not in ("id", "study_ids")}
             for r in record.get("references") or []),
            key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return record


def _load(schema: ma.Schema, raw: dict, read_only: set[str]) -> dict:
    return schema.load({k: v for k, v in raw.items() if k not in read_only})


def _stored_study(study_id: int) -> dict:
    row = records.studies_with_counts().where(Study.id == study_id).get()
    return StudySchema().dump(records.study_dicts([row], include_references=True)[0])


def _stored_reference(reference_id: int) -> dict:
    return ReferenceSchema().dump(references.get_reference(reference_id))


def _covers(stored: dict, raw: dict) -> bool:
    """Every field ``raw`` gives has the stored value (a partial record, as a registry row is)."""
    for key, value in raw.items():
        if key in _STUDY_READ_ONLY | _REFERENCE_READ_ONLY:
            continue
        if key == "registrations":
            have = {r["identifier"] for r in stored.get("registrations", [])}
            if not {canonical_identifier(r["identifier"]) for r in value} <= have:
                return False
        elif stored.get(key) != value:
            return False
    return True


class _Importer:
    """Upserts register-shaped records. ``partial``: the records give only some fields (a registry
    row): what they give is compared and written, registrations are added to a study's own."""

    def __init__(self, report: ImportReport, *, partial: bool = False):
        self.report = report
        self.partial = partial
        self.dates: list[tuple] = []  # the file's own dates, set once everything is written

    def _same(self, stored: dict, raw: dict, *, study: bool) -> bool:
        if not self.partial:
            return _comparable(stored, study=study) == _comparable(raw, study=study)
        if not _covers(stored, raw):
            return False
        return not study or all(any(_covers(s, r) for s in stored["references"])
                                for r in raw.get("references") or [])

    def reference(self, raw: dict) -> int:
        data = _load(ReferenceCreateSchema(), raw, _REFERENCE_READ_ONLY)
        found = _find_reference(data)
        if found is None:
            found = references.create_reference(data)
            self.report.references.created += 1
        elif self._same(_stored_reference(found), raw, study=False):
            self.report.references.unchanged += 1
            return found
        else:
            references.update_reference(found, data)
            self.report.references.updated += 1
        if data.get("updated"):
            self.dates.append((Reference, found, data["updated"]))
        return found

    def study(self, raw: dict) -> None:
        data = _load(StudyCreateSchema(), raw, _STUDY_READ_ONLY)
        study_id = _find_study(data)
        stored = _stored_study(study_id) if study_id is not None else None
        if stored is not None and self._same(stored, raw, study=True):
            self.report.studies.unchanged += 1
            return
        if study_id is None:
            study_id = studies.create_study(data)
            self.report.studies.created += 1
        else:
            if self.partial:  # a registry row names some of a trial's registrations: add them
                known = {r["identifier"] for r in stored["registrations"]}
                data["registrations"] = stored["registrations"] + [
                    r for r in data["registrations"]
                    if canonical_identifier(r["identifier"]) not in known]
            studies.update_study(study_id, data)
            self.report.studies.updated += 1
        for raw_ref in raw.get("references") or []:
            reference_id = self.reference(raw_ref)
            link, made = StudyReference.get_or_create(
                study=study_id, reference=reference_id,
                defaults={"link": "manual" if raw_ref.get("link", "manual") == "manual" else "auto",
                          "identifier": raw_ref.get("link_identifier")})
            if made:
                self.report.linked += 1
                changed(studies=[study_id])
        if data.get("updated"):
            self.dates.append((Study, study_id, data["updated"]))

    def load(self, number: int, apply: Callable[[dict], None], record) -> None:
        """``apply(record)`` in a savepoint: a record that cannot be loaded is rejected (with its
        line number and reason) and leaves no trace."""
        try:
            with write_transaction():
                apply(record)
        except ma.ValidationError as error:
            self.report.rejected.append({"line": number, "reason": json.dumps(error.messages)})
        except DomainError as error:
            reason = error.detail + (f" {json.dumps(error.errors)}" if error.errors else "")
            self.report.rejected.append({"line": number, "reason": reason})

    def line(self, obj) -> None:
        if not isinstance(obj, dict):
            raise ma.ValidationError("A line must be one JSON object (a study or a reference).")
        if "registrations" in obj or "study_type" in obj:
            self.study(obj)
        else:
            self.reference(obj)

    def finish(self) -> None:
        for model, record_id, updated in self.dates:
            model.update(updated=updated).where(model.id == record_id).execute()


def _lines(chunks: Iterable[bytes]) -> Iterable[tuple[int, str]]:
    """(line number, text) of a UTF-8 (BOM allowed) byte stream; FileRefused on bad encoding."""
    pending = b""
    number = 0
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            number += 1
            yield number, _decode(raw, number)
    if pending.strip():
        yield number + 1, _decode(pending, number + 1)


def _decode(raw: bytes, number: int) -> str:
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRefused(f"line {number}: not UTF-8 ({error.reason} at byte {error.start}); "
                          f"the register's NDJSON is UTF-8") from None


def import_ndjson(chunks: Iterable[bytes], *, dry_run: bool = False,
                  progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import an NDJSON export (an iterable of byte chunks) in one transaction; see the module."""
    report = ImportReport(format="ndjson", dry_run=dry_run)
    importer = _Importer(report)
    try:
        with write_transaction():
            seen_json = False
            for number, text in _lines(chunks):
                report.lines = number
                if progress is not None:
                    progress(len(text) + 1)
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as error:
                    if not seen_json:
                        raise FileRefused(f"line {number}: not JSON ({error.msg}); is this the "
                                          f"register's NDJSON export?") from None
                    report.rejected.append({"line": number, "reason": f"not JSON: {error.msg}"})
                    continue
                seen_json = True
                importer.load(number, importer.line, obj)
            importer.finish()
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return report


def import_ictrp_csv(raw, *, dry_run: bool = False, encoding: str | None = None) -> ImportReport:
    """Import a WHO ICTRP trial list (a binary stream; gzip, UTF-8 with or without BOM, or
    Windows-1252) in one transaction: one study and one registry record per row."""
    from . import ictrp

    report = ImportReport(format="ictrp-csv", dry_run=dry_run)
    importer = _Importer(report, partial=True)
    try:
        text, report.encoding = ictrp.open_text(io.BufferedReader(raw), encoding)
    except LookupError:
        raise FileRefused(f"unknown encoding {encoding!r}") from None
    except OSError as error:
        raise FileRefused(f"cannot read it: {error}") from None
    try:
        with write_transaction():
            for number, record in ictrp.rows(text):
                report.lines = number
                if "__error__" in record:
                    report.rejected.append({"line": number, "reason": record["__error__"]})
                    continue
                importer.load(number, importer.study, record)
            importer.finish()
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except UnicodeDecodeError as error:
        raise FileRefused(f"not {report.encoding} after line {report.lines} ({error.reason}); name the "
                          f"file's encoding with --encoding") from None
    except (ValueError, csv.Error, EOFError, OSError) as error:  # header, quoting, truncated gzip
        raise FileRefused(f"after line {report.lines}: {error}") from None
    return report
