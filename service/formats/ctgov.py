"""ClinicalTrials.gov API v2 study JSON: one study, a page (``{"studies": [...]}``), or NDJSON (one study
per line). Each study is a registry record: the study with its NCT registration and the registrations of
other registries it lists as secondary ids, plus its `trial_registry_record` reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from ..identifiers import canonical
from . import STRUCTURED, Claim, FormatError, RegistryRecord, Row, RowError, facets, fields, trialdata
from .reading import load_json

# A page holds at most 1,000 studies (the API's cap), so a JSON document is read whole; NDJSON streams.
MAX_DOCUMENT_CHARS = 256 * 1024 * 1024


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    first = ""
    first_line = 0
    for number, line in enumerate(stream, 1):
        if line.strip():
            first, first_line = line, number
            break
    if not first:
        raise FormatError("The file is empty.")
    if not first.lstrip().startswith("{"):
        raise FormatError("This is not ClinicalTrials.gov JSON: it does not start with `{`.")
    try:
        document = load_json(first)
    except json.JSONDecodeError:
        document = None
    except RowError as error:
        raise FormatError(f"Line {first_line} {error}") from None
    if isinstance(document, dict) and "protocolSection" in document:
        info["layout"] = "ndjson"
        yield _row(first_line, document)
        for number, line in enumerate(stream, first_line + 1):
            if not line.strip():
                continue
            try:
                study = load_json(line)
            except json.JSONDecodeError as error:
                raise FormatError(f"Line {number} is not a JSON object ({error.msg}); NDJSON needs one "
                                  f"study per line (truncated?).") from None
            except RowError as error:
                yield Row(number, error=str(error))
                continue
            yield _row(number, study)
        return
    rest = stream.read(MAX_DOCUMENT_CHARS)
    if stream.read(1):
        raise FormatError("The JSON document is too large; send pages of at most 1,000 studies or NDJSON.")
    try:
        document = load_json(first + rest)
    except RowError as error:
        raise FormatError(f"The JSON document {error}") from None
    except json.JSONDecodeError as error:
        raise FormatError(f"The file is not valid JSON at line {first_line + error.lineno - 1} "
                          f"({error.msg}; truncated?).") from None
    if isinstance(document, dict) and "protocolSection" in document:
        info["layout"] = "study"
        yield _row(1, document)
    elif isinstance(document, dict) and isinstance(document.get("studies"), list):
        info["layout"] = "page"
        for index, study in enumerate(document["studies"], 1):
            yield _row(index, study)
    else:
        raise FormatError("This is not ClinicalTrials.gov API v2 JSON: expected a study (with "
                          "`protocolSection`) or a page (`{\"studies\": [...]}`).")


def _row(line: int, study: Any) -> Row:
    try:
        return Row(line, record=map_study(study))
    except RowError as error:
        return Row(line, error=str(error))


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def map_study(study: Any, names: dict[str, str] | None = None) -> RegistryRecord:
    """The registry record of a ClinicalTrials.gov API v2 study; ``names`` renames the JSON paths of its
    claims (`statusModule.overallStatus`) to the columns of the layout it was read from (AACT)."""
    if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
        raise RowError("is not a ClinicalTrials.gov study (no `protocolSection`).")
    ps = study["protocolSection"]
    raw_id = _get(ps, "identificationModule", "nctId")
    known = canonical(raw_id) if isinstance(raw_id, str) else None
    if known is None or known[1] != "ClinicalTrials.gov":
        raise RowError(f"has no valid `identificationModule.nctId` (got {raw_id!r}).")
    identifier = known[0]
    title = fields.one_line(_str(_get(ps, "identificationModule", "briefTitle"))) or fields.one_line(
        _str(_get(ps, "identificationModule", "officialTitle")))
    if not title:
        raise RowError(f"{identifier} has no title.")
    secondary = []
    for item in _get(ps, "identificationModule", "secondaryIdInfos") or []:
        found = canonical(item["id"]) if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        if found and found[0] != identifier and found not in secondary:
            secondary.append(found)
    # A registry record is dated by its registration, as the WHO lists date it (their `Date registration`
    # of an NCT record is its first submission): the same record reads the same from either source. The
    # first-posted date is the fallback.
    registered = _str(_get(ps, "statusModule", "studyFirstSubmitDate")) or _str(
        _get(ps, "statusModule", "studyFirstPostDateStruct", "date"))
    published = fields.partial_date(registered)
    reference = {
        "type": "trial_registry_record",
        "title": title,
        "abstract": _summary(ps),
        "source": "ClinicalTrials.gov",
        "year": int(published[:4]) if published else None,
        "published": published,
        "url": f"https://clinicaltrials.gov/study/{identifier}",
        "registration_id": identifier,
        "has_results": study.get("hasResults") is True,
        "notes": _notes(ps, secondary),
    }
    fields.check_limits(reference)
    claims = claims_of(study, names or {})
    study_values = {"name": identifier, "title": title, **facets.values(facets.without_titles(claims))}
    return RegistryRecord(identifier=identifier, registry="ClinicalTrials.gov", study=study_values,
                          reference=reference, secondary=secondary, claims=claims)


def claims_of(study: dict, names: dict[str, str]) -> dict[str, Claim]:
    """Everything a ClinicalTrials.gov study states about itself (formats.Claim), by study field: its
    enums and dates are STRUCTURED; its titles saying "randomised" are TEXT, used when the design does
    not say."""
    ps = study["protocolSection"]

    def path(name: str) -> str:
        return names.get(name, name)

    design = _get(ps, "designModule")
    claims = facets.ctgov_claims(design if isinstance(design, dict) else {}, names)
    trialdata.put(claims, "intervention_assignment", trialdata.title_claim(
        [(path(f"identificationModule.{key}"), _str(_get(ps, "identificationModule", key)))
         for key in ("officialTitle", "briefTitle")]))
    status = _str(_get(ps, "statusModule", "overallStatus"))
    if status and trialdata.recruitment_status(status):
        claims["recruitment_status"] = Claim(trialdata.recruitment_status(status),
                                             path("statusModule.overallStatus"), STRUCTURED, span=status)
    phases = _get(ps, "designModule", "phases")
    if trialdata.ctgov_phase(phases):
        claims["phase"] = Claim(trialdata.ctgov_phase(phases), path("designModule.phases"), STRUCTURED,
                                span="/".join(phases))
    count = _get(ps, "designModule", "enrollmentInfo", "count")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        kind = _str(_get(ps, "designModule", "enrollmentInfo", "type"))
        claims["target_size"] = Claim(count, path("designModule.enrollmentInfo.count"), STRUCTURED,
                                      span=f"{count} ({kind.lower()})" if kind else None)
    places = [_str(item.get("country")) for item in _get(ps, "contactsLocationsModule", "locations") or []
              if isinstance(item, dict)]
    found = trialdata.countries(";".join(p for p in places if p), ";") if any(places) else None
    if found:
        claims["countries"] = Claim(found[0], path("contactsLocationsModule.locations.country"), STRUCTURED,
                                    rule=f"not recognised: {'; '.join(found[1])}" if found[1] else None)
    sponsor = fields.one_line(_str(_get(ps, "sponsorCollaboratorsModule", "leadSponsor", "name")))
    if sponsor:
        claims["sponsor"] = Claim(sponsor, path("sponsorCollaboratorsModule.leadSponsor.name"), STRUCTURED)
    for name, keys in (("registered", ("studyFirstSubmitDate",)), ("start_date", ("startDateStruct", "date")),
                       ("primary_completion_date", ("primaryCompletionDateStruct", "date")),
                       ("record_updated", ("lastUpdatePostDateStruct", "date")),
                       ("results_registry_date", ("resultsFirstPostDateStruct", "date"))):
        written = _str(_get(ps, "statusModule", *keys))
        when = trialdata.day_or_month(written)
        if when:
            claims[name] = Claim(when[0], path(".".join(("statusModule", *keys))), STRUCTURED,
                                 rule="first day of the month given" if when[1] == "month" else None,
                                 span=written if when[1] == "month" else None)
    if "results_registry_date" in claims:
        claims["results_registry"] = Claim(True, claims["results_registry_date"].field, STRUCTURED)
    elif isinstance(study.get("hasResults"), bool):
        claims["results_registry"] = Claim(study["hasResults"], path("hasResults"), STRUCTURED)
    return claims


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _names(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [item[key] if isinstance(item, dict) else item for item in items
            if isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get(key), str))]


def _summary(ps: dict) -> str | None:
    lines = []
    official = fields.one_line(_str(_get(ps, "identificationModule", "officialTitle")))
    if official:
        lines.append(f"Official title: {official}")
    summary = fields.text(_str(_get(ps, "descriptionModule", "briefSummary")))
    if summary:
        lines.append(summary)
    conditions = [c for c in _get(ps, "conditionsModule", "conditions") or [] if isinstance(c, str)]
    if conditions:
        lines.append("Conditions: " + "; ".join(conditions))
    interventions = _names(_get(ps, "armsInterventionsModule", "interventions"), "name")
    if interventions:
        lines.append("Interventions: " + "; ".join(interventions))
    return "\n".join(lines) or None


def _notes(ps: dict, secondary) -> str | None:
    phases = [p for p in _get(ps, "designModule", "phases") or [] if isinstance(p, str)]
    count = _get(ps, "designModule", "enrollmentInfo", "count")
    parts = [
        ("Study type", _str(_get(ps, "designModule", "studyType"))),
        ("Phase", ", ".join(phases) or None),
        ("Overall status", _str(_get(ps, "statusModule", "overallStatus"))),
        ("Enrollment", str(count) if isinstance(count, int) else None),
        ("Lead sponsor", _str(_get(ps, "sponsorCollaboratorsModule", "leadSponsor", "name"))),
    ]
    lines = [f"{label}: {value}" for label, value in parts if value]
    if secondary:
        lines.append("Secondary IDs: " + ", ".join(i for i, _ in secondary))
    return "\n".join(lines) or None
