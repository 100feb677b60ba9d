"""The cost of bounding every Postgres wait (psycopg2's wait callback, service/db.py) per round trip.

    .venv/bin/python bench/wait_callback_cost.py [--rounds 5] [--n 2000]

One connection to 127.0.0.1:5432; each round runs `SELECT 1` and a 20-row select ``--n`` times
without the callback (libpq's blocking wait) and then with it, interleaved; prints the median over
rounds of the microseconds per statement of each and the difference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg2
import psycopg2.extensions

from service.db import _wait_callback

SQL = {"SELECT 1": "SELECT 1", "20 rows": "SELECT g, md5(g::text) FROM generate_series(1, 20) g"}


def timed(conn, sql: str, n: int) -> float:
    cursor = conn.cursor()
    start = time.perf_counter()
    for _ in range(n):
        cursor.execute(sql)
        cursor.fetchall()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {label: {"blocking": [], "callback": []} for label in SQL}
    for _ in range(args.rounds):
        for mode in ("blocking", "callback"):
            psycopg2.extensions.set_wait_callback(_wait_callback if mode == "callback" else None)
            conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
            conn.autocommit = True
            for label, sql in SQL.items():
                results[label][mode].append(timed(conn, sql, args.n))
            conn.close()
    print("| statement | blocking µs | wait callback µs | difference |\n|---|---|---|---|")
    for label, modes in results.items():
        blocking, callback = statistics.median(modes["blocking"]), statistics.median(modes["callback"])
        print(f"| {label} | {blocking:.1f} | {callback:.1f} | {callback - blocking:+.1f} µs "
              f"({(callback / blocking - 1) * 100:+.0f} %) |")


if __name__ == "__main__":
    main()
