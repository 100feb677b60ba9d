"""The register beside datasette on the same SQLite file, and beside the framework's ceiling, in one run
(issue 16's measuring infrastructure).

    python bench/datasette_bench.py --database /tmp/b50/fresh.db --rounds 3 --duration 3

The file is copied into a temporary folder first (the service opens SQLite in WAL mode, which creates
-wal/-shm files beside it; the original is only read). Side by side on free loopback ports, each in its
own process group and stopped however the run ends:

- gunicorn, 2 sync workers (``--workers``), an empty -c file (no access log): ``bench/hello.py`` (a bare
  WSGI callable), ``bench/smorest_min.py`` (a minimal flask-smorest route: the framework's ceiling), the
  service with ``CACHE=off RATE_LIMITS=off`` and the service with ``CACHE=on RATE_LIMITS=off``;
- ``datasette serve --immutable <copy>`` (datasette 0.65.5 as it ships: one uvicorn process, async,
  SQL on its thread pool of 3), with ``suggest_facets off`` and the SQL and facet time limits raised to
  10 s (no answer cut short), and table metadata naming ``study_search`` / ``reference_search`` as the
  FTS tables of ``study`` / ``reference`` so that ``_search=`` works. Without ``--datasette`` it is
  installed once into ``/tmp/datasette-venv`` (never a dependency of the project).

Each pair is asked once first: every answer must be 200 and JSON, and the totals and facet counts each
side reports are printed and compared. Then for each connection count (``--connections 8,1``), every
round measures every figure once with wrk (1 s warm-up, ``--duration`` s), the figures' order rotating
per round; random ids come from a wrk Lua script. The table gives median req/s over rounds, median
p99, and the ratio to datasette's figure of the same request and to the ceiling. Writes
bench/results/datasette-<UTC timestamp>.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    HOST,
    _get,
    _git_state,
    _stop,
    _terminate,
    free_port,
    gunicorn,
    log,
    parse_wrk,
    wait_ready,
)

RESULTS = ROOT / "bench" / "results"
DATASETTE = "datasette==0.65.5"
DEFAULT_VENV = Path("/tmp/datasette-venv")
DB = "register"  # the copy's file stem: datasette's database name in its URLs
WORDS = "patients hospital"
PHRASE = '"intensive care"'
DS_SETTINGS = {"suggest_facets": False, "sql_time_limit_ms": 10_000, "facet_time_limit_ms": 10_000}
# --datasette-workers N > 1: datasette's ASGI app, made as `datasette serve --immutable` makes it, under
# uvicorn's own --workers (datasette serve has no such option).
ASGI_MODULE = """# bench/datasette_bench.py: datasette for uvicorn --workers
import json
import os

from datasette.app import Datasette

ds = Datasette(immutables=[os.environ["BENCH_DS_FILE"]], metadata=json.loads(os.environ["BENCH_DS_METADATA"]),
               settings=json.loads(os.environ["BENCH_DS_SETTINGS"]))
app = ds.app()
"""
METADATA = {"databases": {DB: {"tables": {
    "study": {"fts_table": "study_search", "fts_pk": "id"},
    "reference": {"fts_table": "reference_search", "fts_pk": "id"}}}}}

# One request of ours and datasette's equivalent in one SQL statement.
SQL_ROW_REFS = ("select s.*, r.id as reference_id, r.type, r.title as reference_title, r.authors, "
                "r.abstract, r.source, r.year, r.doi, r.pmid, l.link, l.role from study s "
                "join study_reference l on l.study_id = s.id join reference r on r.id = l.reference_id "
                "where s.id = :id order by r.id")


def sql_search(fts: str, table: str, columns: str, facets: tuple[str, str]) -> str:
    """A ranked page of 20 plus two facets (whose counts add up to the total) in one FTS5 statement."""
    a, b = facets
    return (f"with m as materialized (select rowid as id, rank from {fts} where {fts} match :q) "
            f"select * from (select 'row' as kind, t.id as value, {columns}, null as n from m "
            f"join {table} t on t.id = m.id order by m.rank limit 20) "
            f"union all select '{a}', t.{a}, null, null, count(*) from m join {table} t on t.id = m.id "
            f"group by t.{a} "
            f"union all select '{b}', t.{b}, null, null, count(*) from m join {table} t on t.id = m.id "
            f"group by t.{b}")


def ds_sql(sql: str, **params) -> str:
    return (f"/{DB}.json?" + urlencode({"sql": sql, **params}, quote_via=quote)).replace("%7Bid%7D", "{id}")


# group, label, server, path ({id}: a random study id per request, from a wrk Lua script)
FIGURES = [
    ("ceiling", "bare WSGI hello world (bench/hello.py)", "hello", "/"),
    ("ceiling", "minimal flask-smorest route (bench/smorest_min.py)", "min", "/hello/1"),
    ("one study, random id", "GET /studies/{id} (3 references embedded)", "off", "/studies/{id}"),
    ("one study, random id", "row JSON /register/study/{id}.json", "ds", f"/{DB}/study/{{id}}.json"),
    ("one study, random id", "row + references: one ?sql= join (3 rows)", "ds",
     ds_sql(SQL_ROW_REFS, id="{id}")),
    ("one study, the same id", "GET /studies/1, CACHE=off", "off", "/studies/1"),
    ("one study, the same id", "GET /studies/1, CACHE=on", "on", "/studies/1"),
    ("one study, the same id", "row JSON /register/study/1.json", "ds", f"/{DB}/study/1.json"),
    ("list of 20 studies", "GET /studies?page_size=20", "off", "/studies?page_size=20"),
    ("list of 20 studies", "/register/study.json?_size=20", "ds", f"/{DB}/study.json?_size=20"),
    ("20 journal articles", "GET /references?type=journal_article&page_size=20", "off",
     "/references?type=journal_article&page_size=20"),
    ("20 journal articles", "/register/reference.json?type=journal_article&_size=20", "ds",
     f"/{DB}/reference.json?type=journal_article&_size=20"),
    ("two facets", "GET /studies?facets=study_type,study_aim&page_size=1", "off",
     "/studies?facets=study_type,study_aim&page_size=1"),
    ("two facets", "/register/study.json?_facet=study_type&_facet=study_aim&_size=1", "ds",
     f"/{DB}/study.json?_facet=study_type&_facet=study_aim&_size=1"),
    ("q=patients hospital + two facets", "GET /studies?q=…&facets=study_type,study_aim", "off",
     f"/studies?q={quote(WORDS)}&facets=study_type,study_aim"),
    ("q=patients hospital + two facets", "study.json?_search=…&_facet=study_type&_facet=study_aim&_size=20",
     "ds", f"/{DB}/study.json?_search={quote(WORDS)}&_facet=study_type&_facet=study_aim&_size=20"),
    ("q=patients hospital + two facets", "?sql= FTS5: ranked 20 + two facets, one statement", "ds",
     ds_sql(sql_search("study_search", "study", "t.name, t.title", ("study_type", "study_aim")), q=WORDS)),
    ('q="intensive care" on references + two facets', 'GET /references?q="…"&facets=type,year', "off",
     f"/references?q={quote(PHRASE)}&facets=type,year"),
    ('q="intensive care" on references + two facets', "reference.json?_search=…&_facet=type&_facet=year"
     "&_size=20", "ds", f"/{DB}/reference.json?_search={quote(PHRASE)}&_facet=type&_facet=year&_size=20"),
    ('q="intensive care" on references + two facets', "?sql= FTS5: ranked 20 + two facets, one statement",
     "ds", ds_sql(sql_search("reference_search", "reference", "t.type, t.title", ("type", "year")),
                  q=PHRASE)),
]
SIDES = {"off": "study-register", "on": "study-register", "ds": "datasette", "hello": "ceiling",
         "min": "ceiling"}


# ------------------------------------------------------------------------------------ servers

def datasette_binary(given: Path | None) -> Path:
    if given is not None:
        if not given.exists():
            sys.exit(f"--datasette {given}: no such file")
        return given
    binary = DEFAULT_VENV / "bin" / "datasette"
    if binary.exists():
        return binary
    log(f"datasette not given: installing {DATASETTE} into {DEFAULT_VENV} (a bench-only venv)")
    log(f"  python3 -m venv {DEFAULT_VENV} && {DEFAULT_VENV}/bin/pip install {DATASETTE}")
    subprocess.run(["python3", "-m", "venv", str(DEFAULT_VENV)], check=True, timeout=300)
    subprocess.run([str(DEFAULT_VENV / "bin" / "pip"), "install", "-q", DATASETTE], check=True, timeout=900)
    return binary


@contextlib.contextmanager
def datasette(binary: Path, database: Path, tmp: Path, workers: int):
    """``datasette serve --immutable`` (one process), or its app under ``uvicorn --workers``."""
    port = free_port()
    metadata = tmp / "metadata.json"
    metadata.write_text(json.dumps(METADATA))
    env = dict(os.environ)
    if workers == 1:
        args = [str(binary), "serve", "--immutable", str(database), "-h", HOST, "-p", str(port),
                "-m", str(metadata)]
        for name, value in DS_SETTINGS.items():
            args += ["--setting", name, {False: "off", True: "on"}.get(value, str(value))]
    else:
        (tmp / "bench_datasette_app.py").write_text(ASGI_MODULE)
        env.update(BENCH_DS_FILE=str(database), BENCH_DS_METADATA=json.dumps(METADATA),
                   BENCH_DS_SETTINGS=json.dumps(DS_SETTINGS))
        args = [str(binary.parent / "python"), "-m", "uvicorn", "--workers", str(workers), "--app-dir",
                str(tmp), "--host", HOST, "--port", str(port), "--log-level", "warning",
                "bench_datasette_app:app"]
    logfile = open(tmp / f"datasette-{port}.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=logfile,
                               stderr=subprocess.STDOUT, start_new_session=True)  # its own group
    try:
        wait_ready(process, logfile, port, "/-/versions.json", name="datasette", within=60, pause=0.3)
        yield port
    finally:
        _stop(process)
        logfile.close()


# ------------------------------------------------------------------------------------ checks

def _json(port: int, path: str) -> dict:
    status, body = _get(port, path, timeout=60)
    if status != 200:
        raise RuntimeError(f"GET {path} on :{port} answered {status}: {body[:300]!r}")
    return json.loads(body)


def _ours_facets(d: dict) -> dict:
    return {name: {str(v["value"]): v["count"] for v in values if v["count"]}
            for name, values in d.get("facets", {}).items()}


def _ds_facets(d: dict) -> dict:
    if d.get("facets_timed_out"):
        raise RuntimeError(f"datasette's facets timed out: {d['facets_timed_out']}")
    return {name: {str(v["value"]): v["count"] for v in f["results"]}
            for name, f in d.get("facet_results", {}).items()}


def _sql_facets(d: dict) -> dict:
    out: dict = {}
    for row in d["rows"]:
        if isinstance(row, list):
            row = dict(zip(d["columns"], row, strict=True))
        if row["kind"] != "row":
            out.setdefault(row["kind"], {})[str(row["value"])] = row["n"]
    return out


def check(ports: dict, study_id: int) -> list[dict]:
    """Ask every pair once; return what each side reports (totals, facet counts) and whether they agree."""
    checks = []
    by_group: dict[str, list] = {}
    for group, label, server, path in FIGURES:
        by_group.setdefault(group, []).append((label, server, path.replace("{id}", str(study_id))))
    for group, members in by_group.items():
        if group == "ceiling":
            for _label, server, path in members:
                _get(ports[server], path, timeout=60)
            continue
        seen = []
        for label, server, path in members:
            d = _json(ports[server], path)
            total, facets = None, None
            if server in ("off", "on"):
                if "total" in d:
                    total, facets = d["total"], _ours_facets(d)
                else:
                    total = f"study {d['id']}, {len(d.get('references', []))} references"
            elif path.startswith(f"/{DB}.json"):
                facets = _sql_facets(d) if "kind" in d["columns"] else None
                if facets:
                    total = sum(next(iter(facets.values())).values())
                else:
                    total = f"{len(d['rows'])} rows"
            elif "rows" in d and "filtered_table_rows_count" not in d:  # a row page
                if len(d["rows"]) != 1:
                    raise RuntimeError(f"datasette's row {path} is missing")
                total = f"row {d['rows'][0][0]}"
            else:
                total, facets = d["filtered_table_rows_count"], _ds_facets(d)
            seen.append({"label": label, "server": server, "total": total, "facets": facets or None})
        numbers = [s["total"] for s in seen if isinstance(s["total"], int)]
        facet_sets = [s["facets"] for s in seen if s["facets"]]
        agree = len(set(numbers)) <= 1 and all(f == facet_sets[0] for f in facet_sets)
        for s in seen:
            facets = "; ".join(f"{k}: " + ", ".join(f"{v}={n}" for v, n in sorted(
                vs.items(), key=lambda kv: -kv[1])[:4]) + (", …" if len(vs) > 4 else "")
                for k, vs in (s["facets"] or {}).items())
            log(f"check {group} | {SIDES[s['server']]} {s['label']}: total {s['total']}"
                + (f" | {facets}" if facets else ""))
        if not agree:
            log(f"check {group}: THE SIDES DISAGREE (totals {numbers})")
            for s in seen:
                log(f"  {s['label']}: {json.dumps(s['facets'], sort_keys=True)}")
        checks.append({"group": group, "answers": seen, "agree": agree})
    return checks


# ------------------------------------------------------------------------------------ load

def lua_script(path: str, n: int, tmp: Path, index: int) -> Path:
    """A wrk script asking for ``path`` with {id} a random study id in 1..n on every request."""
    head, tail = path.split("{id}", 1)
    out = tmp / f"random-{index}.lua"
    out.write_text(f"""-- bench/datasette_bench.py: {path[:60]} with a random id in 1..{n}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
function init(args)
  math.randomseed(7919 * thread_number)
end
function request()
  return wrk.format("GET", [[{head}]] .. math.random(1, {n}) .. [[{tail}]])
end
""")
    return out


def run_wrk(port: int, path: str, connections: int, seconds: int, script: Path | None) -> dict:
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", "10s"]
    if script is not None:
        args += ["-s", str(script)]
    url = f"http://{HOST}:{port}{path.replace('{id}', '1')}"
    done = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# ------------------------------------------------------------------------------------ report

def summarise(rows: list[dict]) -> list[dict]:
    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    out = []
    for c in sorted({r["connections"] for r in rows}, reverse=True):
        at_c = [r for r in rows if r["connections"] == c]
        ceiling = [r for r in at_c if r["server"] == "min"]
        for index, (group, label, server, _) in enumerate(FIGURES):
            rs = [r for r in at_c if r["figure"] == index]
            if not rs:
                continue
            # datasette's figures for the same request (one or two in each group)
            ds = [i for i, f in enumerate(FIGURES) if f[0] == group and f[2] == "ds"]
            ds_rps = [med(ds_rs, "rps") for i in ds if (ds_rs := [r for r in at_c if r["figure"] == i])]
            rps = med(rs, "rps")
            out.append({"connections": c, "figure": index, "group": group, "label": label,
                        "side": SIDES[server], "server": server, "rounds": len(rs), "rps": rps,
                        "rps_min": min(r["rps"] for r in rs), "rps_max": max(r["rps"] for r in rs),
                        "p50_ms": med(rs, "p50_ms"), "p99_ms": med(rs, "p99_ms"),
                        "vs_datasette": [round(rps / d, 3) if d else None for d in ds_rps]
                        if server != "ds" else [],
                        "vs_ceiling": round(rps / med(ceiling, "rps"), 3) if ceiling else None,
                        "requests": sum(r["requests"] for r in rs),
                        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs)})
    return out


def _rps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(summary: list[dict]) -> str:
    lines = []
    for c in sorted({r["connections"] for r in summary}, reverse=True):
        lines += [f"\n{c} connection(s):\n",
                  "| request | side | req/s | p99 ms | ÷ datasette | ÷ smorest ceiling | errors "
                  "| req/s range | requests |",
                  "|---|---|---:|---:|---:|---:|---:|---|---:|"]
        for r in summary:
            if r["connections"] != c:
                continue
            ratio = " / ".join("n/a" if x is None else f"{x:.2f}" for x in r["vs_datasette"])
            lines.append(f"| {r['group']}: {r['label']} | {r['side']} | {_rps(r['rps'])} | "
                         f"{r['p99_ms']:.1f} | {ratio} | {r['vs_ceiling']:.3f} | {r['errors']} | "
                         f"{_rps(r['rps_min'])}–{_rps(r['rps_max'])} | {r['requests']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=Path("/tmp/b50/fresh.db"),
                        help="a filled SQLite register (copied first; the original is only read)")
    parser.add_argument("--datasette", type=Path,
                        help=f"the datasette executable (else {DATASETTE} is installed into {DEFAULT_VENV})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per figure per round")
    parser.add_argument("--connections", default="8,1")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (ours and ceiling)")
    parser.add_argument("--datasette-workers", type=int, default=1,
                        help="1: `datasette serve` as it ships (one process); N: its app under "
                        "uvicorn --workers N")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk`")
    if not args.database.exists():
        sys.exit(f"--database {args.database}: no such file (fill one with bench/fill.py)")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    connections = [int(c) for c in args.connections.split(",")]
    binary = datasette_binary(args.datasette)
    log(f"load ≈ {len(connections) * args.rounds * len(FIGURES) * (args.duration + 1.3) / 60:.1f} min "
        f"({len(FIGURES)} figures x {args.rounds} rounds x {len(connections)} connection counts)")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    started = dt.datetime.now(dt.UTC)
    results = {"started": started.isoformat(), "database": str(args.database), "rounds": args.rounds,
               "duration_s": args.duration, "warmup_s": 1, "connections": connections,
               "workers": args.workers, "datasette": {"version": version, "settings": DS_SETTINGS,
                                                      "metadata": METADATA,
                                                      "processes": args.datasette_workers},
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()},
               "git": _git_state(), "figures": [f[:3] + (f[3][:300],) for f in FIGURES], "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="study-register-datasette-"))
    try:
        copy = tmp / f"{DB}.db"
        log(f"copying {args.database} to {copy}")
        shutil.copyfile(args.database, copy)
        with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
            n = conn.execute("SELECT MAX(id) FROM study").fetchone()[0]
        results["n"] = n
        scripts = {i: lua_script(f[3], n, tmp, i) for i, f in enumerate(FIGURES) if "{id}" in f[3]}
        url = f"sqlite:///{copy}"
        base = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "", "RATE_LIMITS": "off"}
        with gunicorn("bench.hello:app", {}, args.workers, tmp, "/") as hello, \
                gunicorn("bench.smorest_min:app", {}, args.workers, tmp, "/hello/1") as minimal, \
                gunicorn("service.wsgi:app", {**base, "CACHE": "off"}, args.workers, tmp, "/health") as off, \
                gunicorn("service.wsgi:app", {**base, "CACHE": "on"}, args.workers, tmp, "/health") as on, \
                datasette(binary, copy, tmp, args.datasette_workers) as ds:
            ports = {"hello": hello, "min": minimal, "off": off, "on": on, "ds": ds}
            log(f"servers up: {ports}; {version}")
            results["checks"] = check(ports, n // 2 + 1)
            for c in connections:
                for round_ in range(args.rounds):
                    shift = round_ * len(FIGURES) // args.rounds  # each round starts elsewhere
                    order = list(range(len(FIGURES)))[shift:] + list(range(len(FIGURES)))[:shift]
                    for index in order:
                        group, label, server, path = FIGURES[index]
                        script = scripts.get(index)
                        run_wrk(ports[server], path, c, 1, script)  # warm-up
                        figure = run_wrk(ports[server], path, c, args.duration, script)
                        figure.update(connections=c, round=round_ + 1, figure=index, server=server,
                                      loadavg=os.getloadavg()[0])
                        results["rows"].append(figure)
                        log(f"c={c} round {round_ + 1} {group}: {label} [{SIDES[server]}]: "
                            f"{figure['rps']:,.0f} req/s, p99 {figure['p99_ms']} ms, "
                            f"errors {figure['non_2xx'] + figure['socket_errors']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["summary"] = summarise(results["rows"]) if results["rows"] else []
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"datasette-{started:%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        log(f"wrote {out.relative_to(ROOT)}")
    shape = ("one process (datasette serve: uvicorn, async, 3 SQL threads)" if args.datasette_workers == 1
             else f"uvicorn --workers {args.datasette_workers} (each async, 3 SQL threads)")
    print(f"\nN = {n:,} studies; our service and the ceilings: gunicorn {args.workers} sync workers; "
          f"{version}, {shape}, immutable; wrk 1 s warm-up "
          f"+ {args.duration} s per figure, {args.rounds} rounds, order rotating, medians; machine "
          f"{os.cpu_count()} CPUs, load {results['machine']['loadavg_start'][0]:.1f} → "
          f"{results['machine']['loadavg_end'][0]:.1f}")
    disagree = [c["group"] for c in results["checks"] if not c["agree"]]
    print("counts: " + ("every pair agrees on totals and facet counts" if not disagree
                        else f"THE SIDES DISAGREE on {', '.join(disagree)} (see the log above)"))
    print(table(results["summary"]))


if __name__ == "__main__":
    main()
