"""Decompression-bomb benchmark: time until `POST /imports` answers a gzip bomb, unbounded (the bounds set
out of reach: the service before issue 13) and with the default bounds (`IMPORT_MAX_UNPACKED_BYTES`,
`IMPORT_MAX_RATIO`), in interleaved rounds; plus, as a baseline in the same run, the cost of the bounds
on a real file (reading and parsing the gzip WHO export, no database).

    .venv/bin/python bench/bomb_bench.py                     # 3 rounds, a 128 MiB bomb (~130 kB packed)
    .venv/bin/python bench/bomb_bench.py --rounds 5 --mib 256

The bomb is an NDJSON record followed by blank lines (which the reader skips, so an unbounded import reads
the whole of it); it goes in through the Flask test client into a fresh SQLite register (no network).
Medians; the JSON result goes to bench/results/bomb-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import create_app, migrations  # noqa: E402
from service.db import database  # noqa: E402
from service.domain.tokens import create_token  # noqa: E402
from service.formats import parser_for  # noqa: E402
from service.formats.reading import Bounds, open_input  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REAL = ROOT.parent / "shared" / "data" / "trials" / "ictrp_covid_who_raw_export_2020-04-15.csv.gz"
UNBOUNDED = {"IMPORT_MAX_UNPACKED_BYTES": 1 << 42, "IMPORT_MAX_RATIO": 1_000_000}


def bomb(mib: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as packed:
        packed.write(b'{"type": "journal_article", "title": "A bomb", "study_ids": []}\n')
        chunk = b"\n" * (1 << 20)
        for _ in range(mib):
            packed.write(chunk)
    return out.getvalue()


def post(client, headers, body: bytes) -> tuple[float, int]:
    began = time.perf_counter()
    response = client.post("/imports?format=ndjson&dry_run=true", headers=headers, data=body,
                           content_type="application/gzip")
    return time.perf_counter() - began, response.status_code


def parse_real(bounds: Bounds | None) -> float:
    parse = parser_for("ictrp-csv")
    began = time.perf_counter()
    with REAL.open("rb") as stream, open_input(stream, fmt="ictrp-csv", bounds=bounds) as (text, _):
        for _row in parse(text, {}):
            pass
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=128, help="how far the bomb unpacks, in MiB")
    args = parser.parse_args()
    body = bomb(args.mib)
    folder = tempfile.mkdtemp(prefix="bomb-bench-")
    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/register.db", "LOG_LEVEL": "ERROR"})
    with app.app_context(), database.connection_context():
        migrations.upgrade()
        token = create_token("bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    bounded_config = {k: app.config[k] for k in UNBOUNDED}
    times: dict[str, list[float]] = {"unbounded": [], "bounded": [], "real unbounded": [], "real bounded": []}
    statuses: dict[str, set[int]] = {"unbounded": set(), "bounded": set()}
    for round_number in range(args.rounds):
        order = ["unbounded", "bounded"] if round_number % 2 == 0 else ["bounded", "unbounded"]
        for name in order:
            app.config.update(UNBOUNDED if name == "unbounded" else bounded_config)
            seconds, status = post(client, headers, body)
            times[name].append(seconds)
            statuses[name].add(status)
            real = parse_real(Bounds(1 << 42, 1_000_000) if name == "unbounded" else Bounds())
            times[f"real {name}"].append(real)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bomb": {"packed_bytes": len(body), "unpacked_bytes": (args.mib << 20) + 64},
        "rounds": args.rounds,
        "median_seconds": {name: round(statistics.median(values), 3) for name, values in times.items()},
        "all_seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "statuses": {name: sorted(values) for name, values in statuses.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"bomb-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
