"""Fixtures: every database test runs on SQLite and on Postgres (required when CI=true)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest

from service import create_app, migrations
from service.db import close_all, database
from service.domain import scratch
from service.domain.tokens import create_token
from service.models import MODELS
from service.search.index import SEARCH_TABLES, WORD_TABLE
from service.seeding import load_seeds, seed_files

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
PG_ADMIN = dict(host=os.environ.get("PGHOST", "127.0.0.1"), port=int(os.environ.get("PGPORT", "5432")),
                user=os.environ.get("PGUSER", "postgres"), dbname="postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]


def _postgres_admin():
    conn = psycopg2.connect(connect_timeout=3, **PG_ADMIN)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh database on the local Postgres server for this test session, dropped afterwards."""
    try:
        admin = _postgres_admin()
    except psycopg2.OperationalError as error:
        if IN_CI:
            pytest.fail(f"CI=true but Postgres at {PG_ADMIN['host']}:{PG_ADMIN['port']} is "
                        f"unreachable: {error}")
        pytest.skip(f"no Postgres at {PG_ADMIN['host']}:{PG_ADMIN['port']} (set CI=true to require it)")
    name = f"sr_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{PG_ADMIN['user']}@{PG_ADMIN['host']}:{PG_ADMIN['port']}/{name}"
    if database.obj is not None:
        close_all(database.obj)
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'register.db'}"


_migrated: set[str] = set()


def _reset(url: str) -> None:
    """Migrate once per session, then empty every table so each test starts clean."""
    with database.connection_context():
        if url not in _migrated:
            migrations.upgrade()
            _migrated.add(url)
        tables = [m._meta.table_name for m in MODELS]
        if url.startswith("postgres"):
            database.execute_sql(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in [*tables, WORD_TABLE])
                + " RESTART IDENTITY CASCADE")
        else:
            for table in [*SEARCH_TABLES, WORD_TABLE, *reversed(tables)]:
                database.execute_sql(f'DELETE FROM "{table}"')
            database.execute_sql("DELETE FROM sqlite_sequence")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def database_url(backend, request):
    return request.getfixturevalue(f"{backend}_url")


@pytest.fixture
def app(database_url):
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"})
    app.config["TESTING"] = True
    _reset(database_url)
    yield app
    close_all(database.obj)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def make_token(*scopes: str) -> str:
    with database.connection_context():
        return create_token("test", scopes) if scopes else create_token("test")


@pytest.fixture
def token(app):
    return make_token()


@pytest.fixture
def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["in memory", "in scratch files"])
def bookkeeping(request, monkeypatch):
    """Both ways an import keeps what it has seen: dicts, and (past SPILL_AFTER entries, here at once)
    SpillingMaps in scratch files."""
    if request.param == "in scratch files":
        monkeypatch.setattr(scratch, "SPILL_AFTER", 0)
    return request.param


@pytest.fixture
def seeded(app):
    with database.connection_context():
        return load_seeds(seed_files(SEEDS))


def assert_problem(response, status: int, *fields: str) -> dict:
    """The response is an RFC 9457 problem with ``status``, naming each of ``fields`` in `errors`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"] == "about:blank"
    for name in fields:
        assert name in body.get("errors", {}), body
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT ", "/work/", "site-packages"):
        assert leak not in text
    return body


@pytest.fixture
def empty_db(backend, request, tmp_path):
    """A database with no tables at all, bound to the shared handle."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with database.connection_context():
        if backend == "postgres":
            database.execute_sql("DROP SCHEMA public CASCADE")
            database.execute_sql("CREATE SCHEMA public")
    yield app
    with database.connection_context():
        if backend == "postgres":  # leave the shared test database as the other tests expect it
            database.execute_sql("DROP SCHEMA public CASCADE")
            database.execute_sql("CREATE SCHEMA public")
    _migrated.discard(url)
    close_all(database.obj)
