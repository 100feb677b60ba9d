"""Import speed and memory: `study-register import` of a real trial list into an empty register, on
SQLite and Postgres, under /usr/bin/time -v (wall seconds, rows/s, peak RSS).

    python bench/import_bench.py [--file ../shared/data/trials/ictrp_covid_direcct_2021-07-01.csv.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT = ROOT.parent / "shared" / "data" / "trials" / "ictrp_covid_direcct_2021-07-01.csv.gz"


def run(url: str, file: Path, fmt: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    subprocess.run([str(BIN / "study-register"), "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    done = subprocess.run(["/usr/bin/time", "-v", str(BIN / "study-register"), "import", str(file),
                           "--format", fmt], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    report = json.loads(done.stdout)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    rows = sum(report["studies"].values()) + len(report["rejected"])  # records read (a row may span lines)
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "peak_rss_mb": round(rss / 1024, 1), "studies": report["studies"],
            "references": report["references"], "rejected": len(report["rejected"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    parser.add_argument("--format", default="ictrp-csv")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(f"sqlite:///{tmp}/import.db", args.file, args.format)
    import psycopg2

    admin = psycopg2.connect(args.pg + "/postgres")
    admin.autocommit = True
    admin.cursor().execute("DROP DATABASE IF EXISTS bench_import")
    admin.cursor().execute("CREATE DATABASE bench_import")
    try:
        results["postgres"] = run(args.pg + "/bench_import", args.file, args.format)
    finally:
        admin.cursor().execute("DROP DATABASE IF EXISTS bench_import WITH (FORCE)")
    print(json.dumps({"file": args.file.name, **results}, indent=1))


if __name__ == "__main__":
    main()
