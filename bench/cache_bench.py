"""Repeated reads with the response cache (issue 16, point 2), beside the framework's ceiling and beside the
same code with CACHE=off, in one run.

    python bench/cache_bench.py --database /tmp/x/bench.db      # a filled register (bench/fill.py)
    python bench/cache_bench.py --n 50000                         # fill one first (as bench/run.py does)

Three gunicorns (2 sync workers each, an empty -c file: no access log) run side by side on free loopback
ports: `bench/smorest_min.py` (a minimal flask-smorest route with one marshmallow schema: the ceiling),
the service on the file with the cache on, and the service on the same file with `CACHE=off` (every
answer built, as before the cache). Each round measures every figure once with wrk (`--connections`,
`--duration` s after 1 s of warm-up), the figures' order rotating per round; the table gives the
median req/s over rounds, p99, and the ratio to the ceiling of the same round. A 304 is asked with the
answer's own ETag in If-None-Match. The file is read, never written (the service's requests write
nothing). Writes bench/results/cache-<UTC timestamp>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import HOST, gunicorn, log, parse_wrk, prepare, random_id_script  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORDS = "patients hospital"
# label, server ("min", "service"), path, If-None-Match wanted
FIGURES = [
    ("ceiling: minimal flask-smorest route", "min", "/hello/1", False),
    ("GET /studies/1 (the same id)", "service", "/studies/1", False),
    ("GET /studies/{random id}", "service", "random", False),
    ("GET /studies/1 → 304", "service", "/studies/1", True),
    ("GET /studies?page_size=20", "service", "/studies?page_size=20", False),
    ("GET /studies?page_size=20 → 304", "service", "/studies?page_size=20", True),
    ("two facets over the register", "service", "/studies?facets=study_type,study_aim&page_size=20", False),
    (f"q={WORDS} + two facets", "service", f"/studies?q={quote(WORDS)}&facets=study_type,study_aim", False),
    ("page GET /", "service", "/", False),
]


def etag_of(port: int, path: str) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.getheader("ETag")


def run_wrk(port: int, path: str, connections: int, seconds: int, script: Path | None, headers: dict) -> dict:
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", "5s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    done = subprocess.run(args + [f"http://{HOST}:{port}{path}"], capture_output=True, text=True,
                          timeout=seconds + 30, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, help="a filled SQLite register (else one is filled)")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="study-register-cache-"))
    results = {"started": dt.datetime.now(dt.UTC).isoformat(), "rounds": args.rounds,
               "duration": args.duration, "connections": args.connections, "workers": args.workers,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()}, "rows": {}}
    if args.database:
        url = f"sqlite:///{args.database.resolve()}"
    else:
        from bench.fill import load_corpus

        url = f"sqlite:///{tmp / 'bench.db'}"
        results["database"] = prepare(url, args.n, 1, load_corpus(), False)
    import sqlite3

    n = sqlite3.connect(url.removeprefix("sqlite:///")).execute("SELECT MAX(id) FROM study").fetchone()[0]
    results["n"] = n
    script = random_id_script(n, tmp)
    base = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "", "RATE_LIMITS": "off"}
    with gunicorn("bench.smorest_min:app", {}, args.workers, tmp, "/hello/1") as minimal, \
            gunicorn("service.wsgi:app", {**base, "CACHE": "on"}, args.workers, tmp, "/health") as cached, \
            gunicorn("service.wsgi:app", {**base, "CACHE": "off"}, args.workers, tmp, "/health") as uncached:
        variants = [("min", minimal)] + [("on", cached), ("off", uncached)]
        for round_ in range(args.rounds):
            order = FIGURES[round_ % len(FIGURES):] + FIGURES[:round_ % len(FIGURES)]
            for label, server, path, conditional in order:
                for variant, port in variants:
                    if (server == "min") != (variant == "min"):
                        continue
                    wanted = "/studies/1" if path == "random" else path
                    headers = {"Accept": "text/html"} if path == "/" else {}
                    if conditional:
                        headers["If-None-Match"] = etag_of(port, wanted)
                    use = script if path == "random" else None
                    run_wrk(port, wanted, args.connections, 1, use, headers)  # warm-up
                    figure = run_wrk(port, wanted, args.connections, args.duration, use, headers)
                    results["rows"].setdefault(f"{label} [{variant}]", []).append(figure)
                    log(f"round {round_ + 1} {label} [{variant}]: {figure['rps']:.0f} req/s, "
                        f"p99 {figure['p99_ms']} ms, non-2xx {figure['non_2xx']}")
    results["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cache-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=1))
    ceiling = statistics.median(
        r["rps"] for r in results["rows"]["ceiling: minimal flask-smorest route [min]"])
    print(f"\nN = {n:,}, {args.connections} connections, {args.workers} sync workers, {args.rounds} rounds "
          f"x {args.duration} s, medians; {out.relative_to(ROOT)}\n")
    print("| request | cache on: req/s (p99 ms) | ÷ ceiling | CACHE=off: req/s (p99 ms) | ÷ ceiling "
          "| on ÷ off |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, server, _, _ in FIGURES:
        if server == "min":
            rows = results["rows"][f"{label} [min]"]
            print(f"| {label} | {statistics.median(r['rps'] for r in rows):.0f} "
                  f"({statistics.median(r['p99_ms'] for r in rows):.1f}) | 1.00 | | | |")
            continue
        on, off = results["rows"][f"{label} [on]"], results["rows"][f"{label} [off]"]
        on_rps, off_rps = (statistics.median(r["rps"] for r in rows) for rows in (on, off))
        on_p99, off_p99 = (statistics.median(r["p99_ms"] for r in rows) for rows in (on, off))
        print(f"| {label} | {on_rps:.0f} ({on_p99:.1f}) | {on_rps / ceiling:.2f} "
              f"| {off_rps:.0f} ({off_p99:.1f}) | {off_rps / ceiling:.2f} "
              f"| {on_rps / off_rps if off_rps else float('inf'):.1f} |")  # none answered within wrk's 5 s


if __name__ == "__main__":
    main()
