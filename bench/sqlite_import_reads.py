"""Reads during a SQLite bulk import: GET latency while `study-register import` runs, beside idle, same run.

    .venv/bin/python bench/sqlite_import_reads.py [--rounds 3] [--clients 8] [--file trials/....csv.gz]

A fresh SQLite register under a temporary folder (migrated, seeded from seeds/), served by gunicorn
(gunicorn.conf.py: 2 workers x 2 threads) on a free loopback port. Each round has two phases, in
turn: `idle` (the readers alone, for as long as the import took in the previous round, or 5 s) and
`import` (the same readers while the CLI imports a real trial file into the register, in a process of
its own). Each import goes into the same register; the second and later ones re-import the file
(the same rows, all unchanged, still one write transaction); so the first round imports into an
empty register and later rounds re-read the rows written. Readers (`--clients` threads, keep-alive
connections) cycle over GET /health, GET /studies/{id} and GET /studies?page_size=20. A request
that fails or answers other than 200/404 counts as an error. Beside them one writer POSTs a notice
every 50 ms: during an import each write waits DATABASE_BUSY_TIMEOUT for the lock, then gets 503
busy. Prints p50/p99 of each phase (medians
over rounds) and writes bench/results/sqlite-import-reads-<UTC>.json. Every process started here is
stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import signal
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

from bench.run import BIN, HOST, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DATA = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "data")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Writer:
    """One client POSTing a notice in a loop (a token with the notices scope); ``take()``: the latencies
    (ms) of each answer status since the last take."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.lock = threading.Lock()
        self.by_status: dict[str, list[float]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        body = json.dumps({"message": "bench write"})
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                conn.request("POST", "/notices", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                status = str(response.status)
                if response.status == 503:
                    status += " " + json.loads(answer).get("database", "?")
            except (OSError, http.client.HTTPException, ValueError) as error:
                status = type(error).__name__
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            with self.lock:
                self.by_status.setdefault(status, []).append((time.perf_counter() - start) * 1000)
            time.sleep(0.05)

    def take(self) -> dict[str, dict]:
        with self.lock:
            taken, self.by_status = self.by_status, {}
        return {status: {"n": len(ms), "p50_ms": percentile(ms, .5), "max_ms": max(ms)}
                for status, ms in sorted(taken.items())}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=35)


class Readers:
    """``clients`` threads reading until stopped; ``take()``: (latencies ms, errors) since the last take."""

    def __init__(self, port: int, clients: int, max_id: int):
        self.port, self.max_id = port, max_id
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for thread in self.threads:
            thread.start()

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        paths = ["/health", "/studies/{id}", "/studies?page_size=20"]
        n = 0
        while not self.stop.is_set():
            path = paths[n % len(paths)].format(id=rng.randint(1, self.max_id))
            n += 1
            start = time.perf_counter()
            ok = False
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status in (200, 404)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            elapsed = (time.perf_counter() - start) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                self.errors += not ok

    def take(self) -> tuple[list[float], int]:
        with self.lock:
            latencies, errors = self.latencies, self.errors
            self.latencies, self.errors = [], 0
        return latencies, errors

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=35)


def wait_ready(port: int, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /health")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--file", default="trials/ictrp_covid_direcct_2021-07-01.csv.gz")
    parser.add_argument("--format", default="ictrp-csv")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sqlite-import-reads-"))
    # No rate limits: the writer's POSTs are to wait on the lock, not be 429 (RATE_LIMIT_WRITES) first.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch / 'register.db'}", "LOG_LEVEL": "WARNING",
           "RATE_LIMITS": "off"}
    cli = str(BIN / "study-register")
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([cli, "seed", "--dir", str(ROOT / "seeds")], env=env, check=True, capture_output=True)
    port = free_port()
    gunicorn = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "service.wsgi:app"]
    server = subprocess.Popen(gunicorn, cwd=ROOT, env={**env, "GUNICORN_BIND": f"{HOST}:{port}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rounds = []
    try:
        wait_ready(port)
        made = subprocess.run([cli, "token", "create", "--name", "bench", "--scope", "notices"], env=env,
                              check=True, capture_output=True, text=True)
        token = made.stdout.strip().split()[-1]
        readers = Readers(port, args.clients, max_id=50)
        writer = Writer(port, token)
        try:
            idle_for = 5.0
            for number in range(1, args.rounds + 1):
                readers.take()
                writer.take()
                time.sleep(idle_for)
                idle, idle_errors = readers.take()
                idle_writes = writer.take()
                start = time.monotonic()
                done = subprocess.run([cli, "import", "--quiet", "--format", args.format, "--no-suggest",
                                       str(DATA / args.file)], env=env, capture_output=True, text=True)
                idle_for = time.monotonic() - start
                during, during_errors = readers.take()
                during_writes = writer.take()
                if done.returncode != 0:
                    raise SystemExit(f"import failed: {done.stderr.strip()[-500:]}")
                row = {"round": number, "import_s": round(idle_for, 2),
                       "idle": {"n": len(idle), "errors": idle_errors, "p50_ms": percentile(idle, .5),
                                "p99_ms": percentile(idle, .99), "max_ms": max(idle, default=0)},
                       "import": {"n": len(during), "errors": during_errors, "p50_ms": percentile(during, .5),
                                  "p99_ms": percentile(during, .99), "max_ms": max(during, default=0)},
                       "writes": {"idle": idle_writes, "import": during_writes}}
                rounds.append(row)
                print(json.dumps(row), flush=True)
        finally:
            readers.close()
            writer.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    def med(phase: str, key: str) -> float:
        return round(statistics.median(r[phase][key] for r in rounds), 1)

    summary = {phase: {key: med(phase, key) for key in ("n", "errors", "p50_ms", "p99_ms", "max_ms")}
               for phase in ("idle", "import")}
    summary["import_s"] = round(statistics.median(r["import_s"] for r in rounds), 2)
    print(f"\n{args.clients} readers, {args.rounds} rounds, import of {args.file} "
          f"(median {summary['import_s']} s); medians over rounds:")
    print("| phase | requests | errors | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    for phase in ("idle", "import"):
        s = summary[phase]
        print(f"| {phase} | {s['n']:.0f} | {s['errors']:.0f} | {s['p50_ms']} | {s['p99_ms']} "
              f"| {s['max_ms']} |")
    print("\nwrites (one client, POST /notices every 50 ms), last round: "
          + json.dumps(rounds[-1]["writes"]))
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"sqlite-import-reads-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "rounds": rounds, "summary": summary}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
