"""Export benchmark: seconds and the server's peak memory for `GET /references?format=ndjson|ris` (and any
other export path) at several register sizes, served by gunicorn with one sync worker.

    python bench/export_bench.py --sizes 50000,150000 --backends sqlite,postgres --formats ndjson,ris

For each backend and size: a fresh database (as bench/run.py makes it) filled by bench/fill.py with
size / 3 studies x 3 references; then for each format a new gunicorn (1 sync worker, so one process
serves the export and its peak is its own) serves the app, one small request warms it up, and one
client streams the whole export to nowhere (64 KiB reads) while the time to the first and the last
byte is taken. The worker's peak resident memory is read from /proc/<pid>/status (VmHWM) after the
export, beside its resident memory after the warm-up (VmRSS): if the export held the whole result,
the peak would grow with the size. Writes bench/results/export-<UTC timestamp>.json and prints a
Markdown table. Traffic stays on 127.0.0.1; every gunicorn started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    HOST,
    RESULTS,
    _git_state,
    _terminate,
    database_for,
    gunicorn,
    log,
    prepare,
)

CHUNK = 64 * 1024


def _proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def _worker_pid(port: int) -> int:
    """The one gunicorn worker: the process listening on ``port`` that is not the master."""
    for _ in range(50):
        masters = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_gunicorn_on(int(p), port)]
        for master in masters:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.1)
    raise RuntimeError(f"no gunicorn worker found for port {port}")


def _is_gunicorn_on(pid: int, port: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"gunicorn" in part for part in cmdline[:2]) and f"{HOST}:{port}".encode() in cmdline


def stream(port: int, path: str, timeout: float) -> dict:
    """GET ``path`` and read the body to the end; seconds to the first and last byte, bytes, lines."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        first = None
        size = lines = 0
        complete = True
        try:
            while chunk := response.read1(CHUNK):
                if first is None:
                    first = time.perf_counter() - began
                size += len(chunk)
                lines += chunk.count(b"\n")
        except (http.client.IncompleteRead, ConnectionError):
            complete = False  # the server cut the stream (a worker killed at its timeout)
        total = time.perf_counter() - began
        return {"status": response.status, "complete": complete, "seconds": round(total, 2),
                "first_byte_s": round(first or total, 3), "bytes": size, "lines": lines,
                "records": int(response.getheader("X-Total-Count") or -1),
                "content_type": response.getheader("Content-Type")}
    finally:
        conn.close()


def measure(url: str, path: str, tmp: Path, timeout: int) -> dict:
    # bench/run.py's gunicorn() reads no config file; gunicorn takes extra flags from GUNICORN_CMD_ARGS.
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "SQL_ECHO": "",
           "GUNICORN_CMD_ARGS": f"--timeout {timeout}"}
    with gunicorn("service.wsgi:app", env, 1, tmp, "/health") as port:
        pid = _worker_pid(port)
        warm = stream(port, "/studies?page_size=1", timeout)  # connection open, code paths loaded
        assert warm["status"] == 200, warm
        rss_before = _proc_kib(pid, "VmRSS")
        result = stream(port, path, timeout)
        try:
            peak, rss_after = _proc_kib(pid, "VmHWM"), _proc_kib(pid, "VmRSS")
        except OSError:  # the worker is gone (killed at its timeout)
            peak = rss_after = float("nan")
    result.update(worker_rss_before_mb=round(rss_before / 1024, 1), worker_peak_mb=round(peak / 1024, 1),
                  worker_rss_after_mb=round(rss_after / 1024, 1),
                  mb_per_s=round(result["bytes"] / 1e6 / max(result["seconds"], 1e-9), 1),
                  records_per_s=round(result["records"] / max(result["seconds"], 1e-9)))
    return result


def table(rows: list[dict]) -> str:
    out = ["| backend | references | export | seconds | first byte | MB | MB/s | records/s | "
           "worker RSS before → peak (MB) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        cut = "" if r["complete"] else " (cut: worker killed)"
        out.append(f"| {r['backend']} | {r['references']:,} | `{r['path']}` | {r['seconds']}{cut} | "
                   f"{r['first_byte_s']} s | {r['bytes'] / 1e6:,.0f} | {r['mb_per_s']} | "
                   f"{r['records_per_s']:,} | {r['worker_rss_before_mb']} → {r['worker_peak_mb']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,150000", help="references (3 per study), comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--formats", default="ndjson,ris",
                        help="formats of /references to export (paths given with --paths are added)")
    parser.add_argument("--paths", default="", help="more export paths, comma-separated, e.g. "
                                                    "/studies?format=csv")
    parser.add_argument("--timeout", type=int, default=300,
                        help="gunicorn worker timeout (a sync worker is killed past it mid-export)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-database", default="bench_export")
    args = parser.parse_args()
    host = args.pg_base.split("@")[-1].split(":")[0].split("/")[0]
    if "postgres" in args.backends and host not in ("127.0.0.1", "localhost"):
        sys.exit("--pg-base must point at 127.0.0.1: the benchmark only talks to loopback")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    paths = [f"/references?format={f.strip()}" for f in args.formats.split(",") if f.strip()]
    paths += [p.strip() for p in args.paths.split(",") if p.strip()]

    from bench.fill import load_corpus

    started = dt.datetime.now(dt.UTC)
    results = {"sizes": sizes, "paths": paths, "seed": args.seed, "started": started.isoformat(),
               "server": "gunicorn, 1 sync worker", "timeout_s": args.timeout,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": os.getloadavg()},
               "git": _git_state(), "databases": {}, "rows": []}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="study-register-export-bench-"))
    try:
        corpus = load_corpus()
        for backend in backends:
            for size in sizes:
                with database_for(backend, tmp, args.pg_base, args.pg_database) as url:
                    log(f"{backend}: fill {size:,} references")
                    info = prepare(url, size // 3, args.seed, corpus, analyze_sqlite=False)
                    results["databases"][f"{backend}-{size}"] = info
                    log(f"{backend}: filled in {info['fill_s']} s, {info['size_mb']} MB")
                    for path in paths:
                        row = measure(url, path, tmp, args.timeout)
                        row.update(backend=backend, references=info["counts"]["references"], path=path)
                        results["rows"].append(row)
                        log(f"{backend} {size:,} {path}: {row['seconds']} s, {row['bytes'] / 1e6:,.0f} MB, "
                            f"{row['records']:,} records, worker {row['worker_rss_before_mb']} → peak "
                            f"{row['worker_peak_mb']} MB")
                        if not row["complete"] or row["status"] != 200 or row["records"] != (
                                info["counts"]["references"] if path.startswith("/references")
                                else info["counts"]["studies"]):
                            log(f"  unexpected: status {row['status']}, {row['records']} records, "
                                f"complete: {row['complete']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        results["finished"] = dt.datetime.now(dt.UTC).isoformat()
        results["machine"]["loadavg_end"] = os.getloadavg()
        if results["rows"]:
            out = RESULTS / f"export-{started:%Y%m%dT%H%M%SZ}.json"
            out.write_text(json.dumps(results, indent=1, default=str) + "\n")
            log(f"wrote {out.relative_to(ROOT)}")
    print()
    print(table(results["rows"]))


if __name__ == "__main__":
    main()
