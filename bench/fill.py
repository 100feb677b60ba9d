"""Fill a migrated register with N studies x 3 references of realistic size, fast (bulk inserts).

Titles and abstracts are real PubMed text from ../shared/data (regCOVID), recombined so every
record differs; registrations are unique NCT-shaped identifiers. Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
import re
from pathlib import Path

from service.db import database
from service.models import Reference, Registration, Study, StudyReference
from service.vocabularies import INTERVENTION_ASSIGNMENT, STUDY_AIM, STUDY_DESIGN, STUDY_TYPE

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SURNAMES = ["Chu", "Wang", "Smith", "Garcia", "Kumar", "Nguyen", "Müller", "Rossi", "Kim", "Silva",
            "Cohen", "Ali", "Tanaka", "Okafor", "Johansson", "Dubois", "Novak", "Haddad"]


def real_texts() -> tuple[list[str], list[str]]:
    """Titles and plain-text abstracts from the regCOVID article files (or a small fallback)."""
    titles, abstracts = [], []
    csv.field_size_limit(10_000_000)
    for path in sorted((DATA / "articles").glob("regcovid_publications_*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row["Article_Abstract"] or "")).strip()
                if row["Title"] and len(text) > 400:
                    titles.append(row["Title"].strip())
                    abstracts.append(text)
    if not titles:
        titles = ["Remdesivir for the Treatment of Covid-19"]
        abstracts = ["BACKGROUND: " + "Patients hospitalized with Covid-19 were randomized. " * 30]
    return titles, abstracts


def fill(n: int, *, seed: int = 1, batch: int = 1000) -> None:
    rng = random.Random(seed)
    titles, abstracts = real_texts()
    facets = [list(STUDY_TYPE), list(STUDY_AIM), list(STUDY_DESIGN), list(INTERVENTION_ASSIGNMENT)]
    start = dt.date(2020, 1, 1)
    with database.atomic():
        for first in range(0, n, batch):
            studies, registrations, references = [], [], []
            count = min(batch, n - first)
            for i in range(first, first + count):
                day = start + dt.timedelta(days=rng.randrange(1200))
                stamp = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=rng.randrange(400))
                title = rng.choice(titles)
                studies.append({
                    "name": f"NCT{10_000_000 + i:08d}", "title": title,
                    "study_type": rng.choice(facets[0]), "study_aim": rng.choice(facets[1]),
                    "study_design": rng.choice(facets[2]), "intervention_assignment": rng.choice(facets[3]),
                    "first_published": day, "created": stamp, "updated": stamp})
            ids = _insert_ids(Study, studies)
            for study_id, study in zip(ids, studies, strict=True):
                registrations.append({"study": study_id, "registry": "ClinicalTrials.gov",
                                      "identifier": study["name"]})
                day, stamp = study["first_published"], study["updated"]
                authors = json.dumps([f"{rng.choice(SURNAMES)} {chr(65 + rng.randrange(26))}"
                                      for _ in range(rng.randrange(3, 13))], ensure_ascii=False)
                abstract = rng.choice(abstracts) + " TRIAL REGISTRATION: " + study["name"] + "."
                for kind, results in (("trial_registry_record", False), ("journal_article", True),
                                      ("preprint", rng.random() < 0.5)):
                    references.append({
                        "type": kind, "title": study["title"] if kind == "trial_registry_record"
                        else rng.choice(titles), "authors": "[]" if kind == "trial_registry_record"
                        else authors, "abstract": abstract, "source": "ClinicalTrials.gov"
                        if kind == "trial_registry_record" else "N Engl J Med", "year": day.year,
                        "published": day.isoformat(), "registration_id": study["name"]
                        if kind == "trial_registry_record" else None, "has_results": results,
                        "first_published": day, "created": stamp, "updated": stamp})
            Registration.insert_many(registrations).execute()
            ref_ids = _insert_ids(Reference, references)
            links = [{"study": ids[k // 3], "reference": ref_id, "link": "manual", "created": start}
                     for k, ref_id in enumerate(ref_ids)]
            StudyReference.insert_many(links).execute()


def _insert_ids(model, rows: list[dict]) -> list[int]:
    """Insert ``rows`` and return their ids in order, on either backend."""
    if database.obj.__class__.__name__.startswith("Sqlite"):
        first = model.insert_many(rows).execute()  # SQLite answers the last rowid
        return list(range(first - len(rows) + 1, first + 1))
    return [row[0] for row in model.insert_many(rows).returning(model.id).tuples().execute()]
