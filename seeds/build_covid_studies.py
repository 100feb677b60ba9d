"""Build seeds/covid-studies.json: real COVID-19 studies and their references, from ../shared/data.

Run from the repository root:  python seeds/build_covid_studies.py [--data DIR] [--out FILE]

Standard library plus the register's own `service.identifiers` (identifiers take the canonical
form the register stores). The output is deterministic (same input, same bytes): studies are
sorted by name, references in a fixed order, and nothing depends on the clock or on dict/set
iteration of unordered input. seeds/README.md says where every field comes from and which rules map it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The register's own canonical form and registry rules (DOMAIN.md §3.5), so seeds match what it stores.
from service.identifiers import normalise as canonical  # noqa: E402
from service.identifiers import registry_of  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "seeds" / "covid-studies.json"

# More ClinicalTrials.gov studies beyond the 20-study sample (see select_extra_studies).
EXTRA_STUDIES = 15
# Studies already in the other seed file (ccsr-seed.json): never repeated here.
RESERVED_IDENTIFIERS = {"ChiCTR2000030261"}

csv.field_size_limit(50_000_000)


# --------------------------------------------------------------------------------------------------
# Text

MISSING = {"", "NA", "None", "Not Available", "No Results"}


def cell(value: str | None) -> str | None:
    """The cell's text, or None for the data sets' missing-value markers."""
    if value is None:
        return None
    value = value.strip()
    return None if value in MISSING else value


def fix_mojibake(text: str | None) -> str | None:
    """Undo UTF-8 that was read as cp1252 (`GS-5734â„¢` -> `GS-5734™`).

    Only the exact, reversible re-decode: when `text.encode("cp1252").decode("utf-8")` fails, the
    text is kept as it is (and counted in the build report)."""
    if not text or text.isascii():
        return text
    try:
        fixed = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        if re.search("[ÂÃâ][\u0080-\u00bf\u0152-\u0192\u02c6-\u02dc\u2013-\u2122]", text):
            STATS["mojibake_left"] += 1
        return text
    if fixed != text:
        STATS["mojibake_fixed"] += 1
    return fixed


def one_line(text: str | None) -> str | None:
    """Whitespace runs (line breaks, tabs, no-break and thin spaces) become one space."""
    if text is None:
        return None
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


_SUPERSCRIPT = str.maketrans("0123456789+-−=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾")


def _superscript(match: re.Match) -> str:
    inner = match.group(1)
    return inner.translate(_SUPERSCRIPT) if re.fullmatch(r"[0-9+\-−=()]+", inner) else inner


def _inline_text(fragment: str) -> str:
    """PubMed inline markup -> text: <sup>digits</sup> -> Unicode superscripts (10<sup>4</sup> ->
    10⁴, not 104), every other tag dropped keeping its content, then entities unescaped."""
    fragment = re.sub(r"<sup>(.*?)</sup>", _superscript, fragment, flags=re.S)
    fragment = re.sub(r"</?[A-Za-z][^>]*>", "", fragment)
    return html.unescape(fragment)


def plain_abstract(xml: str | None) -> str | None:
    """PubMed `<AbstractText Label="X">…</AbstractText>` fragments -> "X: …" plain text.

    `<CopyrightInformation>` is dropped; sections are joined with one space."""
    xml = fix_mojibake(cell(xml))
    if not xml:
        return None
    xml = re.sub(r"<CopyrightInformation>.*?</CopyrightInformation>", "", xml, flags=re.S)
    sections = re.findall(r"<AbstractText\b([^>]*)>(.*?)</AbstractText>", xml, flags=re.S)
    parts = []
    for attributes, body in sections:
        label = re.search(r'\bLabel="([^"]*)"', attributes)
        text = one_line(_inline_text(body))
        if not text:
            continue
        parts.append(f"{html.unescape(label.group(1)).strip()}: {text}" if label else text)
    if not sections:  # not PubMed markup: keep the text
        parts = [_inline_text(xml)]
    return one_line(" ".join(parts))


def clean_text(value: str | None) -> str | None:
    return one_line(fix_mojibake(cell(value)))


# --------------------------------------------------------------------------------------------------
# Reading the data

def read_csv(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def read_xlsx_columns(path: Path, wanted: list[str]) -> list[dict]:
    """The `wanted` columns of the first sheet of an .xlsx file (zip + XML, standard library only).
    Only these columns are ever read: the WHO exports also hold personal contact columns."""
    with zipfile.ZipFile(path) as book:
        shared = [
            "".join(t.text or "" for t in item.iter(f"{_XLSX}t"))
            for item in ET.fromstring(book.read("xl/sharedStrings.xml")).iter(f"{_XLSX}si")
        ]
        sheet = ET.fromstring(book.read("xl/worksheets/sheet1.xml"))

    def column(ref: str) -> int:
        number = 0
        for letter in re.match(r"[A-Z]+", ref).group():
            number = number * 26 + ord(letter) - 64
        return number - 1

    rows = []
    for row in sheet.iter(f"{_XLSX}row"):
        values = {}
        for c in row.iter(f"{_XLSX}c"):
            v = c.find(f"{_XLSX}v")
            if c.get("t") == "s" and v is not None:
                values[column(c.get("r"))] = shared[int(v.text)]
            elif c.get("t") == "inlineStr":
                values[column(c.get("r"))] = "".join(t.text or "" for t in c.iter(f"{_XLSX}t"))
            elif v is not None:
                values[column(c.get("r"))] = v.text or ""
        rows.append(values)
    header = {index: name for index, name in rows[0].items()}
    positions = {name: index for index, name in header.items() if name in wanted}
    return [{name: values.get(index, "") for name, index in positions.items()} for values in rows[1:]]


class Data:
    """Every input file, indexed the way the build needs it."""

    def __init__(self, root: Path):
        seeds, trials, links, articles = (root / d for d in ("seeds", "trials", "links", "articles"))

        self.sample = read_csv(seeds / "studies_ictrp_trialstracker.csv")

        # TrialsTracker ICTRP list (2020-12-16): one row per registry record.
        self.tracker: dict[str, dict] = {}  # trialid -> row (first occurrence)
        self.tracker_duplicates: set[str] = set()
        self.tracker_by_canonical: dict[str, list[dict]] = {}
        for row in read_csv(trials / "ictrp_covid_trialstracker_2020-12-16.csv.gz"):
            if row["trialid"] in self.tracker:
                self.tracker_duplicates.add(row["trialid"])
                continue
            self.tracker[row["trialid"]] = row
            self.tracker_by_canonical.setdefault(canonical(row["trialid"]), []).append(row)
        for row in self.sample:  # the sample rows are whole copies of TrialsTracker rows
            assert self.tracker.get(row["trialid"]) == row, f"sample row differs: {row['trialid']}"

        # DIRECCT ICTRP list (2021-07-01): registry records for cross-registrations.
        self.direcct_ictrp: dict[str, list[dict]] = {}
        for row in read_csv(trials / "ictrp_covid_direcct_2021-07-01.csv.gz"):
            self.direcct_ictrp.setdefault(canonical(row["trn"]), []).append(row)

        # WHO ICTRP raw exports: only `TrialID` and `Study design` are read (never contact columns).
        self.designs: dict[str, tuple[str, str]] = {}  # canonical id -> (design text, export)
        for row in read_csv(trials / "ictrp_covid_who_raw_export_2020-04-15.csv.gz"):
            if cell(row["Study design"]):
                self.designs[canonical(row["TrialID"])] = (row["Study design"], "2020-04-15")
        xlsx = trials / "ictrp_covid_who_raw_export_COVID19-web_7Jul2020.xlsx"
        for row in read_xlsx_columns(xlsx, ["TrialID", "Study design"]):
            if cell(row.get("Study design")) and cell(row.get("TrialID")):
                self.designs[canonical(row["TrialID"])] = (row["Study design"], "2020-07")

        # DIRECCT cross-registrations: trial id <-> registration numbers.
        self.direcct_trial_of: dict[str, set[str]] = {}
        self.direcct_trns: dict[str, list[str]] = {}
        registrations = read_csv(links / "direcct_registrations.csv.gz")
        sample_links = read_csv(seeds / "registrations_direcct.csv")
        assert all(r in registrations for r in sample_links), "registrations_direcct.csv not a subset"
        for row in registrations:
            trn = canonical(row["trn"])
            self.direcct_trns.setdefault(row["id"], []).append(trn)
            self.direcct_trial_of.setdefault(trn, set()).add(row["id"])

        # DIRECCT results (journal articles, preprints, protocols, other) per DIRECCT trial id.
        results = read_csv(links / "direcct_results.csv.gz")
        sample_results = read_csv(seeds / "references_direcct_results.csv")
        assert all(r in results for r in sample_results), "references_direcct_results.csv not a subset"
        self.direcct_results: dict[str, list[dict]] = {}
        for row in results:
            self.direcct_results.setdefault(row["id"], []).append(row)

        # regCOVID PubMed articles (one row per article-trial pair).
        self.regcovid: dict[str, dict] = {}  # pmid -> first row
        self.regcovid_by_nct: dict[str, list[dict]] = {}
        for name in ("interventional", "observational", "patient_registries"):
            for row in read_csv(articles / f"regcovid_publications_{name}.csv.gz"):
                self.regcovid.setdefault(row["pmid"], row)
                self.regcovid_by_nct.setdefault(row["nct_id"], []).append(row)
        sample_articles = read_csv(seeds / "references_regcovid_pubmed.csv")
        assert all(r["pmid"] in self.regcovid for r in sample_articles)

        # Title look-ups: LitCovid articles and the DIRECCT/CORD-19 search hits, by PMID and DOI.
        self.litcovid_by_pmid, self.litcovid_by_doi = {}, {}
        for row in read_csv(articles / "litcovid_longcovid_doc_all_info.csv.gz"):
            if cell(row["pmid"]):
                self.litcovid_by_pmid.setdefault(row["pmid"], row)
            if cell(row["doi"]):
                self.litcovid_by_doi.setdefault(row["doi"].strip().lower(), row)
        self.hits_by_pmid, self.hits_by_doi = {}, {}
        for row in read_csv(links / "direcct_trn_search_hits_2021-02-24.csv.gz"):
            if cell(row["pm_id"]):
                self.hits_by_pmid.setdefault(row["pm_id"].strip(), row)
            if cell(row["doi"]):
                self.hits_by_doi.setdefault(row["doi"].strip().lower(), row)


# --------------------------------------------------------------------------------------------------
# Facets

def study_type(value: str) -> str:
    """ICTRP study type: "Interventional…" -> Interventional, "Observational…" -> Observational."""
    value = value.strip().lower()
    if value.startswith("interventional"):
        return "Interventional"
    if value.startswith("observational"):
        return "Observational"
    return "Unclear"


ALLOCATION = {
    "randomized": "Randomised", "randomised": "Randomised", "rct": "Randomised",
    "randomised controlled trial": "Randomised",
    "non-randomized": "Non-randomised", "non-randomised": "Non-randomised",
    "non-rct": "Non-randomised", "non-randomised trial": "Non-randomised",
    "n/a": "Not applicable",
}
MODEL = {
    "parallel assignment": "Parallel/Crossover", "crossover assignment": "Parallel/Crossover",
    "parallel": "Parallel/Crossover", "crossover": "Parallel/Crossover",
    "single group assignment": "Single arm", "single group": "Single arm",
    "factorial assignment": "Factorial", "factorial": "Factorial",
}
PURPOSE = {
    "treatment": "Treatment and Management", "supportive care": "Treatment and Management",
    "prevention": "Prevention", "diagnostic": "Diagnosis", "diagnosis": "Diagnosis",
    "screening": "Diagnosis", "health services research": "Health Services and Policy",
}
_KEYS = {
    "allocation": ("intervention_assignment", ALLOCATION),
    "randomization": ("intervention_assignment", ALLOCATION),
    "intervention model": ("study_design", MODEL),
    "assignment": ("study_design", MODEL),
    "primary purpose": ("study_aim", PURPOSE),
    "purpose": ("study_aim", PURPOSE),
}
_KEY_VALUE = re.compile(
    r"(?<![A-Za-z])(primary purpose|purpose|allocation|randomization|intervention model|assignment)"
    r"\s*:\s*([A-Za-z/ -]+?)\s*(?=[.,;]|$)", re.I)


# Designs written without labels (ChiCTR, UMIN-CTR, ISRCTN), matched as whole values only.
UNLABELLED = {
    "parallel": {"study_design": "Parallel/Crossover"},
    "factorial": {"study_design": "Factorial"},
    "single arm": {"study_design": "Single arm"},
    "single arm non-randomized": {"study_design": "Single arm", "intervention_assignment": "Non-randomised"},
    "randomized controlled trial": {"intervention_assignment": "Randomised"},
    "randomised controlled trial": {"intervention_assignment": "Randomised"},
    "cohort study": {"study_design": "Cohort"},
    "case-control study": {"study_design": "Case-control"},
    "cross-sectional": {"study_design": "Cross-sectional"},
}


def design_facets(text: str) -> dict[str, str]:
    """Facets a registry's `Study design` field states in so many words; nothing else.

    Labelled forms (ClinicalTrials.gov "Allocation: Randomized. Intervention model: Parallel
    Assignment. Primary purpose: Treatment.", ANZCTR "Purpose: Treatment; Allocation: Randomised
    controlled trial; …Assignment: Parallel", IRCT "Randomization: Randomized, …Assignment:
    Parallel, Purpose: Treatment", CRiS "Primary Purpose : Treatment, Intervention Model :
    Parallel, …Allocation : RCT") map value by value through the tables above; a value not in a
    table maps to nothing. An unlabelled design maps only when the whole text is in UNLABELLED,
    optionally followed by ISRCTN's "(Purpose)"."""
    facets: dict[str, str] = {}
    found = _KEY_VALUE.findall(text)
    for key, value in found:
        facet, table = _KEYS[key.lower()]
        label = table.get(value.strip().lower())
        if label and facet not in facets:
            facets[facet] = label
    if not found:
        whole = re.sub(r"\s+", " ", text).strip().lower()
        purpose = re.fullmatch(r"(.+?) \(([^()]+)\)", whole)
        if purpose and purpose.group(1) in UNLABELLED and purpose.group(2) in PURPOSE:
            facets.update(UNLABELLED[purpose.group(1)], study_aim=PURPOSE[purpose.group(2)])
        else:
            facets.update(UNLABELLED.get(whole, {}))
    return facets


# --------------------------------------------------------------------------------------------------
# References

TRIAL_REPORT_TYPES = re.compile(
    r"Clinical Trial(?:, Phase (?:I|II|III|IV))?|Randomized Controlled Trial|Controlled Clinical Trial"
    r"|Pragmatic Clinical Trial|Equivalence Trial|Adaptive Clinical Trial")
PREPRINT_DOI = re.compile(r"10\.1101/\d{4}\.\d{2}\.\d{2}\.\d+")  # medRxiv / bioRxiv
NOT_A_TITLE = re.compile(r"P a g e|(?:\b\w ){5,}|\bAUTHORS$")  # CORD-19 PDF page headers


def publication_types(row: dict) -> set[str]:
    return {t.strip() for t in (row.get("ArticleType") or "").split("|") if cell(t)}


def is_trial_report(types: set[str]) -> bool:
    """PubMed types the article as a report of a trial (and not as a trial protocol)."""
    return "Clinical Trial Protocol" not in types and any(TRIAL_REPORT_TYPES.fullmatch(t) for t in types)


def cites(text: str | None, identifier: str) -> bool:
    return bool(text) and identifier.upper() in re.sub(r"\s+", "", text).upper()


def title_for(data: Data, dois: set[str], pmids: set[str]) -> tuple[str | None, dict | None, str]:
    """(title, regCOVID row, where it came from) by PMID or DOI: regCOVID, LitCovid, search hits.
    With no title, `where` says why."""
    for pmid in sorted(pmids):
        if pmid in data.regcovid:
            row = data.regcovid[pmid]
            return clean_text(row["Title"]), row, "regCOVID (PubMed)"
    for pmid in sorted(pmids):
        if pmid in data.litcovid_by_pmid:
            return clean_text(data.litcovid_by_pmid[pmid]["title_e"]), None, "LitCovid"
    for doi in sorted(dois):
        if doi in data.litcovid_by_doi:
            return clean_text(data.litcovid_by_doi[doi]["title_e"]), None, "LitCovid"
    for hit in [data.hits_by_pmid.get(p) for p in sorted(pmids)] + \
               [data.hits_by_doi.get(d) for d in sorted(dois)]:
        if hit:
            title = clean_text(hit["title"])
            if title and NOT_A_TITLE.search(title):
                return None, None, f"its only title is a PDF page header ({title[:50]}...)"
            return title, None, "the DIRECCT/CORD-19 search hits"
    return None, None, "no title in any file"


class Link:
    """One source's statement that an article or preprint belongs to a study."""

    def __init__(self, study: str, source: str, doi: str | None = None, pmid: str | None = None,
                 kind: str | None = None, results: bool = False, day: str | None = None,
                 url: tuple[str, str] | None = None):
        self.study, self.source = study, source
        self.dois = {doi.strip().lower()} if doi else set()
        self.pmids = {pmid.strip()} if pmid else set()
        self.kind, self.results, self.day, self.url = kind, results, day, url

    def complete(self, data: Data) -> Link:
        """Add the PMID of a DOI (and the DOI of a PMID) that the search hits pair."""
        for doi in list(self.dois):
            hit = data.hits_by_doi.get(doi)
            if hit and cell(hit["pm_id"]):
                self.pmids.add(hit["pm_id"].strip())
        for pmid in list(self.pmids):
            hit = data.hits_by_pmid.get(pmid)
            if hit and cell(hit["doi"]):
                self.dois.add(hit["doi"].strip().lower())
        return self


def study_links(data: Data, name: str, identifiers: list[str], main: dict, trials: list[str]) -> list[Link]:
    """What the three link sources say about the study's articles and preprints."""
    links: list[Link] = []

    # 1. TrialsTracker: the results publication of the study's main record.
    link, kind = cell(main["results_link"]), main["results_type"]
    if kind in ("Journal Article", "Pre-Print Article", "Correspondence") and link and "doi.org/" in link:
        links.append(Link(
            name, f"TrialsTracker results_link ({kind})", doi=link.split("doi.org/", 1)[1],
            kind={"Journal Article": "journal", "Pre-Print Article": "preprint",
                  "Correspondence": "letter"}[kind],
            results=True, day=cell(main["results_publication_date"]), url=("2", link)))

    # 2. DIRECCT results of the DIRECCT trial(s) holding any of the study's registrations.
    for trial in trials:
        for row in data.direcct_results.get(trial, []):
            kind = row["pub_type"]
            if kind == "summary_results" or not (cell(row["doi"]) or cell(row["pmid"])):
                continue  # registry summary results: no DOI or PMID, no title to find
            day, url = cell(row["date_publication"]), cell(row["url"])
            links.append(Link(
                name, f"DIRECCT results {trial} ({kind})", doi=cell(row["doi"]), pmid=cell(row["pmid"]),
                kind="preprint" if kind.endswith("_preprint") else
                     "journal" if kind.endswith("_journal_article") else
                     "protocol" if kind == "protocol" else None,
                results=kind.startswith(("full_results", "interim_results")),
                day=day, url=("1" + (day or ""), url) if url else None))

    # 3. regCOVID: PubMed articles listed under one of the study's NCT ids whose title or abstract
    #    cites that id, and that PubMed types as a trial report or protocol (or that 1./2. link too).
    for item in links:
        item.complete(data)
    linked = {p for item in links for p in item.pmids}
    for identifier in identifiers:
        for row in data.regcovid_by_nct.get(identifier, []):
            if not (cites(row["Article_Abstract"], identifier) or cites(row["Title"], identifier)):
                continue
            types = publication_types(row)
            protocol, report = "Clinical Trial Protocol" in types, is_trial_report(types)
            if not (report or protocol or row["pmid"] in linked):
                continue
            links.append(Link(
                name, f"regCOVID PMID {row['pmid']} under {identifier} (pub_source {row['pub_source']})",
                pmid=row["pmid"],
                kind="preprint" if "Preprint" in types else "letter" if "Letter" in types else
                     "protocol" if protocol and not report else "journal",
                results=report,
                url=("3", row["pubmed_links"].strip()) if cell(row["pubmed_links"]) else None).complete(data))
    return links


def group_links(links: list[Link]) -> list[list[Link]]:
    """Links that share a DOI or a PMID (directly or through other links) are one reference."""
    groups: list[list[Link]] = []
    for link in links:
        touching = [g for g in groups if any(link.dois & o.dois or link.pmids & o.pmids for o in g)]
        merged = [link] + [o for g in touching for o in g]
        groups = [g for g in groups if g not in touching] + [merged]
    return groups


def reference_from(data: Data, group: list[Link], studies: dict[str, dict]) -> tuple[list[str], dict | None]:
    """(the studies it belongs to, the reference), or (…, None) when it has to be left out."""
    dois = {d for link in group for d in link.dois}
    pmids = {p for link in group for p in link.pmids}
    names = sorted({link.study for link in group})
    label = f"{', '.join(names)}: doi={','.join(sorted(dois)) or '-'} pmid={','.join(sorted(pmids)) or '-'}"
    if len(dois) > 1 or len(pmids) > 1:
        STATS["left_out"].append(f"{label}: conflicting identifiers")
        return names, None
    title, article, where = title_for(data, dois, pmids)
    if not title:
        STATS["left_out"].append(f"{label}: {where}")
        return names, None
    doi, pmid = next(iter(dois), None), next(iter(pmids), None)
    kinds = {link.kind for link in group}
    if "preprint" in kinds or (doi and PREPRINT_DOI.fullmatch(doi) and "journal" not in kinds):
        kind = "preprint"
    elif "letter" in kinds:
        kind = "letter"
    else:
        kind = "journal_article"
    days = sorted(link.day for link in group if link.day)
    day = days[0] if days else None
    urls = sorted(link.url for link in group if link.url)
    return names, {
        "type": kind,
        "title": title,
        "authors": [],
        "abstract": plain_abstract(article["Article_Abstract"]) if article else None,
        "source": clean_text(article["Journal"]) if article else None,
        "year": int(day[:4]) if day else None,
        "published": day,
        "doi": doi,
        "pmid": pmid,
        "url": urls[0][1] if urls else None,
        "has_results": any(link.results for link in group),
        "notes": f"Title from {where}. Linked by: " + "; ".join(
            sorted({f"{link.source} to {link.study}" if len(names) > 1 else link.source
                    for link in group})) + ".",
        "first_published": day or min(studies[n]["first_published"] for n in names),
        "updated": f"{day}T00:00:00Z" if day else max(studies[n]["updated"] for n in names),
    }


def registry_record(data: Data, identifier: str, registry: str) -> dict | None:
    """The registry record of one registration: TrialsTracker's row, else DIRECCT's ICTRP row."""
    rows = data.tracker_by_canonical.get(identifier)
    if rows:
        row = sorted(rows, key=lambda r: (r["date_registration"], r["trialid"]))[0]
        refreshed, source = row["last_refreshed_on"], "TrialsTracker ICTRP list 2020-12-16"
        has_results = row["results_type"] == "Registry Results"
    else:
        rows = data.direcct_ictrp.get(identifier)
        if not rows:
            return None
        row = sorted(rows, key=lambda r: (r["date_registration"], r["web_address"]))[0]
        refreshed, source, has_results = None, "DIRECCT ICTRP list 2021-07-01", False
    title = clean_text(row["public_title"])
    registered = cell(row["date_registration"])
    if not title or not registered:
        return None
    return {
        "type": "trial_registry_record",
        "title": title,
        "authors": [],
        "abstract": None,
        "source": registry,
        "year": int(registered[:4]),
        "published": registered,
        "doi": None,
        "pmid": None,
        "url": cell(row["web_address"]),
        "registration_id": identifier,
        "has_results": has_results,
        "notes": f"Registry record from the {source}.",
        "first_published": registered,
        "updated": f"{cell(refreshed) or registered}T00:00:00Z",
    }


# --------------------------------------------------------------------------------------------------
# Studies

def registrations_of(data: Data, row: dict) -> tuple[list[dict], list[str], list[str]]:
    """The study's registrations (main first, then TrialsTracker's cross-registrations, then
    DIRECCT's), the DIRECCT trial ids that hold any of them, and identifiers of no known form."""
    identifiers = [canonical(row["trialid"])]
    for other in (row["cross_registrations"] or "").split(";"):
        if cell(other):
            identifiers.append(canonical(other))
    trials: list[str] = []
    queue = list(identifiers)
    while queue:  # follow DIRECCT groups transitively
        for trial in sorted(data.direcct_trial_of.get(queue.pop(0), ())):
            if trial not in trials:
                trials.append(trial)
                for trn in data.direcct_trns[trial]:
                    if trn not in identifiers:
                        identifiers.append(trn)
                        queue.append(trn)
    registrations = [{"registry": registry_of(i), "identifier": i} for i in identifiers if registry_of(i)]
    return registrations, trials, [i for i in identifiers if not registry_of(i)]


def build_study(data: Data, row: dict) -> tuple[dict, list[Link]]:
    """The study with its registry records, and the links to its articles and preprints."""
    registrations, trials, unknown = registrations_of(data, row)
    for identifier in unknown:
        STATS["left_out"].append(f"{row['trialid']}: identifier of no known form {identifier!r}")
    identifiers = [r["identifier"] for r in registrations]
    study = {
        "name": identifiers[0],
        "title": clean_text(row["public_title"]),
        "registrations": registrations,
        "study_type": study_type(row["study_type"]),
        "study_aim": "Unclear",
        "study_design": "Unclear",
        "intervention_assignment": "Unclear",
        "first_published": row["date_registration"],
        "updated": f"{row['last_refreshed_on']}T00:00:00Z",
    }
    design = data.designs.get(identifiers[0])
    if design:
        study.update(design_facets(design[0]))
    study["references"] = []
    for registration in registrations:
        record = registry_record(data, registration["identifier"], registration["registry"])
        if record:
            study["references"].append(record)
        else:
            STATS["left_out"].append(f"{study['name']}: no registry record for {registration['identifier']}")
    return study, study_links(data, study["name"], identifiers, row, trials)


def select_extra_studies(data: Data, taken: set[str], count: int) -> list[dict]:
    """More ClinicalTrials.gov studies, cheaply and reproducibly: TrialsTracker NCT records (listed
    once) that TrialsTracker gives a results publication or registry results for, and that a
    regCOVID article cites in its title or abstract while PubMed types it as a trial report; the
    first `count` by NCT id whose registrations overlap no study already chosen."""
    chosen = []
    for trialid in sorted(data.tracker):
        row = data.tracker[trialid]
        if len(chosen) == count:
            break
        if not trialid.startswith("NCT") or trialid in data.tracker_duplicates:
            continue
        if row["results_type"] not in ("Journal Article", "Pre-Print Article", "Registry Results"):
            continue
        if not any((cites(a["Article_Abstract"], trialid) or cites(a["Title"], trialid))
                   and is_trial_report(publication_types(a))
                   for a in data.regcovid_by_nct.get(trialid, [])):
            continue
        identifiers = {r["identifier"] for r in registrations_of(data, row)[0]}
        if identifiers & taken:
            continue
        taken |= identifiers
        chosen.append(row)
    return chosen


def build(data_dir: Path) -> dict:
    data = Data(data_dir)
    taken = set(RESERVED_IDENTIFIERS)
    rows = []
    for row in data.sample:
        identifiers = {r["identifier"] for r in registrations_of(data, row)[0]}
        assert not identifiers & taken, f"{row['trialid']} overlaps another study"
        taken |= identifiers
        rows.append(row)
    rows += select_extra_studies(data, taken, EXTRA_STUDIES)

    studies, links = {}, []
    for row in sorted(rows, key=lambda r: canonical(r["trialid"])):
        study, study_links_ = build_study(data, row)
        studies[study["name"]] = study
        links += study_links_
    # One reference per article, with the same fields in every study it belongs to.
    articles: dict[str, list[dict]] = {name: [] for name in studies}
    for group in group_links(links):
        names, reference = reference_from(data, group, studies)
        for name in names if reference else ():
            articles[name].append(reference)
    for name, study in studies.items():
        study["references"] += sorted(articles[name], key=lambda r: (
            r["published"] or "9999", r["doi"] or "", r["pmid"] or "", r["title"]))
    return {"notices": [], "studies": [studies[name] for name in sorted(studies)]}


STATS: dict = {"mojibake_fixed": 0, "mojibake_left": 0, "left_out": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args()
    document = build(args.data)
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    links = [r for s in document["studies"] for r in s["references"]]
    distinct = {r.get("registration_id") or r.get("doi") or r.get("pmid") or r["title"] for r in links}
    print(f"{args.out}: {len(document['studies'])} studies, {len(distinct)} references "
          f"({len(links)} study-reference links); "
          f"mojibake repaired in {STATS['mojibake_fixed']} texts, left in {STATS['mojibake_left']}",
          file=sys.stderr)
    for line in sorted(set(STATS["left_out"])):
        print(f"  left out: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
