"""Byte for byte: do two checkouts answer the same on the same register? For changes that must not change
what answers say (issue 16: exports, records and pages only get faster).

    python bench/same_answers.py --db /tmp/rd/register.db --baseline-code /tmp/base

Serves each code (bench/search_bench.py's ``gunicorn``, 1 worker, 2 threads, cache and rate limits off) on
the SQLite file at ``--db`` and asks both for every path (default: every export format of both lists, a
search export, single records, their FHIR, pages). Prints each path's status, size and SAME or DIFFERENT
(with the first differing line); exits 1 if any differ.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import HOST  # noqa: E402
from bench.search_bench import gunicorn  # noqa: E402

PATHS = ["/studies?format=ndjson", "/references?format=ndjson", "/references?format=ris",
         "/references?format=csv", "/studies?format=csv", "/studies?format=fhir&registry=ChiCTR",
         "/references?format=fhir&type=journal_article",
         "/studies?format=ndjson&sort=-updated&q=hydroxychloroquine", "/studies?page_size=100",
         "/references?page_size=100&sort=title", "/studies/5", "/references/7", "/studies/123?format=fhir",
         "/references/9?format=fhir", "/studies/5/references"]


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--baseline-code", type=Path, required=True)
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated")
    args = parser.parse_args()
    env = {"DATABASE_URL": f"sqlite:///{args.db.resolve()}", "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off",
           "CACHE": "off"}
    differ = 0
    with tempfile.TemporaryDirectory() as tmp, \
            gunicorn(ROOT, env, 1, 2, Path(tmp)) as (code, _), \
            gunicorn(args.baseline_code.resolve(), env, 1, 2, Path(tmp)) as (base, _):
        for path in args.paths.split(","):
            (status, body), (base_status, base_body) = get(code, path), get(base, path)
            same = status == base_status and body == base_body
            differ += not same
            print(f"{path}: {status} / {base_status}, {len(body):,} / {len(base_body):,} bytes, "
                  f"{'SAME' if same else 'DIFFERENT'}")
            if not same:
                first = next((pair for pair in zip(body.splitlines(), base_body.splitlines(), strict=False)
                              if pair[0] != pair[1]), None)
                if first:
                    print(f"  code: {first[0][:300]!r}\n  base: {first[1][:300]!r}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
