"""Check every seeds/*.json file against the seed format (standard library only).

Run from the repository root:  python seeds/validate_seeds.py [FILE ...]
Exits 1 and lists the problems when a check fails; prints a summary otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections import Counter
from pathlib import Path

SEEDS = Path(__file__).resolve().parent

FACETS = {  # shared/design/VOCABULARIES.md
    "study_type": {"Interventional", "Observational", "Diagnostic", "Prognostic", "Qualitative",
                   "Modelling", "Economic", "Other", "Unclear"},
    "study_aim": {"Treatment and Management", "Prevention", "Diagnosis", "Prognosis", "Epidemiology",
                  "Health Services and Policy", "Other", "Unclear"},
    "study_design": {"Parallel/Crossover", "Single arm", "Cluster", "Factorial", "Platform/Adaptive",
                     "Cohort", "Case-control", "Cross-sectional", "Case series", "Other", "Unclear"},
    "intervention_assignment": {"Randomised", "Non-randomised", "Not applicable", "Unclear"},
}
REFERENCE_TYPES = {"journal_article", "trial_registry_record", "preprint", "journal_pre_proof",
                   "conference_abstract", "press_release", "retraction_notice", "expression_of_concern",
                   "letter", "report", "other"}
REGISTRIES = {  # code -> canonical pattern (shared/design/DOMAIN.md §3.5)
    "ClinicalTrials.gov": r"NCT\d{8}", "ChiCTR": r"ChiCTR\d{10}|ChiCTR-[A-Z]{3,5}-\d{8}",
    "ISRCTN": r"ISRCTN\d{8}", "EudraCT": r"\d{4}-\d{6}-\d{2}", "CTIS": r"\d{4}-5\d{5}-\d{2}-\d{2}",
    "DRKS": r"DRKS\d{8}", "IRCT": r"IRCT\d{11,14}N\d{1,3}", "CTRI": r"CTRI/\d{4}/\d{2,3}/\d{6}",
    "ANZCTR": r"ACTRN\d{14}", "CRiS": r"KCT\d{7}", "UMIN-CTR": r"UMIN\d{9}", "jRCT": r"jRCT[a-z]?\d{9,10}",
    "JapicCTI": r"JapicCTI-\d{6}", "TCTR": r"TCTR20\d{9}", "PACTR": r"PACTR\d{15,16}",
    "NTR": r"NTR\d{1,5}|NL\d{1,5}|NL-OMON\d{5}", "ReBEC": r"RBR-[0-9a-z]{6,8}", "RPCEC": r"RPCEC\d{8}",
    "SLCTR": r"SLCTR/\d{4}/\d{3}", "LBCTR": r"LBCTR20\d{8}", "REPEC": r"PER-\d{3}-\d{2}",
    "ITMCTR": r"ITMCTR\d{10}", "UTN": r"U1111-\d{4}-\d{4}",
}
STUDY_KEYS = {"name", "title", "registrations", "study_type", "study_aim", "study_design",
              "intervention_assignment", "first_published", "updated", "references"}
REFERENCE_KEYS = {"type", "title", "authors", "abstract", "source", "year", "published", "volume", "issue",
                  "pages", "doi", "pmid", "url", "registration_id", "has_results", "notes",
                  "first_published", "updated"}
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def day(value) -> bool:
    try:
        return isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def instant(value) -> bool:
    try:
        return isinstance(value, str) and bool(INSTANT.fullmatch(value)) and bool(
            dt.datetime.fromisoformat(value[:-1]))
    except ValueError:
        return False


def partial_date(value) -> bool:
    return isinstance(value, str) and (
        (re.fullmatch(r"\d{4}", value) is not None) or (re.fullmatch(r"\d{4}-\d{2}", value) is not None
                                                        and 1 <= int(value[5:]) <= 12) or day(value))


def check(paths: list[Path]) -> tuple[list[str], Counter]:
    problems: list[str] = []
    stats: Counter = Counter()
    names: dict[str, str] = {}
    identifiers: dict[str, str] = {}
    by_identity: dict[tuple, tuple[str, str]] = {}  # doi/pmid -> (json of reference, where)
    title_year: dict[tuple, set] = {}
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(f"{path.name}: does not parse: {error}")
            continue
        extra = set(document) - {"notices", "studies"}
        if extra:
            problems.append(f"{path.name}: unexpected top-level keys {sorted(extra)}")
        for k, notice in enumerate(document.get("notices", [])):
            if not isinstance(notice.get("message"), str) or not notice["message"].strip():
                problems.append(f"{path.name}: notices[{k}] has no message")
            for key in ("starts", "ends"):
                if notice.get(key) is not None and not instant(notice[key]):
                    problems.append(f"{path.name}: notices[{k}].{key} {notice[key]!r} is not an instant")
            stats["notices"] += 1
        for study in document.get("studies", []):
            where = f"{path.name}: {study.get('name')}"
            stats["studies"] += 1
            if set(study) - STUDY_KEYS:
                problems.append(f"{where}: unknown keys {sorted(set(study) - STUDY_KEYS)}")
            name = study.get("name")
            if not isinstance(name, str) or not name or len(name) > 200:
                problems.append(f"{where}: bad name")
            elif name in names:
                problems.append(f"{where}: name also in {names[name]}")
            else:
                names[name] = path.name
            if not isinstance(study.get("title"), str) or not study["title"].strip():
                problems.append(f"{where}: no title")
            registrations = study.get("registrations") or []
            if not registrations:
                problems.append(f"{where}: no registration")
            for registration in registrations:
                code, identifier = registration.get("registry"), registration.get("identifier")
                if code not in REGISTRIES or not re.fullmatch(REGISTRIES[code], identifier or ""):
                    problems.append(f"{where}: registration {code} {identifier!r} not canonical")
                key = (identifier or "").upper()
                if key in identifiers:
                    problems.append(f"{where}: {identifier} also in {identifiers[key]}")
                identifiers[key] = where
                stats["registrations"] += 1
            for facet, values in FACETS.items():
                if study.get(facet) not in values:
                    problems.append(f"{where}: {facet} {study.get(facet)!r} not in the vocabulary")
            if not day(study.get("first_published")):
                problems.append(f"{where}: first_published {study.get('first_published')!r}")
            if not instant(study.get("updated")):
                problems.append(f"{where}: updated {study.get('updated')!r}")
            own = {r.get("identifier") for r in registrations}
            for j, ref in enumerate(study.get("references", [])):
                at = f"{where} references[{j}]"
                stats[f"references: {ref.get('type')}"] += 1
                if set(ref) - REFERENCE_KEYS:
                    problems.append(f"{at}: unknown keys {sorted(set(ref) - REFERENCE_KEYS)}")
                if ref.get("type") not in REFERENCE_TYPES:
                    problems.append(f"{at}: type {ref.get('type')!r}")
                if not isinstance(ref.get("title"), str) or not ref["title"].strip():
                    problems.append(f"{at}: no title")
                authors = ref.get("authors", [])
                if not isinstance(authors, list) or not all(isinstance(a, str) and a for a in authors):
                    problems.append(f"{at}: authors")
                if not isinstance(ref.get("has_results"), bool):
                    problems.append(f"{at}: has_results is not a boolean")
                published, year = ref.get("published"), ref.get("year")
                if published is not None and not partial_date(published):
                    problems.append(f"{at}: published {published!r}")
                if year is not None and (not isinstance(year, int)
                                         or (published and int(published[:4]) != year)):
                    problems.append(f"{at}: year {year!r} does not match published {published!r}")
                doi = ref.get("doi")
                if doi is not None and (doi != doi.lower() or not re.fullmatch(r"10\.\d{4,9}/\S+", doi)):
                    problems.append(f"{at}: doi {doi!r}")
                if ref.get("pmid") is not None and not re.fullmatch(r"[1-9]\d{0,9}", ref["pmid"]):
                    problems.append(f"{at}: pmid {ref['pmid']!r}")
                if ref.get("url") is not None and not re.fullmatch(r"https?://\S+", ref["url"]):
                    problems.append(f"{at}: url {ref['url']!r}")
                registration_id = ref.get("registration_id")
                if (ref.get("type") == "trial_registry_record") != (registration_id is not None):
                    problems.append(f"{at}: registration_id {registration_id!r} for a {ref.get('type')}")
                if registration_id is not None and registration_id not in own:
                    problems.append(f"{at}: registration_id {registration_id} is not the study's")
                if not day(ref.get("first_published")) or not instant(ref.get("updated")):
                    problems.append(f"{at}: first_published/updated")
                for text in (ref.get("title"), ref.get("abstract")):
                    if text and re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text):
                        problems.append(f"{at}: an e-mail address in the text")
                    if text and re.search(r"Ã|Â|â€|<[A-Za-z/][^>]*>|&(?:[a-z]+|#\d+|#x[0-9a-f]+);", text):
                        problems.append(f"{at}: mojibake or markup left: {text[:60]!r}")
                serialized = json.dumps(ref, sort_keys=True)
                for identity in [("doi", ref.get("doi")), ("pmid", ref.get("pmid"))]:
                    if identity[1]:
                        if identity in by_identity and by_identity[identity][0] != serialized:
                            problems.append(
                                f"{at}: {identity} differs from its copy in {by_identity[identity][1]}")
                        by_identity.setdefault(identity, (serialized, at))
                title_year.setdefault((ref.get("title"), year), set()).add(
                    ref.get("registration_id") or ref.get("doi") or ref.get("pmid") or at)
    for (title, year), keys in sorted(title_year.items(), key=str):
        if len(keys) > 1:
            stats["same title and year, different records"] += 1
            print(f"note: {len(keys)} records share title and year {year}: {title[:70]!r} {sorted(keys)}")
    return problems, stats


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(SEEDS.glob("*.json"))
    problems, stats = check(paths)
    for line in problems:
        print(f"PROBLEM {line}")
    print(", ".join(f"{k}: {v}" for k, v in sorted(stats.items())))
    print(f"{len(paths)} files, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
