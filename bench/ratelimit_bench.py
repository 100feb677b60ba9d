"""Rate limits under a token-guessing client: 1,000 wrong-token writes, how many 401 then 429, how long.

gunicorn (the repo's gunicorn.conf.py, 2 workers) over a migrated SQLite register, on a free loopback
port, is sent N `POST /studies` with a wrong bearer token by C client threads, a new connection per
request (so both workers answer). Three setups, in interleaved rounds (each round starts each setup
afresh, with a key prefix of its own, so no count carries over):

- `off`: `RATE_LIMITS=off`, the baseline (every answer a 401);
- `memory`: the defaults, counted in each worker's memory (each worker keeps its own count);
- `redis`: the defaults with `REDIS_URL` (one count for all workers).

Then, in process (no network), the median time of one wrong-token 401 in each setup, under a limit
too high to reach: what the counting adds to a refusal.

Prints a Markdown table of medians over the rounds (401s, 429s, other answers, seconds for all N,
median and p99 latency of a 401 and of a 429) and writes every round to
bench/results/ratelimit-<UTC timestamp>.json.

    .venv/bin/python bench/ratelimit_bench.py --requests 1000 --clients 4 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import BIN, HOST, free_port  # noqa: E402

WRONG = "Bearer sr_" + "x" * 43  # the length of a real token
BODY = json.dumps({"title": "A guess", "registrations": [{"identifier": "NCT04280705"}]})


def _status(port: int, path: str = "/health", method: str = "GET", headers: dict | None = None,
            body: str | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


@contextlib.contextmanager
def serve(folder: Path, env: dict[str, str]):
    port = free_port()
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "LOG_LEVEL": "WARNING",
               "GUNICORN_BIND": f"{HOST}:{port}", "WEB_CONCURRENCY": "2", **env}
    log = open(folder / f"gunicorn-{port}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "service.wsgi:app"],
                               cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {log.name}")
            with contextlib.suppress(OSError):
                if _status(port)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /health within 30 s")
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def attack(port: int, requests: int, clients: int) -> dict:
    """``requests`` wrong-token writes from ``clients`` threads; what came back, and how fast."""
    headers = {"Authorization": WRONG, "Content-Type": "application/json"}
    # Warm-up: every worker thread takes the write path once (no token: a 401 that no limit counts).
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: _status(port, "/studies", "POST", {"Content-Type": "application/json"},
                                        BODY), range(8 * clients)))

    def one(_):
        try:
            return _status(port, "/studies", "POST", headers, BODY)
        except OSError:
            return 0, 0.0

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started

    def latency(status: int) -> dict:
        times = sorted(t for s, t in answers if s == status)
        if not times:
            return {"p50_ms": None, "p99_ms": None}
        return {"p50_ms": round(statistics.median(times) * 1000, 2),
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 2)}

    counts = {s: sum(1 for a, _ in answers if a == s) for s in (401, 429)}
    first_429 = next((i for i, (s, _) in enumerate(answers) if s == 429), None)
    return {"401": counts[401], "429": counts[429], "other": requests - counts[401] - counts[429],
            "seconds": round(seconds, 3), "first_429_at": first_429,
            "latency_401": latency(401), "latency_429": latency(429)}


def overhead(folder: Path, redis_url: str, requests: int, rounds: int) -> dict[str, float]:
    """In process (Flask's test client, no network, one at a time): the median time of a wrong-token
    401 with the limits off, in memory and in Redis, under a limit too high to reach; interleaved."""
    from service import create_app
    from service.db import close_all, database

    settings = {"off": {"RATE_LIMITS": "off"}, "memory": {}, "redis": {"REDIS_URL": redis_url}}
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, extra in settings.items():
            app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "LOG_LEVEL": "WARNING",
                              "RATE_LIMIT_AUTH_FAILURES": "1000000 per minute",
                              "RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex}", **extra})
            client = app.test_client()
            headers = {"Authorization": WRONG}
            for _ in range(20):
                client.post("/studies", data=BODY, content_type="application/json", headers=headers)
            for _ in range(requests):
                started = time.perf_counter()
                status = client.post("/studies", data=BODY, content_type="application/json",
                                     headers=headers).status_code
                times[name].append(time.perf_counter() - started)
                assert status == 401, status
            close_all(database.obj)
    return {name: round(statistics.median(values) * 1e6) for name, values in times.items()}


def flatness(folder: Path, requests: int) -> dict[str, float]:
    """In process, limits on (in memory, a limit too high to reach): the median time of a 401 for wrong
    tokens near and far from a real one, interleaved request by request."""
    import random

    from service import create_app
    from service.db import close_all, database
    from service.domain.tokens import create_token

    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "LOG_LEVEL": "WARNING",
                      "RATE_LIMIT_AUTH_FAILURES": "1000000 per minute"})
    with app.app_context(), database.connection_context():
        real = create_token("bench", ("studies",))
    last = "A" if real[-1] != "A" else "B"
    kinds = {"random": lambda: "sr_" + uuid.uuid4().hex + uuid.uuid4().hex[:11],
             "same prefix": lambda: real[:10] + uuid.uuid4().hex + uuid.uuid4().hex[:1],
             "last character changed": lambda: real[:-1] + last,
             "short": lambda: "sr_x"}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    client = app.test_client()
    order = [name for name in kinds for _ in range(requests)]
    random.Random(1).shuffle(order)
    for name in list(kinds) * 5 + order:  # a few of each first, as a warm-up
        headers = {"Authorization": f"Bearer {kinds[name]()}"}
        started = time.perf_counter()
        status = client.post("/studies", data=BODY, content_type="application/json",
                             headers=headers).status_code
        times[name].append(time.perf_counter() - started)
        assert status == 401, status
    close_all(database.obj)
    return {name: round(statistics.median(values[5:]) * 1e6) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    setups = {"off": {"RATE_LIMITS": "off"}, "memory": {}, "redis": {"REDIS_URL": args.redis_url}}
    rounds: dict[str, list[dict]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}"}
        subprocess.run([str(BIN / "study-register"), "db", "upgrade"], cwd=ROOT, check=True,
                       capture_output=True, env=database)
        for number in range(args.rounds):
            for name, env in setups.items():
                env = {**env, "RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex}"}
                with serve(folder, env) as port:
                    result = attack(port, args.requests, args.clients)
                rounds[name].append(result)
                print(f"round {number + 1} {name}: {result}", file=sys.stderr)
        extra = overhead(folder, args.redis_url, 300, args.rounds)
        flat = flatness(folder, 300)

    def median(name: str, *path: str):
        values = []
        for result in rounds[name]:
            value = result
            for key in path:
                value = value[key]
            if value is not None:
                values.append(value)
        return statistics.median(values) if values else "-"

    print(f"\n{args.requests} wrong-token `POST /studies`, {args.clients} clients, a new connection each, "
          f"gunicorn 2 workers, SQLite; medians of {args.rounds} interleaved rounds\n")
    print("| setup | 401 | 429 | other | seconds | 401 p50 / p99 ms | 429 p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for name in setups:
        print(f"| {name} | {median(name, '401')} | {median(name, '429')} | {median(name, 'other')} | "
              f"{median(name, 'seconds')} | {median(name, 'latency_401', 'p50_ms')} / "
              f"{median(name, 'latency_401', 'p99_ms')} | {median(name, 'latency_429', 'p50_ms')} / "
              f"{median(name, 'latency_429', 'p99_ms')} |")
    print(f"\nIn process, one wrong-token 401 (median µs, {args.rounds} × 300 interleaved): "
          + ", ".join(f"{name} {value}" for name, value in extra.items()))
    print("In process, limits on, a 401 by kind of wrong token (median µs, 300 each, interleaved): "
          + ", ".join(f"{name} {value}" for name, value in flat.items()))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"ratelimit-{stamp}.json"
    out.write_text(json.dumps({"requests": args.requests, "clients": args.clients, "rounds": rounds,
                               "in_process_401_median_us": extra, "wrong_token_kinds_median_us": flat},
                              indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
