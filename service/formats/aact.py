"""ClinicalTrials.gov studies in the AACT `studies` table layout, as CSV (one row per `nct_id`).

Each row is translated, by the one table ``COLUMNS`` below, into the ClinicalTrials.gov API v2 study it
describes and mapped by ``ctgov.map_study``: a study reads the same whether it came from the JSON or from
AACT (same key, the canonical NCT id; same title, facets, reference and notes).

Rules:

* ``NA`` and empty cells are missing values. Dates are ``M/D/YYYY`` (the regCOVID copy) or ISO.
* AACT writes enums as display text (``Active, not recruiting``, ``Phase 2/Phase 3``,
  ``Observational [Patient Registry]``); they are written back as the API's enum values
  (``ACTIVE_NOT_RECRUITING``, ``["PHASE2", "PHASE3"]``, ``OBSERVATIONAL`` with ``patientRegistry``). A value
  the tables do not know is kept as written, never guessed.
* UTF-8 text that was once decoded as Windows-1252 (``SantÃ©``) is repaired with ftfy's ``fix_encoding``
  (only that step: quotes, widths and ligatures stay as written).
* The `studies` table carries no brief summary, conditions, interventions, design details (allocation,
  model, purpose) or secondary ids (those are other AACT tables): what it does say of the design (one arm,
  an official title saying "randomised") is claimed as such, the rest is left to other sources (an
  `Unclear` is never a claim), and the reference's abstract holds the official title only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import ftfy

from ..identifiers import canonical
from . import TABLE, Claim, FormatError, RegistryRecord, Row, RowError, facets, trialdata
from .ctgov import map_study
from .reading import csv_rows

OVERALL_STATUS = {
    "Not yet recruiting": "NOT_YET_RECRUITING", "Recruiting": "RECRUITING",
    "Enrolling by invitation": "ENROLLING_BY_INVITATION", "Active, not recruiting": "ACTIVE_NOT_RECRUITING",
    "Suspended": "SUSPENDED", "Terminated": "TERMINATED", "Completed": "COMPLETED", "Withdrawn": "WITHDRAWN",
    "Unknown status": "UNKNOWN", "Available": "AVAILABLE", "No longer available": "NO_LONGER_AVAILABLE",
    "Temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
    "Approved for marketing": "APPROVED_FOR_MARKETING", "Withheld": "WITHHELD",
}
STUDY_TYPES = {"Interventional": "INTERVENTIONAL", "Observational": "OBSERVATIONAL",
               "Observational [Patient Registry]": "OBSERVATIONAL", "Expanded Access": "EXPANDED_ACCESS"}
PHASES = {"Early Phase 1": "EARLY_PHASE1", "Phase 1": "PHASE1", "Phase 2": "PHASE2", "Phase 3": "PHASE3",
          "Phase 4": "PHASE4", "Not Applicable": "NA"}


def _day(value: str, column: str) -> str:
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, pattern).date().isoformat()
        except ValueError:
            continue
    raise RowError(f"`{column}` {value!r} is not a date (M/D/YYYY or YYYY-MM-DD).")


def _count(value: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RowError(f"`{column}` {value!r} is not a whole number.") from None


def _phases(value: str, column: str) -> list[str]:
    return [PHASES.get(part.strip(), part.strip()) for part in value.split("/")]


def _text(value: str, column: str) -> str:
    return value


def _status(value: str, column: str) -> str:
    return OVERALL_STATUS.get(value, value)


def _study_type(value: str, column: str) -> str:
    return STUDY_TYPES.get(value, value)


def _registry(value: str, column: str) -> bool:
    return value.endswith("[Patient Registry]")


def _posted(value: str, column: str) -> bool:
    _day(value, column)
    return True


# AACT `studies` column -> where the API v2 study holds it, and how the cell is converted. The other
# columns (completion date, why_stopped, IPD sharing, FDA flags, biospecimens...) state nothing the
# register keeps, so they are not read; `number_of_arms` is read by ``map_row``.
COLUMNS: list[tuple[str, tuple[str, ...], Callable[[str, str], Any]]] = [
    ("nct_id", ("protocolSection", "identificationModule", "nctId"), _text),
    ("brief_title", ("protocolSection", "identificationModule", "briefTitle"), _text),
    ("official_title", ("protocolSection", "identificationModule", "officialTitle"), _text),
    ("acronym", ("protocolSection", "identificationModule", "acronym"), _text),
    ("overall_status", ("protocolSection", "statusModule", "overallStatus"), _status),
    ("study_first_submitted_date", ("protocolSection", "statusModule", "studyFirstSubmitDate"), _day),
    ("study_first_posted_date",
     ("protocolSection", "statusModule", "studyFirstPostDateStruct", "date"), _day),
    ("study_type", ("protocolSection", "designModule", "studyType"), _study_type),
    ("study_type", ("protocolSection", "designModule", "patientRegistry"), _registry),
    ("phase", ("protocolSection", "designModule", "phases"), _phases),
    ("enrollment", ("protocolSection", "designModule", "enrollmentInfo", "count"), _count),
    ("source", ("protocolSection", "sponsorCollaboratorsModule", "leadSponsor", "name"), _text),
    ("results_first_posted_date", ("hasResults",), _posted),
    ("results_first_posted_date", ("protocolSection", "statusModule", "resultsFirstPostDateStruct", "date"),
     _day),
    ("start_date", ("protocolSection", "statusModule", "startDateStruct", "date"), _day),
    ("primary_completion_date", ("protocolSection", "statusModule", "primaryCompletionDateStruct", "date"),
     _day),
    ("last_update_posted_date", ("protocolSection", "statusModule", "lastUpdatePostDateStruct", "date"),
     _day),
    ("enrollment_type", ("protocolSection", "designModule", "enrollmentInfo", "type"), _text),
]
# The JSON path of each claim (formats.Claim.field) -> the AACT column it was read from.
CLAIM_COLUMNS = {".".join(p for p in path if p != "protocolSection"): column for column, path, _ in COLUMNS}
CLAIM_COLUMNS.update({"designModule.designInfo.numberOfArms": "number_of_arms",
                      "identificationModule.officialTitle": "official_title",
                      "identificationModule.briefTitle": "brief_title"})
REQUIRED = ("nct_id", "brief_title", "study_type")
MISSING = {"", "NA"}


def read_header(header: list[str]) -> dict[str, int]:
    names = [h.replace("\ufeff", "").strip().lower() for h in header]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
        raise FormatError(f"The header ({shown}) is not an AACT `studies` table: it needs the columns "
                          f"{', '.join(repr(n) for n in REQUIRED)} (missing: {', '.join(missing)}).")
    return {column: names.index(column) for column in [*(c for c, _, _ in COLUMNS), "number_of_arms"]
            if column in names}


def to_study(row: list[str], where: dict[str, int]) -> dict:
    """The ClinicalTrials.gov API v2 study an AACT row describes (only the fields the mapping reads)."""
    study: dict = {}
    for column, path, convert in COLUMNS:
        index = where.get(column)
        if index is None:
            continue
        value = row[index]
        value = (value if value.isascii() else ftfy.fix_encoding(value)).strip()
        if value in MISSING:
            continue
        node = study
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = convert(value, column)
    return study


def map_row(row: list[str], where: dict[str, int]) -> RegistryRecord:
    study = to_study(row, where)
    raw_id = study.get("protocolSection", {}).get("identificationModule", {}).get("nctId")
    known = canonical(raw_id) if raw_id else None
    if known is None or known[1] != "ClinicalTrials.gov":
        raise RowError(f"has no valid `nct_id` (got {row[where['nct_id']]!r}).")
    if "results_first_posted_date" in where and "hasResults" not in study:
        study["hasResults"] = False  # the column is there and empty: no results posted
    record = map_study(study, CLAIM_COLUMNS)
    arms = row[where["number_of_arms"]].strip() if "number_of_arms" in where else ""
    if arms == "1" and record.study["study_type"] == "Interventional":
        trialdata.put(record.claims, "study_design", Claim("Single arm", "number_of_arms", TABLE,
                                                           rule="an interventional study with one arm",
                                                           span="number_of_arms: 1"))
        record.study.update(facets.values(facets.without_titles(record.claims)))
    return record


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    found: dict = {}

    def on_header(header: list[str]) -> None:
        found["where"] = read_header(header)
        info["layout"] = "aact-studies"

    for line, row, error in csv_rows(stream, on_header):
        if error is not None:
            yield Row(line, error=error)
            continue
        try:
            yield Row(line, record=map_row(row, found["where"]))
        except RowError as error:
            yield Row(line, error=str(error))
