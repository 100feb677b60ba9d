"""/health and GET /studies/{id} latency with Postgres frozen (SIGSTOP), beside it running, same run.

    .venv/bin/python bench/frozen_database.py [--rounds 3] [--seconds 8] [--clients 4] [--breaker 0]

Needs root (the cluster runs as the postgres user). A throwaway cluster (initdb under a temporary
folder, a free loopback port), migrated and seeded, served by gunicorn (gunicorn.conf.py: 2 workers x
2 threads). Each round: `running` (clients loop over /health and /studies/{id} for --seconds), then
`frozen` (the postmaster and every backend SIGSTOPped for --seconds, the same clients), then thawed
and `thawed` (the same clients for 3 s: seconds until the first 200, and until the last answer that
was not 200, in any worker). Prints, per phase, the p50/p99/max latency
of each endpoint and the statuses seen (medians over rounds), and writes
bench/results/frozen-database-<UTC>.json. Every process started here is stopped (and thawed) on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from sqlite_import_reads import BIN, HOST, RESULTS, ROOT, free_port, percentile, wait_ready

PGBIN = Path("/usr/lib/postgresql/15/bin")
AS_POSTGRES = ["runuser", "-u", "postgres", "--"]


def cluster_pids(data: Path) -> list[int]:
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def signal_cluster(data: Path, sig: int) -> None:
    for pid in cluster_pids(data):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def clients(port: int, n: int, seconds: float, since: float | None = None) -> dict:
    """Each of ``n`` clients alternates the two GETs for ``seconds``; with ``since`` (a time.monotonic()),
    also when the first 200 and the last answer that was not 200 came, in seconds after it."""
    results: dict[str, list] = {"/health": [], "/studies/{id}": []}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run(i: int) -> None:
        path_of = ["/health", "/studies/{id}"]
        k = i
        while time.monotonic() < end:
            label = path_of[k % 2]
            k += 1
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            start = time.perf_counter()
            try:
                conn.request("GET", label.format(id=1 + k % 30))
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
            finally:
                conn.close()
            with lock:
                results[label].append(((time.perf_counter() - start) * 1000, status, time.monotonic()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = {label: {"n": len(rows), "p50_ms": percentile([r[0] for r in rows], .5),
                    "p99_ms": percentile([r[0] for r in rows], .99),
                    "max_ms": max((r[0] for r in rows), default=0),
                    "statuses": dict(Counter(str(r[1]) for r in rows))} for label, rows in results.items()}
    if since is not None:
        rows = [row for rows in results.values() for row in rows]
        out["first_200_s"] = round(min((r[2] for r in rows if r[1] == 200), default=float("nan")) - since, 3)
        out["last_not_200_s"] = round(max((r[2] for r in rows if r[1] != 200), default=since) - since, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--breaker", help="DATABASE_BREAKER_SECONDS of the server (0: no breaker; "
                        "unset: its default)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="frozen-bench-"))
    os.chmod(root, 0o777)
    data, pg_port = root / "data", free_port()
    subprocess.run([*AS_POSTGRES, str(PGBIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*AS_POSTGRES, str(PGBIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-p {pg_port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
           "LOG_LEVEL": "WARNING"}
    if args.breaker is not None:
        env["DATABASE_BREAKER_SECONDS"] = args.breaker
    port = free_port()
    server = None
    rounds = []
    try:
        cli = str(BIN / "study-register")
        subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([cli, "seed", "--dir", str(ROOT / "seeds")], env=env, check=True, capture_output=True)
        gunicorn = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "service.wsgi:app"]
        server = subprocess.Popen(gunicorn, cwd=ROOT, env={**env, "GUNICORN_BIND": f"{HOST}:{port}"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        wait_ready(port)
        for number in range(1, args.rounds + 1):
            running = clients(port, args.clients, args.seconds)
            signal_cluster(data, signal.SIGSTOP)
            try:
                frozen = clients(port, args.clients, args.seconds)
            finally:
                signal_cluster(data, signal.SIGCONT)
            start = time.monotonic()
            thawed = clients(port, args.clients, 3, since=start)
            wait_ready(port)
            row = {"round": number, "running": running, "frozen": frozen, "thawed": thawed,
                   "recovered_s": thawed["first_200_s"], "all_200_after_s": thawed["last_not_200_s"]}
            rounds.append(row)
            print(json.dumps(row), flush=True)
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            signal_cluster(data, signal.SIGCONT)
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        subprocess.run([*AS_POSTGRES, str(PGBIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s; medians over rounds:")
    print("| phase | endpoint | requests | p50 ms | p99 ms | max ms | statuses (last round) |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for phase in ("running", "frozen", "thawed"):
        for label in ("/health", "/studies/{id}"):
            cells = {key: round(statistics.median(r[phase][label][key] for r in rounds), 1)
                     for key in ("n", "p50_ms", "p99_ms", "max_ms")}
            summary[f"{phase} {label}"] = cells
            print(f"| {phase} | GET {label} | {cells['n']:.0f} | {cells['p50_ms']} | {cells['p99_ms']} | "
                  f"{cells['max_ms']} | {rounds[-1][phase][label]['statuses']} |")
    recovered = statistics.median(r["recovered_s"] for r in rounds)
    all_200 = statistics.median(r["all_200_after_s"] for r in rounds)
    print(f"after SIGCONT (the same clients for 3 s), the first 200 came after {recovered} s and the last "
          f"answer that was not 200 after {all_200} s (medians; per round: "
          f"{[(r['recovered_s'], r['all_200_after_s']) for r in rounds]})")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"frozen-database-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "rounds": rounds, "summary": summary,
                               "recovered_s": recovered, "all_200_after_s": all_200}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
