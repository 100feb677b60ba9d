"""Import benchmark: the real trial files of ../shared/data into a fresh SQLite and Postgres register, each
through `study-register import` under `/usr/bin/time -v`, printing rows/s and peak memory (max RSS).

    .venv/bin/python bench/import_bench.py                      # both backends, the default files
    .venv/bin/python bench/import_bench.py --backends postgres --data ../shared/data

Every file is imported twice: the second run shows the cost of an idempotent re-import (all unchanged).
Beside each file, in the same run, the baseline: the same file only read and parsed into the records
the import engine takes (no database), in a process of its own started the same way, so a figure can be
read as a share of the parsing floor on whatever machine measured it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "study-register"
RESULTS = ROOT / "bench" / "results"
FILES = [  # the largest real trial file first (DIRECCT, 10,396 rows), then the raw WHO export
    ("trials/ictrp_covid_direcct_2021-07-01.csv.gz", "ictrp-csv"),
    ("trials/ictrp_covid_who_raw_export_2020-04-15.csv.gz", "ictrp-csv"),
    ("trials/ictrp_covid_trialstracker_2020-12-16.csv.gz", "ictrp-csv"),
    ("trials/ictrp_covid_who_raw_export_COVID19-web_7Jul2020.xlsx", "ictrp-xlsx"),  # the largest in bytes
    ("trials/ctgov_aact_covid_studies_regcovid.csv.gz", "ctgov-aact-csv"),
]
PARSE_ONLY = """
import json, sys, time
from service.formats import parser_for
from service.formats.reading import open_input
parse = parser_for(sys.argv[2])  # its modules imported before the clock starts, as the CLI's are
began = time.perf_counter()
rows = 0
with open(sys.argv[1], "rb") as stream, open_input(stream, fmt=sys.argv[2], encoding=None) as (text, _):
    for _row in parse(text, {}):
        rows += 1
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - began}))
"""


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or None


def run(url: str, path: Path, fmt: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    done = subprocess.run(["/usr/bin/time", "-v", str(CLI), "import", str(path), "--format", fmt, "--quiet"],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"import failed:\n{done.stderr}")
    report = json.loads(done.stdout)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"report": report, "max_rss_mb": rss / 1024, "wall_s": seconds}


def parse_only(path: Path, fmt: str) -> dict:
    """The baseline: ``path`` read and parsed into import records, no database (seconds, max RSS)."""
    python = CLI.parent / "python"
    done = subprocess.run(["/usr/bin/time", "-v", str(python), "-c", PARSE_ONLY, str(path), fmt], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"parse failed:\n{done.stderr}")
    figure = json.loads(done.stdout)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {**figure, "max_rss_mb": rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        tmp = tempfile.TemporaryDirectory()
        name = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp.name}/register.db"
        else:
            base = urlsplit(args.pg_base)
            if base.hostname not in ("127.0.0.1", "localhost", "::1"):
                sys.exit("--pg-base must be a loopback server")
            name = f"bench_import_{uuid.uuid4().hex[:8]}"
            admin = psycopg2.connect(host=base.hostname, port=base.port or 5432, user=base.username,
                                     dbname="postgres")
            admin.autocommit = True
            admin.cursor().execute(f'CREATE DATABASE "{name}"')
            url = f"{args.pg_base}/{name}"
        try:
            subprocess.run([str(CLI), "db", "upgrade"], env={**os.environ, "DATABASE_URL": url}, check=True,
                           capture_output=True)
            for relative, fmt in FILES:
                base = parse_only(args.data / relative, fmt)
                results.append({"backend": backend, "file": Path(relative).name, "run": "parse only",
                                "rows": base["rows"], "created": 0, "updated": 0, "unchanged": 0,
                                "rejected": 0, "linked": 0, "import_s": base["seconds"],
                                "rows_per_s": base["rows"] / base["seconds"], "wall_s": None,
                                "max_rss_mb": base["max_rss_mb"]})
                print(json.dumps(results[-1]), flush=True)
                for attempt in ("first", "again"):
                    figure = run(url, args.data / relative, fmt)
                    report = figure["report"]
                    results.append({"backend": backend, "file": Path(relative).name, "run": attempt,
                                    "rows": report["rows"], "created": report["created"],
                                    "updated": report["updated"], "unchanged": report["unchanged"],
                                    "rejected": len(report["rejected"]), "linked": report["linked"],
                                    "import_s": report["seconds"],
                                    "rows_per_s": report["rows"] / report["seconds"],
                                    "wall_s": figure["wall_s"], "max_rss_mb": figure["max_rss_mb"],
                                    "of_parse_only": (report["rows"] / report["seconds"])
                                    / (base["rows"] / base["seconds"])})
                    print(json.dumps(results[-1]), flush=True)
        finally:
            if name is not None:
                admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = %s", (name,))
                admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.close()
            tmp.cleanup()
    print()
    print(f"{'backend':9} {'file':52} {'run':10} {'rows':>6} {'created':>7} {'updated':>7} {'unch.':>6} "
          f"{'rej.':>4} {'rows/s':>7} {'÷ parse':>7} {'wall s':>6} {'max RSS MB':>10}")
    for r in results:
        ratio = f"{r['of_parse_only']:7.2f}" if "of_parse_only" in r else f"{1:7.2f}"
        wall = f"{r['wall_s']:6.1f}" if r["wall_s"] is not None else f"{'':6}"
        print(f"{r['backend']:9} {r['file']:52} {r['run']:10} {r['rows']:6} {r['created']:7} "
              f"{r['updated']:7} {r['unchanged']:6} {r['rejected']:4} {r['rows_per_s']:7.0f} {ratio} {wall} "
              f"{r['max_rss_mb']:10.0f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"import-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"commit": _commit(), "results": results}, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
