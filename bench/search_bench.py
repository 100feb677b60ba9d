"""Search latency bench: two checkouts of the code, one client, interleaved rounds, medians.

    python bench/search_bench.py --baseline-code /work/bench-base --n 50000 --backends sqlite,postgres

For each code (``--code``, default this checkout, and ``--baseline-code``, e.g. a git worktree of an
older commit) and backend: a fresh database (SQLite in a temporary folder; Postgres a database named
for the run, dropped at the end) filled by that code's own ``bench/fill.py`` and search indexes, in a
child process run with this checkout's venv python, cwd and PYTHONPATH set to the code's folder
(or, with ``--from-filled``, a copy of a register filled before, upgraded in place by that code's
migrations); then gunicorn for that code on a free loopback port. Every server stays up; in each
round, for each figure, each server in turn (their order rotates per round) gets ``--requests``
requests one at a time over a kept-alive connection, each one timed. Reports per (figure, backend,
code) the median and p90 over all requests, the ratio to the same server's ``GET
/studies?page_size=20`` in the same rounds, the ratio code / baseline code, and each figure's
``total``. Writes every request's time to
bench/results/search-<UTC timestamp>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import HOST, _stop, _terminate, database_for, free_port, log, wait_ready  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
STRATEGY = ROOT / "bench" / "strategies" / "covid-drug-rct.txt"
MAX_URL = 8192  # a GET whose request target is longer is not sent (gunicorn's own limit is 4094)
LIST = "list"

# Run in a child process inside a code's folder: migrate, fill with that code's bench/fill.py,
# build that code's search indexes, vacuum/checkpoint (its bench/run.py's prepare when it has one).
PREPARE = r"""
import json, sys
from pathlib import Path
url, n, seed, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
import service
from bench.fill import load_corpus
try:
    from bench.run import prepare
except ImportError:
    prepare = None
corpus = load_corpus(data)
if prepare is not None:
    info = prepare(url, n, seed, corpus, False)
else:
    import time
    from bench.fill import fill
    from service import create_app, migrations
    from service.db import close_all, database
    from service.search import index
    create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    info = {}
    with database.connection_context():
        migrations.upgrade()
        began = time.perf_counter()
        info["counts"] = fill(n, seed=seed, corpus=corpus)
        info["fill_s"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        with database.atomic():
            index.rebuild()
        info["index_s"] = round(time.perf_counter() - began, 1)
        database.execute_sql("VACUUM ANALYZE" if url.startswith("postgres")
                             else "PRAGMA wal_checkpoint(TRUNCATE)")
    close_all(database.obj)
info["service_module"] = service.__file__
print(json.dumps(info, default=str))
"""


@dataclass
class Figure:
    key: str
    label: str
    path: str = ""  # a GET path; empty for the strategy figures, resolved per server
    note: str = ""


def figures(identifier: str) -> list[Figure]:
    return [
        Figure(LIST, "GET /studies?page_size=20", "/studies?page_size=20",
               "the in-run baseline of every ratio"),
        Figure("patients-hospital", "GET /studies?q=patients hospital&facets=study_type,study_aim",
               "/studies?q=patients%20hospital&facets=study_type,study_aim",
               "two common words (74 % of the studies)"),
        Figure("mortality-ventilation",
               "GET /studies?q=mortality ventilation&facets=study_type,study_aim",
               "/studies?q=mortality%20ventilation&facets=study_type,study_aim",
               "two common words (17 % of the studies)"),
        Figure("phrase-references", 'GET /references?q="intensive care"&facets=type,year',
               "/references?q=%22intensive%20care%22&facets=type,year", "a phrase on references"),
        Figure("registration", f"GET /studies?q={identifier}", f"/studies?q={quote(identifier)}",
               "a registration identifier of a filled study"),
        Figure("strategy", f"strategy {STRATEGY.name} (POST /studies/search, else GET)", "",
               "POST with a JSON body where the code has the endpoint (404/405: GET if it fits)"),
        Figure("strategy-get", f"strategy {STRATEGY.name} (GET /studies?q=)", "",
               f"the same as a query string, when the request target is under {MAX_URL} bytes"),
    ]


@dataclass
class Server:
    code: str  # "code" or "base"
    backend: str
    port: int
    info: dict
    routes: dict[str, tuple[str, str, bytes | None] | None] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)
    connection: http.client.HTTPConnection | None = None

    @property
    def name(self) -> str:
        return f"{self.code}/{self.backend}"

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float, bytes]:
        """One request over the kept-alive connection; (status, milliseconds, body). A connection
        the server closed while idle is opened again and the request timed afresh."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(HOST, self.port, timeout=120)
            began = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            ms = (time.perf_counter() - began) * 1000
            if response.will_close:
                self.close()
            return response.status, ms, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@contextlib.contextmanager
def gunicorn(code: Path, env: dict, workers: int, threads: int, tmp: Path):
    """gunicorn serving ``code``'s service.wsgi:app on a free loopback port; always stopped."""
    port = free_port()
    config = tmp / "gunicorn.search-bench.conf.py"  # empty: no repo gunicorn.conf.py is read
    config.write_text("# bench/search_bench.py: every setting is on the command line\n")
    worker = (["-k", "gthread", "--threads", str(threads), "--keep-alive", "5"] if threads > 1
              else ["-k", "sync"])
    logfile = open(tmp / f"gunicorn-{port}.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(config), "--no-control-socket", "-w", str(workers), *worker,
         "-b", f"{HOST}:{port}", "--chdir", str(code), "--log-level", "warning", "service.wsgi:app"],
        cwd=code, env={**os.environ, **env, "PYTHONPATH": str(code)}, stdin=subprocess.DEVNULL,
        stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)  # own process group
    try:
        wait_ready(process, logfile, port, "/studies?page_size=1", name="gunicorn", within=60, pause=0.3)
        yield port, process.pid
    finally:
        _stop(process)
        logfile.seek(0)
        errors = logfile.read().decode(errors="replace").strip()
        logfile.close()
        if errors:
            log(f"gunicorn ({code}) said:\n{errors[-2000:]}")


def prepare(code: Path, url: str, n: int, seed: int, data: Path) -> dict:
    """Migrate, fill and index the database at ``url`` with ``code``'s own bench/fill.py."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PREPARE, url, str(n), str(seed), str(data)],
                          cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"filling with {code} failed ({done.returncode}):\n{done.stdout[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["prepare_s"] = round(time.perf_counter() - began, 1)
    if not Path(info["service_module"]).resolve().is_relative_to(code.resolve()):
        raise RuntimeError(f"the child imported {info['service_module']}, not the code under {code}")
    return info


# Run in a child process inside a code's folder on a copy of a register filled before: that code's
# migrations upgrade it in place, then vacuum/checkpoint as after a fill.
UPGRADE = r"""
import json, sys, time
url = sys.argv[1]
import service
from service import create_app, migrations
from service.db import close_all, database
create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
info = {}
with database.connection_context():
    began = time.perf_counter()
    info["upgraded"] = [m.name for m in migrations.upgrade()]
    info["upgrade_s"] = round(time.perf_counter() - began, 1)
    after = "VACUUM ANALYZE" if url.startswith("postgres") else "PRAGMA wal_checkpoint(TRUNCATE)"
    database.execute_sql(after)
close_all(database.obj)
info["service_module"] = service.__file__
print(json.dumps(info, default=str))
"""


def upgrade_copy(code: Path, url: str) -> dict:
    """Bring the copied register at ``url`` to ``code``'s schema with ``code``'s own migrations."""
    done = subprocess.run([sys.executable, "-c", UPGRADE, url], cwd=code,
                          env={**os.environ, "PYTHONPATH": str(code)}, stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"upgrading with {code} failed ({done.returncode}):\n{done.stdout[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(info["service_module"]).resolve().is_relative_to(code.resolve()):
        raise RuntimeError(f"the child imported {info['service_module']}, not the code under {code}")
    return info


def fill_inputs(code: Path) -> str:
    """A digest of what decides a filled database's content: every file of service/ (models,
    migrations, search indexes) and bench/fill.py and bench/run.py (the fill, its prepare step)."""
    digest = hashlib.sha256()
    files = [p for p in sorted((code / "service").rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    for path in [*files, code / "bench" / "fill.py", code / "bench" / "run.py"]:
        if path.exists():
            digest.update(str(path.relative_to(code)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def copy_database(backend: str, source: str, target: str, pg_base: str) -> None:
    """Make ``target`` (empty, from database_for) a copy of the filled ``source``."""
    if backend == "sqlite":
        source_path = Path(source.removeprefix("sqlite:///"))
        target_path = Path(target.removeprefix("sqlite:///"))
        for leftover in source_path.parent.glob(source_path.name + "*"):
            shutil.copyfile(leftover, target_path.parent / leftover.name.replace(source_path.name,
                                                                                 target_path.name))
        return
    import psycopg2

    conn = psycopg2.connect(f"{pg_base}/postgres", connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            name, template = target.rsplit("/", 1)[1], source.rsplit("/", 1)[1]
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    finally:
        conn.close()


def git_state(code: Path) -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=code, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "service", "bench")
    return {"path": str(code), "commit": git("rev-parse", "--short", "HEAD"),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "modified": bool(status) if status is not None else None}


def resolve_routes(server: Server, figs: list[Figure], strategy: str) -> None:
    """Which request each figure sends to this server; None where the code cannot be asked."""
    get_strategy = "/studies?" + urlencode({"q": strategy}, quote_via=quote)
    fits = len(get_strategy) < MAX_URL
    for fig in figs:
        if fig.key == "strategy-get":
            server.routes[fig.key] = ("GET", get_strategy, None) if fits else None
            server.via[fig.key] = "GET" if fits else f"n/a (URL {len(get_strategy)} B)"
        elif fig.key == "strategy":
            body = json.dumps({"q": strategy}).encode()
            status, _, _ = server.send("POST", "/studies/search", body)
            if status in (404, 405):
                server.routes[fig.key] = ("GET", get_strategy, None) if fits else None
                server.via[fig.key] = (f"GET (POST /studies/search: {status})" if fits
                                       else f"n/a (POST /studies/search: {status})")
            else:
                server.routes[fig.key] = ("POST", "/studies/search", body)
                server.via[fig.key] = "POST"
        else:
            server.routes[fig.key] = ("GET", fig.path, None)
            server.via[fig.key] = "GET"


def total_of(data: bytes):
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(data).get("total")
    return None


def pick_identifier(server: Server, n: int) -> str:
    """A ClinicalTrials.gov number of a filled study (near the middle of the ids)."""
    for study_id in range(n // 2 + 1, n // 2 + 200):
        status, _, data = server.send("GET", f"/studies/{study_id}")
        if status != 200:
            continue
        for registration in json.loads(data).get("registrations") or []:
            if str(registration.get("identifier", "")).startswith("NCT"):
                return registration["identifier"]
    raise RuntimeError("no study with an NCT registration near the middle of the ids")


# ----------------------------------------------------------------------------------------- report

def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


def summarise(rows: list[dict], figs: list[Figure], servers: list[Server]) -> list[dict]:
    """One row per (figure, backend, code): p50/p90 over every request of every round; ratios taken
    per round (median over median) and their median over rounds, with the rounds' range."""
    by: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        by.setdefault((r["figure"], r["backend"], r["code"]), {})[r["round"]] = r
    out = []
    backends = list(dict.fromkeys(s.backend for s in servers))
    codes = list(dict.fromkeys(s.code for s in servers))
    for fig in figs:
        for backend in backends:
            for code in codes:
                rounds = by.get((fig.key, backend, code))
                if not rounds:
                    continue
                statuses = sorted({s for r in rounds.values() for s in r["statuses"]})
                totals = sorted({t for r in rounds.values() for t in r["totals"]}, key=str)
                row = {"figure": fig.key, "label": fig.label, "backend": backend, "code": code,
                       "via": rounds[min(rounds)]["via"], "statuses": statuses, "totals": totals,
                       "requests": sum(len(r["ms"]) for r in rounds.values())}
                if statuses == [200]:
                    every = [ms for r in rounds.values() for ms in r["ms"]]
                    row.update(p50_ms=round(statistics.median(every), 2), p90_ms=round(_p90(every), 2))
                    lists = by.get((LIST, backend, code), {})
                    per = [statistics.median(r["ms"]) / statistics.median(lists[k]["ms"])
                           for k, r in rounds.items() if k in lists and lists[k]["statuses"] == [200]]
                    if per:
                        row["per_list"] = round(statistics.median(per), 3)
                    base = by.get((fig.key, backend, "base"), {})
                    if code == "code" and base:
                        per = [statistics.median(r["ms"]) / statistics.median(base[k]["ms"])
                               for k, r in rounds.items() if k in base and base[k]["statuses"] == [200]]
                        if per:
                            row.update(per_base=round(statistics.median(per), 3),
                                       per_base_range=[round(min(per), 3), round(max(per), 3)])
                out.append(row)
    return out


def table(summary: list[dict]) -> str:
    lines = ["| figure | backend | code | p50 ms | p90 ms | ÷ list | code ÷ base (rounds) | total | via |",
             "|---|---|---|---:|---:|---:|---|---:|---|"]
    for r in summary:
        if "p50_ms" in r:
            times = f"{r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r.get('per_list', float('nan')):.2f}"
        else:
            times = f"status {','.join(map(str, r['statuses'])) or '–'} | | "
        versus = ""
        if "per_base" in r:
            low, high = r["per_base_range"]
            versus = f"{r['per_base']:.2f} ({low:.2f}–{high:.2f})"
        total = ", ".join(f"{t:,}" if isinstance(t, int) else str(t) for t in r["totals"])
        lines.append(f"| {r['label']} | {r['backend']} | {r['code']} | {times} | {versus} | {total} | "
                     f"{r['via']} |")
    return "\n".join(lines)


def agreement(summary: list[dict]) -> list[str]:
    """Figures whose total differs between servers (the same data should give the same count)."""
    seen: dict[str, dict[str, list]] = {}
    for r in summary:
        if r["statuses"] == [200]:
            seen.setdefault(r["figure"], {})[f"{r['code']}/{r['backend']}"] = r["totals"]
    return [f"{figure}: " + "; ".join(f"{k} {v}" for k, v in totals.items())
            for figure, totals in seen.items() if len({json.dumps(v) for v in totals.values()}) > 1]


# ------------------------------------------------------------------------------------------- main

def measure(servers: list[Server], figs: list[Figure], rounds: int, requests: int,
            warmup: int) -> list[dict]:
    rows = []
    for server in servers:  # warm caches; not recorded
        for fig in figs:
            route = server.routes[fig.key]
            for _ in range(warmup if route else 0):
                server.send(*route)
    for round_ in range(1, rounds + 1):
        began = time.perf_counter()
        turn = round_ - 1
        order = servers[turn % len(servers):] + servers[:turn % len(servers)]
        for fig in figs:
            for server in order:
                route = server.routes[fig.key]
                row = {"round": round_, "figure": fig.key, "backend": server.backend,
                       "code": server.code, "via": server.via[fig.key], "ms": [], "statuses": [],
                       "totals": [], "loadavg": os.getloadavg()[0]}
                if route is not None:
                    statuses, totals = set(), set()
                    for i in range(requests):
                        status, ms, data = server.send(*route)
                        row["ms"].append(round(ms, 3))
                        statuses.add(status)
                        if i == 0 or status != 200:
                            totals.add(total_of(data) if status == 200 else None)
                    row["statuses"], row["totals"] = sorted(statuses), sorted(totals, key=str)
                rows.append(row)
        log(f"round {round_}/{rounds} in {time.perf_counter() - began:.0f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout measured (default: this one)")
    parser.add_argument("--baseline-code", type=Path, help="another checkout, e.g. a git worktree of an "
                        "older commit; measured beside --code in the same rounds")
    parser.add_argument("--n", type=int, default=50_000, help="studies (x 3 references)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="per figure per server per round")
    parser.add_argument("--warmup", type=int, default=3, help="unrecorded requests per figure first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2,
                        help="per worker, as gunicorn.conf.py (gthread, keep-alive); 1: sync workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", type=Path, default=STRATEGY, help="a review strategy file")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the real files the fill draws text from")
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-prefix", default="search_bench",
                        help="the Postgres databases' names begin so (<prefix>_<UTC timestamp>_<code>)")
    parser.add_argument("--from-filled", action="append", default=[], metavar="[CODE/]BACKEND=URL",
                        help="no fill for BACKEND: each code (or only CODE: code, base) gets a copy of the "
                        "register filled before at URL (a Postgres database, not dropped; a SQLite file), "
                        "upgraded in place by that code's migrations "
                        "(postgres=postgresql://postgres@127.0.0.1:5432/filled); filled by bench/fill.py "
                        "with the same --n and --seed")
    parser.add_argument("--fill-each", action="store_true", help="fill the baseline's databases anew "
                        "even when its fill inputs are the same files as --code's (default: copy them)")
    parser.add_argument("--json", type=Path, help="default: bench/results/search-<UTC timestamp>.json")
    args = parser.parse_args()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    from_filled = dict(item.split("=", 1) for item in args.from_filled)
    if not {k.split("/")[-1] for k in from_filled} <= set(backends):
        sys.exit(f"--from-filled names a backend not measured: {', '.join(sorted(from_filled))}")
    for key, url in from_filled.items():
        if key.endswith("sqlite"):
            from_filled[key] = "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    if "postgres" in backends and args.pg_base.split("@")[-1].split(":")[0] not in ("127.0.0.1", "localhost"):
        sys.exit("--pg-base must point at 127.0.0.1: the benchmark only talks to loopback")
    codes = {"code": args.code.resolve()}
    if args.baseline_code:
        codes["base"] = args.baseline_code.resolve()
    for path in codes.values():
        if not (path / "service" / "wsgi.py").exists() or not (path / "bench" / "fill.py").exists():
            sys.exit(f"{path} is not a checkout of study-register (service/wsgi.py, bench/fill.py)")
    strategy = " ".join(args.strategy.read_text().split())
    digests = {label: fill_inputs(path) for label, path in codes.items()}
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    started = dt.datetime.now(dt.UTC)
    stamp = f"{started:%Y%m%dT%H%M%SZ}"
    out = args.json or RESULTS / f"search-{stamp}.json"
    results = {"n": args.n, "rounds": args.rounds, "requests": args.requests, "warmup": args.warmup,
               "workers": args.workers, "threads": args.threads, "seed": args.seed,
               "started": started.isoformat(), "strategy_file": str(args.strategy), "strategy": strategy,
               "codes": {label: {**git_state(path), "fill_inputs": digests[label]}
                         for label, path in codes.items()},
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()},
               "from_filled": from_filled, "databases": {}, "servers": {}, "figures": [], "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="study-register-search-bench-"))
    servers: list[Server] = []
    error = None
    try:
        with contextlib.ExitStack() as stack:
            filled = []  # (label, backend, url, folder, info)
            for backend in backends:
                for label, path in codes.items():
                    folder = tmp / f"{label}-{backend}"
                    folder.mkdir()
                    url = stack.enter_context(database_for(
                        backend, folder, args.pg_base, f"{args.pg_prefix}_{stamp.lower()}_{label}"))
                    twin = next((f for f in filled if f[1] == backend
                                 and digests[f[0]] == digests[label]), None)
                    filled_before = from_filled.get(f"{label}/{backend}", from_filled.get(backend))
                    if filled_before is not None:
                        began = time.perf_counter()
                        copy_database(backend, filled_before, url, args.pg_base)
                        info = {"copied_from": filled_before,
                                "copy_s": round(time.perf_counter() - began, 1), **upgrade_copy(path, url)}
                        log(f"{label}/{backend}: copied {filled_before} in {info['copy_s']} s, "
                            f"upgraded in {info['upgrade_s']} s: {info['upgraded'] or 'nothing to do'}")
                    elif twin is not None and not args.fill_each:
                        # The same files would fill it (deterministic for a seed): copy instead.
                        began = time.perf_counter()
                        copy_database(backend, twin[2], url, args.pg_base)
                        info = {**twin[4], "copied_from": f"{twin[0]}/{backend}",
                                "copy_s": round(time.perf_counter() - began, 1)}
                        log(f"{label}/{backend}: copied the {twin[0]}/{backend} database in "
                            f"{info['copy_s']} s (identical fill inputs; --fill-each to fill it anew)")
                    else:
                        log(f"{label}/{backend}: fill {args.n:,} studies with {path}/bench/fill.py")
                        info = prepare(path, url, args.n, args.seed, args.data)
                        log(f"{label}/{backend}: filled in {info.get('fill_s')} s, indexed in "
                            f"{info.get('index_s')} s, {info.get('size_mb')} MB")
                    results["databases"][f"{label}/{backend}"] = info
                    filled.append((label, backend, url, folder, info))
            for label, backend, url, folder, info in filled:
                # CACHE=off: every request is answered anew (the cache's own figures: cache_bench.py)
                env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "", "CACHE": "off",
                       "RATE_LIMITS": "off"}
                port, pid = stack.enter_context(gunicorn(codes[label], env, args.workers, args.threads,
                                                         folder))
                servers.append(Server(label, backend, port, info))
                results["servers"][f"{label}/{backend}"] = {"port": port, "pid": pid}
            stack.callback(lambda: [s.close() for s in servers])
            identifier = pick_identifier(servers[0], args.n)
            figs = figures(identifier)
            results["figures"] = [vars(f) for f in figs]
            for server in servers:
                resolve_routes(server, figs, strategy)
                results["servers"][server.name]["via"] = server.via
            log(f"{len(servers)} servers up; {args.rounds} rounds x {len(figs)} figures x "
                f"{args.requests} requests each")
            results["rows"] = measure(servers, figs, args.rounds, args.requests, args.warmup)
    except BaseException as exc:
        error = exc
        results["error"] = repr(exc)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        if results["rows"]:
            results["summary"] = summarise(results["rows"], [Figure(**f) for f in results["figures"]],
                                           servers)
        if results["rows"] or error is None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1, default=str) + "\n")
            log(f"wrote {out}")

    codes_line = "; ".join(f"{label} = {s['path']} at {s['commit']}"
                           + (" (modified)" if s["modified"] else "")
                           for label, s in results["codes"].items())
    fills = ", ".join(f"{k} copied in {i['copy_s']} s" if "copied_from" in i else
                      f"{k} {i.get('fill_s')} + {i.get('index_s')} s"
                      for k, i in results["databases"].items())
    print(f"\nN = {args.n:,} studies × 3 references; {codes_line}; gunicorn {args.workers} workers × "
          f"{args.threads} threads; one client; {args.rounds} rounds × {args.requests} requests per "
          f"figure per server (p50/p90 over all; ratios per round, median of rounds); "
          f"fill + index: {fills}\n")
    print(table(results["summary"]))
    disagree = agreement(results["summary"])
    print("\nTotals agree across servers." if not disagree else
          "\nTotals differ:\n" + "\n".join(f"- {line}" for line in disagree))


if __name__ == "__main__":
    main()
