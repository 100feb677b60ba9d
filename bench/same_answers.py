"""Byte for byte: do two checkouts answer the same on the same register? For changes that must not change
what answers say (issue 16: exports, records and pages only get faster).

    python bench/same_answers.py --db /tmp/rd/register.db --baseline-code /tmp/base

Serves each code (bench/search_bench.py's ``gunicorn``, 1 worker, 2 threads, cache and rate limits off) on
the SQLite file at ``--db`` and asks both for every path (default: every export format of both lists, a
search export, single records, their FHIR, list pages). Prints each path's status, size and SAME (byte for
byte), SAME VALUES (a JSON document whose values are equal, written with other spacing or escapes; an
export's lines must be SAME) or DIFFERENT (with the first differing line); exits 1 if any differ.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
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


def get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def same(kind: str, body: bytes, base_body: bytes) -> str | None:
    """SAME (bytes), SAME VALUES (a JSON answer written differently: spacing, escapes), or None."""
    if body == base_body:
        return "SAME"
    if kind.split(";")[0].strip().endswith("json"):  # a JSON document, not an export's lines
        with contextlib.suppress(ValueError):
            if json.loads(body) == json.loads(base_body):
                return "SAME VALUES"
    return None


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
            (status, kind, body), (base_status, _, base_body) = get(code, path), get(base, path)
            verdict = same(kind, body, base_body) if status == base_status else None
            differ += verdict is None
            print(f"{path}: {status} / {base_status}, {len(body):,} / {len(base_body):,} bytes, "
                  f"{verdict or 'DIFFERENT'}")
            if verdict is None:
                first = next((pair for pair in zip(body.splitlines(), base_body.splitlines(), strict=False)
                              if pair[0] != pair[1]), None)
                if first:
                    print(f"  code: {first[0][:300]!r}\n  base: {first[1][:300]!r}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
