"""Load benchmark: fill a register with N studies x 3 references, serve it with gunicorn, measure three
read endpoints with wrk, each beside a bare WSGI hello-world served the same way in the same run.

    python bench/run.py --n 50000 --backends sqlite,postgres --duration 10 --connections 2,16

For each backend: a fresh database (SQLite file under a temporary folder, or a new Postgres database
on 127.0.0.1:5432), migrated and filled by bench/fill.py; the SQL behind each endpoint is timed
in-process (with its query plan); then for each connection count, gunicorn (2 sync workers) serves
bench/hello.py and wrk measures it, and gunicorn serves the app and wrk measures each endpoint after a
warm-up. Writes bench/results/<UTC timestamp>.json and prints Markdown tables. Traffic stays on
127.0.0.1; every gunicorn and wrk started here is stopped on the way out, errors included.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
ENDPOINTS = [  # label, path ({id}: a random study id in 1..N per request, drawn by a wrk Lua script)
    ("GET /studies/{id}", "/studies/{id}"),
    ("GET /studies?page_size=20", "/studies?page_size=20"),
    ("GET /references?type=journal_article", "/references?type=journal_article"),
    # Search: two common words (the target: ~14 % of the studies), the same for two words
    # nearly every study holds (74 %: the worst case of ranking and counting), a phrase in references.
    ("GET /studies?q=mortality ventilation&facets=study_type,study_aim",
     "/studies?q=mortality%20ventilation&facets=study_type,study_aim"),
    ("GET /studies?q=patients hospital&facets=study_type,study_aim",
     "/studies?q=patients%20hospital&facets=study_type,study_aim"),
    ("GET /references?q=\"intensive care\"&facets=type,year",
     "/references?q=%22intensive%20care%22&facets=type,year"),
]
HELLO = "hello-world (bare WSGI)"


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _terminate(signum, frame):  # SIGTERM/SIGHUP: unwind through every finally (servers, databases)
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------------------- databases

@contextlib.contextmanager
def database_for(backend: str, tmp: Path, pg_base: str, pg_name: str):
    """Yield the URL of a fresh, empty database for ``backend``; remove it afterwards."""
    if backend == "sqlite":
        path = tmp / "bench.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in tmp.glob("bench.db*"):
                leftover.unlink()
        return
    if backend != "postgres":
        raise SystemExit(f"unknown backend {backend!r} (sqlite, postgres)")
    import psycopg2

    def admin(sql: str) -> None:
        conn = psycopg2.connect(f"{pg_base}/postgres", connect_timeout=5)
        try:
            conn.autocommit = True
            conn.cursor().execute(sql)
        finally:
            conn.close()

    admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{pg_name}"')
    try:
        yield f"{pg_base}/{pg_name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def database_size(url: str) -> int:
    from service.db import database

    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]


def prepare(url: str, n: int, seed: int, corpus, analyze_sqlite: bool) -> dict:
    """Migrate and fill the database at ``url``; return timings, counts and size."""
    from bench.fill import fill
    from service import create_app, migrations
    from service.db import close_all, database
    from service.search import index

    create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    info = {}
    try:
        with database.connection_context():
            began = time.perf_counter()
            migrations.upgrade()
            info["migrate_s"] = round(time.perf_counter() - began, 2)
            began = time.perf_counter()
            info["counts"] = fill(n, seed=seed, corpus=corpus, progress=lambda done, total: (
                log(f"  filled {done:,} / {total:,}") if done % 10_000 == 0 or done == total else None))
            info["fill_s"] = round(time.perf_counter() - began, 1)
            began = time.perf_counter()
            with database.atomic():  # the fill writes rows directly: build the search indexes once
                index.rebuild()
            info["index_s"] = round(time.perf_counter() - began, 1)
            began = time.perf_counter()
            if url.startswith("postgres"):
                # A register at rest has been vacuumed and analysed by autovacuum; straight after a
                # bulk load it has not, and counts could not use index-only scans yet.
                database.execute_sql("VACUUM ANALYZE")
                info["after_fill"] = "VACUUM ANALYZE"
            else:
                # At rest the WAL has been checkpointed into the database file; straight after
                # a 50k-study transaction it holds hundreds of MB that every read looks through.
                database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                info["after_fill"] = "PRAGMA wal_checkpoint(TRUNCATE)"
                if analyze_sqlite:
                    database.execute_sql("ANALYZE")
                    info["after_fill"] += " + ANALYZE"
                else:
                    info["after_fill"] += " (no ANALYZE: the service never runs it)"
            info["after_fill_s"] = round(time.perf_counter() - began, 1)
            info["size_mb"] = round(database_size(url) / 1e6, 1)
    finally:
        close_all(database.obj)
    return info


# ------------------------------------------------------------------------------- in-process probe

class _SqlCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries: list[tuple[str, tuple]] = []

    def emit(self, record):
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            sql, params = record.msg
            self.queries.append((sql, tuple(params or ())))


def _median_ms(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        func()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def probe(url: str, paths: dict[str, str], repeat: int = 30, config: dict | None = None) -> dict:
    """Per endpoint, in one process (no HTTP, no load): the median time of the whole request, the SQL
    it sends, each statement's median time and its query plan. Shows where a request's time goes.
    ``config``: more settings for the app (e.g. ``{"CACHE": "off"}``)."""
    from service import create_app
    from service.db import close_all, database

    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING", **(config or {})})
    client = app.test_client()
    postgres = url.startswith("postgres")
    peewee_log = logging.getLogger("peewee")
    report = {}
    try:
        for label, path in paths.items():
            response = client.get(path)
            capture = _SqlCapture()
            old_level = peewee_log.level
            peewee_log.addHandler(capture)
            peewee_log.setLevel(logging.DEBUG)
            try:
                client.get(path)
            finally:
                peewee_log.removeHandler(capture)
                peewee_log.setLevel(old_level)
            request_ms = _median_ms(lambda p=path: client.get(p), repeat)
            queries = []
            with database.connection_context(), database.atomic():
                for sql, params in capture.queries:
                    if sql.startswith("SET "):  # a plan setting of the request (search_plan): keep it
                        database.execute_sql(sql, params)
                        queries.append({"ms": 0.0, "sql": sql, "params": [], "plan": []})
                        continue
                    ms = _median_ms(lambda s=sql, p=params: database.execute_sql(s, p).fetchall(), repeat)
                    explain = "EXPLAIN (ANALYZE, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
                    rows = database.execute_sql(explain + sql, params).fetchall()
                    plan = [r[0] for r in rows] if postgres else [r[-1] for r in rows]
                    queries.append({"ms": ms, "sql": sql, "params": [str(p)[:40] for p in params],
                                    "plan": plan})
            report[label] = {"path": path, "status": response.status_code,
                             "body_bytes": len(response.data), "request_ms": request_ms,
                             "sql_ms": round(sum(q["ms"] for q in queries), 3), "queries": queries}
    finally:
        close_all(database.obj)
    return report


# ------------------------------------------------------------------------------- servers and load

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(process: subprocess.Popen, logfile, port: int, path: str, *, name: str, within: float,
               pause: float = 0.2) -> None:
    """Until the server ``process`` started answers ``path`` on ``port`` with 200. RuntimeError if it
    exits first (with what it wrote to ``logfile``) or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            logfile.seek(0)
            raise RuntimeError(f"{name} exited:\n{logfile.read().decode(errors='replace')}")
        with contextlib.suppress(OSError):
            if _get(port, path, timeout=2)[0] == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer {path} within {within:g} s")
        time.sleep(pause)


@contextlib.contextmanager
def gunicorn(app: str, env: dict, workers: int, tmp: Path, ready_path: str):
    """gunicorn with ``workers`` sync workers on a free loopback port; always stopped on exit."""
    port = free_port()
    config = tmp / "gunicorn.bench.conf.py"  # empty: the repo's gunicorn.conf.py is not read
    config.write_text("# bench/run.py: every setting is on the command line\n")
    logfile = open(tmp / f"gunicorn-{port}.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(config), "--no-control-socket", "-w", str(workers),
         "-k", "sync", "-b", f"{HOST}:{port}", "--log-level", "warning", app],
        cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=logfile,
        stderr=subprocess.STDOUT, start_new_session=True)  # own process group: master + workers
    try:
        wait_ready(process, logfile, port, ready_path, name="gunicorn", within=30)
        yield port
    finally:
        _stop(process)
        logfile.seek(0)
        errors = logfile.read().decode(errors="replace").strip()
        logfile.close()
        if errors:
            log(f"gunicorn {app} said:\n{errors[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # graceful: the master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # anything left in its group (never others)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> dict:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return round(float(match.group(1)) * _UNITS[match.group(2)], 3)

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    if not (rps and total):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(rps.group(1)), "p50_ms": latency("50"), "p90_ms": latency("90"),
            "p99_ms": latency("99"), "requests": int(total.group(1)),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0}


def wrk(port: int, path: str, connections: int, seconds: int, script: Path | None) -> dict:
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        args += ["-s", str(script)]
    url = f"http://{HOST}:{port}{path.replace('{id}', '1')}"
    # subprocess.run kills wrk if the timeout passes or anything interrupts the wait.
    done = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def random_id_script(n: int, tmp: Path) -> Path:
    """A wrk script asking for /studies/<a random id in 1..n> on every request (not one cached row)."""
    path = tmp / "random_study.lua"
    path.write_text(f"""-- bench/run.py: GET /studies/<random id in 1..{n}>
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
function init(args)
  math.randomseed(7919 * thread_number)
end
function request()
  return wrk.format("GET", "/studies/" .. math.random(1, {n}))
end
""")
    return path


# ----------------------------------------------------------------------------------------- report

def summarise(rows: list[dict], backends: list[str]) -> list[dict]:
    """One row per (endpoint, backend, connections): medians over rounds, and the req/s range."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["endpoint"], r["backend"], r["connections"]), []).append(r)
    order = [HELLO] + [label for label, _ in ENDPOINTS]
    out = []
    for (endpoint, backend, c), rs in sorted(groups.items(), key=lambda kv: (
            order.index(kv[0][0]), backends.index(kv[0][1]), kv[0][2])):
        def med(key, rs=rs):
            return statistics.median(r[key] for r in rs)
        out.append({"endpoint": endpoint, "backend": backend, "connections": c, "rounds": len(rs),
                    "rps": med("rps"), "rps_min": min(r["rps"] for r in rs),
                    "rps_max": max(r["rps"] for r in rs), "p50_ms": med("p50_ms"),
                    "p99_ms": med("p99_ms"), "ratio": med("ratio"),
                    "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs)})
    return out


def table(summary: list[dict]) -> str:
    spread = any(r["rounds"] > 1 for r in summary)
    lines = ["| endpoint | backend | conns | req/s | p50 ms | p99 ms | ÷ hello | errors |"
             + (" req/s range |" if spread else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if spread else "")]
    for r in summary:
        ratio = "1" if r["endpoint"] == HELLO else f"{r['ratio']:.3f}"
        line = (f"| {r['endpoint']} | {r['backend']} | {r['connections']} | {r['rps']:,.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} | {r['errors']} |")
        if spread:
            line += f" {r['rps_min']:,.0f}–{r['rps_max']:,.0f} |"
        lines.append(line)
    return "\n".join(lines)


def probe_table(probes: dict) -> str:
    lines = ["| backend | endpoint | body KB | request ms (in-process) | SQL ms | queries |",
             "|---|---|---|---|---|---|"]
    for backend, endpoints in probes.items():
        for label, p in endpoints.items():
            lines.append(f"| {backend} | {label} | {p['body_bytes'] / 1000:.1f} | {p['request_ms']:.2f} | "
                         f"{p['sql_ms']:.2f} | {len(p['queries'])} |")
    return "\n".join(lines)


def plans(probes: dict) -> str:
    out = []
    for backend, endpoints in probes.items():
        for label, p in endpoints.items():
            out.append(f"\n{backend} {label} ({p['path']}):")
            for q in p["queries"]:
                out.append(f"  {q['ms']:7.3f} ms  {q['sql']}")
                out.extend(f"              {line}" for line in q["plan"])
    return "\n".join(out)


def _git_state() -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "service")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "service_modified": bool(status) if status is not None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="studies (x 3 references)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measurement")
    parser.add_argument("--connections", default="2,16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every measurement this many times (the table shows medians)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432",
                        help="Postgres server (a database --pg-database is created and dropped there)")
    parser.add_argument("--pg-database", default="bench_register")
    parser.add_argument("--analyze-sqlite", action="store_true",
                        help="run ANALYZE after filling SQLite (the service itself never does)")
    parser.add_argument("--skip-probe", action="store_true", help="no in-process SQL timing / plans")
    parser.add_argument("--probe-only", action="store_true",
                        help="fill and probe (SQL timings and plans), no load")
    args = parser.parse_args()

    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk` (or `make bench`, which does it)")
    for host in (args.pg_base.split("@")[-1].split(":")[0],):
        if "postgres" in args.backends and host not in ("127.0.0.1", "localhost"):
            sys.exit("--pg-base must point at 127.0.0.1: the benchmark only talks to loopback")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    connections = [int(c) for c in args.connections.split(",")]
    per_backend = args.rounds * len(connections) * (
        (len(ENDPOINTS) + 1) * (args.warmup + args.duration) + 6)
    log(f"load phases ≈ {per_backend * len(backends) / 60:.1f} min, plus filling "
        f"{args.n:,} studies x 3 references per backend")

    from bench.fill import load_corpus

    started = dt.datetime.now(dt.UTC)
    results = {"n": args.n, "workers": args.workers, "duration_s": args.duration, "warmup_s": args.warmup,
               "rounds": args.rounds,
               "connections": connections, "seed": args.seed, "started": started.isoformat(),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True)
                           .stdout.splitlines()[0] if shutil.which("wrk") else None,
                           "loadavg_start": os.getloadavg()},
               "git": _git_state(), "databases": {}, "probes": {}, "rows": []}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="study-register-bench-"))
    error = None
    try:
        began = time.perf_counter()
        corpus = load_corpus()
        log(f"read ../shared/data in {time.perf_counter() - began:.1f} s")
        script = random_id_script(args.n, tmp)
        for backend in backends:
            with database_for(backend, tmp, args.pg_base, args.pg_database) as url:
                log(f"{backend}: migrate + fill {args.n:,} studies")
                info = prepare(url, args.n, args.seed, corpus, args.analyze_sqlite)
                results["databases"][backend] = info
                log(f"{backend}: filled in {info['fill_s']} s, {info['size_mb']} MB, {info['counts']}")
                if not args.skip_probe:
                    paths = {label: path.replace("{id}", str(args.n // 2 + 1))
                             for label, path in ENDPOINTS}
                    results["probes"][backend] = probe(url, paths, config={"CACHE": "off"})
                # Built answers, as before the response cache (bench/cache_bench.py measures its hits).
                env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "", "CACHE": "off"}
                for round_ in range(1, 0 if args.probe_only else args.rounds + 1):
                    for c in connections:
                        tag = dict(backend=backend, connections=c, round=round_,
                                   loadavg=os.getloadavg()[0])
                        with gunicorn("bench.hello:app", {}, args.workers, tmp, "/") as port:
                            wrk(port, "/", c, args.warmup, None)
                            hello = wrk(port, "/", c, args.duration, None)
                        hello.update(tag, endpoint=HELLO, ratio=1.0)
                        results["rows"].append(hello)
                        log(f"{backend} r{round_} c={c} hello: {hello['rps']:,.0f} req/s")
                        with gunicorn("service.wsgi:app", env, args.workers, tmp, "/health") as port:
                            for label, path in ENDPOINTS:
                                script_for = script if "{id}" in path else None
                                wrk(port, path, c, args.warmup, script_for)
                                row = wrk(port, path, c, args.duration, script_for)
                                row.update(tag, endpoint=label, ratio=round(row["rps"] / hello["rps"], 4))
                                results["rows"].append(row)
                                log(f"{backend} r{round_} c={c} {label}: {row['rps']:,.0f} req/s, "
                                    f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
    except BaseException as exc:
        error = exc
        results["error"] = repr(exc)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["summary"] = summarise(results["rows"], backends)
        if results["rows"] or error is None:
            path = RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
            path.write_text(json.dumps(results, indent=1, default=str) + "\n")
            log(f"wrote {path.relative_to(ROOT)}")

    fills = ", ".join(f"{b} {i['fill_s']} s ({i['size_mb']} MB)" for b, i in results["databases"].items())
    print(f"\nN = {args.n:,} studies × 3 references; gunicorn {args.workers} sync workers; "
          f"wrk -t2, {args.duration} s per figure after {args.warmup} s warm-up, "
          f"{args.rounds} round(s) (medians); fill: {fills}\n")
    print(table(summarise(results["rows"], backends)))
    if results["probes"]:
        print("\nIn-process, one request at a time (Flask test client; no HTTP, no gunicorn):\n")
        print(probe_table(results["probes"]))
        print("\nSQL per endpoint (median ms) and query plans:")
        print(plans(results["probes"]))


if __name__ == "__main__":
    main()
