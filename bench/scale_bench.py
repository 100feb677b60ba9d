"""Scale bench (issue 16, goal 5): the same requests on registers of two sizes, SQLite and Postgres, one
client, interleaved rounds; how each request's cost grows from the smaller size to the larger.

    python bench/scale_bench.py --sizes 50000,200000 --backends sqlite,postgres --dir /tmp/h3 --prefix h3_
    python bench/scale_bench.py --sizes 50000,200000 --fill-only --dir /tmp/h3 --prefix h3_   # fill ahead

For each (backend, size) a filled register, made by bench/run.py's ``prepare`` (migrate, bench/fill.py,
search indexes, at-rest state) and kept for the next run: SQLite ``<dir>/<prefix><n/1000>k.db``, Postgres
a database ``<prefix><n/1000>k`` on 127.0.0.1 (only databases whose name starts with ``--prefix`` are ever
created or dropped). ``<dir>/<backend>-<n>.json`` is written once a fill has finished and marks it as
reusable; ``--refill`` fills again. Then every register gets a gunicorn (2 sync workers, ``CACHE=off``
and ``RATE_LIMITS=off``: every answer is built, none is a cache hit), all up at once. In each round,
for each request, each server in turn (their order rotates per round) gets a 1 s wrk warm-up and
``--duration`` s of wrk at each ``--connections``; the table gives medians over rounds of p50 and p99,
and for each backend the larger ÷ smaller p50 ratio, the median of the ratios of the same round, with
their range. Each request's ``total`` (matches) at each size is read once. Before the load, each
register's SQL per request is timed in-process with its query plan (bench/run.py's ``probe``).
Writes bench/results/scale-<UTC timestamp>.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    _get,
    _git_state,
    _terminate,
    gunicorn,
    log,
    plans,
    prepare,
    probe,
    random_id_script,
    wrk,
)

RESULTS = ROOT / "bench" / "results"
CURSOR_DEPTH = 8_000  # the cursor figure starts after this many records: page=401 at page_size=20
# key, label, path ({id}: a random study id in 1..n per request; {cursor}: resolved per server)
FIGURES = [
    ("read", "GET /studies/{id}", "/studies/{id}"),
    ("list", "GET /studies?page_size=20", "/studies?page_size=20"),
    ("page-401", "GET /studies?page=401&page_size=20", "/studies?page=401&page_size=20"),
    ("cursor-8000", f"GET /studies?cursor=(after record {CURSOR_DEPTH:,})&page_size=20",
     "/studies?page_size=20&cursor={cursor}"),
    ("facets", "GET /studies?facets=study_type,study_aim&page_size=20",
     "/studies?facets=study_type,study_aim&page_size=20"),
    ("search-common", "GET /studies?q=patients hospital&facets=study_type,study_aim",
     "/studies?q=patients%20hospital&facets=study_type,study_aim"),
    ("search", "GET /studies?q=mortality ventilation&facets=study_type,study_aim",
     "/studies?q=mortality%20ventilation&facets=study_type,study_aim"),
    ("phrase", 'GET /references?q="intensive care"&facets=type,year',
     "/references?q=%22intensive%20care%22&facets=type,year"),
]


def name_for(prefix: str, n: int) -> str:
    return f"{prefix}{n // 1000}k" if n % 1000 == 0 else f"{prefix}{n}"


def _admin(pg_base: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{pg_base}/postgres", connect_timeout=5)
    try:
        conn.autocommit = True
        conn.cursor().execute(sql)
    finally:
        conn.close()


def register(backend: str, n: int, args, corpus_of) -> dict | None:
    """The filled register for (backend, n): the one marked done in ``args.dir``, else a new fill
    (None with ``--no-fill``)."""
    name = name_for(args.prefix, n)
    marker = args.dir / f"{backend}-{n}.json"
    if backend == "sqlite":
        url = f"sqlite:///{args.dir / name}.db"
    elif backend == "postgres":
        url = f"{args.pg_base}/{name}"
    else:
        raise SystemExit(f"unknown backend {backend!r} (sqlite, postgres)")
    if marker.exists() and not args.refill:
        info = json.loads(marker.read_text())
        if info.get("url") == url and info.get("n") == n and info.get("seed") == args.seed:
            log(f"{backend} {n:,}: reusing {url} (filled {info.get('prepared')})")
            return info
    if args.no_fill:
        log(f"{backend} {n:,}: no finished fill in {args.dir}, left out (--no-fill)")
        return None
    marker.unlink(missing_ok=True)
    if backend == "sqlite":
        for leftover in args.dir.glob(f"{name}.db*"):
            leftover.unlink()
    else:
        assert name.startswith(args.prefix) and args.prefix, name
        _admin(args.pg_base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(args.pg_base, f'CREATE DATABASE "{name}"')
    log(f"{backend} {n:,}: migrate + fill + index {url}")
    began = time.perf_counter()
    info = prepare(url, n, args.seed, corpus_of(), analyze_sqlite=False)
    info.update(url=url, n=n, seed=args.seed, prepared=dt.datetime.now(dt.UTC).isoformat(),
                wall_s=round(time.perf_counter() - began, 1))
    marker.write_text(json.dumps(info, indent=1, default=str) + "\n")
    log(f"{backend} {n:,}: ready in {info['wall_s']} s, {info['size_mb']} MB")
    return info


def resolve_cursor(port: int) -> str:
    """The cursor the register hands out after its first CURSOR_DEPTH studies (default sort)."""
    path = "/studies?cursor=*&page_size=1000"
    for _ in range(CURSOR_DEPTH // 1000):
        status, body = _get(port, path, timeout=120)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:300]!r}")
        cursor = parse_qs(urlsplit(json.loads(body)["next"]).query)["cursor"][0]
        path = f"/studies?cursor={quote(cursor)}&page_size=1000"
    return quote(cursor)


def answers(port: int, paths: dict[str, str], n: int) -> dict:
    """Each request once: status, body size and ``total`` (the matches)."""
    out = {}
    for key, path in paths.items():
        began = time.perf_counter()
        status, body = _get(port, path.replace("{id}", str(n // 2 + 1)), timeout=120)
        ms = round((time.perf_counter() - began) * 1000, 1)
        total = json.loads(body).get("total") if status == 200 else None
        out[key] = {"status": status, "bytes": len(body), "total": total, "first_ms": ms}
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
    return out


def summarise(rows: list[dict], servers: list[dict], sizes: list[int], connections: list[int]) -> list[dict]:
    """Per (request, backend, connections): medians over rounds at each size measured; larger ÷ smaller
    when the backend was measured at both."""
    out = []
    small, large = sizes[0], sizes[-1]
    for key, label, _ in FIGURES:
        for backend in dict.fromkeys(s["backend"] for s in servers):
            for c in connections:
                mine = [r for r in rows if (r["figure"], r["backend"], r["connections"]) == (key, backend, c)]
                by_n = {n: [r for r in mine if r["n"] == n] for n in sizes}
                if not any(by_n.values()):
                    continue
                entry = {"figure": key, "request": label, "backend": backend, "connections": c}
                for n, rs in by_n.items():
                    if not rs:
                        continue
                    entry[n] = {"p50_ms": statistics.median(r["p50_ms"] for r in rs),
                                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                                "rps": statistics.median(r["rps"] for r in rs),
                                "rounds": len(rs),
                                "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs),
                                "total": next(s["answers"][key]["total"] for s in servers
                                              if (s["backend"], s["n"]) == (backend, n))}
                per_round = [a["p50_ms"] / b["p50_ms"] for a in by_n[large] for b in by_n[small]
                             if a["round"] == b["round"]]
                if per_round and small != large:
                    entry["ratio_p50"] = round(statistics.median(per_round), 2)
                    entry["ratio_range"] = [round(min(per_round), 2), round(max(per_round), 2)]
                    entry["ratio_p99"] = round(entry[large]["p99_ms"] / entry[small]["p99_ms"], 2)
                out.append(entry)
    return out


def _count(value) -> str:
    return "–" if value is None else f"{value:,}"


def table(summary: list[dict], sizes: list[int]) -> str:
    small, large = sizes[0], sizes[-1]
    s, b = f"{small // 1000}k", f"{large // 1000}k"
    lines = [f"| request | backend | clients | {s} p50 ms | {s} p99 ms | {b} p50 ms | {b} p99 ms "
             f"| {b} ÷ {s} p50 (range over rounds) | {b} ÷ {s} p99 | total {s} | total {b} | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in summary:
        cells = []
        for n in (small, large):
            cells += [f"{e[n]['p50_ms']:.2f}", f"{e[n]['p99_ms']:.2f}"] if n in e else ["–", "–"]
        if "ratio_p50" in e:
            lo, hi = e["ratio_range"]
            cells += [f"**{e['ratio_p50']:.2f}×** ({lo:.2f}–{hi:.2f})", f"{e['ratio_p99']:.2f}×"]
        else:
            cells += ["–", "–"]
        cells += [_count(e[n]["total"]) if n in e else "–" for n in (small, large)]
        cells.append(str(sum(e[n]["errors"] for n in (small, large) if n in e)))
        lines.append(f"| {e['request']} | {e['backend']} | {e['connections']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def probe_sql_table(probes: dict) -> str:
    """Per request and register: in-process request ms, and its costliest statement's ms."""
    lines = ["| register | request | request ms (in-process) | SQL ms | costliest statement ms |",
             "|---|---|---:|---:|---:|"]
    for name, endpoints in probes.items():
        for label, p in endpoints.items():
            top = max((q["ms"] for q in p["queries"]), default=0.0)
            lines.append(f"| {name} | {label} | {p['request_ms']:.2f} | {p['sql_ms']:.2f} | {top:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,200000", help="studies (x 3 references), smallest first")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "study-register-scale",
                        help="where SQLite registers and the fill markers are kept between runs")
    parser.add_argument("--prefix", default="scale_",
                        help="name prefix of the SQLite files and Postgres databases (never others)")
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--refill", action="store_true", help="fill again even when a fill is marked done")
    parser.add_argument("--no-fill", action="store_true",
                        help="measure only the registers already filled; fill none")
    parser.add_argument("--fill-only", action="store_true", help="fill (or check) the registers, no load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per figure")
    parser.add_argument("--connections", default="1", help="e.g. 1,8")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-probe", action="store_true", help="no in-process SQL timings and plans")
    args = parser.parse_args()
    if not args.prefix:
        sys.exit("--prefix must not be empty: it guards which databases may be dropped")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk`")
    if urlsplit(args.pg_base).hostname not in ("127.0.0.1", "localhost"):
        sys.exit("--pg-base must point at 127.0.0.1: the benchmark only talks to loopback")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sizes = sorted(int(n) for n in args.sizes.split(","))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    connections = [int(c) for c in args.connections.split(",")]
    args.dir.mkdir(parents=True, exist_ok=True)

    corpus = []

    def corpus_of():
        if not corpus:
            from bench.fill import load_corpus

            corpus.append(load_corpus())
        return corpus[0]

    started = dt.datetime.now(dt.UTC)
    results = {"started": started.isoformat(), "sizes": sizes, "backends": backends, "rounds": args.rounds,
               "duration_s": args.duration, "warmup_s": 1, "connections": connections,
               "workers": args.workers, "seed": args.seed,
               "env": {"CACHE": "off", "RATE_LIMITS": "off"},
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()},
               "git": _git_state(), "servers": [], "probes": {}, "rows": []}
    servers = [{"backend": b, "n": n, "info": info} for b in backends for n in sizes
               if (info := register(b, n, args, corpus_of)) is not None]
    results["servers"] = servers
    if args.fill_only:
        return
    paths = {key: path for key, _, path in FIGURES}
    labels = {key: label for key, label, _ in FIGURES}
    tmp = Path(tempfile.mkdtemp(prefix="study-register-scale-"))
    try:
        if not args.skip_probe:  # one register at a time, nothing else of ours running
            for s in servers:
                name = f"{s['backend']} {s['n'] // 1000}k"
                log(f"probe {name}")
                wanted = {labels[k]: p.replace("{id}", str(s["n"] // 2 + 1)) for k, p in paths.items()
                          if "{cursor}" not in p}
                results["probes"][name] = probe(s["info"]["url"], wanted, repeat=5,
                                                config={"CACHE": "off", "RATE_LIMITS": "off"})
        with contextlib.ExitStack() as stack:
            for s in servers:
                folder = tmp / f"{s['backend']}-{s['n']}"
                folder.mkdir()
                env = {"DATABASE_URL": s["info"]["url"], "LOG_LEVEL": "WARNING", "SQL_ECHO": "",
                       **results["env"]}
                s["port"] = stack.enter_context(
                    gunicorn("service.wsgi:app", env, args.workers, folder, "/health"))
                s["script"] = random_id_script(s["n"], folder)
                s["paths"] = {**paths, "cursor-8000": paths["cursor-8000"].replace(
                    "{cursor}", resolve_cursor(s["port"]))}
                s["answers"] = answers(s["port"], s["paths"], s["n"])
                if s["answers"]["list"]["total"] != s["n"]:
                    raise RuntimeError(f"{s['info']['url']} holds {s['answers']['list']['total']} studies, "
                                       f"not {s['n']}")
                log(f"{s['backend']} {s['n']:,} on :{s['port']}: "
                    + ", ".join(f"{k} {a['total']}" for k, a in s["answers"].items()))
            for round_ in range(1, args.rounds + 1):
                shift = (round_ - 1) % len(servers)
                order = servers[shift:] + servers[:shift]
                for key, label, _ in FIGURES:
                    for s in order:
                        for c in connections:
                            script = s["script"] if key == "read" else None
                            wrk(s["port"], s["paths"][key], c, 1, script)
                            row = wrk(s["port"], s["paths"][key], c, args.duration, script)
                            row.update(figure=key, backend=s["backend"], n=s["n"], connections=c,
                                       round=round_, loadavg=os.getloadavg()[0])
                            results["rows"].append(row)
                            log(f"r{round_} {s['backend']} {s['n'] // 1000}k c={c} {label}: "
                                f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['rps']:.1f} req/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        for s in servers:
            s.pop("script", None)
        results["summary"] = (summarise(results["rows"], servers, sizes, connections)
                              if results["rows"] else [])
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"scale-{started:%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        log(f"wrote {out.relative_to(ROOT)}")

    loads = [r["loadavg"] for r in results["rows"]]
    print(f"\n{', '.join(f'{n:,}' for n in sizes)} studies (x 3 references); {', '.join(backends)}; "
          f"gunicorn {args.workers} sync workers, CACHE=off, RATE_LIMITS=off; wrk {args.duration} s per "
          f"figure after 1 s warm-up, {args.rounds} interleaved rounds (medians); 1-min load average "
          f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs; log growth would be "
          f"{math.log(sizes[-1]) / math.log(sizes[0]):.2f}×, linear {sizes[-1] / sizes[0]:.0f}×; "
          f"{out.relative_to(ROOT)}\n")
    print(table(results["summary"], sizes))
    if results["probes"]:
        print("\nIn-process, one request at a time (Flask test client, CACHE=off):\n")
        print(probe_sql_table(results["probes"]))
        print("\nSQL per request (median ms) and query plans:")
        print(plans(results["probes"]))


if __name__ == "__main__":
    main()
