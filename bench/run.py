"""Load benchmark: fill a register, serve it with gunicorn, measure three endpoints with wrk beside a
bare WSGI hello-world served the same way in the same run.

    python bench/run.py --n 50000 --backends sqlite,postgres --duration 10 --connections 2,16

Writes bench/results/<UTC timestamp>.json and prints a Markdown table. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str, n: int) -> float:
    """Migrate and fill the database at ``url``; return the fill time in seconds."""
    from bench.fill import fill
    from service import create_app, migrations
    from service.db import close_all, database

    create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with database.connection_context():
        migrations.upgrade()
        began = time.perf_counter()
        fill(n)
        took = time.perf_counter() - began
        # A register at rest has been vacuumed (autovacuum): visibility maps let counts use
        # index-only scans. Right after a bulk load they would not.
        database.execute_sql("VACUUM ANALYZE" if url.startswith("postgres") else "ANALYZE")
    close_all(database.obj)
    return took


class Gunicorn:
    """gunicorn with 2 sync workers on a free loopback port, stopped however the run ends."""

    def __init__(self, app: str, env: dict, workers: int):
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--no-control-socket", "-w", str(workers), "-b",
             f"127.0.0.1:{self.port}", "--log-level", "warning", app],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.process.stderr.read().decode()) from None
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /health in 30 s")

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wrk(url: str, connections: int, duration: int, script: Path | None = None) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=duration + 30).stdout

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def random_study_script(n: int, directory: Path) -> Path:
    path = directory / "random_study.lua"
    path.write_text(f"""math.randomseed(42)
request = function()
  return wrk.format(nil, "/studies/" .. math.random(1, {n}))
end
""")
    return path


def explain(url: str) -> list[str]:
    """Query plans of the list queries, so an index that is not used shows."""
    from service import create_app
    from service.db import close_all, database
    from service.domain.references import filtered_references
    from service.domain.studies import filtered_studies
    from peewee import fn

    from service.models import Reference, Study

    create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    plans = []
    prefix = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
    with database.connection_context():
        # The queries behind the list endpoints measured: the page rows and the exact total.
        studies = filtered_studies()
        references = filtered_references(type=["journal_article"])
        for query in (studies.order_by(Study.id).limit(21),
                      references.order_by(Reference.id).limit(21),
                      references.select(fn.COUNT(Reference.id))):
            sql, params = query.sql()
            rows = database.execute_sql(prefix + sql, params).fetchall()
            plans.append(sql + "\n  " + "\n  ".join(" ".join(map(str, r)) for r in rows))
    close_all(database.obj)
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="2,16")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    connections = [int(c) for c in args.connections.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {"n": args.n, "workers": args.workers, "duration_s": args.duration,
               "started": dt.datetime.now(dt.UTC).isoformat(), "fill_s": {}, "plans": {}, "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    script = random_study_script(args.n, tmp)
    endpoints = [("GET /studies/{id}", "/studies/1", script),
                 ("GET /studies?page_size=20", "/studies?page_size=20", None),
                 ("GET /references?type=journal_article", "/references?type=journal_article", None)]
    try:
        for backend in args.backends.split(","):
            name = None
            if backend == "sqlite":
                url = f"sqlite:///{tmp / 'bench.db'}"
            else:
                name = f"bench_register_{os.getpid()}"
                admin = psycopg2.connect(dbname="postgres", **PG)
                admin.autocommit = True
                admin.cursor().execute(f'CREATE DATABASE "{name}"')
                url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
            try:
                results["fill_s"][backend] = round(prepare(url, args.n), 1)
                results["plans"][backend] = explain(url)
                env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
                for c in connections:
                    with Gunicorn("bench.hello:app", {}, args.workers) as hello:
                        base = wrk(f"http://127.0.0.1:{hello.port}/", c, args.duration)
                    results["rows"].append({"backend": backend, "endpoint": "hello-world (bare WSGI)",
                                            "connections": c, **base, "ratio": 1.0})
                    with Gunicorn("service.wsgi:app", env, args.workers) as app:
                        for label, path, lua in endpoints:
                            wrk(f"http://127.0.0.1:{app.port}{path}", c, 2, lua)  # warm-up
                            row = wrk(f"http://127.0.0.1:{app.port}{path}", c, args.duration, lua)
                            results["rows"].append({"backend": backend, "endpoint": label,
                                                    "connections": c, **row,
                                                    "ratio": round(row["rps"] / base["rps"], 3)})
            finally:
                if name:
                    admin.cursor().execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
                    admin.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"N = {args.n:,} studies x 3 references; gunicorn {args.workers} sync workers; wrk -t2, "
          f"{args.duration} s each; fill: {results['fill_s']}")
    print("\n| backend | endpoint | conns | req/s | p50 ms | p99 ms | ÷ hello | non-2xx |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        print(f"| {r['backend']} | {r['endpoint']} | {r['connections']} | {r['rps']:,.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['ratio']:.2f} | {r['non_2xx']} |")
    for backend, plans in results["plans"].items():
        print(f"\nQuery plans ({backend}):")
        for plan in plans:
            print(plan)


if __name__ == "__main__":
    main()
