"""Exports beside a baseline checkout: how fast one streams, and whether a storm of them starves reads.

    python bench/export_load.py --db /tmp/b50/fresh.db --baseline-code /tmp/base --rounds 3

Both codes serve the same SQLite file (filled beforehand, e.g. by bench/run.py's ``prepare``), each with
this checkout's venv and its own code on the path (bench/search_bench.py's ``gunicorn``), the worker
settings of gunicorn.conf.py's defaults (2 workers of 2 threads, ``GUNICORN_THREADS`` set to match).

1. Speed: in each round, each server in turn (the order rotates) streams every export of ``--formats``
   to its end, one client; records/s is ``X-Total-Count`` over the seconds to the last byte. Medians
   over the rounds, and the ratio code / baseline.
2. Storm: for each code, ``--exports`` clients (curl, each its own process) ask for
   `/references?format=ndjson` again and again (a refused one, 503, waits a second), while one client
   asks for `/health` and for `GET /studies/{id}` of a random id in turns for ``--storm-seconds``. The
   probes' p50, p99 and worst, how many exports ended and how many were refused.

Writes bench/results/export-load-<UTC timestamp>.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import HOST, RESULTS, _git_state, log  # noqa: E402
from bench.search_bench import gunicorn  # noqa: E402

CHUNK = 256 * 1024


def stream(port: int, path: str, timeout: float = 600) -> tuple[int, int, int, float]:
    """GET ``path`` to its last byte: status, X-Total-Count (0 without), bytes, seconds."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        size = 0
        while chunk := response.read(CHUNK):
            size += len(chunk)
        return (response.status, int(response.getheader("X-Total-Count") or 0), size,
                time.perf_counter() - started)
    finally:
        conn.close()


def speed(ports: dict[str, int], paths: list[str], rounds: int) -> list[dict]:
    seconds: dict[tuple[str, str], list[float]] = {}
    totals: dict[tuple[str, str], int] = {}
    names = list(ports)
    for number in range(rounds):
        order = names[number % len(names):] + names[:number % len(names)]
        for path in paths:
            for name in order:
                status, total, size, took = stream(ports[name], path)
                if status != 200:
                    raise RuntimeError(f"{name} {path}: status {status}")
                seconds.setdefault((name, path), []).append(took)
                totals[(name, path)] = total
                log(f"round {number + 1} {name} {path}: {total:,} records, {size / 1e6:,.0f} MB in "
                    f"{took:.1f} s")
    rows = []
    for path in paths:
        base = statistics.median(seconds[("base", path)]) if ("base", path) in seconds else None
        for name in names:
            median = statistics.median(seconds[(name, path)])
            rows.append({"code": name, "path": path, "records": totals[(name, path)],
                         "seconds": seconds[(name, path)], "median_s": round(median, 2),
                         "records_per_s": round(totals[(name, path)] / median),
                         "speedup_vs_base": round(base / median, 2) if base else None})
    return rows


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def storm(port: int, exports: int, seconds: float, study_ids: int) -> dict:
    stop = threading.Event()
    ended, refused, failed = [0], [0], [0]
    lock = threading.Lock()

    def exporter() -> None:  # curl reads the export: the probes' timings share no GIL with 8 readers
        while not stop.is_set():
            done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "300", "-w", "%{http_code}",
                                   f"http://{HOST}:{port}/references?format=ndjson"],
                                  capture_output=True, text=True, check=False)
            status = int(done.stdout or 0)
            with lock:
                if status == 200:
                    ended[0] += 1
                elif status == 503:
                    refused[0] += 1
                else:
                    failed[0] += 1
            if status == 503:
                stop.wait(1)

    threads = [threading.Thread(target=exporter, daemon=True) for _ in range(exports)]
    for thread in threads:
        thread.start()
    time.sleep(1)  # the exports are streaming
    probes: dict[str, list[float]] = {"/health": [], "/studies/{id}": []}
    errors = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    end = time.monotonic() + seconds
    rng = random.Random(1)
    while time.monotonic() < end:
        for name in probes:
            path = f"/studies/{rng.randint(1, study_ids)}" if name != "/health" else name
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            probes[name].append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    stop.set()
    conn.close()
    for thread in threads:
        thread.join(130)
    return {"exports_ended": ended[0], "exports_refused": refused[0], "exports_failed": failed[0],
            "probe_errors": errors,
            **{name: {"n": len(v), "p50_ms": round(statistics.median(v), 1),
                      "p99_ms": round(_percentile(v, .99), 1), "max_ms": round(max(v), 1)}
               for name, v in probes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a filled SQLite register (bench/run.py)")
    parser.add_argument("--baseline-code", type=Path, required=True, help="another checkout, e.g. a git "
                        "worktree of an older commit")
    parser.add_argument("--formats", default="/references?format=ndjson,/studies?format=ndjson",
                        help="export paths, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exports", type=int, default=8, help="concurrent export clients in the storm")
    parser.add_argument("--storm-seconds", type=float, default=20)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    codes = {"code": ROOT, "base": args.baseline_code.resolve()}
    url = f"sqlite:///{args.db.resolve()}"
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off", "CACHE": "off",
           "GUNICORN_THREADS": str(args.threads), "DATABASE_LONG_TIMEOUT": "600"}
    import sqlite3
    with sqlite3.connect(args.db) as db:
        study_ids = db.execute("SELECT max(id) FROM study").fetchone()[0]
    started = dt.datetime.now(dt.UTC)
    results = {"started": started.isoformat(), "db": str(args.db),
               "codes": {k: str(v) for k, v in codes.items()}, "git": _git_state(),
               "server": f"gunicorn gthread, {args.workers} workers x {args.threads} threads",
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()}, "speed": [], "storm": {}}
    paths = [p.strip() for p in args.formats.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="export-load-") as tmp:
        tmp = Path(tmp)
        if not args.skip_speed:
            with gunicorn(codes["code"], env, args.workers, args.threads, tmp) as (code_port, _), \
                    gunicorn(codes["base"], env, args.workers, args.threads, tmp) as (base_port, _):
                results["speed"] = speed({"code": code_port, "base": base_port}, paths, args.rounds)
        for name, code in codes.items():
            with gunicorn(code, env, args.workers, args.threads, tmp) as (port, _):
                log(f"storm: {name}, {args.exports} exports for {args.storm_seconds:g} s")
                results["storm"][name] = storm(port, args.exports, args.storm_seconds, study_ids)
                log(f"  {results['storm'][name]}")
    results["machine"]["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"export-load-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {out.relative_to(ROOT)}")
    print("\n| export | code | records | median s | records/s | × baseline |\n|---|---|---:|---:|---:|---:|")
    for row in results["speed"]:
        print(f"| `{row['path']}` | {row['code']} | {row['records']:,} | {row['median_s']} | "
              f"{row['records_per_s']:,} | {row['speedup_vs_base'] or ''} |")
    print("\n| code | probe | p50 ms | p99 ms | worst ms | exports ended | refused (503) |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    for name, row in results["storm"].items():
        for probe in ("/health", "/studies/{id}"):
            print(f"| {name} | `{probe}` | {row[probe]['p50_ms']} | {row[probe]['p99_ms']} | "
                  f"{row[probe]['max_ms']} | {row['exports_ended']} | {row['exports_refused']} |")


if __name__ == "__main__":
    main()
