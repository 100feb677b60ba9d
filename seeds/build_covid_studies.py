"""Build seeds/covid-studies.json: real COVID-19 studies and their reports, from ../shared/data.

Run from the repository root:  python seeds/build_covid_studies.py [--data DIR]
The output is deterministic (same input, same bytes). seeds/README.md says where every field comes from.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.identifiers import normalise, registry_of  # noqa: E402 - the register's own canonical form

EXTRA_STUDIES = 10  # NCT studies beyond the 20-study sample, each with an article citing it
csv.field_size_limit(10_000_000)


def read_csv(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def value(text: str | None) -> str | None:
    """The cell's text, or None for the data sets' missing-value markers."""
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", "NA", "None", "Not Available", "No Results") else text


def fix_mojibake(text: str | None) -> str | None:
    """Undo UTF-8 read as cp1252 (`GS-5734â„¢` -> `GS-5734™`), only when the round trip succeeds."""
    if text and re.search("[ÃÂâ]", text):
        try:
            return text.encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
    return text


def plain_abstract(xml: str | None) -> str | None:
    """PubMed AbstractText fragments -> "LABEL: text ..." plain text, copyright statements dropped."""
    if not xml:
        return None
    xml = re.sub(r"<CopyrightInformation>.*?</CopyrightInformation>", "", xml, flags=re.S)
    parts = []
    for label, body in re.findall(r"<AbstractText(?:\s+Label=\"([^\"]*)\")?[^>]*>(.*?)</AbstractText>",
                                  xml, flags=re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", body)).strip()
        if text:
            parts.append(f"{label}: {text}" if label else text)
    if not parts:
        parts = [html.unescape(re.sub(r"<[^>]+>", "", xml)).strip()]
    return fix_mojibake(re.sub(r"\s+", " ", " ".join(parts)).strip()) or None


def instant(day: str) -> str:
    return f"{day}T00:00:00Z"


def registration(identifier: str) -> dict | None:
    canonical = normalise(identifier)
    registry = registry_of(canonical)
    return {"registry": registry, "identifier": canonical} if registry else None


def build(data: Path) -> dict:
    seeds = data / "seeds"
    trials = read_csv(data / "trials" / "ictrp_covid_trialstracker_2020-12-16.csv.gz")
    sample = read_csv(seeds / "studies_ictrp_trialstracker.csv")
    articles: dict[str, dict] = {}  # pmid -> first regcovid row (one row per article-trial pair)
    cites: dict[str, list[str]] = {}  # NCT id -> pmids of articles whose abstract cites it
    for name in ("interventional", "observational", "patient_registries"):
        for row in read_csv(data / "articles" / f"regcovid_publications_{name}.csv.gz"):
            articles.setdefault(row["pmid"], row)
            abstract = row["Article_Abstract"] or ""
            if row["pub_source"] == "Abstract" and row["nct_id"] in abstract:
                cites.setdefault(row["nct_id"], []).append(row["pmid"])
    hits = read_csv(data / "links" / "direcct_trn_search_hits_2021-02-24.csv.gz")
    by_doi = {h["doi"].lower(): h for h in hits if value(h["doi"])}
    direcct_ids = {r["id"]: [] for r in read_csv(seeds / "registrations_direcct.csv")}
    for row in read_csv(seeds / "registrations_direcct.csv"):
        direcct_ids[row["id"]].append(normalise(row["trn"]))
    results = read_csv(seeds / "references_direcct_results.csv")

    chosen = {normalise(r["trialid"]): r for r in sample}
    by_trial = {normalise(r["trialid"]): r for r in trials}
    extra = sorted(t for t in cites if t in by_trial and t not in chosen)[:EXTRA_STUDIES]
    for trial_id in extra:
        chosen[trial_id] = by_trial[trial_id]

    studies = []
    for trial_id, row in sorted(chosen.items()):
        regs = [registration(trial_id)]
        for other in (row["cross_registrations"] or "").split(";"):
            if value(other):
                regs.append(registration(other))
        for ids in direcct_ids.values():
            if trial_id in ids:
                regs += [registration(i) for i in ids]
        unique = []
        for reg in regs:
            if reg and reg["identifier"] not in [u["identifier"] for u in unique]:
                unique.append(reg)
        registered, refreshed = row["date_registration"], row["last_refreshed_on"]
        study_type = row["study_type"].strip()
        study = {
            "name": trial_id,
            "title": fix_mojibake(row["public_title"].strip()),
            "registrations": unique,
            "study_type": study_type if study_type in ("Interventional", "Observational") else "Unclear",
            "study_aim": "Unclear", "study_design": "Unclear", "intervention_assignment": "Unclear",
            "first_published": registered,
            "updated": instant(refreshed),
            "references": [],
        }
        refs = study["references"]
        refs.append({
            "type": "trial_registry_record", "title": study["title"], "authors": [],
            "source": unique[0]["registry"], "year": int(registered[:4]), "published": registered,
            "url": value(row["web_address"]), "registration_id": trial_id,
            "has_results": row["results_type"] == "Registry Results",
            "first_published": registered, "updated": instant(refreshed)})
        seen_pmids, seen_dois = set(), set()

        def add_article(pmid, doi=None, url=None, kind="journal_article", day=None):
            article = articles.get(pmid) if pmid else None
            hit = by_doi.get(doi) if doi else None
            if pmid is None and hit and value(hit["pm_id"]):
                pmid = hit["pm_id"]
                article = articles.get(pmid)
            title = (article and article["Title"]) or (hit and hit["title"])
            if title and re.search(r"(?:\b\w ){4,}", title):
                return  # a CORD-19 title scraped from a PDF page header ("P a g e | 1"), not a title
            if not title or (pmid and pmid in seen_pmids) or (doi and doi in seen_dois):
                return
            day = day or (article and article["PubDate"]) or None
            seen_pmids.add(pmid)
            seen_dois.add(doi)
            refs.append({
                "type": kind, "title": fix_mojibake(title.strip()), "authors": [],
                "abstract": plain_abstract(article and article["Article_Abstract"]),
                "source": fix_mojibake(article and article["Journal"]) or None,
                "year": int(day[:4]) if day else None, "published": day,
                "doi": doi, "pmid": pmid, "url": url, "has_results": True,
                "first_published": day or registered, "updated": instant(day or refreshed)})

        for pmid in sorted(set(cites.get(trial_id, []))):
            add_article(pmid)
        trial_direcct = [k for k, ids in direcct_ids.items() if trial_id in ids]
        for result in results:
            if result["id"] in trial_direcct:
                kind = "preprint" if "preprint" in result["pub_type"] else "journal_article"
                add_article(value(result["pmid"]), value(result["doi"]) and result["doi"].lower(),
                            value(result["url"]), kind, value(result["date_publication"]))
        link = value(row["results_link"])
        if link and "doi.org/" in link:
            kind = "preprint" if row["results_type"] == "Pre-Print Article" else "journal_article"
            add_article(None, link.split("doi.org/", 1)[1].lower(), None, kind,
                        value(row["results_publication_date"]))
        studies.append(study)
    return {"notices": [], "studies": studies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "seeds" / "covid-studies.json")
    args = parser.parse_args()
    document = build(args.data)
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    refs = sum(len(s["references"]) for s in document["studies"])
    print(f"{args.out}: {len(document['studies'])} studies, {refs} references")


if __name__ == "__main__":
    main()
