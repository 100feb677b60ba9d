"""WHO ICTRP trial lists as CSV (DOMAIN.md §2.2): the raw WHO export (40 or 58 columns) and the derived
layouts of the TrialsTracker (25 columns) and DIRECCT (13 columns), recognised by their headers.

One row is one registry record: a study (facets mapped by ``facets.ictrp_facets``) with its registration
and any secondary identifiers it names (bridging), plus its `trial_registry_record` reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from ..identifiers import canonical, find_identifiers
from ..vocabularies import REGISTRIES
from . import STRUCTURED, TABLE, Claim, FormatError, RegistryRecord, Row, RowError, facets, fields, trialdata
from .reading import csv_rows

# Logical field -> header names that carry it (compared case-insensitively, spaces trimmed).
COLUMNS: dict[str, tuple[str, ...]] = {
    "trial_id": ("TrialID", "trialid", "trn", "Main ID"),
    "registry": ("Source Register", "source_register", "registry"),
    "public_title": ("Public title", "public_title"),
    "scientific_title": ("Scientific title", "scientific_title"),
    "acronym": ("Acronym",),
    "sponsor": ("Primary sponsor", "normed_spon_names"),
    "date_registration": ("Date registration", "date_registration"),
    "date_registration3": ("Date registration3",),
    "url": ("web address", "web_address"),
    "recruitment_status": ("Recruitment Status", "recruitment_status"),
    "study_type": ("Study type", "study_type"),
    "study_design": ("Study design", "study_design"),
    "phase": ("Phase",),
    "countries": ("Countries",),
    "target_size": ("Target size", "target_enrollment"),
    "condition": ("Condition",),
    "intervention": ("Intervention",),
    "primary_outcome": ("Primary outcome",),
    "secondary_ids": ("Secondary ID", "Secondary IDs", "cross_registrations"),
    "results_url": ("results url link", "results_link"),
    "results_yes_no": ("results yes no",),
    "results_type": ("results_type",),
    "study_category": ("study_category",),
    "date_enrollment": ("Date enrollement", "date_enrollement"),
    "primary_completion_date": ("primary_completion_date",),
    "last_refreshed": ("Last Refreshed on", "last_refreshed_on"),
    "export_date": ("Export date",),
    "results_date": ("results date posted", "results_publication_date"),
}
# Logical field -> the status claim it carries (trialdata.status_claims).
STATUS_FIELDS = {"recruitment_status": "recruitment_status", "phase": "phase", "target_size": "target_size",
                 "countries": "countries", "sponsor": "sponsor", "date_registration": "registered",
                 "date_registration3": "registered3", "date_enrollment": "start_date",
                 "primary_completion_date": "primary_completion_date", "last_refreshed": "record_updated"}
REQUIRED = ("trial_id", "public_title", "study_type")
# Layout name -> header names that identify it.
LAYOUTS = (
    ("who-58", ("TrialID", "Bridging flag truefalse", "Secondary ID")),
    ("who-40", ("TrialID", "Bridging flag truefalse")),
    ("trialstracker-25", ("trialid", "cross_registrations", "results_type")),
    ("direcct-13", ("trn", "registry", "euctr_country")),
)


def _fold(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).lower()


def required_columns() -> str:
    return "; ".join(" or ".join(repr(n) for n in COLUMNS[f]) for f in REQUIRED)


def read_header(header: list[str]) -> tuple[dict[str, int], str]:
    """Column index of each logical field present, and the layout's name; FormatError when a required
    field is missing."""
    folded = [_fold(h) for h in header]
    where: dict[str, int] = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if _fold(alias) in folded:
                where[name] = folded.index(_fold(alias))
                break
    missing = [f for f in REQUIRED if f not in where]
    if missing:
        shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
        raise FormatError(
            f"The header ({shown}) is not an ICTRP trial list: it needs the columns {required_columns()}.")
    present = set(folded)
    layout = next((name for name, signature in LAYOUTS if {_fold(s) for s in signature} <= present),
                  "ictrp-columns")
    return where, layout


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    found: dict = {}

    def on_header(header: list[str]) -> None:
        found["where"], info["layout"] = read_header(header)
        found["names"] = header

    for line, row, error in csv_rows(stream, on_header):
        if error is not None:
            yield Row(line, error=error)
            continue
        try:
            yield Row(line, record=map_row(row, found["where"], found["names"]))
        except RowError as error:
            yield Row(line, error=str(error))


def map_row(row: list[str], where: dict[str, int], header: list[str] | None = None) -> RegistryRecord:
    cleaned: dict[str, str | None] = {}  # each cell is cleaned once, however often the rules read it

    def get(name: str) -> str | None:
        if name not in cleaned:
            index = where.get(name)
            cleaned[name] = fields.text(row[index]) if index is not None else None
        return cleaned[name]

    def column(name: str) -> str:
        return header[where[name]].replace("\ufeff", "").strip() if header else COLUMNS[name][0]

    raw_id = fields.one_line(get("trial_id"))
    if not raw_id:
        raise RowError("has no trial identifier.")
    known = canonical(raw_id)
    if known is None:
        raise RowError(f"trial identifier {raw_id!r} is not a registration number of a known registry.")
    identifier, registry = known
    title = fields.one_line(get("public_title")) or fields.one_line(get("scientific_title"))
    if not title:
        raise RowError(f"{identifier} has no title.")
    secondary = []
    for found in find_identifiers(get("secondary_ids") or ""):
        if found.identifier != identifier and (found.identifier, found.registry) not in secondary:
            secondary.append((found.identifier, found.registry))
    registered = fields.date(get("date_registration")) or fields.date(get("date_registration3"))
    has_results = bool(get("results_url")) or (get("results_yes_no") or "").lower() == "yes" \
        or (get("results_type") or "").lower() == "registry results"
    reference = {
        "type": "trial_registry_record",
        "title": title,
        "abstract": _summary(get),
        "source": fields.one_line(get("registry")) or REGISTRIES[registry][0],
        "year": registered.year if registered else None,
        "published": registered.isoformat() if registered else None,
        "url": fields.url(get("url")),
        "registration_id": identifier,
        "has_results": has_results,
        "notes": _notes(get, secondary),
    }
    fields.check_limits(reference)
    claims = _claims(get, column, where, row)
    study = {"name": identifier, "title": title, **facets.values(facets.without_titles(claims))}
    return RegistryRecord(identifier=identifier, registry=registry, study=study, reference=reference,
                          secondary=secondary, claims=claims)


def _claims(get, column, where: dict[str, int], row: list[str]) -> dict[str, Claim]:
    """Everything the row states about its study (formats.Claim), by study field."""
    claims = facets.ictrp_claims(
        get("study_type"), get("study_design"), get("study_category"),
        **{f"{name}_column": column(f"study_{name}" if name != "category" else "study_category")
           for name in ("type", "design", "category") if (f"study_{name}" if name != "category"
                                                         else "study_category") in where})
    trialdata.put(claims, "intervention_assignment", trialdata.title_claim(
        [(column(name), get(name)) for name in ("scientific_title", "public_title") if name in where]))
    countries = get("countries")
    status = trialdata.status_claims(
        get, {logical: column(name) for name, logical in STATUS_FIELDS.items() if name in where},
        country_separator=";" if countries and ";" in countries else ",", names=STATUS_FIELDS)
    claims.update(status)
    observed = trialdata.us_day(get("export_date"))
    if observed:
        claims["observed"] = Claim(observed, column("export_date"), STRUCTURED)
    # Results in the registry: TrialsTracker's `results_type` (its placeholder `No Results` says none were
    # found), the WHO export's `results date posted`, and a `results url link` to a results page.
    kind = row[where["results_type"]].strip().lower() if "results_type" in where else ""
    posted = trialdata.day(get("results_date"))
    if kind == "registry results" or (posted and "results_type" not in where):
        name = "results_type" if kind else "results_date"
        claims["results_registry"] = Claim(True, column(name), TABLE if kind else STRUCTURED,
                                           span="Registry Results" if kind else None)
        if posted:
            claims["results_registry_date"] = Claim(posted, column("results_date"), STRUCTURED)
    elif kind == "no results":
        claims["results_registry"] = Claim(False, column("results_type"), TABLE, span="No Results")
    link = fields.url(get("results_url"))
    if link and "result" in link.lower() and "results_registry" not in claims:
        claims["results_registry"] = Claim(True, column("results_url"), TABLE,
                                           rule="results link to a results page", span=link)
    return claims


def _summary(get) -> str | None:
    parts = [(label, get(name)) for label, name in (
        ("Scientific title", "scientific_title"), ("Acronym", "acronym"), ("Condition", "condition"),
        ("Intervention", "intervention"), ("Primary outcome", "primary_outcome"))]
    lines = [f"{label}: {value}" for label, value in parts if value]
    return "\n".join(lines) or None


def _notes(get, secondary) -> str | None:
    parts = [(label, fields.one_line(get(name))) for label, name in (
        ("Study type", "study_type"), ("Study design", "study_design"), ("Phase", "phase"),
        ("Recruitment status", "recruitment_status"), ("Target size", "target_size"),
        ("Countries", "countries"), ("Primary sponsor", "sponsor"))]
    lines = [f"{label}: {value}" for label, value in parts if value]
    if secondary:
        lines.append("Secondary IDs: " + ", ".join(i for i, _ in secondary))
    return "\n".join(lines) or None
