"""The figures of a register built by `make real-data`, to report them before and after a change.

    python bench/register_report.py --database-url sqlite:////tmp/x.db [--json FILE] [--code DIR]
    python bench/register_report.py --database-url postgresql://postgres@127.0.0.1:5432/NAME

Reads the database with plain SQL through the project's own database layer (``service.db``), so it runs
on the schema before source records were kept (commit 5fbda3e: the study's four facets and dates only)
and on the one after (derived status, phase, dates, dissemination, countries; ``source_record`` claims;
duplicates). A figure that needs what the old schema lacks prints ``n/a``.

``--code DIR`` puts that checkout first on ``sys.path`` (default: the checkout this script lives in): its
``service.formats.facets.ictrp_facets`` maps registry-record notes to facets (figure 3's approximation)
and its ``service.domain.merging`` lists duplicate candidates when it has them (figure 8).

Figures (counts, and shares of all studies where that makes sense):

1. studies, references (by type), links (by kind), registrations (by registry);
2. share of ``Unclear`` per facet, recruitment status and phase;
3. studies whose sources state a facet whose study value is ``Unclear`` (goal 0): from the source
   records' claims (new schema), and approximated from the registry records' notes (``Study type:``,
   ``Study design:`` lines through ``ictrp_facets``, both schemas); notes saying ``purpose:`` with the aim
   ``Unclear``; a record or study title saying randomi[sz]ed with the assignment ``Unclear``;
   observational studies with an interventional design, interventional ones with an observational design;
4. distinct months of ``first_published`` and ``registered``, min/max, the most common day;
5. status fields filled, dissemination, completed studies with no results anywhere;
6. mojibake in study and registry-record titles (``ftfy.fix_encoding`` changes them; goal 0);
7. placeholder titles while a record gives a real title (goal 0), and placeholders overall;
8. duplicate candidates (the service's own list when importable, else same normalised title across
   registries and articles citing both), with the first 40 pairs in the JSON for hand-checking.

Each figure is timed (the first figure needing a table pays for reading it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

UNCLEAR = "Unclear"
FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")
PLACEHOLDER = "Untitled trial registered as"
REGISTRY_RECORD = "trial_registry_record"
INTERVENTIONAL_DESIGNS = {"Parallel/Crossover", "Single arm", "Cluster", "Factorial", "Platform/Adaptive"}
OBSERVATIONAL_DESIGNS = {"Cohort", "Case-control", "Cross-sectional", "Case series"}
NEW_COLUMNS = ("registered", "start_date", "recruitment_status", "phase", "target_size", "sponsor",
               "primary_completion_date", "results_registry", "results_registry_date", "results_article",
               "results_article_date", "results_preprint", "results_preprint_date", "countries",
               "facet_sources", "curated")
RANDOMISED = re.compile(r"randomi[sz]ed", re.I)
PURPOSE = re.compile(r"purpose\s*:", re.I)
MAX_STUDIES_PER_TITLE = 4
MAX_STUDIES_PER_ARTICLE = 3
NA = "n/a"


def share(count: int, total: int) -> dict:
    return {"count": count, "share": round(count / total, 4) if total else None}


def day(value) -> str | None:
    """A date column's value as YYYY-MM-DD text (SQLite gives text, Postgres dates)."""
    if value is None or value == "":
        return None
    return str(value)[:10]


class Register:
    """Lazily read tables of one register, shared by the figures."""

    def __init__(self, database):
        self.db = database
        self.param = database.param
        tables = set(database.get_tables())
        self.tables = tables
        self.study_columns = [c.name for c in database.get_columns("study")]
        self.new = "source_record" in tables and all(c in self.study_columns for c in NEW_COLUMNS)
        self._cache: dict = {}

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.db.execute_sql(sql.replace("?", self.param), list(params)).fetchall()

    def scalar(self, sql: str, params=()):
        return self.rows(sql, params)[0][0]

    def _cached(self, key, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    @property
    def studies(self) -> dict[int, dict]:
        def load():
            wanted = ["id", "name", "title", *FACETS, "first_published",
                      *[c for c in NEW_COLUMNS if c in self.study_columns and c not in
                        ("facet_sources", "curated")]]
            return {row[0]: dict(zip(wanted, row, strict=True))
                    for row in self.rows(f"SELECT {', '.join(wanted)} FROM study ORDER BY name, id")}
        return self._cached("studies", load)

    @property
    def registrations(self) -> dict[int, list[tuple[str, str]]]:
        def load():
            found = defaultdict(list)
            for study_id, registry, identifier in self.rows(
                    "SELECT study_id, registry, identifier FROM registration ORDER BY id"):
                found[study_id].append((registry, identifier))
            return found
        return self._cached("registrations", load)

    @property
    def owner(self) -> dict[str, int]:
        return self._cached("owner", lambda: {identifier: study_id for study_id, regs in
                                              self.registrations.items() for _, identifier in regs})

    @property
    def records(self) -> dict[int, tuple]:
        """Registry-record references: id -> (title, notes, registration_id)."""
        return self._cached("records", lambda: {row[0]: row[1:] for row in self.rows(
            'SELECT id, title, notes, registration_id FROM "reference" WHERE type = ?', [REGISTRY_RECORD])})

    @property
    def linked_records(self) -> dict[int, set[int]]:
        def load():
            found = defaultdict(set)
            for study_id, reference_id in self.rows(
                    'SELECT l.study_id, l.reference_id FROM study_reference l '
                    'JOIN "reference" r ON r.id = l.reference_id WHERE r.type = ?', [REGISTRY_RECORD]):
                found[study_id].add(reference_id)
            return found
        return self._cached("linked_records", load)

    @property
    def records_of(self) -> dict[int, set[int]]:
        """Study -> its registry-record references: linked to it, or recording one of its registrations."""
        def load():
            found = defaultdict(set)
            for study_id, refs in self.linked_records.items():
                found[study_id] |= refs
            for reference_id, (_, _, registration_id) in self.records.items():
                study_id = self.owner.get(registration_id)
                if study_id is not None:
                    found[study_id].add(reference_id)
            return found
        return self._cached("records_of", load)

    @property
    def sources_of(self) -> dict[int, list[tuple[str, str | None, dict]]]:
        """Study -> (identifier, title, claims) of the source records of its registrations (new schema)."""
        def load():
            found = defaultdict(list)
            for identifier, title, claims in self.rows("SELECT identifier, title, claims FROM source_record"):
                study_id = self.owner.get(identifier)
                if study_id is not None:
                    found[study_id].append((identifier, title, json.loads(claims or "{}")))
            return found
        return self._cached("sources_of", load)


# -- figures ---------------------------------------------------------------------------------------------

def fig_counts(reg: Register) -> dict:
    total = reg.scalar("SELECT COUNT(*) FROM study")
    out = {
        "studies": total,
        "references": reg.scalar('SELECT COUNT(*) FROM "reference"'),
        "references_by_type": dict(reg.rows(
            'SELECT type, COUNT(*) FROM "reference" GROUP BY type ORDER BY 2 DESC, 1')),
        "links": reg.scalar("SELECT COUNT(*) FROM study_reference"),
        "links_by_kind": dict(reg.rows(
            "SELECT link, COUNT(*) FROM study_reference GROUP BY link ORDER BY 2 DESC, 1")),
        "registrations": reg.scalar("SELECT COUNT(*) FROM registration"),
        "registrations_by_registry": dict(reg.rows(
            "SELECT registry, COUNT(*) FROM registration GROUP BY registry ORDER BY 2 DESC, 1")),
        "studies_with_registration": reg.scalar("SELECT COUNT(DISTINCT study_id) FROM registration"),
        "studies_linked_to_a_reference": reg.scalar("SELECT COUNT(DISTINCT study_id) FROM study_reference"),
    }
    if reg.new:
        out["source_records"] = reg.scalar("SELECT COUNT(*) FROM source_record")
        out["source_records_by_source"] = dict(reg.rows(
            "SELECT source, COUNT(*) FROM source_record GROUP BY source ORDER BY 2 DESC, 1"))
        out["merged_studies"] = reg.scalar("SELECT COUNT(*) FROM merged_study")
        out["duplicate_decisions"] = reg.scalar("SELECT COUNT(*) FROM duplicate_decision")
    else:
        out["source_records"] = NA
    return out


def fig_unclear(reg: Register) -> dict:
    studies = reg.studies.values()
    total = len(reg.studies)
    out = {}
    for name in (*FACETS, "recruitment_status", "phase"):
        if name not in reg.study_columns:
            out[name] = NA
            continue
        values = Counter(s[name] for s in studies)
        out[name] = {"unclear": share(values.get(UNCLEAR, 0), total), "values": dict(values.most_common())}
    return out


def _fits(kind: str, design: str) -> bool:
    if kind == "Observational":
        return design not in INTERVENTIONAL_DESIGNS
    if kind == "Interventional":
        return design not in OBSERVATIONAL_DESIGNS
    return True


def _notes_fields(notes: str | None) -> dict[str, str]:
    found = {}
    for line in (notes or "").splitlines():
        label, sep, value = line.partition(":")
        if sep:
            found.setdefault(label.strip().lower(), value.strip())
    return found


def fig_stated_but_unclear(reg: Register, ictrp_facets) -> dict:
    total = len(reg.studies)
    out: dict = {}

    def stated(values_by_study) -> dict:
        """values_by_study: study -> facet -> set of stated non-Unclear values."""
        result = {}
        for name in FACETS:
            raw = fits = 0
            examples = []
            for study_id, stated_values in values_by_study.items():
                study = reg.studies.get(study_id)
                if study is None or study[name] != UNCLEAR:
                    continue
                values = stated_values.get(name) or set()
                if not values:
                    continue
                raw += 1
                usable = values if name != "study_design" else {v for v in values
                                                                 if _fits(study["study_type"], v)}
                if name == "intervention_assignment" and study["study_type"] in (
                        "Observational", "Diagnostic", "Prognostic"):
                    usable = set()
                if usable:
                    fits += 1
                    if len(examples) < 3:
                        examples.append({"study": study_id, "name": study["name"], "stated": sorted(usable)})
            result[name] = {"stated": share(raw, total), "stated_and_fits_type": share(fits, total),
                            "examples": examples}
        return result

    # From the source records' claims (new schema).
    if reg.new:
        claimed: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        for study_id, sources in reg.sources_of.items():
            for _, _, claims in sources:
                for name in FACETS:
                    value = (claims.get(name) or {}).get("value")
                    if value not in (None, "", UNCLEAR):
                        claimed[study_id][name].add(value)
        out["from_claims"] = stated(claimed)
    else:
        out["from_claims"] = NA

    # Approximation from the registry records' notes (both schemas), through the checkout's rules.
    purpose_unclear = 0
    if ictrp_facets is None:
        out["from_notes"] = NA
    else:
        noted: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        for study_id, refs in reg.records_of.items():
            for ref in refs:
                fields = _notes_fields(reg.records[ref][1])
                if "study type" not in fields and "study design" not in fields:
                    continue
                for name, value in ictrp_facets(fields.get("study type"), fields.get("study design")).items():
                    if value not in (None, "", UNCLEAR):
                        noted[study_id][name].add(value)
        out["from_notes"] = stated(noted)
    for study_id, refs in reg.records_of.items():
        study = reg.studies.get(study_id)
        if study and study["study_aim"] == UNCLEAR and any(
                PURPOSE.search(reg.records[ref][1] or "") for ref in refs):
            purpose_unclear += 1
    out["notes_say_purpose_aim_unclear"] = share(purpose_unclear, total)

    randomised = 0
    for study_id, study in reg.studies.items():
        if study["intervention_assignment"] != UNCLEAR:
            continue
        titles = [study["title"], *(reg.records[ref][0] for ref in reg.records_of.get(study_id, ()))]
        if reg.new:
            titles += [title for _, title, _ in reg.sources_of.get(study_id, ()) if title]
        if any(RANDOMISED.search(t or "") for t in titles):
            randomised += 1
    out["title_says_randomised_assignment_unclear"] = share(randomised, total)
    out["observational_with_interventional_design"] = share(sum(
        1 for s in reg.studies.values() if s["study_type"] == "Observational"
        and s["study_design"] in INTERVENTIONAL_DESIGNS), total)
    out["interventional_with_observational_design"] = share(sum(
        1 for s in reg.studies.values() if s["study_type"] == "Interventional"
        and s["study_design"] in OBSERVATIONAL_DESIGNS), total)
    return out


def _dates(values: list[str | None], total: int) -> dict:
    days = [v for v in values if v]
    if not days:
        return {"with_value": share(0, total), "distinct_months": 0}
    counts = Counter(days)
    common, common_n = counts.most_common(1)[0]
    return {"with_value": share(len(days), total), "distinct_months": len({d[:7] for d in days}),
            "distinct_days": len(counts), "min": min(days), "max": max(days),
            "most_common_day": common, "studies_on_most_common_day": share(common_n, total),
            "by_year": dict(sorted(Counter(d[:4] for d in days).items()))}


def fig_dates(reg: Register) -> dict:
    total = len(reg.studies)
    out = {"first_published": _dates([day(s["first_published"]) for s in reg.studies.values()], total)}
    out["registered"] = (_dates([day(s["registered"]) for s in reg.studies.values()], total)
                         if "registered" in reg.study_columns else NA)
    return out


def fig_status(reg: Register) -> dict:
    total = len(reg.studies)
    if not reg.new:
        return {name: NA for name in (
            "recruitment_status", "phase", "countries", "target_size", "sponsor", "start_date",
            "primary_completion_date", "results_registry", "results_article", "results_preprint",
            "no_results", "completed", "completed_no_results")}
    studies = list(reg.studies.values())

    def count(test) -> dict:
        return share(sum(1 for s in studies if test(s)), total)

    def none_of_three(s) -> bool:
        return not (s["results_registry"] or s["results_article"] or s["results_preprint"])

    completed = [s for s in studies if s["recruitment_status"] == "Completed"]
    return {
        "recruitment_status": count(lambda s: s["recruitment_status"] not in (None, UNCLEAR)),
        "phase": count(lambda s: s["phase"] not in (None, UNCLEAR)),
        "countries": count(lambda s: bool(json.loads(s["countries"] or "[]"))),
        "study_country_rows": reg.scalar("SELECT COUNT(*) FROM study_country"),
        "target_size": count(lambda s: s["target_size"] is not None),
        "sponsor": count(lambda s: bool(s["sponsor"])),
        "start_date": count(lambda s: s["start_date"] is not None),
        "primary_completion_date": count(lambda s: s["primary_completion_date"] is not None),
        "results_registry": count(lambda s: bool(s["results_registry"])),
        "results_article": count(lambda s: bool(s["results_article"])),
        "results_preprint": count(lambda s: bool(s["results_preprint"])),
        "no_results": count(none_of_three),
        "completed": share(len(completed), total),
        "completed_no_results": {"count": sum(1 for s in completed if none_of_three(s)),
                                 "share_of_completed": round(sum(1 for s in completed if none_of_three(s))
                                                             / len(completed), 4) if completed else None},
    }


def fig_mojibake(reg: Register) -> dict:
    try:
        import ftfy
    except ImportError:
        return {"study_titles": NA, "record_titles": NA}

    def broken(titles: list[tuple[int, str, str]]) -> tuple[int, list]:
        found = []
        for key, name, title in sorted(titles, key=lambda t: (t[1] or "", t[0])):
            if title and not title.isascii():
                fixed = ftfy.fix_encoding(title)
                if fixed != title:
                    found.append({"id": key, "name": name, "title": title, "fixed": fixed})
        return len(found), found[:5]

    n_studies, ex_studies = broken([(i, s["name"], s["title"]) for i, s in reg.studies.items()])
    n_records, ex_records = broken([(i, r[2], r[0]) for i, r in reg.records.items()])
    return {"study_titles": share(n_studies, len(reg.studies)), "study_examples": ex_studies,
            "record_titles": {"count": n_records, "of": len(reg.records)}, "record_examples": ex_records}


def fig_placeholders(reg: Register) -> dict:
    total = len(reg.studies)
    record_titles: dict[str, list[str]] = defaultdict(list)
    for title, _, registration_id in reg.records.values():
        if registration_id and title and not title.startswith(PLACEHOLDER):
            record_titles[registration_id].append(title)
    placeholders = [i for i, s in reg.studies.items() if (s["title"] or "").startswith(PLACEHOLDER)]
    with_record, with_source, either, examples = 0, 0, 0, []
    for study_id in placeholders:
        identifiers = [identifier for _, identifier in reg.registrations.get(study_id, ())]
        linked = any(reg.records[ref][0] and not reg.records[ref][0].startswith(PLACEHOLDER)
                     for ref in reg.linked_records.get(study_id, ()))
        recorded = linked or any(record_titles.get(i) for i in identifiers)
        sourced = reg.new and any(title and not title.startswith(PLACEHOLDER)
                                  for _, title, _ in reg.sources_of.get(study_id, ()))
        with_record += bool(recorded)
        with_source += bool(sourced)
        either += bool(recorded or sourced)
        if (recorded or sourced) and len(examples) < 5:
            examples.append({"study": study_id, "name": reg.studies[study_id]["name"],
                             "title": reg.studies[study_id]["title"], "registrations": identifiers})
    return {"placeholders": share(len(placeholders), total),
            "placeholder_with_real_title": share(either, total),
            "with_registry_record_title": with_record,
            "with_source_record_title": with_source if reg.new else NA,
            "examples": examples}


def _normalise(title: str | None) -> str | None:
    if not title or title.startswith(PLACEHOLDER):
        return None
    text = unicodedata.normalize("NFKD", title).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    joined = " ".join(re.findall(r"[^\W_]+", text))
    return joined or None


def _fallback_candidates(reg: Register) -> dict:
    """Same normalised title across registries; an article (not a registry record) citing both."""
    registries = {sid: {r for r, _ in regs} for sid, regs in reg.registrations.items()}
    titles: dict[str, set[int]] = defaultdict(set)
    for study_id, study in reg.studies.items():
        key = _normalise(study["title"])
        if key:
            titles[key].add(study_id)
        for ref in reg.records_of.get(study_id, ()):
            key = _normalise(reg.records[ref][0])
            if key:
                titles[key].add(study_id)
    pairs: dict[tuple[int, int], dict] = {}
    big_groups = 0
    groups = 0
    for key, holders in titles.items():
        if len(holders) < 2:
            continue
        cross = [(a, b) for a, b in combinations(sorted(holders), 2)
                 if not registries.get(a, set()) & registries.get(b, set())]
        if not cross:
            continue
        groups += 1
        if len(holders) > MAX_STUDIES_PER_TITLE:
            big_groups += 1
            continue
        for a, b in cross:
            pairs.setdefault((a, b), {"titles": set(), "articles": {}})["titles"].add(key)
    cited: dict[int, set[int]] = defaultdict(set)
    if "reference_identifier" in reg.tables:
        for reference_id, identifier in reg.rows(
                'SELECT ri.reference_id, ri.identifier FROM reference_identifier ri '
                'JOIN "reference" r ON r.id = ri.reference_id WHERE r.type <> ?', [REGISTRY_RECORD]):
            study_id = reg.owner.get(identifier)
            if study_id is not None:
                cited[reference_id].add(study_id)
    article_pairs = article_pairs_same_registry = 0
    for reference_id, holders in cited.items():
        if not 2 <= len(holders) <= MAX_STUDIES_PER_ARTICLE:
            continue
        for a, b in combinations(sorted(holders), 2):
            article_pairs += 1
            if registries.get(a, set()) & registries.get(b, set()):
                article_pairs_same_registry += 1
                continue
            found = pairs.setdefault((a, b), {"titles": set(), "articles": {}})
            found["articles"][reference_id] = len(holders)

    def score(p: dict) -> float:
        remaining = 0.3 if p["titles"] else 1.0
        for n in p["articles"].values():
            remaining *= 1 - {2: 0.6, 3: 0.4}.get(n, 0.0)
        return round(1 - remaining, 3)

    ordered = sorted(pairs.items(), key=lambda item: (-score(item[1]), reg.studies[item[0][0]]["name"],
                                                      reg.studies[item[0][1]]["name"]))
    listed = []
    for (a, b), p in ordered[:40]:
        listed.append({"study_ids": [a, b], "score": score(p),
                       "reasons": [{"kind": "same_title", "title": t} for t in sorted(p["titles"])]
                       + [{"kind": "article_cites_both", "reference_id": r, "studies_named": n}
                          for r, n in sorted(p["articles"].items())],
                       "studies": [_study_brief(reg, a), _study_brief(reg, b)]})
    return {"method": "computed here (same normalised title across registries; an article citing both, "
                      "across registries, naming <= 3 studies)",
            "candidates": len(pairs),
            "same_title_pairs": sum(1 for p in pairs.values() if p["titles"]),
            "article_pairs_cross_registry": sum(1 for p in pairs.values() if p["articles"]),
            "both_signals": sum(1 for p in pairs.values() if p["titles"] and p["articles"]),
            "title_groups_across_registries": groups,
            "title_groups_too_big_skipped": big_groups,
            "article_pairs_all": article_pairs,
            "article_pairs_same_registry_dropped": article_pairs_same_registry,
            "first_pairs": listed}


def _study_brief(reg: Register, study_id: int) -> dict:
    study = reg.studies[study_id]
    return {"id": study_id, "name": study["name"], "title": study["title"],
            "registrations": [{"registry": r, "identifier": i}
                              for r, i in reg.registrations.get(study_id, ())]}


def fig_duplicates(reg: Register, merging) -> dict:
    out: dict = {}
    if reg.new and merging is not None and hasattr(merging, "list_candidates"):
        count, first = merging.list_candidates(status="open", offset=0, limit=40)
        reasons = Counter(kind for c in first for kind in {r["kind"] for r in c["reasons"]})
        out["service"] = {"method": "service.domain.merging.list_candidates(status='open')",
                          "candidates": count, "reasons_in_first_40": dict(reasons),
                          "first_pairs": json.loads(json.dumps(first, default=str))}
    else:
        out["service"] = NA
    out["computed"] = _fallback_candidates(reg)
    return out


# -- running ---------------------------------------------------------------------------------------------

def _import_code(code: Path):
    sys.path.insert(0, str(code))
    for name in [m for m in sys.modules if m == "service" or m.startswith("service.")]:
        del sys.modules[name]
    from service import db

    try:
        from service.formats.facets import ictrp_facets
    except ImportError:
        ictrp_facets = None
    return db, ictrp_facets


def _around_difference(before: str, after: str, width: int = 30) -> str:
    """`...text...` -> `...fixed...` around the first character where the two differ."""
    pairs = enumerate(zip(before, after, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(before), len(after)))
    start = max(0, at - width)
    return f"{before[start:at + width]!r} -> {after[start:at + width]!r}"


def _summary_lines(figures: dict, timings: dict, schema: str) -> list[str]:
    def fmt(value) -> str:
        if isinstance(value, dict) and "count" in value and "share" in value:
            if value["share"] is None:
                return str(value["count"])
            return f"{value['count']} ({value['share'] * 100:.1f}%)"
        return str(value)

    lines = [f"schema: {schema}"]
    c = figures["1_counts"]
    lines.append(f"1. studies {c['studies']}, references {c['references']}, links {c['links']}, "
                 f"registrations {c['registrations']}, source records {c['source_records']}"
                 f"   [{timings['1_counts']:.2f} s]")
    lines.append(f"   references by type: {c['references_by_type']}")
    lines.append(f"   links by kind: {c['links_by_kind']}")
    u = figures["2_unclear"]
    lines.append("2. Unclear: " + ", ".join(
        f"{k} {fmt(v['unclear']) if isinstance(v, dict) else v}" for k, v in u.items())
        + f"   [{timings['2_unclear']:.2f} s]")
    s = figures["3_stated_but_unclear"]
    for source in ("from_claims", "from_notes"):
        block = s[source]
        if isinstance(block, dict):
            lines.append(f"3. stated but Unclear ({source}): " + ", ".join(
                f"{k} {fmt(v['stated_and_fits_type'])} (raw {v['stated']['count']})"
                for k, v in block.items()))
        else:
            lines.append(f"3. stated but Unclear ({source}): {block}")
    for key in ("notes_say_purpose_aim_unclear", "title_says_randomised_assignment_unclear",
                "observational_with_interventional_design", "interventional_with_observational_design"):
        lines.append(f"   {key}: {fmt(s[key])}")
    lines[-1] += f"   [{timings['3_stated_but_unclear']:.2f} s]"
    d = figures["4_dates"]
    for key, block in d.items():
        if isinstance(block, dict) and block.get("distinct_months"):
            lines.append(f"4. {key}: {fmt(block['with_value'])} with a value, "
                         f"{block['distinct_months']} months "
                         f"({block['min']} .. {block['max']}), most common day {block['most_common_day']}: "
                         f"{fmt(block['studies_on_most_common_day'])}")
        else:
            lines.append(f"4. {key}: {block if not isinstance(block, dict) else 'no values'}")
    lines[-1] += f"   [{timings['4_dates']:.2f} s]"
    st = figures["5_status"]
    lines.append("5. " + ", ".join(f"{k} {fmt(v)}" for k, v in st.items()
                                   if k not in ("completed_no_results", "study_country_rows")))
    if isinstance(st.get("completed_no_results"), dict):
        lines.append(f"   completed with no results anywhere: {st['completed_no_results']['count']} "
                     f"({(st['completed_no_results']['share_of_completed'] or 0) * 100:.1f}% of completed)")
    lines[-1] += f"   [{timings['5_status']:.2f} s]"
    m = figures["6_mojibake"]
    records = m["record_titles"]
    lines.append(f"6. mojibake: study titles {fmt(m['study_titles'])}, registry-record titles "
                 f"{records['count'] if isinstance(records, dict) else records}"
                 f"   [{timings['6_mojibake']:.2f} s]")
    for kind in ("study", "record"):
        for ex in m.get(f"{kind}_examples", [])[:5]:
            lines.append(f"   {kind} {ex['name']}: {_around_difference(ex['title'], ex['fixed'])}")
    p = figures["7_placeholders"]
    lines.append(f"7. placeholders {fmt(p['placeholders'])}, with a real title available "
                 f"{fmt(p['placeholder_with_real_title'])} "
                 f"(registry record {p['with_registry_record_title']}, "
                 f"source record {p['with_source_record_title']})   [{timings['7_placeholders']:.2f} s]")
    dup = figures["8_duplicates"]
    if isinstance(dup["service"], dict):
        lines.append(f"8. duplicate candidates (service): {dup['service']['candidates']}")
    else:
        lines.append("8. duplicate candidates (service): n/a")
    cp = dup["computed"]
    lines.append(f"   computed here: {cp['candidates']} (same title {cp['same_title_pairs']}, article "
                 f"{cp['article_pairs_cross_registry']}, both {cp['both_signals']}; title groups skipped as "
                 f"too big {cp['title_groups_too_big_skipped']}; article pairs in one registry dropped "
                 f"{cp['article_pairs_same_registry_dropped']} of {cp['article_pairs_all']})"
                 f"   [{timings['8_duplicates']:.2f} s]")
    lines.append(f"total {sum(timings.values()):.2f} s")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="sqlite:////path.db or postgresql://user@host:port/name (default $DATABASE_URL)")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE")
    parser.add_argument("--code", metavar="DIR", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout whose service package to import (default: this script's)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is needed")

    db_module, ictrp_facets = _import_code(Path(args.code).resolve())
    database = db_module.init_database(args.database_url)
    timings: dict[str, float] = {}
    figures: dict = {}
    with database.connection_context():
        reg = Register(database)
        merging = None
        if reg.new:
            try:
                from service.domain import merging
            except ImportError:
                merging = None
        steps = [
            ("1_counts", lambda: fig_counts(reg)),
            ("2_unclear", lambda: fig_unclear(reg)),
            ("3_stated_but_unclear", lambda: fig_stated_but_unclear(reg, ictrp_facets)),
            ("4_dates", lambda: fig_dates(reg)),
            ("5_status", lambda: fig_status(reg)),
            ("6_mojibake", lambda: fig_mojibake(reg)),
            ("7_placeholders", lambda: fig_placeholders(reg)),
            ("8_duplicates", lambda: fig_duplicates(reg, merging)),
        ]
        for name, step in steps:
            started = time.perf_counter()
            figures[name] = step()
            timings[name] = round(time.perf_counter() - started, 3)
    schema = "new (source records)" if reg.new else "old (before source records)"
    url = re.sub(r"//([^:@/]+):[^@/]+@", r"//\1:***@", args.database_url)
    print(f"register: {url}   code: {args.code}")
    print("\n".join(_summary_lines(figures, timings, schema)))
    if args.json:
        report = {"database_url": url, "code": args.code, "schema": schema,
                  "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "figures": figures, "seconds": timings}
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
