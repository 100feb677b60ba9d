"""Import benchmark: the real trial files of ../shared/data into a fresh SQLite and Postgres register, each
through `study-register import` under `/usr/bin/time -v`, printing rows/s and peak memory (max RSS).

    .venv/bin/python bench/import_bench.py                      # both backends, the default files
    .venv/bin/python bench/import_bench.py --backends postgres --data ../shared/data

Every file is imported twice: the second run shows the cost of an idempotent re-import (all unchanged).
"""

from __future__ import annotations

import argparse
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
FILES = [  # the largest real trial file first (DIRECCT, 10,396 rows), then the raw WHO export
    ("trials/ictrp_covid_direcct_2021-07-01.csv.gz", "ictrp-csv"),
    ("trials/ictrp_covid_who_raw_export_2020-04-15.csv.gz", "ictrp-csv"),
    ("trials/ictrp_covid_trialstracker_2020-12-16.csv.gz", "ictrp-csv"),
]


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
                for attempt in ("first", "again"):
                    figure = run(url, args.data / relative, fmt)
                    report = figure["report"]
                    results.append({"backend": backend, "file": Path(relative).name, "run": attempt,
                                    "rows": report["rows"], "created": report["created"],
                                    "updated": report["updated"], "unchanged": report["unchanged"],
                                    "rejected": len(report["rejected"]), "linked": report["linked"],
                                    "import_s": report["seconds"],
                                    "rows_per_s": report["rows"] / report["seconds"],
                                    "wall_s": figure["wall_s"], "max_rss_mb": figure["max_rss_mb"]})
                    print(json.dumps(results[-1]), flush=True)
        finally:
            if name is not None:
                admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = %s", (name,))
                admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.close()
            tmp.cleanup()
    print()
    print(f"{'backend':9} {'file':48} {'run':6} {'rows':>6} {'created':>7} {'updated':>7} {'unch.':>6} "
          f"{'rej.':>4} {'rows/s':>7} {'wall s':>6} {'max RSS MB':>10}")
    for r in results:
        print(f"{r['backend']:9} {r['file']:48} {r['run']:6} {r['rows']:6} {r['created']:7} {r['updated']:7} "
              f"{r['unchanged']:6} {r['rejected']:4} {r['rows_per_s']:7.0f} {r['wall_s']:6.1f} "
              f"{r['max_rss_mb']:10.0f}")


if __name__ == "__main__":
    main()
