"""The DIRECCT study's link files (SOURCES.md, links/): a trial's cross-registrations, its results and
publications, and the registries' own record of them.

* ``direcct-registrations`` (`id, trn, registry, ids_old, resolved`): the rows of one DIRECCT trial id are
  the registrations of one trial; they become the registrations of one study (``CrossRegistrations``).
  A trial's rows are not always next to each other in the real file (83 of its 10,163 trials are split),
  so the file is read whole and grouped by trial id in order of first appearance: about 10,650 small
  tuples, a few MB for the real file.
* ``direcct-results`` (`id, pub_type, doi, pmid, url, date_publication, ...`): each row a publication of a
  trial (journal article, preprint, registry summary results, protocol, other). The file names DIRECCT
  trial ids only, so it needs the registrations file as its trial-id map; each reference's `notes` say in a
  sentence which registrations it is about, and the register's automatic linking does the rest. Rows of
  the same publication (DOI, else PMID, else URL) become one reference.
* ``direcct-registries`` (the April 2022 registry scrape): one ``RegistryStatus`` per registration, its
  status, primary completion date, registry results flag and last update as claims (``parse_registries``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from ..identifiers import canonical
from ..vocabularies import UNCLEAR
from . import (
    STRUCTURED,
    TABLE,
    ArticleRecord,
    Claim,
    CrossRegistrations,
    FormatError,
    RegistryStatus,
    Row,
    RowError,
    fields,
    trialdata,
)
from .reading import READ_ERRORS, Bounds, TooLarge, csv_rows, open_text

REGISTRATION_COLUMNS = ("id", "trn", "registry", "ids_old", "resolved")
RESULT_COLUMNS = ("id", "search_type", "pub_type", "full_pub_group", "search_engine", "doi", "pmid", "url",
                  "date_publication", "date_completion_reported", "date_completion", "date_final_enrollment",
                  "followup_primary", "followup_secondary", "estimated_cd_enrollment")
REGISTRY_COLUMNS = ("trn", "registry", "trial_status", "pcd", "scd", "rcd", "reg_results_status",
                    "other_results_1", "other_results_2", "last_updated", "web_address", "tabular_results",
                    "potential_other_results", "registry_scrape_date")
# The columns a file must have to be read as the format (the others are not used).
REQUIRED = {
    "direcct-registrations": ("id", "trn", "registry"),
    "direcct-results": ("id", "pub_type", "doi", "pmid", "url", "date_publication"),
    "direcct-registries": ("trn", "registry", "trial_status", "reg_results_status", "tabular_results"),
}
EXPECTED = {"direcct-registrations": REGISTRATION_COLUMNS, "direcct-results": RESULT_COLUMNS,
            "direcct-registries": REGISTRY_COLUMNS}

# DIRECCT's registry names -> the register's registry codes (vocabularies.REGISTRIES). All 20 names of the
# real file; a name not listed rejects its trial.
REGISTRIES = {
    "ClinicalTrials.gov": "ClinicalTrials.gov", "CTRI": "CTRI", "ChiCTR": "ChiCTR", "IRCT": "IRCT",
    "EudraCT": "EudraCT", "DRKS": "DRKS", "ISRCTN": "ISRCTN", "UMIN-CTR": "UMIN-CTR", "ANZCTR": "ANZCTR",
    "ReBec": "ReBEC", "NTR": "NTR", "jRCT": "jRCT", "TCTR": "TCTR", "PACTR": "PACTR", "RPCEC": "RPCEC",
    "REPEC": "REPEC", "CRiS": "CRiS", "SLCTR": "SLCTR", "JapicCTI": "JapicCTI", "LBCTR": "LBCTR",
}

# pub_type -> (reference type or None: told by the identifiers, has_results, words for titles and notes)
PUB_TYPES = {
    "full_results_journal_article": ("journal_article", True, "journal article with full results",
                                     "Full results of"),
    "interim_results_journal_article": ("journal_article", True, "journal article with interim results",
                                        "Interim results of"),
    "full_results_preprint": ("preprint", True, "preprint with full results", "Full results of"),
    "interim_results_preprint": ("preprint", True, "preprint with interim results", "Interim results of"),
    "summary_results": ("report", True, "summary results in a trial registry", "Summary results of"),
    "protocol": (None, False, "protocol", "Protocol of"),
    "other": (None, False, "publication", "Publication about"),
}
# DOI prefixes of preprint servers: a protocol or other publication with one of these is a preprint.
PREPRINT_DOI_PREFIXES = {
    "10.1101": "medRxiv / bioRxiv", "10.21203": "Research Square", "10.2139": "SSRN",
    "10.20944": "Preprints.org",
}
_DOI = re.compile(r"10\.\d{4,9}/\S+")
# How the title of a study made from cross-registrations alone begins (a record's title replaces it).
PLACEHOLDER_PREFIX = "Untitled trial registered as"


# -- reading ---------------------------------------------------------------------------------------------

def _rows(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line, values by column name) for each record, or (line, reason) for a record of the wrong width;
    FormatError when the header is not the format's or the CSV cannot be read."""
    names: list[str] = []

    def on_header(header: list[str]) -> None:
        names.extend(h.replace("\ufeff", "").strip().lower() for h in header)
        missing = [c for c in REQUIRED[fmt] if c not in names]
        if missing:
            raise FormatError(_wrong_header(fmt, header, missing))

    for line, row, error in csv_rows(stream, on_header):
        yield (line, error) if error is not None else (line, dict(zip(names, row, strict=True)))


def _wrong_header(fmt: str, header: list[str], missing: list[str]) -> str:
    shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
    names = {h.strip().lower() for h in header}
    hint = next((f" It looks like DIRECCT's {other.removeprefix('direcct-')} file: use the format {other}."
                 for other, required in REQUIRED.items() if other != fmt and set(required) <= names), "")
    return (f"The header ({shown}) is not DIRECCT's {fmt.removeprefix('direcct-')} file: it lacks "
            f"{', '.join(repr(m) for m in missing)}; expected the columns "
            f"{', '.join(EXPECTED[fmt])}.{hint}")


def _value(values: dict[str, str], name: str) -> str | None:
    return fields.one_line(values.get(name))


# -- cross-registrations -----------------------------------------------------------------------------------

class _Trial:
    __slots__ = ("key", "line", "identifiers", "error")

    def __init__(self, key: str, line: int):
        self.key, self.line = key, line
        self.identifiers: list[tuple[str, str]] = []
        self.error: str | None = None


def read_trials(stream: TextIO) -> tuple[dict[str, _Trial], list[tuple[int, str]], dict[str, str]]:
    """The trials of a registrations file by trial id (in order of first appearance), the rows that belong
    to no trial (line, reason), and the old trial ids (`ids_old`) that name one trial only -> that trial."""
    trials: dict[str, _Trial] = {}
    loose: list[tuple[int, str]] = []
    owner: dict[str, tuple[str, int]] = {}  # identifier -> (trial id, line)
    old: dict[str, set[str]] = {}
    for line, values in _rows(stream, "direcct-registrations"):
        if isinstance(values, str):
            loose.append((line, values))
            continue
        key = _value(values, "id")
        if not key:
            loose.append((line, "has no trial id (`id`)."))
            continue
        trial = trials.get(key)
        if trial is None:
            trial = trials[key] = _Trial(key, line)
        for name in (_value(values, "ids_old") or "").split(";"):
            if name.strip() and name.strip() != key:
                old.setdefault(name.strip(), set()).add(key)
        if trial.error is not None:
            continue
        error = _add_registration(trial, line, values, owner)
        if error:
            trial.error = f"trial {key}: line {line} {error} The trial is not imported."
    aliases = {name: next(iter(keys)) for name, keys in old.items() if len(keys) == 1 and name not in trials}
    return trials, loose, aliases


def _registration(values: dict[str, str]) -> tuple[str, str]:
    """The canonical registration number of a row (`trn`) and its registry, which the row's `registry`
    column must name; RowError saying what is wrong otherwise."""
    raw, named = _value(values, "trn"), _value(values, "registry")
    if not raw:
        raise RowError("has no registration number (`trn`).")
    found = canonical(raw)
    if found is None:
        raise RowError(f"registration number {raw!r} is not one of a known registry.")
    identifier, registry = found
    expected = REGISTRIES.get(named or "")
    if expected is None:
        raise RowError(f"names the registry {named!r}, which is not one of DIRECCT's registry names "
                       f"({', '.join(REGISTRIES)}).")
    if expected != registry:
        raise RowError(f"registration number {raw!r} is a {registry} number, but its registry column says "
                       f"{named!r}.")
    return identifier, registry


def _add_registration(trial: _Trial, line: int, values: dict[str, str],
                      owner: dict[str, tuple[str, int]]) -> str | None:
    try:
        identifier, registry = _registration(values)
    except RowError as error:
        return str(error)
    if identifier in owner and owner[identifier][0] != trial.key:
        other, other_line = owner[identifier]
        return f"registration {identifier} is already one of trial {other} (line {other_line})."
    owner.setdefault(identifier, (trial.key, line))
    if all(identifier != i for i, _ in trial.identifiers):
        trial.identifiers.append((identifier, registry))
    return None


def placeholder_study(identifiers: list[tuple[str, str]]) -> dict:
    shown = ", ".join(_show(i, r) for i, r in identifiers)
    return {"name": identifiers[0][0],
            "title": f"{PLACEHOLDER_PREFIX} {shown} (title not given by DIRECCT)",
            "study_type": UNCLEAR, "study_aim": UNCLEAR, "study_design": UNCLEAR,
            "intervention_assignment": UNCLEAR}


def _show(identifier: str, registry: str) -> str:
    """An identifier as a reader (and the register's linking) recognises it: bare EudraCT and CTIS numbers
    with their registry's name."""
    return identifier if identifier[:1].isalpha() else f"{registry} {identifier}"


def parse_registrations(stream: TextIO, info: dict) -> Iterator[Row]:
    """One row per trial, at the line of its first registration; `rows` in the report counts trials."""
    info["layout"] = "direcct-registrations"
    trials, loose, _ = read_trials(stream)
    out: list[Row] = [Row(line, error=reason) for line, reason in loose]
    for trial in trials.values():
        if trial.error is not None:
            out.append(Row(trial.line, error=trial.error))
        else:
            out.append(Row(trial.line, record=CrossRegistrations(
                key=trial.key, identifiers=trial.identifiers, study=placeholder_study(trial.identifiers))))
    out.sort(key=lambda row: row.line)
    yield from out


# -- results -----------------------------------------------------------------------------------------------

def load_trial_map(stream: BinaryIO, bounds: Bounds | None = None) -> dict[str, list[tuple[str, str]]]:
    """Trial id (current or old) -> its registrations, from DIRECCT's registrations file (plain or gzip,
    unpacked within ``bounds``). Trials the registrations import would reject are left out."""
    try:
        with open_text(stream, bounds=bounds) as (text, _):
            try:
                trials, _, aliases = read_trials(text)
            except READ_ERRORS as error:
                raise FormatError(f"it cannot be read: {error}.") from None
    except TooLarge as error:
        raise TooLarge(f"The trial-id map (DIRECCT's registrations file) is refused: {error}") from None
    except FormatError as error:
        raise FormatError(f"The trial-id map (DIRECCT's registrations file) is refused: {error}") from None
    known = {key: trial.identifiers for key, trial in trials.items() if trial.error is None}
    known.update({name: known[key] for name, key in aliases.items() if key in known})
    return known


def parse_results(stream: TextIO, info: dict) -> Iterator[Row]:
    """One reference per publication; rows naming the same DOI (else PMID, else URL) are merged into one,
    at the line of the first."""
    source = info.get("trial_ids")
    if source is None:
        raise FormatError("DIRECCT's results list names trials by DIRECCT trial id only: give DIRECCT's "
                          "registrations file as the trial-id map (CLI `--trial-ids FILE`, or the multipart "
                          "part `trial_ids` of POST /imports).")
    trial_map = load_trial_map(source, info.get("bounds")) if not isinstance(source, dict) else source
    info["layout"] = "direcct-results"
    groups: list[list[tuple[int, dict]]] = []
    by_key: dict[tuple[str, str], int] = {}
    errors: list[Row] = []
    for line, values in _rows(stream, "direcct-results"):
        if isinstance(values, str):
            errors.append(Row(line, error=values))
            continue
        publication, error = _publication(values, trial_map)
        if error:
            errors.append(Row(line, error=error))
            continue
        keys = [(k, publication[k]) for k in ("doi", "pmid") if publication.get(k)] or [
            ("url", publication["url"])]
        index = next((by_key[k] for k in keys if k in by_key), None)
        if index is None:
            index = len(groups)
            groups.append([])
        groups[index].append((line, publication))
        for k in keys:
            by_key.setdefault(k, index)
    out = errors
    for group in groups:
        try:
            out.append(Row(group[0][0], record=_merge(group)))
        except RowError as error:
            out.append(Row(group[0][0], error=str(error)))
    out.sort(key=lambda row: row.line)
    yield from out


def _publication(values: dict[str, str], trial_map: dict) -> tuple[dict, str | None]:
    trial = _value(values, "id")
    if not trial:
        return {}, "has no trial id (`id`)."
    identifiers = trial_map.get(trial)
    if not identifiers:
        return {}, (f"trial {trial} is not in the trial-id map (DIRECCT's registrations file), or its "
                    f"registrations were rejected there.")
    pub_type = (_value(values, "pub_type") or "").lower()
    if pub_type not in PUB_TYPES:
        return {}, (f"publication type {values.get('pub_type')!r} is not one of "
                    f"{', '.join(PUB_TYPES)}.")
    raw_doi = _value(values, "doi")
    doi_match = _DOI.search(raw_doi or "")
    doi = doi_match.group(0).rstrip(".").lower() if doi_match else None
    pmid = _value(values, "pmid")
    if pmid and not pmid.isdigit():
        return {}, f"PMID {pmid!r} is not a number."
    url = fields.url(_value(values, "url"))
    if raw_doi and not doi:
        return {}, f"DOI {raw_doi!r} is not a DOI (10.xxxx/...)."
    if not (doi or pmid or url):
        return {}, "has no DOI, PMID or URL: nothing says which publication it is."
    kind, has_results, label, sentence = PUB_TYPES[pub_type]
    if kind is None:
        if doi and doi.split("/", 1)[0] in PREPRINT_DOI_PREFIXES:
            kind = "preprint"
        elif pmid:
            kind = "journal_article"
        else:
            kind = "other"
    return {"trial": trial, "identifiers": identifiers, "pub_type": pub_type, "type": kind,
            "has_results": has_results, "label": label, "sentence": sentence, "doi": doi,
            "pmid": (pmid.lstrip("0") or None) if pmid else None, "url": url,
            "published": fields.partial_date(_value(values, "date_publication")),
            "search": _value(values, "search_type"), "engine": _value(values, "search_engine")}, None


def _merge(group: list[tuple[int, dict]]) -> ArticleRecord:
    """One reference from the rows of one publication: type and title from the first row reporting
    results (else the first row), one line of notes per row."""
    main = next((p for _, p in group if p["has_results"]), group[0][1])
    doi = next((p["doi"] for _, p in group if p["doi"]), None)
    pmid = next((p["pmid"] for _, p in group if p["pmid"]), None)
    published = main["published"] or next((p["published"] for _, p in group if p["published"]), None)
    what = f"doi:{doi}" if doi else f"PMID {pmid}" if pmid else main["url"]
    first = main["identifiers"][0]
    notes = []
    for _, p in group:
        note = _note(p)
        if note not in notes:
            notes.append(note)
    reference = {
        "type": main["type"],
        "title": f"Untitled {main['label']} of {_show(*first)}: {what} (title not given by DIRECCT)",
        "year": int(published[:4]) if published else None,
        "published": published,
        "doi": doi,
        "pmid": pmid,
        "url": main["url"],
        "has_results": any(p["has_results"] for _, p in group),
        "notes": "\n".join(notes),
    }
    fields.check_limits(reference)
    return ArticleRecord(reference=reference, supplement=True)


def _note(p: dict) -> str:
    """A sentence naming the trial's registrations, which the register's linking finds in `notes`."""
    shown = ", ".join(_show(i, r) for i, r in p["identifiers"])
    found = f", found by {p['search']} search" if p["search"] else ""
    found += f" in {p['engine']}" if p["engine"] and found else ""
    return (f"{p['sentence']} the trial registered as {shown} (DIRECCT trial {p['trial']}: "
            f"{p['pub_type']}{found}).")


# -- registry scrape -----------------------------------------------------------------------------------------

def parse_registries(stream: TextIO, info: dict) -> Iterator[Row]:
    """One ``RegistryStatus`` per row: what the registry said of the registration in April 2022.

    * `trial_status` -> recruitment_status (every registry's spelling, trialdata.recruitment_status; EU
      CTR's list of member-state statuses gives one status);
    * `pcd` -> primary_completion_date; `scd` (study completion) and `rcd` (the completion date DIRECCT
      used: primary, else study) have no study field and are not read;
    * `reg_results_status` (`Study Results`, `View results`, `Basic results ...` -> true; `No Results
      Posted`, `Results Submitted` (submitted, not posted) -> false) and `tabular_results` (`TRUE`) ->
      results_registry; the scrape gives no date of the results;
    * `last_updated` -> record_updated.

    A row without a known registration number, or whose number is not of the registry it names, is
    rejected."""
    info["layout"] = "direcct-registries"
    for line, values in _rows(stream, "direcct-registries"):
        if isinstance(values, str):
            yield Row(line, error=values)
            continue
        try:
            yield Row(line, record=_status(values))
        except RowError as error:
            yield Row(line, error=str(error))


REGISTRY_RESULTS = {"study results": True, "view results": True, "no results posted": False,
                    "results submitted": False}


def _status(values: dict[str, str]) -> RegistryStatus:
    identifier, registry = _registration(values)
    claims: dict[str, Claim] = {}
    status = (values.get("trial_status") or "").strip()
    label = trialdata.recruitment_status(status)
    if label:
        claims["recruitment_status"] = Claim(label, "trial_status", TABLE, span=status[:120])
    for column, name in (("pcd", "primary_completion_date"), ("last_updated", "record_updated")):
        when = trialdata.day(values.get(column))
        if when:
            claims[name] = Claim(when, column, STRUCTURED)
    scraped = trialdata.day_or_month(values.get("registry_scrape_date"))
    if scraped:
        claims["observed"] = Claim(scraped[0], "registry_scrape_date", STRUCTURED,
                                   rule="first day of the month given" if scraped[1] == "month" else None)
    tabular = (values.get("tabular_results") or "").strip().upper()
    posted = (values.get("reg_results_status") or "").strip()
    said = REGISTRY_RESULTS.get(posted.lower(), True if posted.lower().startswith("basic results") else None)
    if tabular == "TRUE":
        claims["results_registry"] = Claim(True, "tabular_results", STRUCTURED, span="TRUE")
    elif said is not None:
        claims["results_registry"] = Claim(said, "reg_results_status", TABLE, span=posted[:120])
    return RegistryStatus(identifier=identifier, registry=registry, claims=claims)
