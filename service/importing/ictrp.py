"""WHO ICTRP trial lists (CSV): the WHO export's 40/58 columns, and the layouts derived from it.

Each row is one registry record: it becomes a study (named by its main identifier, its secondary
identifiers as further registrations: ICTRP "bridging", so two records of one trial make one study)
with a `trial_registry_record` reference. The facets are read from the registry's own words by the
rules below, `Unclear` when none applies — never a guess.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from collections.abc import Iterator

from ..domain.linking import canonical_identifier
from ..identifiers import canonical, find_identifiers
from ..vocabularies import UNCLEAR

# Our field -> the column names the known layouts give it (WHO export; TrialsTracker; DIRECCT).
COLUMNS = {
    "id": ("TrialID", "trialid", "trn"),
    "title": ("Public title", "public_title"),
    "scientific_title": ("Scientific title", "scientific_title"),
    "registry": ("Source Register", "source_register", "registry"),
    "registered": ("Date registration", "date_registration"),
    "registered_compact": ("Date registration3",),  # YYYYMMDD: the WHO export's unambiguous copy
    "url": ("web address", "web_address"),
    "study_type": ("Study type", "study_type"),
    "study_design": ("Study design", "study_design"),
    "phase": ("Phase", "phase"),
    "status": ("Recruitment Status", "recruitment_status"),
    "secondary_ids": ("Secondary ID", "Secondary IDs", "SecondaryIDs", "cross_registrations"),
    "results": ("results yes no", "results_type"),
    "results_url": ("results url link", "results_link"),
}
REQUIRED = ("id", "title")
_MISSING = {"", "na", "n/a", "none", "null", "not available", "no results", "not applicable"}


def _value(row: dict, columns: dict[str, str], name: str) -> str | None:
    column = columns.get(name)
    text = (row.get(column) or "").strip() if column else ""
    text = re.sub(r"\s+", " ", text)
    return None if text.lower() in _MISSING else text


def study_type(text: str | None) -> str:
    t = (text or "").lower()
    for word, value in (("observational", "Observational"), ("interventional", "Interventional"),
                        ("diagnostic", "Diagnostic"), ("prognos", "Prognostic"),
                        ("qualitative", "Qualitative"), ("economic", "Economic")):
        if word in t:
            return value
    return UNCLEAR


def assignment(design: str | None, kind: str) -> str:
    t = (design or "").lower()
    if re.search(r"non[- ]?random", t):
        return "Non-randomised"
    if "random" in t:
        return "Randomised"
    if kind == "Observational":
        return "Not applicable"
    return UNCLEAR


def study_design(design: str | None) -> str:
    t = (design or "").lower()
    for pattern, value in ((r"factorial", "Factorial"), (r"cluster", "Cluster"),
                           (r"adaptive|platform", "Platform/Adaptive"),
                           (r"single[- ]?(group|arm)", "Single arm"),
                           (r"parallel|cross[- ]?over", "Parallel/Crossover"),
                           (r"case[- ]control", "Case-control"), (r"cross[- ]sectional", "Cross-sectional"),
                           (r"case series", "Case series"), (r"cohort", "Cohort")):
        if re.search(pattern, t):
            return value
    return UNCLEAR


def study_aim(design: str | None) -> str:
    t = (design or "").lower()
    match = re.search(r"(?:primary )?purpose:\s*([a-z /_-]+)", t)
    purpose = match.group(1) if match else ""
    for pattern, value in ((r"treatment|supportive", "Treatment and Management"),
                           (r"prevention|prophyla", "Prevention"), (r"diagnos|screening", "Diagnosis"),
                           (r"prognos", "Prognosis"), (r"health services", "Health Services and Policy")):
        if re.search(pattern, purpose):
            return value
    return UNCLEAR


def _day(text: str | None) -> str | None:
    if text and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text
    if text and re.fullmatch(r"\d{8}", text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if text and (m := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", text)):  # registries write 27/01/2020
        return f"{m.group(3)}-{m.group(2)}-{m.group(1)}"
    return None


def _has_results(text: str | None) -> bool:
    t = (text or "").lower()
    return t in ("yes", "true") or any(w in t for w in ("article", "results", "pre-print", "preprint"))


def _secondary(text: str | None) -> list[str]:
    """The registration identifiers of a secondary-ids cell (`;`/`,`-separated items, each an
    identifier of a known registry, or free text mentioning some)."""
    found = []
    for item in re.split(r"[;,]", text or ""):
        known = canonical(item.strip())
        found += [known[0]] if known else [hit.identifier for hit in find_identifiers(item)]
    return found


def row_record(row: dict, columns: dict[str, str]) -> dict:
    """One row as a register-shaped study with its registry record (partial: only what it says)."""
    main = _value(row, columns, "id")
    title = _value(row, columns, "title") or _value(row, columns, "scientific_title")
    main_id = canonical_identifier(main) if main else main
    registrations = [{"identifier": main_id}] if main_id else []
    for identifier in _secondary(_value(row, columns, "secondary_ids")):
        if identifier != main_id and identifier not in [r["identifier"] for r in registrations]:
            registrations.append({"identifier": identifier})
    kind = study_type(_value(row, columns, "study_type"))
    design = _value(row, columns, "study_design")
    notes = "; ".join(f"{label}: {v}" for label, v in (
        ("Recruitment status", _value(row, columns, "status")), ("Phase", _value(row, columns, "phase")),
        ("Study design", design)) if v)
    reference = {"type": "trial_registry_record", "title": title, "registration_id": main_id,
                 "source": _value(row, columns, "registry"), "url": _value(row, columns, "url"),
                 "published": _day(_value(row, columns, "registered_compact"))
                 or _day(_value(row, columns, "registered")),
                 "has_results": _has_results(_value(row, columns, "results")),
                 "notes": notes or None}
    return {"name": main_id, "title": title, "registrations": registrations, "study_type": kind,
            "study_aim": study_aim(design), "study_design": study_design(design),
            "intervention_assignment": assignment(design, kind),
            "references": [{k: v for k, v in reference.items() if v is not None}]}


def header_columns(header: list[str]) -> dict[str, str]:
    """Our field -> the file's column; raise ValueError naming what is missing."""
    present = {h.strip().lstrip("\ufeff"): h for h in header}
    columns = {}
    for name, names in COLUMNS.items():
        for candidate in names:
            if candidate in present:
                columns[name] = present[candidate]
                break
    missing = [n for n in REQUIRED if n not in columns]
    if missing:
        wanted = "; ".join(f"{n}: one of {', '.join(COLUMNS[n])}" for n in missing)
        raise ValueError(f"not an ICTRP trial list: the header lacks {wanted} "
                         f"(it has {', '.join(list(present)[:8])}{'...' if len(present) > 8 else ''})")
    return columns


def open_text(raw: io.BufferedIOBase, encoding: str | None) -> tuple[io.TextIOBase, str]:
    """A text stream over ``raw`` (gzip recognised): the named encoding, else UTF-8 (BOM or not) when
    the first 1 MiB decodes as UTF-8, else Windows-1252."""
    if raw.peek(2)[:2] == b"\x1f\x8b":
        raw = io.BufferedReader(gzip.GzipFile(fileobj=raw))
    if encoding is None:
        sample = raw.peek(1 << 20)
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
            encoding = "utf-8-sig"
        except UnicodeDecodeError:
            encoding = "cp1252"
    return io.TextIOWrapper(raw, encoding=encoding, newline=""), encoding


def rows(text: io.TextIOBase) -> Iterator[tuple[int, dict]]:
    """(line number of the row's start, row) for each data row; the header is checked first."""
    reader = csv.reader(text)
    header = next(reader, None)
    if not header:
        raise ValueError("empty file: no header row")
    columns = header_columns(header)
    width = len(header)
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        if len(values) != width:
            yield start, {"__error__": f"{len(values)} fields where the header has {width}"}
            continue
        yield start, row_record(dict(zip(header, values, strict=True)), columns)
