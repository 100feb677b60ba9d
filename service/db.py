"""Owns the database handle: the proxy models bind to, opening it from a URL, and per-request connections."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import datetime as dt
import heapq
import ipaddress
import os
import select
import socket
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # the default install is SQLite-only: the driver comes with `study-register[postgres]`
    # Nothing raises this: a Postgres DATABASE_URL is refused without the driver (config.load_config,
    # open_database), so the names below that catch or subclass psycopg2's errors stay valid.
    psycopg2 = types.SimpleNamespace(OperationalError=type("OperationalError", (Exception,), {}))
from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateField,
    DateTimeField,
    DoubleField,
    Field,
    FloatField,
    ForeignKeyField,
    IntegerField,
    InterfaceError,
    Model,
    NodeList,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
    __exception_wrapper__,
)
from playhouse.db_url import parse as parse_url
from playhouse.pool import (
    MaxConnectionsExceeded,
    PoolConnection,
    PooledPostgresqlDatabase,
    PooledSqliteDatabase,
)

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -32000,
}


@dataclass
class Limits:
    """How long the service waits on its database, in seconds (config.py reads them from the environment).

    A request waits at most ``connect`` for its connection (the wait for a pooled one, at most ``pool``,
    its check, or opening one, name resolution included); on Postgres the server cancels a statement
    after ``statement`` and a lock wait after ``lock``; if the server does not answer at all (frozen,
    or the network gone), the driver gives up ``statement`` + 1 s into any wait. On SQLite a write waits
    ``busy`` for the write lock. Imports, exports, CLI commands and anything outside an HTTP request run
    under ``long`` instead (`long_operation`); /health under ``health``. After a request found the
    server unreachable or silent, requests are refused at once for ``breaker`` (see `Breaker`).
    """

    connect: float = 2.0
    pool: float = 2.0
    statement: float = 5.0
    lock: float = 2.0
    busy: float = 1.0
    long: float = 600.0
    health: float = 1.5
    breaker: float = 1.0


LIMITS = Limits()
# (seconds any one wait on the server may take, absolute time.monotonic() deadline or None)
_limit: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("limit", default=None)
_long: contextvars.ContextVar[bool] = contextvars.ContextVar("long", default=False)
# Set while an HTTP request is served: only requests run under the short limits; everything else (CLI
# commands, scripts, tests' own set-up) under the long ones.
_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


def _is_long() -> bool:
    return _long.get() or not _in_request.get()


class NoAnswer(psycopg2.OperationalError):
    """The database server did not answer in the time allowed (frozen, overloaded, or the network gone)."""


def _wait_budget() -> float:
    """Seconds the current wait on the server may take."""
    limit = _limit.get()
    if limit:
        return limit[1] - time.monotonic()
    return (LIMITS.long if _is_long() else LIMITS.statement) + 1.0


def _wait_callback(conn) -> None:
    """psycopg2's wait callback: every wait on the server (connect, query, fetch) is bounded. A request's
    wait also ends as soon as another request finds the server silent or gone (the breaker opens after
    this wait began): with the server frozen mid-traffic, requests waiting on statements held their
    threads for the statement limit + 1 s."""
    started = time.monotonic()
    deadline = started + _wait_budget()
    short = not _is_long()
    poller = select.poll()
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoAnswer("the database server did not answer in time")
        if short:
            opened = BREAKER.opened
            if opened is not None and opened > started:
                raise NoAnswer("the database server did not answer (another request found it silent)")
            left = min(left, 0.25)
        poller.register(conn.fileno(), select.POLLIN if state == psycopg2.extensions.POLL_READ
                        else select.POLLOUT)
        poller.poll(max(1, int(left * 1000)))


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Everything inside (pool checkout, connect, name resolution, each statement) ends within ``seconds``."""
    token = _limit.set((seconds, time.monotonic() + seconds))
    try:
        yield
    finally:
        _limit.reset(token)


def _remaining(default: float) -> float:
    limit = _limit.get()
    if limit:
        return max(0.0, min(default, limit[1] - time.monotonic()))
    return default


class _Resolver:
    """Bounded, cached host name resolution: libpq resolves inside connect with no timeout of its own,
    so a name that does not resolve held every request for the resolver's own timeout (~10 s), one after
    another. Here one lookup per name runs at a time, in a thread; callers wait at most ``timeout``; an
    answer is kept 30 s, a failure 5 s (callers in that time fail at once)."""

    OK_TTL, FAIL_TTL = 30.0, 5.0

    def __init__(self):
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[float, str | None, str]] = {}
        self._pending: dict[tuple[str, int], threading.Event] = {}

    def _lookup(self, key: tuple[str, int], done: threading.Event) -> None:
        try:
            infos = socket.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
            result = (time.monotonic() + self.OK_TTL, infos[0][4][0], "")
        except OSError as error:
            result = (time.monotonic() + self.FAIL_TTL, None, f"could not resolve host {key[0]!r}: {error}")
        with self._lock:
            self._cache[key] = result
            self._pending.pop(key, None)
        done.set()

    def forget(self, host: str, port: int) -> None:
        with self._lock:
            cached = self._cache.get((host, port))
            if cached and cached[1] is not None:
                del self._cache[(host, port)]

    def resolve(self, host: str, port: int, timeout: float) -> str:
        key = (host, port)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > time.monotonic():
                if cached[1] is None:
                    raise psycopg2.OperationalError(cached[2])
                return cached[1]
            done = self._pending.get(key)
            if done is None:
                done = self._pending[key] = threading.Event()
                threading.Thread(target=self._lookup, args=(key, done), daemon=True,
                                 name=f"resolve {host}").start()
        if not done.wait(timeout):
            with self._lock:
                self._cache.setdefault(key, (time.monotonic() + self.FAIL_TTL, None,
                                             f"could not resolve host {host!r} within {timeout:g} s"))
            raise psycopg2.OperationalError(f"could not resolve host {host!r} within {timeout:g} s")
        return self.resolve(host, port, timeout)


RESOLVER = _Resolver()


def _needs_resolving(host: str | None) -> bool:
    if not host or host.startswith("/") or "," in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class _BoundedCheckout:
    """A pool whose checkout waits at most ``LIMITS.pool`` (or what is left of a `deadline`), and whose
    connections run under the limits of the operation checking them out (`long_operation` or not).

    peewee's pool holds its lock (and the database's) while it checks an idle connection with a round
    trip and while it opens a new one: with the server frozen, every other thread queued behind that
    one, each past its own deadline. Here the lock covers only taking a connection (or a free slot)."""

    def connect(self, reuse_if_open=False):
        if self.deferred:
            raise InterfaceError("Error, database must be initialized before opening a connection.")
        if not self._state.closed:
            if reuse_if_open:
                return False
            raise OperationalError("Connection already opened.")
        end = time.monotonic() + _remaining(LIMITS.pool)
        while True:
            try:
                with __exception_wrapper__:
                    conn = self._checkout()
                break
            except MaxConnectionsExceeded:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise MaxConnectionsExceeded("every pooled database connection is in use") from None
                with self._pool_available:
                    self._pool_available.wait(timeout=min(remaining, 0.25))
        self._state.reset()
        self._state.set_connection(conn)
        with __exception_wrapper__:
            if self.server_version is None:
                self._set_server_version(conn)
            self._initialize_connection(conn)
            self.apply_limits()
        return True

    def _release(self, key) -> None:
        with self._pool_lock:
            self._in_use.pop(key, None)
            self._pool_available.notify()

    def _checkout(self):
        while True:
            with self._pool_lock:
                if self._connections:
                    ts, _counter, conn = heapq.heappop(self._connections)
                    key = self.conn_key(conn)
                elif self._max_connections and len(self._in_use) >= self._max_connections:
                    raise MaxConnectionsExceeded("Exceeded maximum connections.")
                else:
                    ts, conn, key = time.time(), None, ("opening", object())
                self._in_use[key] = PoolConnection(ts, conn, time.time())
            if conn is None:  # a free slot: open a connection, outside the lock
                try:
                    conn = self._open_raw()
                finally:
                    self._release(key)
                with self._pool_lock:
                    self._in_use[self.conn_key(conn)] = PoolConnection(ts, conn, time.time())
                return conn
            if (self._stale_timeout and self._is_stale(ts)) or self._is_closed(conn):
                self._release(key)
                self._close_raw(conn)
                continue
            return conn

    def apply_limits(self) -> None:
        """Give the connection in use the limits of the current operation, if it does not have them."""
        conn = self._state.conn
        if conn is None:
            return
        key, want = self.conn_key(conn), _is_long()
        modes = self.__dict__.setdefault("_long_modes", {})
        if modes.get(key, False) != want:
            try:
                self._set_limits(conn, long=want)
            except Exception:
                modes.pop(key, None)
                raise
            modes[key] = want

    def _opened(self, conn) -> None:
        self.__dict__.setdefault("_long_modes", {})[self.conn_key(conn)] = False


class RegisterPostgres(_BoundedCheckout, PooledPostgresqlDatabase):
    def _open_raw(self):
        params = dict(self.connect_params)
        resolved = _needs_resolving(params.get("host")) and "hostaddr" not in params
        if resolved:
            params["hostaddr"] = RESOLVER.resolve(params["host"], int(params.get("port") or 5432),
                                                  _remaining(LIMITS.connect))
        try:
            conn = self._adapter.connect(self, **params)
        except psycopg2.OperationalError:
            if resolved:  # the server may have moved (a container restarted): look the name up again
                RESOLVER.forget(params["host"], int(params.get("port") or 5432))
            raise
        if self._isolation_level:
            conn.set_isolation_level(self._isolation_level)
        conn.autocommit = True
        self._opened(conn)
        return conn

    def _set_limits(self, conn, *, long: bool) -> None:
        milliseconds = int((LIMITS.long if long else LIMITS.statement) * 1000)
        with conn.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")


class RegisterSqlite(_BoundedCheckout, PooledSqliteDatabase):
    def _open_raw(self):
        return SqliteDatabase._connect(self)

    def _add_conn_hooks(self, conn):
        super()._add_conn_hooks(conn)
        self._set_limits(conn, long=False)
        self._opened(conn)

    def _set_limits(self, conn, *, long: bool) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int((LIMITS.long if long else LIMITS.busy) * 1000)}")


@contextlib.contextmanager
def request_limits() -> Iterator[None]:
    """Run inside under a request's limits (as every HTTP request does, from its before_request hook)."""
    token = _in_request.set(True)
    try:
        yield
    finally:
        _in_request.reset(token)


@contextlib.contextmanager
def long_operation() -> Iterator[None]:
    """Run an import, a long export or a CLI command under ``LIMITS.long`` instead of a request's limits:
    the statement timeout (Postgres) or the wait for the write lock (SQLite) of the connection in use
    (or checked out inside), and the driver's own bound on each wait. Restored on the way out (and on
    the next checkout of a connection that was not)."""
    if _long.get():
        yield
        return
    token = _long.set(True)
    try:
        if not database.is_closed():
            database.obj.apply_limits()
        yield
    finally:
        try:
            _long.reset(token)
        except ValueError:  # a streamed export closed from another context
            _long.set(False)
        if database.obj is not None and not database.is_closed():
            try:
                database.obj.apply_limits()
            except Exception:  # noqa: BLE001 - a connection we cannot reset is not given back to the pool
                database.obj.manual_close()


class DatabaseUnavailable(OperationalError):
    """Refused without trying: a request a moment ago found the database unreachable or silent."""

    def __init__(self, kind: str):
        super().__init__(f"the database was {kind} a moment ago; not tried again yet")
        self.kind = kind


def _trips(error: BaseException) -> bool:
    """Does ``error`` say the server is gone or silent (not merely busy, or one statement too slow)?"""
    if isinstance(error, DatabaseUnavailable | MaxConnectionsExceeded):
        return False
    original = getattr(error, "orig", None) or error
    return isinstance(original, NoAnswer) or problem_kind(error) == "unreachable"


class Breaker:
    """A per-process circuit breaker in front of the database, for HTTP requests.

    A request that finds the server unreachable or silent (a connect or a wait past its limit, not a busy
    lock, a full pool or a statement the server cancelled) opens it: every request (/health too) is then
    answered 503 at once instead of holding one of the worker's few threads for its connect timeout.
    While open, a thread of its own probes the server as /health does (``SELECT 1`` within
    ``LIMITS.health``, again every ``PROBE_INTERVAL``) and closes it on the first answer, so requests are
    served again as soon as the server is (a probe waiting on a frozen server gets its answer on the
    thaw). Each failure keeps it open ``LIMITS.breaker`` more seconds; past that with no probe failing
    (no probe thread), it is half-open: one request at a time goes through as a probe, the others are
    still refused. A success (a probe's, or any request's begun after the opening) closes it, a failure
    opens it again. ``LIMITS.breaker`` = 0 turns it off.

    (pybreaker holds its lock while the protected call runs, one call at a time, and wants one
    function call; here the protected span is a whole request, from the before_request hook to teardown.)
    """

    PROBE_INTERVAL = 0.2

    def __init__(self, *, probe_thread: bool = True):
        self._lock = threading.Lock()
        self.opened: float | None = None  # time.monotonic() of the last failure while open; None: closed
        self.kind = "unreachable"
        self._probing = False
        self._probe_thread = probe_thread
        self._prober: threading.Thread | None = None
        self._generation = 0

    def admit(self) -> bool:
        """Before a request uses the database: True if it is the half-open probe, False to go ahead as
        usual; raises DatabaseUnavailable while open (or while another request probes)."""
        if self.opened is None or LIMITS.breaker <= 0:
            return False
        with self._lock:
            if self.opened is None:
                return False
            if self._probing or time.monotonic() < self.opened + LIMITS.breaker:
                raise DatabaseUnavailable(self.kind)
            self._probing = True
            return True

    def record(self, error: BaseException | None, started: float, probe: bool = False) -> None:
        """After a request (begun at ``started``) that was admitted: its database error, or None."""
        if isinstance(error, DatabaseUnavailable):
            return  # refused, not tried: says nothing of the database
        tripping = error is not None and _trips(error)
        if not (tripping or probe or self.opened is not None):
            return  # the usual case, no lock taken
        with self._lock:
            if probe:
                self._probing = False
            if tripping:
                self.opened, self.kind = time.monotonic(), problem_kind(error)
                if self._probe_thread and self._prober is None and LIMITS.breaker > 0:
                    self._prober = threading.Thread(target=self._probe, daemon=True, name="database probe")
                    self._prober.start()
            elif self.opened is not None and (probe or started >= self.opened):
                self.opened = None

    def _probe(self) -> None:
        """The probe thread: /health's check until one succeeds (or the breaker is closed otherwise)."""
        generation = self._generation  # a reset (another database bound) ends this thread, unheard
        try:
            while self.opened is not None and self._generation == generation:
                try:
                    with request_limits(), deadline(LIMITS.health), database.connection_context():
                        database.execute_sql("SELECT 1")
                except Exception as error:  # noqa: BLE001 - any failure but a busy one: still down
                    failed, kind = _trips(error), problem_kind(error)
                else:
                    failed, kind = False, ""
                with self._lock:
                    if self._generation != generation or self.opened is None:
                        return
                    if failed:
                        self.opened, self.kind = time.monotonic(), kind
                    else:
                        self.opened = None  # an answer: the server is back
                        return
                time.sleep(self.PROBE_INTERVAL)
        finally:
            with self._lock:
                if self._generation == generation:
                    self._prober = None

    def reset(self) -> None:
        """Forget the database's state; wait for a probe in flight, which would otherwise run its
        statement on a connection being closed (a segfault in the SQLite driver)."""
        with self._lock:
            prober = self._prober
            self.opened, self._probing, self._prober = None, False, None
            self._generation += 1
        if prober is not None and prober is not threading.current_thread():
            prober.join(LIMITS.health + self.PROBE_INTERVAL + 1)


BREAKER = Breaker()


def problem_kind(error: BaseException) -> str:
    """What a database error means for a client: ``busy`` (a lock or every connection taken),
    ``timeout`` (the server was too slow or did not answer) or ``unreachable``."""
    if isinstance(error, MaxConnectionsExceeded):
        return "busy"
    if isinstance(error, DatabaseUnavailable):
        return error.kind
    original = getattr(error, "orig", None) or error  # peewee keeps the driver's error as .orig
    if isinstance(original, NoAnswer):
        return "timeout"
    code = getattr(original, "pgcode", None)
    if code == "57014":  # query_canceled: statement_timeout
        return "timeout"
    if code in ("55P03", "40001", "40P01"):  # lock_not_available, serialization failure, deadlock
        return "busy"
    text = str(original).lower()
    if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
        return "busy"
    return "unreachable"


class IdField(AutoField):
    """An id that is never reused: AUTOINCREMENT on SQLite (Postgres sequences never go back)."""

    def ddl(self, ctx):
        nodes = super().ddl(ctx)
        db = self.model._meta.database
        if isinstance(getattr(db, "obj", db), SqliteDatabase):
            return NodeList((nodes, SQL("AUTOINCREMENT")))
        return nodes


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


def open_database(url: str, *, max_connections: int = 8):
    """Return an unconnected, pooled peewee database for ``url`` (SQLite file or Postgres)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise ValueError("an in-memory SQLite database cannot be shared between requests")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        # Pooled too: a connection's page cache lives as long as it does. With one connection per
        # request every search re-read the index and table pages it needed from the OS (2.5x the
        # SQL time of the same statements on a warm connection).
        # A pooled connection is handed to one thread at a time, but not always the thread that opened it.
        # (The pool's own wait, `timeout`, is replaced by _BoundedCheckout's; the connection's busy
        # timeout is set by RegisterSqlite from LIMITS.)
        return RegisterSqlite(path, pragmas=SQLITE_PRAGMAS, autoconnect=False, check_same_thread=False,
                              max_connections=max_connections, stale_timeout=300)
    if not hasattr(psycopg2, "extensions"):
        raise ValueError("DATABASE_URL names PostgreSQL, but its driver psycopg2 is not installed: "
                         "pip install 'study-register[postgres]'")
    # Every Postgres URL goes through a pool: opening a backend per request cost 5x throughput.
    params = parse_url(url)
    for name in ("user", "password"):  # percent-encoded in a URL (playhouse leaves them encoded)
        if params.get(name):
            params[name] = unquote(params[name])
    params.setdefault("max_connections", max_connections)
    params.setdefault("connect_timeout", max(2, int(LIMITS.connect)))  # libpq's least is 2 s
    # Dead peers are found by the kernel: keepalives on an idle connection, tcp_user_timeout on one
    # with data unacknowledged (a frozen server answers nothing, the wait callback bounds that too).
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 30)
    params.setdefault("keepalives_interval", 10)
    params.setdefault("keepalives_count", 3)
    params.setdefault("tcp_user_timeout", int((LIMITS.statement + 5) * 1000))
    params["options"] = (params.get("options", "") + f" -c statement_timeout={int(LIMITS.statement * 1000)}"
                         f" -c lock_timeout={int(LIMITS.lock * 1000)}").strip()
    name = params.pop("database")
    # Every wait on the server goes through the callback, which bounds it (see Limits).
    psycopg2.extensions.set_wait_callback(_wait_callback)
    return RegisterPostgres(name, autoconnect=False, stale_timeout=300, **params)


def init_database(url: str, *, max_connections: int = 8, limits: Limits | None = None):
    """Bind the shared proxy to the database at ``url`` (waiting on it at most ``limits``) and return it."""
    if limits is not None:
        for name in Limits.__dataclass_fields__:
            setattr(LIMITS, name, getattr(limits, name))
    previous = database.obj
    BREAKER.reset()  # first: its probe thread may be using one of the connections closed here
    if previous is not None:
        close_all(previous)
    db = open_database(url, max_connections=max_connections)
    database.initialize(db)
    return db


def close_all(db) -> None:
    if not db.is_closed():
        db.close()
    if hasattr(db, "close_all"):
        db.close_all()


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def backend_name() -> str:
    return "postgresql" if is_postgres() else "sqlite"


@dataclass
class Changes:
    """Records whose derived data (the search index) must be rewritten before the write commits."""

    studies: set[int] = field(default_factory=set)
    references: set[int] = field(default_factory=set)
    # Studies written with a date of their own (a seed, a record that carries its `updated`): what is
    # derived from them at commit keeps that date.
    study_dates: dict[int, Any] = field(default_factory=dict)


_changes: contextvars.ContextVar[Changes | None] = contextvars.ContextVar("changes", default=None)
# Called with the transaction's Changes just before the outermost write transaction commits.
before_commit: list[Callable[[Changes], None]] = []


def changed(*, studies: Iterable[int] = (), references: Iterable[int] = (),
            study_dates: dict[int, Any] | None = None) -> None:
    """Note, inside a write transaction, records whose text, registrations or links changed (and the
    studies written with an `updated` of their own, which derivation keeps)."""
    pending = _changes.get()
    if pending is None:
        raise RuntimeError("changed() outside write_transaction()")
    pending.studies.update(studies)
    pending.references.update(references)
    pending.study_dates.update(study_dates or {})


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front, so read-check-write cannot interleave.

    Nested, it is a savepoint. The outermost one runs the ``before_commit`` hooks (the search
    index refresh) inside the transaction, so records and index commit or roll back together.
    """
    outermost = _changes.get() is None
    token = _changes.set(Changes()) if outermost else None
    try:
        with database.atomic() if is_postgres() else database.atomic(lock_type="IMMEDIATE"):
            yield
            if outermost:
                pending = _changes.get()
                for hook in before_commit:
                    hook(pending)
    finally:
        if token is not None:
            _changes.reset(token)


@contextlib.contextmanager
def no_lock_wait() -> Iterator[None]:
    """A best-effort write inside gives up at once (OperationalError, "database is locked") instead of
    waiting its busy timeout when SQLite's write lock is held elsewhere (an import, say). Postgres locks
    rows, not the database: nothing changes there."""
    if is_postgres() or database.is_closed():
        yield
        return
    conn = database.connection()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        database._set_limits(conn, long=_is_long())


def locked(query):
    """``query`` with FOR UPDATE where the backend has row locks (SQLite's IMMEDIATE lock covers it)."""
    return query.for_update() if is_postgres() else query


@contextlib.contextmanager
def connection() -> Iterator[None]:
    """Open a connection for a CLI command or a test (under the long limits), and give it back afterwards."""
    with long_operation(), database.connection_context():
        yield


# Endpoints that open their connection themselves, under a deadline of their own (/health).
CONNECTS_ITSELF = {"operations.Health"}


def register_request_hooks(app) -> None:
    from flask import g, request

    @app.before_request
    def _connect() -> None:
        _in_request.set(True)
        g.database_probe = BREAKER.admit()  # raises while the breaker is open: 503 at once, not recorded
        g.database_started = time.monotonic()
        if request.endpoint in CONNECTS_ITSELF:
            return
        # Checkout, connect and its first round trips within the connect limit (a frozen server).
        with deadline(LIMITS.connect):  # the pool wait is within it too
            database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc) -> None:
        _in_request.set(False)
        if "database_started" in g:  # (api/problems.py keeps the database error it answered in g)
            BREAKER.record(g.get("database_error") or exc, g.database_started, g.get("database_probe", False))
        # A streamed export (api/exports.py) still reads after this runs; it closes the connection itself.
        if g.get("stream_holds_connection"):
            return
        if not database.is_closed():
            database.close()


def _array_types(columns) -> list[str]:
    """The Postgres array type of each column (``varchar[]``, ``date[]``...), for ``unnest`` casts."""
    types = database.obj._field_types
    return [("integer" if c.field_type in ("AUTO", "BIGAUTO", "INT")
             else types.get(c.field_type, c.field_type)).lower() + "[]" for c in columns]


def _column_values(rows: list[dict], names: list[str], columns) -> list[list]:
    """Each column's values as the driver takes them (``rows`` may leave out a column: its default)."""
    out = []
    for name, column in zip(names, columns, strict=True):
        default = column.default
        values = []
        for row in rows:
            value = row[name] if name in row else (default() if callable(default) else default)
            values.append(column.db_value(value))
        out.append(values)
    return out


def insert_rows(model, rows: list[dict], *, returning: bool = False) -> list[int]:
    """Insert many rows in a few statements (peewee's query builder, and on Postgres even the driver's
    interpolation of one parameter per value, cost more than the database on bulk loads: there every
    column goes as one array, ``INSERT ... SELECT FROM unnest(...)``); with ``returning``, the new ids in
    the order of ``rows``."""
    if not rows:
        return []
    fields = model._meta.fields
    names = list(dict.fromkeys(name for row in rows for name in row))
    # Columns added by a migration have no default in the database: every default is sent.
    names += [name for name, column in fields.items() if name not in names and column.default is not None
              and not column.primary_key]
    columns = [fields[name] for name in names]
    param = database.param
    head = (f'INSERT INTO "{model._meta.table_name}" ('
            + ", ".join(f'"{column.column_name}"' for column in columns) + ") ")
    tail = f' RETURNING "{model._meta.primary_key.column_name}"' if returning else ""
    ids: list[int] = []
    if is_postgres():
        arrays = ", ".join(f"{param}::{cast}" for cast in _array_types(columns))
        listed = ", ".join(f"u{i}" for i in range(len(columns)))
        size = 5000
        chunks = [rows[start:start + size] for start in range(0, len(rows), size)]
        for chunk in chunks:
            # Ids come from one sequence, drawn in the order the rows are inserted: that of the arrays.
            cursor = database.execute_sql(
                f"{head}SELECT {listed} FROM unnest({arrays}) WITH ORDINALITY AS u ({listed}, n) ORDER BY n"
                + tail, _column_values(chunk, names, columns))
            if returning:
                ids.extend(sorted(row[0] for row in cursor.fetchall()))
        return ids
    per_row = "(" + ", ".join([param] * len(names)) + ")"
    size = max(1, 30_000 // len(names))
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        values = [value for row in zip(*_column_values(chunk, names, columns), strict=True) for value in row]
        cursor = database.execute_sql(head + "VALUES " + ", ".join([per_row] * len(chunk)) + tail, values)
        if returning:
            # Ids come from one sequence, given in the order the rows are inserted.
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
    return ids


def any_of(column: str, values) -> tuple[str, list]:
    """A condition "``column`` is one of ``values``" for raw SQL, with its parameters: one array
    parameter on Postgres (``= ANY``), a list of placeholders on SQLite. Building the same condition
    with peewee's ``in_`` costs more than running it for the hundreds of values of an import batch."""
    values = list(values)
    if is_postgres():
        return f"{column} = ANY({database.param})", [values]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join([database.param] * len(values))})", values


def select_in(sql: str, column: str, values, *, params=(), size: int = 5000) -> list[tuple]:
    """Rows of ``sql`` (raw; ``{where}`` stands for the condition ``column`` is one of ``values``,
    its own ``params`` come first), for any number of values: on SQLite in chunks of ``size``,
    which keeps each value's rows together but not any order across chunks."""
    values = list(dict.fromkeys(values))
    if not values:
        return []
    chunks = [values] if is_postgres() else [values[i:i + size] for i in range(0, len(values), size)]
    rows: list[tuple] = []
    for chunk in chunks:
        condition, extra = any_of(column, chunk)
        rows.extend(database.execute_sql(sql.format(where=condition), [*params, *extra]).fetchall())
    return rows


def update_rows(model, changes, *, size: int = 5000) -> int:
    """Set different values on many rows (``changes``: (id, {field name: value}) pairs) in a few
    statements: rows changing the same fields share one ``UPDATE ... FROM unnest(arrays)`` on Postgres,
    one ``executemany`` on SQLite. Returns the rows given."""
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for row_id, values in changes:
        groups.setdefault(tuple(values), []).append((row_id, values))
    fields, table = model._meta.fields, model._meta.table_name
    key = model._meta.primary_key.column_name
    param = database.param
    count = 0
    for names, rows in groups.items():
        columns = [fields[name] for name in names]
        count += len(rows)
        if is_postgres():
            arrays = ", ".join(f"{param}::{cast}" for cast in ["integer[]", *_array_types(columns)])
            setting = ", ".join(f'"{c.column_name}" = v.u{i}' for i, c in enumerate(columns))
            listed = ", ".join(["__id"] + [f"u{i}" for i in range(len(columns))])
            for start in range(0, len(rows), size):
                chunk = rows[start:start + size]
                values = _column_values([row for _, row in chunk], list(names), columns)
                database.execute_sql(
                    f'UPDATE "{table}" AS t SET {setting} FROM unnest({arrays}) AS v ({listed}) '
                    f'WHERE t."{key}" = v.__id', [[row_id for row_id, _ in chunk], *values])
        else:
            values = zip(*_column_values([row for _, row in rows], list(names), columns), strict=True)
            setting = ", ".join(f'"{c.column_name}" = {param}' for c in columns)
            database.cursor().executemany(
                f'UPDATE "{table}" SET {setting} WHERE "{key}" = {param}',
                [(*row, row_id) for (row_id, _), row in zip(rows, values, strict=True)])
    return count


# Field classes whose python_value gives back what the driver returns already: text as str, integers as
# int, reals as float (SQLite's column affinity converts a stored value to the column's type; psycopg2
# returns each Postgres type as its Python type), and on Postgres dates, timestamps and booleans too.
_NATIVE = (AutoField, IdField, CharField, TextField, IntegerField, DoubleField, FloatField)
_NATIVE_POSTGRES = (*_NATIVE, DateField, DateTimeField, BooleanField)


def _native(field, postgres: bool) -> bool:
    if type(field) is ForeignKeyField:
        field = field.rel_field
    return type(field) in (_NATIVE_POSTGRES if postgres else _NATIVE) \
        and type(field).python_value is Field.python_value


def _sqlite_date(converter):
    """What DateField.python_value gives for SQLite's text, read with ``date.fromisoformat`` (what peewee
    calls) without its detours for the usual `YYYY-MM-DD`; anything else through peewee."""
    def convert(value):
        if type(value) is str and len(value) == 10:
            try:
                return _date_from(value)
            except ValueError:
                pass
        return converter(value)
    return convert


def _sqlite_datetime(converter):
    """DateTimeField.python_value for `YYYY-MM-DD HH:MM:SS[.ffffff]` (naive), the rest through peewee."""
    def convert(value):
        if type(value) is str and len(value) in (19, 26) and value[10] == " " and value[-1] != "Z":
            try:
                return _datetime_from(value)
            except ValueError:
                pass
        return converter(value)
    return convert


_date_from, _datetime_from = dt.date.fromisoformat, dt.datetime.fromisoformat
_SQLITE_FAST = {DateField: _sqlite_date, DateTimeField: _sqlite_datetime}


def _lean_converter(field, converter, postgres: bool):
    if _native(field, postgres):
        return None
    fast = None if postgres or converter != getattr(field, "python_value", None) \
        else _SQLITE_FAST.get(type(field))
    return converter if fast is None else fast(converter)


def lean_rows(wrapper, rows: Iterable[tuple]) -> list:
    """``rows`` (raw cursor rows) as ``wrapper`` (a peewee cursor wrapper, initialized) would give them,
    calling only the converters that change a value on this backend (on SQLite: dates, datetimes and
    booleans, stored as text and integers): peewee calls one per column per row, most of an export's
    reading time. Named tuples (``.namedtuples()``) or tuples (``.tuples()``)."""
    postgres = is_postgres()
    convert = [(i, _lean_converter(wrapper.fields[i], c, postgres)) for i, c in enumerate(wrapper.converters)
               if c is not None and not _native(wrapper.fields[i], postgres)]
    make = wrapper.impl._make if hasattr(wrapper, "impl") else tuple
    if not convert:
        return [make(row) for row in rows]
    out = []
    for row in rows:
        row = list(row)
        for i, converter in convert:
            row[i] = converter(row[i])
        out.append(make(row))
    return out


def select_rows(query) -> list:
    """Every row of a peewee ``.namedtuples()`` (or ``.tuples()``) model select, the same as ``list(query)``
    (one statement, logged as peewee logs its own), through ``lean_rows``."""
    sql, params = query.sql()
    cursor = database.execute_sql(sql, params)
    wrapper = query._get_cursor_wrapper(cursor)
    wrapper.initialize()
    return lean_rows(wrapper, cursor.fetchall())


def columns_of(model, alias: str) -> str:
    """The SELECT list of every column of ``model`` (as ``model.select()`` has them), from ``alias``."""
    return ", ".join(f'{alias}."{field.column_name}"' for field in model._meta.sorted_fields)


class RowPlan:
    """Rows of a fixed raw SELECT as named tuples with peewee's values: its ``columns`` are the model
    fields it selects (converted as ``lean_rows`` does) and names (plain values), in order."""

    def __init__(self, columns: Iterable[Field | tuple[str, Field] | str]):
        self.columns = [(c, c) if isinstance(c, str) else (c.name, c) if isinstance(c, Field) else c
                        for c in columns]
        self.row = collections.namedtuple("Row", [name for name, _ in self.columns])
        self._convert: dict[bool, list] = {}

    def rows(self, raw: Iterable[tuple]) -> list:
        postgres = is_postgres()
        convert = self._convert.get(postgres)
        if convert is None:
            convert = self._convert[postgres] = [
                (i, _lean_converter(field, field.python_value, postgres))
                for i, (_, field) in enumerate(self.columns)
                if isinstance(field, Field) and not _native(field, postgres)]
        make = self.row._make
        if not convert:
            return [make(row) for row in raw]
        out = []
        for row in raw:
            row = list(row)
            for i, converter in convert:
                if row[i] is not None:
                    row[i] = converter(row[i])
            out.append(make(row))
        return out
