"""Slow clients beside live traffic: the container's stack (nginx before gunicorn) against gunicorn alone.

    python bench/slow_clients.py [--n 5000] [--rounds 2] [--duration 15] [--headers 64] [--bodies 64]
                                 [--readers 16]          # make bench-slow

The real stack, started by boot.sh as the container starts it (SERVE_WITH=nginx: nginx on PORT, gunicorn
on a loopback port behind it; SERVE_WITH=gunicorn: gunicorn alone on PORT, the baseline), with the
default workers and threads (2 x 2), over a SQLite register filled by bench/fill.py (N studies x 3
references). Against it, from another process (asyncio), slow clients that each hold a connection open:

- slow headers: `GET /health` whose header lines arrive one a second and never end;
- slow bodies: `POST /studies` with a bogus token whose body (Content-Length 1 MB) arrives a byte a second;
- slow readers: `GET /studies?format=ndjson` (every study) read 1 KB every half second, through a
  4 KB receive buffer.

A connection the server closes is opened again at once, so the counts hold for the whole measurement.
Meanwhile this process asks `GET /health` and `GET /studies/{random id}` one after the other (a new
connection each, 5 s timeout, every 20 ms) and reports p50/p99 per path; a timeout or an error counts as
5 s in the percentiles and is counted as failed. Each round runs both stacks (interleaved); the report
gives the medians over rounds. Results: bench/results/slow-<UTC timestamp>.json. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import random
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

from bench.run import BIN, HOST, free_port  # noqa: E402

TIMEOUT = 5.0
RESULTS = ROOT / "bench" / "results"


def get(port: int, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def stack(database_url: str, *, serve_with: str = "nginx", log_dir: Path, info: dict | None = None,
          **env: str):
    """boot.sh on a free loopback port (nginx + gunicorn, or gunicorn alone); yields the port clients use
    (``info`` gets boot.sh's process and nginx's run folder). Stopped (its whole process group) on the
    way out."""
    port, upstream = free_port(), free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="nginx-run-"))  # under /tmp: nginx's workers can reach it
    run_dir.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_BIND", "TRUSTED_PROXIES")}
    environ.update({"PATH": f"{BIN}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
                    "DATABASE_URL": database_url, "SERVE_WITH": serve_with, "PORT": str(port),
                    "UPSTREAM_PORT": str(upstream), "LONG_PORT": str(free_port()),
                    "NGINX_RUN_DIR": str(run_dir), "SEED_ON_START": "0",
                    "LOG_LEVEL": "WARNING", **env})
    log = open(log_dir / f"{serve_with}-{port}.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(ROOT / "boot.sh")], cwd=ROOT, env=environ, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"boot.sh exited: {log.read().decode(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if get(port, "/health", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the stack did not answer /health within 60 s")
            time.sleep(0.2)
        if info is not None:
            info.update(process=process, run_dir=run_dir)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # gunicorn and nginx: quick shutdown
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        time.sleep(0.3)  # nginx's workers leave after their master
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)


# ---- the slow clients (another process) -----------------------------------------------------------

SLOW_HEADER = b"GET /health HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
SLOW_BODY = (b"POST /studies HTTP/1.1\r\nHost: " + HOST.encode()
             + b"\r\nAuthorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000000\r\n\r\n{")
SLOW_READ = b"GET /studies?format=ndjson HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"


async def _open(port: int, small_buffer: bool):
    sock = socket.socket()
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    return await asyncio.open_connection(sock=sock, limit=4096)


async def _slow_client(kind: str, port: int, stop_at: float, stats: dict) -> None:
    while time.monotonic() < stop_at:
        writer = None
        try:
            reader, writer = await _open(port, small_buffer=kind == "reader")
            stats["opened"] += 1
            writer.write({"header": SLOW_HEADER, "body": SLOW_BODY, "reader": SLOW_READ}[kind])
            await writer.drain()
            while time.monotonic() < stop_at and not reader.at_eof():
                if kind == "reader":
                    chunk = await reader.read(1024)
                    if not chunk:
                        break
                    stats["read"] += len(chunk)
                    await asyncio.sleep(0.5)
                else:
                    await asyncio.sleep(1)
                    writer.write(b"X-Slow: 1\r\n" if kind == "header" else b" ")
                    await writer.drain()
            if time.monotonic() < stop_at:
                stats["closed_by_server"] += 1
        except (OSError, asyncio.IncompleteReadError):
            stats["errors"] += 1
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.close()


async def _attack(port: int, counts: dict, seconds: float) -> dict:
    stop_at = time.monotonic() + seconds
    stats = {kind: {"opened": 0, "closed_by_server": 0, "errors": 0, "read": 0} for kind in counts}
    tasks = []
    for kind, n in counts.items():
        for _ in range(n):
            tasks.append(asyncio.create_task(_slow_client(kind, port, stop_at, stats[kind])))
            await asyncio.sleep(0.002)
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def _attack_process(port: int, counts: dict, seconds: float, queue) -> None:
    queue.put(asyncio.run(_attack(port, counts, seconds)))


class SlowClients:
    """``counts`` slow clients ({"header": 64, "body": 64, "reader": 16}) against ``port`` for ``seconds``
    (in a separate process); ``stats`` after ``join``."""

    def __init__(self, port: int, counts: dict, seconds: float):
        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.process = ctx.Process(target=_attack_process, args=(port, counts, seconds, self.queue),
                                   daemon=True)
        self.seconds = seconds

    def __enter__(self):
        self.process.start()
        return self

    def join(self) -> dict:
        stats = self.queue.get(timeout=self.seconds + 30)
        self.process.join(timeout=10)
        return stats

    def __exit__(self, *exc):
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


# ---- the probe (this process) ---------------------------------------------------------------------

def probe(port: int, seconds: float, n_studies: int, *, every: float = 0.02, seed: int = 1) -> dict:
    """GET /health and GET /studies/{id} in turn for ``seconds``; per path the latencies (s), failures
    (timeouts, errors, non-200) counted as TIMEOUT."""
    rng = random.Random(seed)
    seen: dict[str, list[float]] = {"/health": [], "/studies/{id}": []}
    failed = {name: 0 for name in seen}
    stop_at = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < stop_at:
        name = "/health" if turn % 2 == 0 else "/studies/{id}"
        path = "/health" if name == "/health" else f"/studies/{rng.randint(1, n_studies)}"
        turn += 1
        began = time.perf_counter()
        try:
            status, _ = get(port, path)
            took = time.perf_counter() - began
            if status != 200:
                failed[name] += 1
                took = TIMEOUT
        except (OSError, http.client.HTTPException):
            failed[name] += 1
            took = TIMEOUT
        seen[name].append(took)
        time.sleep(every)
    return {name: summary(times, failed[name]) for name, times in seen.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def summary(times: list[float], failed: int) -> dict:
    return {"requests": len(times), "failed": failed,
            "p50_ms": round(percentile(times, 50) * 1000, 1) if times else None,
            "p99_ms": round(percentile(times, 99) * 1000, 1) if times else None,
            "max_ms": round(max(times) * 1000, 1) if times else None}


def under_attack(port: int, counts: dict, seconds: float, n_studies: int, *, settle: float = 2.0) -> dict:
    """Open the slow clients, let them settle for ``settle`` s, probe for ``seconds``."""
    with SlowClients(port, counts, settle + seconds + 1) as attackers:
        time.sleep(settle)
        figures = probe(port, seconds, n_studies)
        stats = attackers.join()
    return {"latency": figures, "slow_clients": stats}


# ---- the bench ------------------------------------------------------------------------------------

def fill(database: Path, n: int) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "fill.py"), "--database-url", f"sqlite:///{database}",
                    "--n", str(n), "--migrate"], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="studies in the register (x 3 references)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15, help="seconds of probing per figure")
    parser.add_argument("--idle", type=float, default=3, help="seconds of probing without slow clients")
    parser.add_argument("--headers", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=64)
    parser.add_argument("--readers", type=int, default=16)
    args = parser.parse_args()
    counts = {"header": args.headers, "body": args.bodies, "reader": args.readers}

    work = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    try:
        database = work / "register.db"
        fill(database, args.n)
        url = f"sqlite:///{database}"
        with stack(url, serve_with="nginx", log_dir=work) as port:
            export_bytes = len(get(port, "/studies?format=ndjson", timeout=300)[1])
        rounds = []
        for number in range(1, args.rounds + 1):
            for serve_with in ("nginx", "gunicorn"):
                with stack(url, serve_with=serve_with, log_dir=work) as port:
                    idle = probe(port, args.idle, args.n)
                    attacked = under_attack(port, counts, args.duration, args.n)
                rounds.append({"round": number, "serve_with": serve_with, "idle": idle, **attacked})
                print(f"round {number} {serve_with:8} idle {_line(idle)}  |  under attack "
                      f"{_line(attacked['latency'])}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    medians = {}
    for serve_with in ("nginx", "gunicorn"):
        mine = [r for r in rounds if r["serve_with"] == serve_with]
        medians[serve_with] = {
            phase: {path: {key: round(statistics.median(r[phase if phase == "idle" else "latency"][path][key]
                                                        for r in mine), 1)
                           for key in ("p50_ms", "p99_ms", "failed", "requests")}
                    for path in ("/health", "/studies/{id}")}
            for phase in ("idle", "under_attack")}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    result = {"bench": "slow_clients", "when": stamp, "n_studies": args.n,
              "export_ndjson_bytes": export_bytes,
              "slow_clients": counts, "duration_s": args.duration, "rounds": args.rounds,
              "workers": os.environ.get("WEB_CONCURRENCY", "2"),
              "threads": os.environ.get("GUNICORN_THREADS", "2"), "timeout_s": TIMEOUT,
              "long_workers": os.environ.get("LONG_WORKERS", "1"),
              "medians": medians, "each_round": rounds}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"slow-{stamp}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(f"| stack | phase | path | p50 ms | p99 ms | failed / requests |  (medians, {args.rounds} rounds)")
    print("|---|---|---|---|---|---|")
    for serve_with, phases in medians.items():
        for phase, paths in phases.items():
            for path, f in paths.items():
                print(f"| {serve_with} | {phase} | {path} | {f['p50_ms']} | {f['p99_ms']} | "
                      f"{f['failed']} / {f['requests']} |")
    print(f"\n{out.relative_to(ROOT)}")


def _line(figures: dict) -> str:
    return "  ".join(f"{path} p50 {f['p50_ms']} p99 {f['p99_ms']} ms failed {f['failed']}/{f['requests']}"
                     for path, f in figures.items())


if __name__ == "__main__":
    main()
