"""A slow, frozen, locked or unreachable database gives a quick 503 problem that says which, and the
service recovers by itself; imports, exports and the CLI run under their own, longer limits."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from peewee import OperationalError

from service import create_app, db
from service.config import ConfigError, load_config
from service.db import close_all, database, long_operation, problem_kind, request_limits
from tests.conftest import IN_CI, assert_problem
from tests.helpers import free_port, served

PGBIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parent.parent


def _elapsed(call) -> tuple[float, object]:
    start = time.monotonic()
    result = call()
    return time.monotonic() - start, result


@pytest.fixture(scope="module")
def throwaway_cluster():
    """A Postgres cluster of this module's own (initdb as the postgres user), to freeze with SIGSTOP."""
    if os.geteuid() != 0 or not (PGBIN / "initdb").exists() or shutil.which("runuser") is None:
        if IN_CI:
            pytest.fail("CI=true but no throwaway Postgres cluster can be made here (needs root and initdb)")
        pytest.skip("a throwaway Postgres cluster needs root and initdb")
    root = Path(tempfile.mkdtemp(prefix="frozen-pg-"))  # outside pytest's folder, closed to postgres
    os.chmod(root, 0o777)
    data, port = root / "data", free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(PGBIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_postgres, str(PGBIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield {"url": f"postgresql://postgres@127.0.0.1:{port}/postgres", "data": data}
    finally:
        _thaw(data)
        subprocess.run([*as_postgres, str(PGBIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _cluster_pids(data: Path) -> list[int]:
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def _freeze(data: Path) -> None:
    for pid in _cluster_pids(data):
        os.kill(pid, signal.SIGSTOP)


def _thaw(data: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        for pid in _cluster_pids(data):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def frozen(data: Path):
    _freeze(data)
    try:
        yield
    finally:
        _thaw(data)


@pytest.fixture
def frozen_app(throwaway_cluster):
    from service import migrations
    app = create_app({"DATABASE_URL": throwaway_cluster["url"], "LOG_LEVEL": "CRITICAL",
                      "DATABASE_STATEMENT_TIMEOUT": "1", "DATABASE_POOL_TIMEOUT": "1",
                      "DATABASE_CONNECT_TIMEOUT": "1"})
    with database.connection_context():
        migrations.upgrade()
    yield app
    close_all(database.obj)


def _concurrently(calls, n: int) -> list:
    results: list = [None] * n

    def run(i):
        results[i] = _elapsed(calls)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_health_answers_503_within_2_s_while_postgres_is_frozen_and_recovers(frozen_app, throwaway_cluster):
    client = frozen_app.test_client()
    assert client.get("/health").status_code == 200  # a pooled connection exists, then the server stops
    with frozen(throwaway_cluster["data"]):
        for took, response in _concurrently(lambda: frozen_app.test_client().get("/health"), 6):
            body = assert_problem(response, 503)
            assert took < 2.0, took
            assert body["database"] == "timeout" and response.headers["Retry-After"]
        took, response = _elapsed(lambda: client.get("/studies"))
        assert_problem(response, 503)
        assert took < 2.5, took  # checkout (a check of the pooled connection, a connect) within 1 s
    # Thawed: the broken connections were discarded, new ones answer, no restart needed.
    deadline = time.monotonic() + 10
    while client.get("/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get("/health").get_json() == {"status": "ok", "database": "ok"}
    assert client.get("/studies").status_code == 200


def test_a_new_connection_to_a_frozen_server_is_bounded_too(frozen_app, throwaway_cluster):
    close_all(database.obj)  # no pooled connection: every request connects to the frozen server
    with frozen(throwaway_cluster["data"]):
        took, response = _elapsed(lambda: frozen_app.test_client().get("/health"))
        assert_problem(response, 503)
        assert took < 2.0, took
    # Thawed: after the breaker's window (1 s) the next request probes, and succeeds.
    thawed = time.monotonic()
    while frozen_app.test_client().get("/health").status_code != 200:
        assert time.monotonic() - thawed < 2.5
        time.sleep(0.05)


def test_a_statement_past_its_timeout_is_cancelled_by_the_server(frozen_app):
    with request_limits(), database.connection_context():
        took, error = _elapsed(lambda: pytest.raises(OperationalError, database.execute_sql,
                                                     "SELECT pg_sleep(5)"))
        assert problem_kind(error.value) == "timeout" and took < 3.0
        # Under the long limits (imports, exports, the CLI) the same statement runs to its end.
        with long_operation():
            assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == "10min"
            database.execute_sql("SELECT pg_sleep(1.2)")
        assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == "1s"


def test_a_connection_given_back_after_a_long_operation_has_the_request_limits(frozen_app):
    with long_operation(), database.connection_context():
        assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == "10min"
    with request_limits(), database.connection_context():
        assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == "1s"
        assert database.execute_sql("SHOW lock_timeout").fetchone()[0] == "2s"
    # Outside a request (a script, a CLI command) the long limits hold.
    with database.connection_context():
        assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == "10min"


def test_a_table_locked_elsewhere_gives_503_busy_after_the_lock_timeout(app, backend, auth):
    client = app.test_client()
    if backend == "postgres":
        holder = psycopg2.connect(app.config["DATABASE_URL"])
        holder.cursor().execute('LOCK TABLE "notice" IN ACCESS EXCLUSIVE MODE')
    else:
        holder = sqlite3.connect(urlsplit(app.config["DATABASE_URL"]).path[1:], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO notice (message, starts, created, updated) VALUES "
                       "('uncommitted', '2020-01-01', '2020-01-01', '2020-01-01')")
    try:
        took, response = _elapsed(lambda: client.post("/notices", json={"message": "Holiday delay",
                                                                        "starts": "2020-12-01"},
                                                      headers=auth))
        body = assert_problem(response, 503)
        assert body["database"] == "busy" and "busy" in body["detail"]
        assert response.headers["Retry-After"]
        # lock_timeout 2 s; SQLite busy timeout 1 s: bounded, with room for a loaded machine
        assert took < 4.0, took
    finally:
        holder.rollback()
        holder.close()
    assert client.post("/notices", json={"message": "Holiday delay", "starts": "2020-12-01"},
                       headers=auth).status_code == 201
    assert [n["message"] for n in client.get("/notices?status=all").get_json()["items"]] == ["Holiday delay"]


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's write lock (Postgres readers take none)
def test_sqlite_reads_answer_while_a_writer_holds_the_write_lock(app, backend, seeded):
    client = app.test_client()
    holder = sqlite3.connect(urlsplit(app.config["DATABASE_URL"]).path[1:], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as an import does, with its rows written and not committed
    holder.execute("INSERT INTO notice (message, starts, created, updated) VALUES "
                   "('uncommitted', '2020-01-01', '2020-01-01', '2020-01-01')")
    try:
        for path in ("/health", "/studies?page_size=20", "/studies/1", "/notices?status=all", "/stats"):
            took, response = _elapsed(lambda path=path: client.get(path))
            assert response.status_code == 200, (path, response.get_data(as_text=True))
            assert took < 1.0, (path, took)
        messages = [n["message"] for n in client.get("/notices?status=all").get_json()["items"]]
        assert "uncommitted" not in messages  # a reader sees the last commit
    finally:
        holder.rollback()
        holder.close()


def test_every_pooled_connection_in_use_gives_503_busy_after_the_pool_timeout(database_url):
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "CRITICAL", "DATABASE_MAX_CONNECTIONS": "1",
                      "DATABASE_POOL_TIMEOUT": "0.5"})
    try:
        taken, release = threading.Event(), threading.Event()

        def hold():
            with database.connection_context():
                taken.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        taken.wait(5)
        try:
            took, response = _elapsed(lambda: app.test_client().get("/studies"))
            body = assert_problem(response, 503)
            assert body["database"] == "busy" and took < 2.0
        finally:
            release.set()
            holder.join()
        assert app.test_client().get("/health").status_code == 200
    finally:
        close_all(database.obj)


def test_a_host_that_does_not_resolve_answers_fast_and_requests_do_not_queue(monkeypatch):
    lookups = []

    def slow_getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        time.sleep(8)  # a resolver that never answers (the container case: ~10 s per request)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(db.socket, "getaddrinfo", slow_getaddrinfo)
    monkeypatch.setattr(db, "RESOLVER", db._Resolver())
    app = create_app({"DATABASE_URL": "postgresql://postgres@db.example.invalid:5432/register",
                      "LOG_LEVEL": "CRITICAL", "DATABASE_CONNECT_TIMEOUT": "1"})
    try:
        results = _concurrently(lambda: app.test_client().get("/studies"), 6)
        for took, response in results:
            body = assert_problem(response, 503)
            assert body["database"] == "unreachable" and took < 2.5, took
        took, response = _elapsed(lambda: app.test_client().get("/health"))
        assert_problem(response, 503)
        assert took < 0.5  # the failure is remembered for a few seconds: no new wait
        assert lookups == ["db.example.invalid"]  # one lookup for all of them
    finally:
        close_all(database.obj)


def test_a_host_name_that_resolves_is_used(postgres_url):
    url = postgres_url.replace("127.0.0.1", "localhost")
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "CRITICAL"})
    try:
        assert app.test_client().get("/health").get_json() == {"status": "ok", "database": "ok"}
    finally:
        close_all(database.obj)


@pytest.mark.parametrize("name", ["DATABASE_STATEMENT_TIMEOUT", "DATABASE_LOCK_TIMEOUT", "HEALTH_TIMEOUT",
                                  "DATABASE_POOL_TIMEOUT", "DATABASE_BUSY_TIMEOUT", "DATABASE_LONG_TIMEOUT",
                                  "DATABASE_BREAKER_SECONDS"])
@pytest.mark.parametrize("value", ["soon", "-1", "1e9"])
def test_a_bad_limit_is_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "db.example.invalid"])
def test_the_cli_reports_a_database_it_cannot_reach_in_one_line(host):
    from click.testing import CliRunner

    from service.cli import main
    url = f"postgresql://postgres@{host.format(port=free_port())}/register"
    try:
        result = CliRunner().invoke(main, ["db", "status"],
                                    env={"DATABASE_URL": url, "LOG_LEVEL": "CRITICAL"})
    finally:
        close_all(database.obj)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the database is unreachable: "), result.output


def test_postgres_url_options_reach_the_driver():
    opened = db.open_database("postgres+pool://reader:p%40ss%2Fw@db.example:5433/register"
                              "?max_connections=3&sslmode=disable&keepalives_idle=5")
    params = opened.connect_params
    assert (opened.database, opened._max_connections) == ("register", 3)
    assert (params["user"], params["password"], params["port"]) == ("reader", "p@ss/w", 5433)
    assert params["sslmode"] == "disable" and params["keepalives_idle"] == 5  # the URL's own wins
    assert "statement_timeout=" in params["options"] and "lock_timeout=" in params["options"]


def test_a_failed_connect_looks_the_name_up_again(monkeypatch, postgres_url):
    answers = iter(["127.0.0.2", "127.0.0.1"])  # the server "moved": the first address refuses
    looked_up = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(db.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(db, "RESOLVER", db._Resolver())
    port = urlsplit(postgres_url).port
    app = create_app({"DATABASE_URL": postgres_url.replace(f"127.0.0.1:{port}", f"db.example:{port}"),
                      "LOG_LEVEL": "CRITICAL", "DATABASE_BREAKER_SECONDS": "0"})  # the next request tries
    try:
        client = app.test_client()
        with socket.socket() as probe:  # nothing listens on 127.0.0.2 unless Postgres binds every address
            if probe.connect_ex(("127.0.0.2", port)) == 0:
                pytest.fail("Postgres answers on 127.0.0.2 too: this test needs an address that refuses")
        assert_problem(client.get("/health"), 503)
        assert client.get("/health").status_code == 200
        assert looked_up == ["db.example", "db.example"]
    finally:
        close_all(database.obj)


def _get(port: int, path: str) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.monotonic()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return time.monotonic() - start, response.status
    finally:
        conn.close()


def test_health_answers_within_2_s_with_more_clients_than_threads_while_frozen(frozen_app, throwaway_cluster):
    """Without the breaker each GET held one of the 2 threads for the 2 s connect timeout and /health
    queued behind them (3 s and more); with it, requests after the first failure are refused at once."""
    close_all(database.obj)  # the served process has its own connections; this one's are not needed
    # A long breaker window: only its probe thread can close it within the bound below.
    with served(throwaway_cluster["url"], threads=2, DATABASE_BREAKER_SECONDS="10") as port:
        stop, statuses = threading.Event(), []

        def client() -> None:
            while not stop.is_set():
                statuses.append(_get(port, "/notices")[1])

        with frozen(throwaway_cluster["data"]):
            clients = [threading.Thread(target=client) for _ in range(6)]  # 6 clients, 2 threads
            try:
                for thread in clients:
                    thread.start()
                health = []
                for _ in range(8):
                    time.sleep(0.3)
                    health.append(_get(port, "/health"))
            finally:
                stop.set()
                for thread in clients:
                    thread.join(timeout=30)
        assert {status for _, status in health} == {503}
        assert max(took for took, _ in health) < 2.0, health
        assert set(statuses) == {503} and len(statuses) > 20  # refused at once, not 2 s each
        # Thawed: the breaker's probe gets its answer and requests succeed again at once; no restart.
        thawed, end = time.monotonic(), time.monotonic() + 10
        while _get(port, "/notices")[1] != 200:
            assert time.monotonic() < end, "no request succeeded within 10 s of the thaw"
            time.sleep(0.05)
        assert time.monotonic() - thawed < 1.5
        assert _get(port, "/health")[1] == 200


def test_the_breaker_opens_on_a_silent_server_not_on_a_busy_one_and_probes_one_at_a_time(monkeypatch,
                                                                                         postgres_url):
    monkeypatch.setattr(db.LIMITS, "breaker", 0.3)
    breaker = db.Breaker(probe_thread=False)  # requests probe (what happens if the probe thread is gone)
    with contextlib.closing(psycopg2.connect(postgres_url)) as conn, conn.cursor() as cursor:
        cursor.execute("SET statement_timeout = 10")
        with pytest.raises(psycopg2.errors.QueryCanceled) as raised:  # the server cancelled one statement
            cursor.execute("SELECT pg_sleep(1)")
        cancelled = raised.value
    for error in (OperationalError("database is locked"), cancelled, None):
        breaker.record(error, time.monotonic())
        assert breaker.admit() is False  # busy, one slow statement, a success: closed
    breaker.record(db.NoAnswer("the database server did not answer in time"), time.monotonic())
    with pytest.raises(db.DatabaseUnavailable) as refused:
        breaker.admit()
    assert problem_kind(refused.value) == "timeout"
    breaker.record(refused.value, time.monotonic())  # a refusal neither opens nor closes it
    time.sleep(0.35)
    assert breaker.admit() is True  # half-open: this request probes...
    pytest.raises(db.DatabaseUnavailable, breaker.admit)  # ...and no other meanwhile
    breaker.record(psycopg2.OperationalError("connection refused"), time.monotonic(), probe=True)
    pytest.raises(db.DatabaseUnavailable, breaker.admit)  # failed: open again, for a new window
    time.sleep(0.35)
    started = time.monotonic()
    assert breaker.admit() is True
    breaker.record(None, started, probe=True)
    assert breaker.admit() is False and breaker.admit() is False  # closed: every request goes ahead


def test_after_one_request_finds_the_server_silent_the_next_are_refused_at_once(frozen_app,
                                                                               throwaway_cluster):
    client = frozen_app.test_client()
    with frozen(throwaway_cluster["data"]):
        took, response = _elapsed(lambda: client.get("/studies"))
        assert assert_problem(response, 503)["database"] == "timeout" and took < 2.5, took
        for path in ("/studies", "/health", "/notices"):
            took, response = _elapsed(lambda path=path: client.get(path))
            body = assert_problem(response, 503)
            assert body["database"] == "timeout" and "refused until it answers again" in body["detail"]
            assert response.headers["Retry-After"] and took < 0.5, (path, took)
    thawed = time.monotonic()
    while client.get("/studies").status_code != 200:
        assert time.monotonic() - thawed < 2.5
        time.sleep(0.05)


def test_a_request_waiting_on_a_frozen_server_gives_up_when_another_finds_it_silent(frozen_app,
                                                                                   throwaway_cluster):
    with request_limits(), database.connection_context():
        database.execute_sql("SELECT 1")  # connected, then the server stops mid-traffic
        with frozen(throwaway_cluster["data"]):
            opener = threading.Timer(0.3, db.BREAKER.record,
                                     (db.NoAnswer("did not answer in time"), time.monotonic()))
            opener.start()
            took, raised = _elapsed(lambda: pytest.raises(OperationalError, database.execute_sql, "SELECT 1"))
            opener.join()
        assert problem_kind(raised.value) == "timeout"
        assert took < 1.0, took  # not the statement limit + 1 s (2 s here)
    db.BREAKER.reset()
