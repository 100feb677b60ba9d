"""Page latency bench (issue 15, point 5): the home page, a study record page and the evidence map at N
studies, server time and client time, beside the same run's baselines.

    python bench/pages.py --n 50000                       # fill a SQLite register, serve it, measure
    python bench/pages.py --database /tmp/x/bench.db      # an already filled register (kept as it is)
    python bench/pages.py --n 5000 --rounds 2 --requests 5   # quick look

A fresh SQLite register under a temporary folder is migrated and filled by bench/fill.py (N studies x 3
references, search indexes built: bench/run.py's ``prepare``); gunicorn (``--workers`` sync workers, an
empty ``-c`` file: no access log) serves it on a free loopback port. In each round every figure gets
``--requests`` requests, one at a time over a kept-alive connection (the order of the figures rotates
every round), each timed from sending to the last byte (client ms); the server's own time is read from
``Server-Timing: app;dur=<ms>`` when the answer has it. Then, in this process with Flask's test client
on the same file, each figure is timed again (in-process ms: no HTTP, no gunicorn), so figures whose
answer has no Server-Timing header still get a server-side time.

Figures: the baselines `GET /health` (the smallest route of the app) and `GET /studies?page_size=20`
(the JSON list page), the pages (`/`, `/?q=two words`, `/?` with two facet filters, `/studies/{id}` with
`Accept: text/html`, `/map`), and their JSON equivalents (what the pages compute: `GET /studies` with
every facet and 20 studies, `GET /studies/{id}`). A page answering 404 (not built yet), or a record
page answering JSON, is skipped with a printed note. Ids are drawn at random in 1..N, the same for
every figure and round. Every page and JSON figure is measured twice: asked again and again (the
response cache answers from the second request on), and as the first request after a write (before each
request the bench moves the register's write generation on, the one thing every write does to reads;
nothing else is written, so `--database` keeps its records). Writes
bench/results/pages-<UTC timestamp>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import HOST, _terminate, log, prepare  # noqa: E402,F401
from bench.search_bench import Server, gunicorn  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FACETS = ("study_type,study_aim,study_design,intervention_assignment,registry,reference_type,"
          "has_results,recruitment_status,phase,country,results_in")
WORDS = "patients hospital"
FILTERS = "study_type=Interventional&registry=ChiCTR"
HTML = "text/html"
JSON = "application/json"
# label, path ({id}: a random study id), Accept, kind (baseline, page, json)
FIGURES = [
    ("GET /health", "/health", JSON, "baseline"),
    ("GET /studies?page_size=20", "/studies?page_size=20", JSON, "baseline"),
    ("page GET /", "/", HTML, "page"),
    (f"page GET /?q={WORDS}", f"/?q={quote(WORDS)}", HTML, "page"),
    (f"page GET /?{FILTERS}", f"/?{FILTERS}", HTML, "page"),
    ("page GET /studies/{id} (text/html)", "/studies/{id}", HTML, "page"),
    ("page GET /map", "/map", HTML, "page"),
    ("json GET /studies?facets=<all>&page_size=20", f"/studies?facets={FACETS}&page_size=20", JSON, "json"),
    (f"json GET /studies?q={WORDS}&facets=<all>", f"/studies?q={quote(WORDS)}&facets={FACETS}&page_size=20",
     JSON, "json"),
    (f"json GET /studies?{FILTERS}&facets=<all>", f"/studies?{FILTERS}&facets={FACETS}&page_size=20", JSON,
     "json"),
    ("json GET /studies/{id}", "/studies/{id}", JSON, "json"),
]
LIST = "GET /studies?page_size=20"
HEALTH = "GET /health"
# A figure asked again right after a write each time: the response cache (api/cache.py) cannot answer it.
AFTER_WRITE = " — first after a write"
_TIMING = re.compile(r"(?:^|,)\s*app;dur=([\d.]+)")


def write(url: str) -> None:
    """What any write does to reads: the register's write generation moves on (nothing else changes)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        conn.execute("UPDATE write_generation SET value = value + 1")
        conn.commit()


def server_ms(header: str | None) -> float | None:
    """The ``app;dur=`` of a Server-Timing header, in ms (None without one)."""
    match = _TIMING.search(header or "")
    return float(match.group(1)) if match else None


def send(server: Server, path: str, accept: str) -> tuple[int, float, float | None, str, bytes]:
    """One GET over the server's kept-alive connection: status, client ms, server ms, content type, body."""
    import http.client

    for attempt in (1, 2):
        reused = server.connection is not None
        if server.connection is None:
            server.connection = http.client.HTTPConnection(HOST, server.port, timeout=120)
        began = time.perf_counter()
        try:
            server.connection.request("GET", path, headers={"Accept": accept})
            response = server.connection.getresponse()
            body = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            server.close()
            if reused and attempt == 1:
                continue
            raise
        ms = (time.perf_counter() - began) * 1000
        timing = server_ms(response.getheader("Server-Timing"))
        kind = response.getheader("Content-Type") or ""
        if response.will_close:
            server.close()
        return response.status, ms, timing, kind, body
    raise AssertionError("unreachable")


def usable(label: str, status: int, kind: str, expected: str) -> str | None:
    """Why a figure cannot be measured (None when it can)."""
    if status == 404:
        return f"{label}: 404, not built yet (skipped)"
    if status != 200:
        return f"{label}: answered {status} (skipped)"
    if expected == HTML and not kind.startswith(HTML):
        return f"{label}: answered {kind or 'no content type'}, not a page yet (skipped)"
    return None


def in_process(url: str, figures: list[tuple], ids: list[int], requests: int) -> dict[str, dict]:
    """Each figure timed with Flask's test client on the same database (server time without HTTP)."""
    from service import create_app
    from service.db import close_all, database

    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    out = {}
    try:
        for label, path, accept, _ in figures:
            times, header = [], []
            for i in range(requests):
                target = path.replace("{id}", str(ids[i % len(ids)]))
                if label.endswith(AFTER_WRITE):
                    write(url)
                began = time.perf_counter()
                response = client.get(target, headers={"Accept": accept})
                times.append((time.perf_counter() - began) * 1000)
                header.append(server_ms(response.headers.get("Server-Timing")))
            out[label] = {"p50_ms": round(statistics.median(times), 2), "status": response.status_code,
                          "server_timing_p50_ms": (round(statistics.median(h for h in header), 2)
                                                   if all(h is not None for h in header) else None)}
    finally:
        close_all(database.obj)
    return out


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def summarise(rows: list[dict], labels: list[str], inproc: dict) -> list[dict]:
    by = {label: [r for r in rows if r["figure"] == label] for label in labels}
    medians = {label: statistics.median(r["client_ms"] for r in rs) for label, rs in by.items() if rs}
    out = []
    for label, rs in by.items():
        if not rs:
            continue
        servers = [r["server_ms"] for r in rs if r["server_ms"] is not None]
        out.append({"figure": label, "requests": len(rs), "client_p50_ms": round(medians[label], 2),
                    "client_p90_ms": round(_p90([r["client_ms"] for r in rs]), 2),
                    "server_timing_p50_ms": round(statistics.median(servers), 2) if servers else None,
                    "in_process_p50_ms": inproc.get(label, {}).get("p50_ms"),
                    "vs_list": round(medians[label] / medians[LIST], 2) if LIST in medians else None,
                    "vs_health": round(medians[label] / medians[HEALTH], 2) if HEALTH in medians else None,
                    "bytes": rs[-1]["bytes"]})
    return out


def table(summary: list[dict]) -> str:
    lines = ["| figure | requests | client p50 ms | client p90 ms | server ms (Server-Timing p50) | "
             "in-process p50 ms | ÷ list | ÷ health | KB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        timing = "–" if r["server_timing_p50_ms"] is None else f"{r['server_timing_p50_ms']:.2f}"
        inproc = "–" if r["in_process_p50_ms"] is None else f"{r['in_process_p50_ms']:.2f}"
        lines.append(f"| {r['figure']} | {r['requests']} | {r['client_p50_ms']:.2f} | "
                     f"{r['client_p90_ms']:.2f} | {timing} | {inproc} | {r['vs_list']:.2f} | "
                     f"{r['vs_health']:.2f} | {r['bytes'] / 1000:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="studies (x 3 references) to fill")
    parser.add_argument("--database", type=Path,
                        help="a filled, migrated SQLite register to serve (its records are never changed)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="per figure per round")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded requests per figure first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="default bench/results/pages-<UTC timestamp>.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    started = dt.datetime.now(dt.UTC)
    tmp = Path(tempfile.mkdtemp(prefix="study-register-pages-"))
    results = {"started": started.isoformat(), "rounds": args.rounds, "requests": args.requests,
               "workers": args.workers, "seed": args.seed,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()}, "notes": [], "rows": []}
    try:
        if args.database:
            url = f"sqlite:///{args.database.resolve()}"
            results["database"] = {"given": str(args.database)}
        else:
            from bench.fill import load_corpus

            url = f"sqlite:///{tmp / 'bench.db'}"
            log(f"migrate + fill {args.n:,} studies")
            results["database"] = prepare(url, args.n, args.seed, load_corpus(), False)
        from service import create_app
        from service.db import close_all, database
        from service.models import Study

        create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
        with database.connection_context():
            top = Study.select(Study.id).order_by(Study.id.desc()).scalar()
        close_all(database.obj)
        rng = random.Random(args.seed)
        ids = [rng.randint(1, top) for _ in range(args.requests)]
        results["n"] = top
        env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "", "RATE_LIMITS": "off"}
        with gunicorn(ROOT, env, args.workers, 1, tmp) as (port, _pid):
            server = Server("code", "sqlite", port, {})
            figures = []
            for label, path, accept, kind in FIGURES:
                status, _, _, ctype, _ = send(server, path.replace("{id}", str(ids[0])), accept)
                why = usable(label, status, ctype, accept)
                if why:
                    log(why)
                    results["notes"].append(why)
                    continue
                figures.append((label, path, accept, kind))
                if kind != "baseline":  # the same after every write: the cache cannot answer it
                    figures.append((label + AFTER_WRITE, path, accept, kind))
                for i in range(args.warmup):
                    send(server, path.replace("{id}", str(ids[i % len(ids)])), accept)
            for round_ in range(args.rounds):
                shift = round_ % len(figures)
                for label, path, accept, _ in figures[shift:] + figures[:shift]:
                    for i in range(args.requests):
                        if label.endswith(AFTER_WRITE):
                            write(url)
                        status, ms, timing, _, body = send(server, path.replace("{id}", str(ids[i])), accept)
                        results["rows"].append({"figure": label, "round": round_, "status": status,
                                                "client_ms": round(ms, 3), "server_ms": timing,
                                                "bytes": len(body)})
                log(f"round {round_ + 1}/{args.rounds} done")
            server.close()
        results["in_process"] = in_process(url, figures, ids, args.requests * 2)
        labels = [f[0] for f in figures]
        results["summary"] = summarise(results["rows"], labels, results["in_process"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = args.json or RESULTS / f"pages-{started:%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        log(f"wrote {out}")
    print(f"\nN = {results['n']:,} studies (SQLite); gunicorn {args.workers} sync workers; one client, "
          f"{args.rounds} rounds x {args.requests} requests per figure (medians)\n")
    for note in results["notes"]:
        print(f"note: {note}")
    print(table(results["summary"]))


if __name__ == "__main__":
    main()
