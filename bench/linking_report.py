"""How well automatic linking does on the real data in ../shared/data.

    python bench/linking_report.py [--data DIR] [--sample 50] [--seed 7]

Builds a throw-away SQLite register through the service's own domain functions: one study per trial,
with every registration the trial files know for it (DIRECCT cross-registrations and TrialsTracker
`cross_registrations` grouped together), then every article (title + abstract) as a reference, which
links itself automatically. Prints how many articles were linked, to how many studies, which
registries the linking identifiers came from, extraction throughput, and a random sample of links
with the text around the identifier, for judging by hand.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import create_app, migrations  # noqa: E402
from service.db import database  # noqa: E402
from service.domain import references as reference_domain  # noqa: E402
from service.domain import studies as study_domain  # noqa: E402
from service.identifiers import canonical, find_identifiers  # noqa: E402
from service.models import Reference, Registration, StudyReference  # noqa: E402

csv.field_size_limit(10_000_000)


def rows(path: Path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def trial_groups(data: Path) -> list[list[str]]:
    """Canonical identifiers grouped by trial (union of every cross-registration the files give)."""
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(ids):
        ids = [c[0] for c in map(canonical, ids) if c]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        for i in ids:
            find(i)

    by_trial: dict[str, list[str]] = {}
    for row in rows(data / "links" / "direcct_registrations.csv.gz"):
        by_trial.setdefault(row["id"], []).append(row["trn"])
    for ids in by_trial.values():
        union(ids)
    for row in rows(data / "trials" / "ictrp_covid_trialstracker_2020-12-16.csv.gz"):
        cross = [c.strip() for c in (row["cross_registrations"] or "").split(";")
                 if c.strip() not in ("", "None")]
        union([row["trialid"], *cross])
    for row in rows(data / "trials" / "ictrp_covid_direcct_2021-07-01.csv.gz"):
        union([row["trn"]])
    for row in rows(data / "trials" / "ctgov_aact_covid_studies_regcovid.csv.gz"):
        union([row["nct_id"]])
    groups: dict[str, list[str]] = {}
    for identifier in parent:
        groups.setdefault(find(identifier), []).append(identifier)
    return [sorted(g) for g in groups.values()]


def articles(data: Path) -> dict[str, tuple[str, str]]:
    """PMID -> (title, plain abstract) of every article file."""
    found: dict[str, tuple[str, str]] = {}
    for name in ("interventional", "observational", "patient_registries"):
        for row in rows(data / "articles" / f"regcovid_publications_{name}.csv.gz"):
            text = html.unescape(re.sub(r"<[^>]+>", " ", row["Article_Abstract"] or ""))
            found.setdefault(row["pmid"], (row["Title"], re.sub(r"\s+", " ", text).strip()))
    for row in rows(data / "articles" / "litcovid_longcovid_doc_all_info.csv.gz"):
        found.setdefault(row["pmid"], (row["title_e"] or "", row["abstract"] or ""))
    return {k: v for k, v in found.items() if v[0].strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    groups, papers = trial_groups(args.data), articles(args.data)

    began = time.perf_counter()
    hits = Counter()
    for title, abstract in papers.values():
        for found in find_identifiers(title + "\n" + abstract):
            hits[found.registry] += 1
    extraction = time.perf_counter() - began

    folder = tempfile.mkdtemp(prefix="linking-")
    create_app({"DATABASE_URL": f"sqlite:///{folder}/register.db", "LOG_LEVEL": "WARNING"})
    with database.connection_context():
        migrations.upgrade()
        began = time.perf_counter()
        for group in groups:
            study_domain.create_study({"name": group[0], "title": group[0],
                                       "registrations": [{"identifier": i} for i in group]})
        load_studies = time.perf_counter() - began
        began = time.perf_counter()
        pmid_of = {}
        for pmid, (title, abstract) in sorted(papers.items()):
            ref_id = reference_domain.create_reference(
                {"type": "journal_article", "title": title[:5000], "abstract": abstract[:100_000] or None,
                 "pmid": pmid})
            pmid_of[ref_id] = pmid
        load_refs = time.perf_counter() - began
        links = list(StudyReference.select(StudyReference.reference, StudyReference.study,
                                           StudyReference.identifier).tuples())
        owner = dict(Registration.select(Registration.identifier, Registration.study).tuples())
        by_ref = Counter(r for r, _, _ in links)
        registry_of_link = Counter(canonical(i)[1] for _, _, i in links)
        print(f"trials (studies): {len(groups):,} with {len(owner):,} registrations; "
              f"articles: {len(papers):,} distinct PMIDs")
        print(f"identifiers found in titles+abstracts, per registry: {dict(hits.most_common())}")
        print(f"extraction: {len(papers) / extraction:,.0f} abstracts/s "
              f"({extraction:.2f} s for {len(papers):,})")
        print(f"loading: {len(groups) / load_studies:,.0f} studies/s, "
              f"{len(papers) / load_refs:,.0f} references/s (with linking)")
        print(f"articles linked to ≥1 study: {len(by_ref):,} of {len(papers):,}; links: {len(links):,}; "
              f"articles linked to 2+ studies: {sum(1 for c in by_ref.values() if c > 1):,}")
        print("links by the registry of the identifier that made them:",
              dict(registry_of_link.most_common()))
        print(f"\nrandom sample of {args.sample} links (seed {args.seed}), identifier in context:")
        rng = random.Random(args.seed)
        for ref_id, study_id, identifier in rng.sample(sorted(links), min(args.sample, len(links))):
            ref = Reference.get_by_id(ref_id)
            text = f"{ref.title} {ref.abstract or ''}"
            found = next(f for f in find_identifiers(text) if f.identifier == identifier)
            context = text[max(0, found.start - 110):found.end + 40].replace("\n", " ")
            print(f"- PMID {pmid_of[ref_id]} -> study {study_id} via {identifier}: …{context}…")


if __name__ == "__main__":
    main()
