"""Phrases on Postgres: today's reference index beside the prototype of bench/phrase_pairs.sql.

    python bench/phrase_bench.py --n 50000                      # fills a fresh database first (~4 min)
    python bench/phrase_bench.py --database-url postgresql://postgres@127.0.0.1:5432/<filled db>

On a register filled by bench/fill.py (its reference_search as the service builds it), builds the
prototype beside it in a schema of its own (``phrase_lab``: the functions of phrase_pairs.sql and a
copy of reference_search with the pairs in its documents, type/year/has_results/updated and the
document out of line), then times the two statements of ``GET /references?q="<phrase>"&facets=type,year``
(the facet count with the total, and the ranked page) both ways in interleaved rounds, each in its
own transaction with ``SET LOCAL enable_seqscan = off`` as the service sends them; checks that both
give the same counts and the same page; prints medians and the per-round ratio; drops the schema
(and the database it filled) at the end. Writes bench/results/phrase-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import database_for, log, prepare  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SCHEMA = "phrase_lab"
PHRASES = ["intensive care", "hospital mortality", "clinical trial", "intensive care unit"]

# The functions, as in bench/phrase_pairs.sql (there in the public schema).
FUNCTIONS = (ROOT / "bench" / "phrase_pairs.sql").read_text()
FUNCTIONS = FUNCTIONS[FUNCTIONS.index("CREATE FUNCTION tsvector_pairs"):FUNCTIONS.index("-- The layout")]

BUILD = [
    ("create table", f"CREATE TABLE {SCHEMA}.reference_search (id integer PRIMARY KEY, "
     "document tsvector NOT NULL, heading tsvector NOT NULL, type varchar(40), year integer, "
     "has_results boolean, updated timestamp) WITH (toast_tuple_target = 128)"),
    ("storage", f"ALTER TABLE {SCHEMA}.reference_search ALTER COLUMN document SET STORAGE EXTERNAL, "
     "ALTER COLUMN heading SET STORAGE MAIN"),
    ("insert the rows with their pairs", f"INSERT INTO {SCHEMA}.reference_search SELECT s.id, "
     f"s.document || {SCHEMA}.tsvector_pairs(s.document), s.heading, r.type, r.year, r.has_results, "
     'r.updated FROM public.reference_search AS s JOIN public."reference" AS r ON r.id = s.id ORDER BY s.id'),
    ("create the GIN index", f"CREATE INDEX reference_search_document ON {SCHEMA}.reference_search "
     "USING gin (document)"),
    ("vacuum analyze", f"VACUUM ANALYZE {SCHEMA}.reference_search"),
]

RANK = "CAST(ts_rank(t2.heading, websearch_to_tsquery('english', %(ws)s)) AS double precision)"
COLUMNS = ('t1.id, t1.type, t1.title, t1.authors, t1.abstract, t1.source, t1.year, t1.published, t1.volume, '
           't1.issue, t1.pages, t1.doi, t1.pmid, t1.url, t1.registration_id, t1.has_results, '
           't1.publication_types, t1.notes, t1.first_published, t1.created, t1.updated, top.rank')
TODAY = {  # the statements the service sends today (bench/run.py's probe prints them)
    "count": ('SELECT t1.type, t1.year, COUNT(t1.id) FROM "reference" AS t1 WHERE t1.id IN (SELECT t2.id '
              "FROM public.reference_search AS t2 WHERE t2.document @@ websearch_to_tsquery('english', "
              "%(ws)s)) GROUP BY t1.type, t1.year"),
    "page": (f'SELECT {COLUMNS} FROM "reference" AS t1 INNER JOIN (SELECT hits.rank, t1.updated, t1.id '
             f'FROM "reference" AS t1 INNER JOIN (SELECT t2.id, {RANK} AS rank FROM public.reference_search '
             "AS t2 WHERE t2.document @@ websearch_to_tsquery('english', %(ws)s) OFFSET 0) AS hits "
             "ON t1.id = hits.id ORDER BY hits.rank DESC, t1.updated DESC, t1.id ASC LIMIT 21 OFFSET 0) "
             "AS top ON t1.id = top.id ORDER BY top.rank DESC, top.updated DESC, top.id ASC"),
}
MATCH = f"t2.document @@ {SCHEMA}.phrase_pairs_query('english', %(words)s)"
MATCH_LONG = (f"t2.document @@ ({SCHEMA}.phrase_pairs_query('english', %(words)s) "
              "&& websearch_to_tsquery('english', %(ws)s))")  # 3+ words: positions checked too
PROTOTYPE = {
    "count": (f"SELECT t2.type, t2.year, COUNT(t2.id) FROM {SCHEMA}.reference_search AS t2 WHERE {{match}} "
              "GROUP BY t2.type, t2.year"),
    "page": (f'SELECT {COLUMNS} FROM "reference" AS t1 INNER JOIN (SELECT t2.id, t2.updated, {RANK} '
             f"AS rank FROM {SCHEMA}.reference_search AS t2 WHERE {{match}} ORDER BY rank DESC, "
             "t2.updated DESC, t2.id ASC LIMIT 21) AS top ON t1.id = top.id "
             "ORDER BY top.rank DESC, top.updated DESC, top.id ASC"),
}


def statement(cursor, sql: str, params: dict, explain: bool = False):
    cursor.execute("BEGIN")
    cursor.execute("SET LOCAL enable_seqscan = off")
    began = time.perf_counter()
    cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if explain else "") + sql, params)
    rows = cursor.fetchall()
    ms = (time.perf_counter() - began) * 1000
    cursor.execute("COMMIT")
    return ms, rows


def answer(label: str, rows: list) -> list:
    return sorted((str(r[0]), r[1], r[2]) for r in rows) if label == "count" else [r[0] for r in rows]


def size(cursor, relation: str) -> int:
    cursor.execute("SELECT pg_relation_size(%s::regclass)", (relation,))
    return cursor.fetchone()[0]


def measure(url: str, phrases: list[str], rounds: int) -> dict:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    cursor = conn.cursor()
    report = {"build": {}, "sizes": {}, "phrases": {}}
    try:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(f"SET search_path = {SCHEMA}, public")
        cursor.execute(FUNCTIONS)
        cursor.execute("RESET search_path")
        # Names in the functions' bodies are looked up when they run: pin them to the lab schema.
        cursor.execute(f"ALTER FUNCTION {SCHEMA}.phrase_pairs_query(regconfig, text) "
                       f"SET search_path = {SCHEMA}, public")
        for label, sql in BUILD:
            began = time.perf_counter()
            cursor.execute(sql)
            report["build"][label] = round(time.perf_counter() - began, 1)
            log(f"prototype: {label} in {report['build'][label]} s")
        for relation in ("public.reference_search", "public.reference_search_document",
                         f"{SCHEMA}.reference_search", f"{SCHEMA}.reference_search_document"):
            report["sizes"][relation] = size(cursor, relation)
        for relation in ("public.reference_search", f"{SCHEMA}.reference_search"):
            cursor.execute("SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = %s::regclass",
                           (relation,))
            report["sizes"][relation + " (TOAST)"] = cursor.fetchone()[0]
        for words in phrases:
            params = {"ws": f'"{words}"', "words": words}
            match = MATCH_LONG if len(words.split()) > 2 else MATCH
            ways = {"today": TODAY, "prototype": {k: v.format(match=match) for k, v in PROTOTYPE.items()}}
            times = {(way, label): [] for way in ways for label in ("count", "page")}
            ratios = {label: [] for label in ("count", "page")}
            answers = {}
            for round_ in range(rounds + 3):  # 3 warm-up rounds
                order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
                this = {}
                for way in order:
                    for label, sql in ways[way].items():
                        ms, rows = statement(cursor, sql, params)
                        this[way, label] = ms
                        answers[way, label] = answer(label, rows)
                if round_ >= 3:
                    for key, ms in this.items():
                        times[key].append(ms)
                    for label in ratios:
                        ratios[label].append(this["prototype", label] / this["today", label])
            same = all(answers["today", label] == answers["prototype", label] for label in ("count", "page"))
            plans = {f"{way} {label}": [r[0] for r in statement(cursor, sql, params, explain=True)[1]]
                     for way in ways for label, sql in ways[way].items()}
            total = sum(r[2] for r in answers["today", "count"])
            report["phrases"][words] = {
                "total": total, "same_answers": same,
                "ms": {f"{way} {label}": values for (way, label), values in times.items()},
                "ratio": ratios, "plans": plans,
                "sql": {f"{w} {k}": v for w in ways for k, v in ways[w].items()}}
    finally:
        with contextlib.suppress(Exception):
            cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.close()
    return report


def table(report: dict) -> str:
    lines = ["| phrase | total | today count ms | prototype count ms | ratio | today page ms "
             "| prototype page ms | ratio | same answers |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for words, r in report["phrases"].items():
        med = {k: statistics.median(v) for k, v in r["ms"].items()}
        lines.append(f'| "{words}" | {r["total"]:,} | {med["today count"]:.1f} | '
                     f'{med["prototype count"]:.1f} | '
                     f'{statistics.median(r["ratio"]["count"]):.2f} | {med["today page"]:.1f} | '
                     f'{med["prototype page"]:.1f} | {statistics.median(r["ratio"]["page"]):.2f} | '
                     f'{"yes" if r["same_answers"] else "NO"} |')
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a Postgres database filled by bench/fill.py "
                        "(default: fill a fresh one with --n studies, dropped afterwards)")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--phrases", default=",".join(PHRASES), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    url = args.database_url or args.pg_base
    if url.split("@")[-1].split(":")[0].split("/")[0] not in ("127.0.0.1", "localhost"):
        sys.exit("the database must be on 127.0.0.1: the benchmark only talks to loopback")
    started = dt.datetime.now(dt.UTC)
    results = {"started": started.isoformat(), "rounds": args.rounds, "loadavg_start": os.getloadavg()}
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = args.database_url
        else:
            from bench.fill import load_corpus

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = stack.enter_context(database_for("postgres", tmp, args.pg_base,
                                                   f"phrase_bench_{started:%Y%m%dt%H%M%Sz}"))
            log(f"fill {args.n:,} studies")
            results["database"] = prepare(url, args.n, args.seed, load_corpus(), False)
        results.update(measure(url, [p.strip() for p in args.phrases.split(",") if p.strip()], args.rounds))
    results["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"phrase-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(f"wrote {out.relative_to(ROOT)}")
    mb = {k: round(v / 1e6, 1) for k, v in results["sizes"].items()}
    print(f"\nbuild of the prototype copy (s): {results['build']}\nsizes (MB): {mb}\n")
    print(table(results))


if __name__ == "__main__":
    main()
