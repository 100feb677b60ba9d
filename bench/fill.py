"""Fill a migrated, empty register with N studies x 3 references of realistic size, fast.

    python bench/fill.py --database-url sqlite:///tmp/bench.db --n 50000 [--seed 1] [--migrate]

Every study gets 1-2 registrations (canonical NCT, ChiCTR and ISRCTN identifiers, unique) and three
references: its trial registry record, a journal article and a preprint. The text is real: study
titles come from the WHO ICTRP / ClinicalTrials.gov files in ../shared/data/trials, article titles,
abstracts, journals and author names from ../shared/data/articles (regCOVID PubMed and LitCovid).
Abstracts are recombined at sentence boundaries (the start of one real abstract + the end of
another), so nearly every record differs while sizes (~1.5-2 KB) and vocabulary stay real.
Authors are 3-12 real names per article. The result is deterministic for a given seed.

The rows are written with bulk INSERTs of explicit ids, in batches, inside one transaction
(Postgres sequences are moved past the ids afterwards).
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as dt
import gzip
import html
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service.db import database, is_postgres  # noqa: E402
from service.identifiers import find_identifiers, registry_of  # noqa: E402
from service.models import (  # noqa: E402
    Reference,
    ReferenceIdentifier,
    Registration,
    Study,
    StudyReference,
)
from service.vocabularies import INTERVENTION_ASSIGNMENT, STUDY_AIM, STUDY_DESIGN, STUDY_TYPE  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PREPRINT_SERVERS = ["medRxiv", "bioRxiv", "Research Square", "SSRN", "Preprints.org"]
REGISTRY_SOURCES = {"ClinicalTrials.gov": "ClinicalTrials.gov", "ChiCTR": "Chinese Clinical Trial Registry",
                    "ISRCTN": "ISRCTN registry"}
DOI_PREFIXES = ["10.1056", "10.1016", "10.1001", "10.1136", "10.1186", "10.1371", "10.3389", "10.1038",
                "10.1093", "10.1002"]
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_DIGITS = re.compile(r"\d{3}")


@dataclass
class Corpus:
    study_titles: list[str]
    article_titles: list[str]
    abstracts: list[list[str]]  # each abstract as its sentences
    journals: list[str]
    authors: list[str]


def _rows(path: Path):
    csv.field_size_limit(1 << 30)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _clean(text: str | None) -> str:
    return _SPACES.sub(" ", html.unescape(_TAGS.sub(" ", text or ""))).strip()


def _cites(text: str) -> bool:
    return bool(_DIGITS.search(text)) and bool(find_identifiers(text))


def _author_list(raw: str) -> list[str]:
    raw = (raw or "").strip()
    if raw.startswith("["):
        try:
            names = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return []
    else:
        names = raw.split(",")
    return [html.unescape(n).strip() for n in names if isinstance(n, str) and 2 < len(n.strip()) < 60]


def load_corpus(data: Path = DATA) -> Corpus:
    """Real titles, abstracts, journal and author names from the shared data (deduplicated, sorted)."""
    study_titles, article_titles, abstracts, journals, authors = set(), set(), set(), set(), set()
    for path in sorted((data / "trials").glob("*.csv.gz")):
        for row in _rows(path):
            for column in ("public_title", "Public title", "official_title", "brief_title"):
                title = _clean(row.get(column))
                if 20 <= len(title) <= 600:
                    study_titles.add(title)
    for path in sorted((data / "articles").glob("regcovid_publications_*.csv.gz")):
        for row in _rows(path):
            abstract = _clean(row.get("Article_Abstract"))
            if len(abstract) >= 600:
                abstracts.add(abstract)
                article_titles.add(_clean(row.get("Title")))
                journals.add(_clean(row.get("Journal")))
    litcovid = data / "articles" / "litcovid_longcovid_doc_all_info.csv.gz"
    if litcovid.exists():
        for row in _rows(litcovid):
            authors.update(_author_list(row.get("authors")))
            abstract = _clean(row.get("abstract"))
            if len(abstract) >= 600:
                abstracts.add(abstract)
                article_titles.add(_clean(row.get("title_e")))
                journals.add(_clean(row.get("litcovid_journal")))
    if not (study_titles and abstracts and authors):
        raise SystemExit(f"no usable records under {data} (see ../shared/data/SOURCES.md)")
    # Real abstracts cite real trials: drop the sentences that do, so the only identifier in a
    # bench record is the one fill() puts there (and the links it writes are the ones the
    # service's automatic linking would make).
    split = [[s for s in _SENTENCE_END.split(a) if s and not _cites(s)] for a in sorted(abstracts)]
    study_titles = {t for t in study_titles if not _cites(t)}
    article_titles = {t for t in article_titles if t and not _cites(t)}
    return Corpus(sorted(study_titles), sorted(article_titles), [a for a in split if len(a) > 1],
                  sorted(j for j in journals if j), sorted(authors))


class Identifiers:
    """Unique canonical registration identifiers, as registries issue them."""

    def __init__(self, rng: random.Random):
        self.rng, self.seen = rng, set()

    def make(self, registry: str) -> str:
        while True:
            r = self.rng
            if registry == "ClinicalTrials.gov":
                value = f"NCT0{r.randrange(4_200_000, 6_600_000):07d}"
            elif registry == "ChiCTR":
                value = f"ChiCTR{r.choice(('2000', '2100', '2200', '2300'))}{r.randrange(1, 80_000):06d}"
            else:
                value = f"ISRCTN{r.randrange(10_000_000, 99_999_999):08d}"
            if value not in self.seen:
                self.seen.add(value)
                return value


def _abstract(rng: random.Random, corpus: Corpus, cite: str | None) -> str:
    """The opening sentences of one real abstract and the closing ones of another, ~1.5 KB on average."""
    a, b = rng.choice(corpus.abstracts), rng.choice(corpus.abstracts)
    target = rng.randint(700, 2300)
    head, tail, size = [], [], 0
    for sentence in a:
        if head and size + len(sentence) > target / 2:
            break
        head.append(sentence)
        size += len(sentence) + 1
    for sentence in reversed(b):
        if tail and size + len(sentence) > target:
            break
        tail.insert(0, sentence)
        size += len(sentence) + 1
    text = " ".join(head + tail)
    if cite:
        text += f" TRIAL REGISTRATION: {REGISTRY_SOURCES[registry_of(cite)]}, {cite}."
    return text


def _day(rng: random.Random, start: dt.date, span: int) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(span))


def _stamp(rng: random.Random, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86_400 * 300))


def _pages(rng: random.Random) -> str:
    first = rng.randint(1, 2000)
    return f"{first}-{first + rng.randint(3, 14)}"


def _insert(model, fields: list, rows: list[tuple]) -> None:
    """Bulk INSERT through the driver (peewee would spend most of the time building the SQL)."""
    db = database.obj
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    convert = [f.db_value for f in fields]
    values = [tuple(c(v) for c, v in zip(convert, row, strict=True)) for row in rows]
    table = model._meta.table_name
    cursor = db.cursor()
    if is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s', values, page_size=1000)
    else:
        marks = ", ".join([db.param] * len(fields))
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', values)


def fill(n: int, *, seed: int = 1, batch: int = 2000, corpus: Corpus | None = None,
         progress=None) -> dict:
    """Write ``n`` studies with their registrations and 3 linked references each; return counts."""
    if Study.select().exists() or Reference.select().exists():
        raise SystemExit("fill needs an empty register (a fresh, migrated database)")
    rng = random.Random(seed)
    corpus = corpus or load_corpus()
    ids = Identifiers(rng)
    facet_values = [list(v) for v in (STUDY_TYPE, STUDY_AIM, STUDY_DESIGN, INTERVENTION_ASSIGNMENT)]
    facet_weights = [[0.6 ** i for i in range(len(v))] for v in facet_values]
    registries, registry_weights = ["ClinicalTrials.gov", "ChiCTR", "ISRCTN"], [0.62, 0.25, 0.13]
    study_fields = [Study.id, Study.name, Study.title, Study.study_type, Study.study_aim,
                    Study.study_design, Study.intervention_assignment, Study.first_published,
                    Study.created, Study.updated]
    reg_fields = [Registration.id, Registration.study, Registration.registry, Registration.identifier]
    ref_fields = [Reference.id, Reference.type, Reference.title, Reference.authors, Reference.abstract,
                  Reference.source, Reference.year, Reference.published, Reference.volume,
                  Reference.issue, Reference.pages, Reference.doi, Reference.pmid, Reference.url,
                  Reference.registration_id, Reference.has_results, Reference.first_published,
                  Reference.created, Reference.updated]
    link_fields = [StudyReference.id, StudyReference.study, StudyReference.reference,
                   StudyReference.link, StudyReference.identifier, StudyReference.created]
    found_fields = [ReferenceIdentifier.id, ReferenceIdentifier.reference, ReferenceIdentifier.identifier,
                    ReferenceIdentifier.registry]
    counts = {"studies": 0, "registrations": 0, "references": 0, "links": 0, "identifiers_found": 0}
    reg_id = found_id = 0
    with database.atomic():
        for first in range(0, n, batch):
            studies, regs, refs, links, found = [], [], [], [], []
            for study_id in range(first + 1, min(first + batch, n) + 1):
                primary = rng.choices(registries, registry_weights)[0]
                identifiers = [ids.make(primary)]
                if rng.random() < 0.3:  # cross-registered in a second registry
                    identifiers.append(ids.make(rng.choice([r for r in registries if r != primary])))
                name, title = identifiers[0], rng.choice(corpus.study_titles)
                registry = registry_of(name)
                day = _day(rng, dt.date(2020, 1, 15), 1400)
                created = _stamp(rng, day)
                updated = created + dt.timedelta(days=rng.randrange(700))
                facets = [rng.choices(v, w)[0] for v, w in zip(facet_values, facet_weights, strict=True)]
                studies.append((study_id, name, title, *facets, day, created, updated))
                for identifier in identifiers:
                    reg_id += 1
                    regs.append((reg_id, study_id, registry_of(identifier), identifier))

                ref_base = (study_id - 1) * 3
                # 1. its trial registry record (the record's own identifier links it)
                refs.append((ref_base + 1, "trial_registry_record", title, "[]",
                             _abstract(rng, corpus, None), REGISTRY_SOURCES[registry],
                             day.year, day.isoformat(), None, None, None, None, None,
                             f"https://trialsearch.who.int/Trial2.aspx?TrialID={name}", name,
                             rng.random() < 0.15, day, created, updated))
                # 2. a journal article (most report results; some are protocols), and 3. its preprint
                published = _day(rng, day + dt.timedelta(days=90), 900)
                precision = rng.random()
                when = (published.isoformat() if precision < 0.7 else published.isoformat()[:7]
                        if precision < 0.9 else str(published.year))
                posted = published - dt.timedelta(days=rng.randrange(30, 200))
                cites = [True, rng.random() < 0.7, rng.random() < 0.5]
                refs.append((ref_base + 2, "journal_article", rng.choice(corpus.article_titles),
                             json.dumps(rng.sample(corpus.authors, rng.randint(3, 12)), ensure_ascii=False),
                             _abstract(rng, corpus, name if cites[1] else None),
                             rng.choice(corpus.journals), published.year, when,
                             str(rng.randint(1, 400)), str(rng.randint(1, 24)), _pages(rng),
                             f"{rng.choice(DOI_PREFIXES)}/bench.{ref_base + 2}",
                             str(32_000_000 + ref_base + 2), None, None, rng.random() < 0.8,
                             published, _stamp(rng, published), _stamp(rng, published)))
                refs.append((ref_base + 3, "preprint", rng.choice(corpus.article_titles),
                             json.dumps(rng.sample(corpus.authors, rng.randint(3, 12)), ensure_ascii=False),
                             _abstract(rng, corpus, name if cites[2] else None),
                             rng.choice(PREPRINT_SERVERS), posted.year, posted.isoformat(), None, None,
                             None, f"10.1101/{posted:%Y.%m.%d}.{ref_base + 3:08d}", None, None, None,
                             rng.random() < 0.6, posted, _stamp(rng, posted), _stamp(rng, posted)))
                # Links as automatic linking makes them (by the cited identifier), else by hand.
                for k in range(3):
                    ref_id = ref_base + 1 + k
                    if cites[k]:
                        links.append((ref_id, study_id, ref_id, "auto", name, created))
                        found_id += 1
                        found.append((found_id, ref_id, name, registry))
                    else:
                        links.append((ref_id, study_id, ref_id, "manual", None, created))
            _insert(Study, study_fields, studies)
            _insert(Registration, reg_fields, regs)
            _insert(Reference, ref_fields, refs)
            _insert(StudyReference, link_fields, links)
            _insert(ReferenceIdentifier, found_fields, found)
            for key, rows in (("studies", studies), ("registrations", regs), ("references", refs),
                              ("links", links), ("identifiers_found", found)):
                counts[key] += len(rows)
            if progress:
                progress(counts["studies"], n)
        if is_postgres():
            for model in (Study, Registration, Reference, StudyReference, ReferenceIdentifier):
                table = model._meta.table_name
                database.execute_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--migrate", action="store_true", help="apply the migrations first")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="where the texts come from: a folder laid out as ../shared/data")
    args = parser.parse_args()

    from service import create_app, migrations
    from service.db import close_all

    create_app({"DATABASE_URL": args.database_url, "LOG_LEVEL": "WARNING"})
    with database.connection_context():
        if args.migrate:
            migrations.upgrade()
        began = time.perf_counter()
        corpus = load_corpus(args.data)
        loaded = time.perf_counter()
        counts = fill(args.n, seed=args.seed, corpus=corpus)
        done = time.perf_counter()
    close_all(database.obj)
    print(f"{counts} in {done - loaded:.1f} s (+{loaded - began:.1f} s reading {args.data})")


if __name__ == "__main__":
    main()
