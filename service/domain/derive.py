"""A study's fields from all of its sources: the four facets, its dates, trial status and dissemination.

Each source file states things about a registration (``formats.Claim``: value, the source's field, how
strongly); the import keeps them per registration and source (`source_record`). A study combines the
claims of every registration it holds, by these rules (written here once, applied to every study):

1. A value a curator set (`curated`) is never changed.
2. A stated value beats `Unclear`; a field no source states keeps the value it has (an API write, or a
   register upgraded from before source records were kept).
3. Otherwise the strongest claim wins: a registry's coded field (STRUCTURED) over its own words mapped by
   a table (TABLE) over a keyword rule on free text (TEXT); then the record the study is named by; then
   the newer source (the day it saw the record, else the record's last update it gives, else none; then
   when it was imported). For fields that change while a trial runs (status, sizes, dates to come) the
   newer source comes first, before strength.
4. Classifications agree with the study type: an observational study never gets an interventional design
   (parallel, single arm, cluster, factorial, platform) and has no assignment (`Not applicable`); an
   interventional one never gets an observational design (cohort, case-control, cross-sectional, case
   series).
5. Dates: `registered` is the earliest registration date any record states (else the earliest day a
   registry record of the study was published); `first_published`, when the study first appeared in its
   sources, is the earliest day any of its registry records was registered or published, else the
   earliest day a report of it was published, else the earliest day a source shows its record (last
   updated, or seen by a scrape); a study no source dates keeps the day it was written.
6. The title: a curator's; else the title of the record the study is named by; else, while the title is
   a placeholder (DIRECCT's cross-registrations carry none), the first record title of its registrations.
7. Dissemination: results in the registry (a record states summary results, its registry record or a
   linked registry summary report has results), in a journal article, in a preprint (a linked reference of
   that type with results), each with its earliest day.

Every derived value says where it came from in `facet_sources` (source, registration and field, or the
rule), with the other values sources state (`conflicts`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson

from ..db import any_of, before_commit, database, insert_rows, select_in, update_rows
from ..formats.direcct import PLACEHOLDER_PREFIX
from ..models import Study, StudyCountry, utcnow
from ..vocabularies import UNCLEAR

FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")
STATUS_FIELDS = ("recruitment_status", "phase", "target_size", "sponsor", "start_date",
                 "primary_completion_date")
# Fields whose newer source comes before a stronger one: they change while a trial runs.
CHANGING = {"recruitment_status", "target_size", "start_date", "primary_completion_date"}
DATE_FIELDS = {"registered", "start_date", "primary_completion_date", "first_published"}
INTERVENTIONAL_DESIGNS = {"Parallel/Crossover", "Single arm", "Cluster", "Factorial", "Platform/Adaptive"}
OBSERVATIONAL_DESIGNS = {"Cohort", "Case-control", "Cross-sectional", "Case series"}
ARTICLE_TYPES = {"journal_article", "journal_pre_proof", "letter"}
CHUNK = 500


def rederive(study_ids: Iterable[int], *, now: dt.datetime | None = None,
             dates: dict[int, dt.datetime] | None = None) -> set[int]:
    """Derive the fields of these studies from their sources and write what changed (with `updated` set
    to ``now``, or to the study's own date in ``dates``); returns the ids of the studies that changed. A
    fixed number of queries per 500 studies."""
    now = now or utcnow()
    changed_ids: set[int] = set()
    ids = sorted(set(study_ids))
    for start in range(0, len(ids), CHUNK):
        changed_ids |= _rederive_chunk(ids[start:start + CHUNK], now, dates or {})
    return changed_ids


def rederive_all() -> int:
    """Derive every study (after an upgrade, or by hand: `study-register rederive`); returns how many
    changed."""
    with database.atomic():
        ids = [i for (i,) in Study.select(Study.id).order_by(Study.id).tuples()]
        changed_ids = rederive(ids)
        if changed_ids:
            from ..search import index
            from . import changes

            index.refresh_many(changed_ids, [])
            changes.record_changes(studies=changed_ids)
    return len(changed_ids)


def _hook(pending) -> None:
    """Before a write commits: derive the studies it changed (their search documents are rewritten after)."""
    if pending.studies:
        rederive(pending.studies, dates=pending.study_dates)


before_commit.insert(0, _hook)


# -- reading -------------------------------------------------------------------------------------------

# The study columns derivation reads, in the order `_load` selects them.
STUDY_COLUMNS = ("id", "name", "title", "study_type", "study_aim", "study_design", "intervention_assignment",
                 "first_published", "registered", "start_date", "recruitment_status", "phase", "target_size",
                 "sponsor", "primary_completion_date", "results_registry", "results_registry_date",
                 "results_article", "results_article_date", "results_preprint", "results_preprint_date",
                 "countries", "facet_sources", "curated")


def _load(ids: list[int]):
    studies = {row[0]: row for row in select_in(
        f"SELECT {', '.join(STUDY_COLUMNS)} FROM study WHERE {{where}}", "id", ids)}
    registrations: dict[int, list[str]] = defaultdict(list)
    owner: dict[str, int] = {}
    for study_id, identifier, _ in sorted(select_in(
            "SELECT study_id, identifier, id FROM registration WHERE {where}", "study_id", ids),
            key=lambda row: row[2]):
        registrations[study_id].append(identifier)
        owner[identifier] = study_id
    sources: dict[int, list[dict]] = defaultdict(list)
    for identifier, source, title, claims, imported in select_in(
            "SELECT identifier, source, title, claims, imported FROM source_record WHERE {where}",
            "identifier", list(owner)):
        sources[owner[identifier]].append({
            "identifier": identifier, "source": source, "title": title,
            "claims": orjson.loads(claims or "{}"), "imported": _as_datetime(imported)})
    links: dict[int, list[tuple]] = defaultdict(list)
    for row in select_in(
            'SELECT l.study_id, r.type, r.has_results, r.published, r.registration_id, r.title, r.updated '
            'FROM study_reference AS l JOIN "reference" AS r ON r.id = l.reference_id '
            "WHERE l.role = 'reports' AND {where}",
            "l.study_id", ids):
        links[row[0]].append(row[1:])
    return studies, registrations, sources, links


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.min


def _as_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    text = str(value)
    try:
        if len(text) == 4:
            return dt.date(int(text), 1, 1)
        if len(text) == 7:
            return dt.date(int(text[:4]), int(text[5:7]), 1)
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


# -- deciding ------------------------------------------------------------------------------------------

def _recency(source: dict) -> tuple[str, str]:
    """How recent a source's view of its record is: the day the source saw it (`observed`: a registry
    scrape's day, an export's date), else the record's last update it gives, else nothing (lowest); then
    when it was imported."""
    claims = source["claims"]
    day = (claims.get("observed") or claims.get("record_updated") or {}).get("value") or ""
    return str(day), source["imported"].isoformat()


class _Claims:
    """Every claim of a study's sources by field, each field's ranked best first on first use."""

    def __init__(self, sources: list[dict], named: str):
        self.by_field: dict[str, list] = defaultdict(list)
        self.ranked: dict[str, list[tuple[tuple, dict, dict]]] = {}
        for source in sources:
            recency, mine = _recency(source), source["identifier"] == named
            for name, claim in source["claims"].items():
                if claim.get("value") not in (None, "", UNCLEAR, []):
                    self.by_field[name].append((recency, claim.get("strength", 0), mine, claim, source))

    def __call__(self, name: str) -> list[tuple[tuple, dict, dict]]:
        """(sort key, claim, source) of every claim of field ``name``, best first."""
        found = self.ranked.get(name)
        if found is None:
            changing = name in CHANGING
            # Ties (same strength, day and record) go to the source and registration named last in
            # alphabetical order: any fixed order, so both databases derive the same study.
            found = [((recency, strength, mine, source["source"], source["identifier"]) if changing
                      else (strength, mine, recency, source["source"], source["identifier"]), claim, source)
                     for recency, strength, mine, claim, source in self.by_field.get(name, ())]
            found.sort(key=lambda item: item[0], reverse=True)
            self.ranked[name] = found
        return found


def _origin(claim: dict, source: dict, others: list[tuple[tuple, dict, dict]]) -> dict:
    origin = {"source": source["source"], "registration": source["identifier"], "field": claim["field"],
              "strength": claim.get("strength")}
    for extra in ("rule", "span"):
        if claim.get(extra):
            origin[extra] = claim[extra]
    conflicts = []
    for _, other, where in others:
        if other["value"] != claim["value"] and all(c["value"] != other["value"] for c in conflicts):
            conflicts.append({"value": other["value"], "source": where["source"],
                              "registration": where["identifier"], "field": other["field"]})
    if conflicts:
        origin["conflicts"] = conflicts
    return origin


def _pick(name: str, candidates, current: Any, allowed=None) -> tuple[Any, dict | None]:
    """The value of a field from its candidates (those whose value ``allowed`` accepts), and its origin;
    (current, None) when no source states one."""
    usable = [c for c in candidates if allowed is None or allowed(c[1]["value"])]
    if not usable:
        return current, None
    _, claim, source = usable[0]
    return claim["value"], _origin(claim, source, usable[1:])


def derive_values(study: dict, identifiers: list[str], sources: list[dict], links: list[tuple],
                  curated: set[str], previous_origins: dict) -> tuple[dict, dict, list[str] | None]:
    """The derived values of one study (``study``: its current values by column), their origins, and its
    countries (None: keep). Pure: the rules of the module docstring."""
    named = study["name"]
    values: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    candidates_of = _Claims(sources, named)

    def decide(name, allowed=None, rule_when_none=None):
        if name in curated:
            origins[name] = {"rule": "set by a curator"}
            return study[name]
        value, origin = _pick(name, candidates_of(name), study[name], allowed)
        if origin is None:
            origins[name] = previous_origins.get(name) or (
                {"rule": rule_when_none} if rule_when_none else
                {"rule": "no source states it"} if value in (None, UNCLEAR) else
                {"rule": "as written (no source record states it)"})
        else:
            origins[name] = origin
        return value

    values["study_type"] = decide("study_type")
    kind = values["study_type"]
    if kind == "Observational":
        design_ok = lambda v: v not in INTERVENTIONAL_DESIGNS  # noqa: E731
    elif kind == "Interventional":
        design_ok = lambda v: v not in OBSERVATIONAL_DESIGNS  # noqa: E731
    else:
        design_ok = None
    values["study_design"] = decide("study_design", design_ok)
    if design_ok is not None and not design_ok(values["study_design"]) and "study_design" not in curated:
        values["study_design"] = UNCLEAR
        origins["study_design"] = {"rule": f"the design stated does not fit a {kind.lower()} study"}
    values["study_aim"] = decide("study_aim")
    if kind == "Observational" and "intervention_assignment" not in curated:
        values["intervention_assignment"] = "Not applicable"
        origins["intervention_assignment"] = {"rule": "an observational study assigns no intervention"}
    else:
        values["intervention_assignment"] = decide("intervention_assignment")
    for name in STATUS_FIELDS:
        values[name] = decide(name)
        if name in DATE_FIELDS:
            values[name] = _as_date(values[name])

    registry_records = [link for link in links if link[0] == "trial_registry_record"]
    record_days = [d for d in (_as_date(link[2]) for link in registry_records
                               if link[2] and len(link[2]) == 10) if d]
    if "registered" in curated:
        values["registered"] = study["registered"]
        origins["registered"] = {"rule": "set by a curator"}
    else:
        stated = [(_as_date(claim["value"]), claim, source) for _, claim, source
                  in candidates_of("registered")]
        stated = sorted(((d, c, s) for d, c, s in stated if d), key=lambda item: item[0])
        if stated:
            day, claim, source = stated[0]
            values["registered"] = day
            origins["registered"] = {"rule": "the earliest registration date of the study's records",
                                     "source": source["source"], "registration": source["identifier"],
                                     "field": claim["field"]}
        elif record_days:
            values["registered"] = min(record_days)
            origins["registered"] = {"rule": "the earliest day a registry record of the study was published"}
        else:
            values["registered"] = _as_date(study["registered"])
            origins["registered"] = previous_origins.get("registered") or {"rule": "no source states it"}
    if "first_published" in curated:
        values["first_published"] = study["first_published"]
        origins["first_published"] = {"rule": "set by a curator"}
    else:
        days = [d for d in [values["registered"], *record_days] if d]
        if days:
            values["first_published"] = min(days)
            origins["first_published"] = {"rule": "the earliest day a registry record of the study was "
                                                  "registered or published"}
        else:
            report_days = [d for d in (_as_date(link[2]) for link in links
                                       if link[2] and len(link[2]) == 10) if d]
            seen_days = [d for d in (_as_date(claim["value"]) for name in ("record_updated", "observed")
                                     for _, claim, _ in candidates_of(name)) if d]
            if report_days:
                values["first_published"] = min(report_days)
                origins["first_published"] = {"rule": "the earliest day a report of the study was published "
                                                      "(no registry record gives a day)"}
            elif seen_days:
                values["first_published"] = min(seen_days)
                origins["first_published"] = {"rule": "the earliest day a source shows the study's record "
                                                      "(updated or seen; no source gives its registration)"}
            else:
                values["first_published"] = _as_date(study["first_published"])
                origins["first_published"] = previous_origins.get("first_published") or {
                    "rule": "the day the study was written into the register"}

    countries = None
    if "countries" in curated:
        origins["countries"] = {"rule": "set by a curator"}
    else:
        candidates = candidates_of("countries")
        if candidates:
            best = candidates[0][0][0]
            top = [c for c in candidates if c[0][0] == best]
            countries = sorted({code for _, claim, _ in top for code in claim["value"]})
            origins["countries"] = _origin(top[0][1], top[0][2], candidates[len(top):])
            if len(top) > 1:
                origins["countries"]["rule"] = "the union of the strongest records' countries"

    if "title" in curated:
        origins["title"] = {"rule": "set by a curator"}
        values["title"] = study["title"]
    else:
        values["title"], origins["title"] = _title(study, identifiers, sources, registry_records,
                                                   previous_origins)

    # Dissemination.
    registry_days: list[dt.date] = []
    registry = False
    for _, claim, _ in candidates_of("results_registry"):
        registry = registry or claim["value"] is True
    for _, claim, _ in candidates_of("results_registry_date"):
        day = _as_date(claim["value"])
        if day:
            registry, registry_days = True, [*registry_days, day]
    article_days, preprint_days = [], []
    article = preprint = False
    for kind_, has_results, published, _, _, _ in links:
        if not has_results:
            continue
        day = _as_date(published) if published else None
        if kind_ in ("trial_registry_record", "report"):
            registry = True
            if day and kind_ == "report":
                registry_days.append(day)
        elif kind_ in ARTICLE_TYPES:
            article = True
            article_days += [day] if day else []
        elif kind_ == "preprint":
            preprint = True
            preprint_days += [day] if day else []
    if not registry and not candidates_of("results_registry"):
        # No source speaks of registry results (a register restored from its export): kept as they are.
        registry = study["results_registry"]
        registry_days = [d for d in [study["results_registry_date"]] if d]
    values.update({
        "results_registry": registry, "results_registry_date": min(registry_days) if registry_days else None,
        "results_article": article, "results_article_date": min(article_days) if article_days else None,
        "results_preprint": preprint, "results_preprint_date": min(preprint_days) if preprint_days else None,
    })
    return values, origins, countries


def _title(study: dict, identifiers: list[str], sources: list[dict], registry_records: list[tuple],
           previous_origins: dict) -> tuple[str, dict]:
    titles: dict[str, tuple[str, str, str]] = {}  # identifier -> (recency, title, where)
    for source in sources:
        if source["title"]:
            recency = source["imported"].isoformat()
            if source["identifier"] not in titles or titles[source["identifier"]][0] < recency:
                titles[source["identifier"]] = (recency, source["title"], source["source"])
    for _, _, _, registration_id, title, _ in registry_records:
        if registration_id and title and registration_id not in titles:
            titles[registration_id] = ("", title, "trial registry record")
    named = study["name"]
    if named in titles:
        _, title, where = titles[named]
        return title, {"rule": "the title of the record the study is named by", "registration": named,
                       "source": where}
    if study["title"].startswith(PLACEHOLDER_PREFIX):
        for identifier in identifiers:
            if identifier in titles:
                _, title, where = titles[identifier]
                return title, {"rule": "the first record title among the study's registrations "
                                       "(it had a placeholder title)", "registration": identifier,
                               "source": where}
        return study["title"], {"rule": "placeholder: no record of the study gives a title"}
    return study["title"], previous_origins.get("title") or {"rule": "as written (no source record names it)"}


# -- writing -------------------------------------------------------------------------------------------

COLUMNS = ("title", *FACETS, "first_published", "registered", "start_date", "recruitment_status", "phase",
           "target_size", "sponsor", "primary_completion_date", "results_registry", "results_registry_date",
           "results_article", "results_article_date", "results_preprint", "results_preprint_date")


def _rederive_chunk(ids: list[int], now: dt.datetime, dates: dict[int, dt.datetime]) -> set[int]:
    studies, registrations, sources, links = _load(ids)
    updates: list[tuple[int, dict]] = []
    country_changes: dict[int, list[str]] = {}
    for study_id in ids:
        row = studies.get(study_id)
        if row is None:
            continue
        study = dict(zip(STUDY_COLUMNS, row, strict=True))
        for name in DATE_FIELDS | {"results_registry_date", "results_article_date", "results_preprint_date"}:
            study[name] = _as_date(study[name])
        for name in ("results_registry", "results_article", "results_preprint"):
            study[name] = bool(study[name])
        previous = orjson.loads(study["facet_sources"] or "{}")
        curated = set(orjson.loads(study["curated"] or "[]"))
        values, origins, new_countries = derive_values(study, registrations[study_id], sources[study_id],
                                                       links[study_id], curated, previous)
        diff = {name: values[name] for name in COLUMNS if values[name] != study[name]}
        if origins != previous:
            diff["facet_sources"] = orjson.dumps(origins).decode()
        if new_countries is not None and sorted(orjson.loads(study["countries"] or "[]")) != new_countries:
            country_changes[study_id] = new_countries
            diff["countries"] = json.dumps(new_countries)
        if diff or study_id in country_changes:
            updates.append((study_id, diff))
    if country_changes:
        condition, params = any_of("study_id", sorted(country_changes))
        database.execute_sql(f"DELETE FROM study_country WHERE {condition}", params)
        insert_rows(StudyCountry, [{"study": study_id, "code": code} for study_id, codes
                                   in sorted(country_changes.items()) for code in codes])
    # Where values came from may change alone (a source now states what the study already says): that
    # is not a change of the study's values, so `updated` stays.
    visible = {study_id for study_id, diff in updates if set(diff) - {"facet_sources"}}
    update_rows(Study, [(study_id, {**diff, "updated": dates.get(study_id, now)} if study_id in visible
                         else diff) for study_id, diff in updates])
    return visible
