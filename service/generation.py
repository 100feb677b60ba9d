"""The register's write generation: one counter that every committed write to what reads show moves on.

Triggers keep it, in the database itself, so nothing that writes can forget it: the API, an import, the
CLI, a migration, another process or a hand-written `UPDATE` on the same file or server. SQLite has row
triggers only (each written row adds one to the counter: about 1.7 µs a row, measured with Python's
sqlite3 on 200,000 inserts, 0.59 s without the trigger and 0.93 s with it); Postgres takes one
statement-level trigger per table. A reader that sees the counter
unchanged knows that nothing it could show has changed, across workers, processes and hosts, which is
what the response cache (api/cache.py) and the lists' ETags are built on.

Tables left out hold nothing a public read shows: tokens (whose `last_used` moves on every authorised
request), idempotency records, the migration history, and the counter itself. SQLite's full-text
tables (virtual tables and their shadow tables) cannot carry triggers; they are only written together
with the records they index, or by a rebuild (search/index.py), which rewrites the tracked `search_word`
in the same transaction.
"""

from __future__ import annotations

import secrets

from peewee import OperationalError, ProgrammingError, __exception_wrapper__

from .db import database, is_postgres

TABLE = "write_generation"
# Tables whose writes no public read can see.
UNTRACKED = frozenset({TABLE, "api_token", "idempotency_key", "schema_migration"})
_PG_FUNCTION = "bump_write_generation"


def create(db) -> None:
    """The counter's table and its one row (with a random id for this register, so two registers
    sharing a cache never share its entries)."""
    db.execute_sql(f'CREATE TABLE IF NOT EXISTS "{TABLE}" (id INTEGER PRIMARY KEY CHECK (id = 1), '
                   'register VARCHAR(64) NOT NULL, value BIGINT NOT NULL)')
    if not db.execute_sql(f'SELECT 1 FROM "{TABLE}"').fetchone():
        db.execute_sql(f'INSERT INTO "{TABLE}" (id, register, value) VALUES (1, %s, 1)'
                       if is_postgres() else f'INSERT INTO "{TABLE}" (id, register, value) VALUES (1, ?, 1)',
                       (secrets.token_hex(16),))


def _sqlite_tables(db) -> list[str]:
    rows = db.execute_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    return [name for name, _ in rows
            if not name.startswith("sqlite_") and name not in virtual
            and not any(name.startswith(f"{v}_") for v in virtual)]


def tracked_tables(db) -> list[str]:
    """The tables whose writes move the counter: every table but UNTRACKED (and SQLite's full-text ones)."""
    if is_postgres():
        rows = db.execute_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        names = [name for (name,) in rows]
    else:
        names = _sqlite_tables(db)
    return sorted(n for n in names if n not in UNTRACKED)


def install_triggers(db) -> list[str]:
    """Give every tracked table its triggers (idempotent: run after every migration, so a table a later
    migration adds is tracked too); return the tables that got them now."""
    create(db)
    added = []
    if is_postgres():
        db.execute_sql(f"""CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN UPDATE "{TABLE}" SET value = value + 1 WHERE id = 1; RETURN NULL; END $$""")
        have = {name for (name,) in db.execute_sql(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()}
        for table in tracked_tables(db):
            name = f"{table}_write_generation"
            if name not in have:
                db.execute_sql(f'CREATE TRIGGER "{name}" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE '
                               f'ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()')
                added.append(table)
        return added
    have = {name for (name,) in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}
    for table in tracked_tables(db):
        for event in ("insert", "update", "delete"):
            name = f"{table}_{event}_write_generation"
            if name not in have:
                db.execute_sql(f'CREATE TRIGGER "{name}" AFTER {event.upper()} ON "{table}" '
                               f'BEGIN UPDATE "{TABLE}" SET value = value + 1 WHERE id = 1; END')
                if table not in added:
                    added.append(table)
    return added


def current() -> tuple[str, int] | None:
    """(this register's id, its write generation): one read of one row, on the driver's own cursor (no
    query building, and not in Peewee's query log: it is the cache's, not the read's); None where the
    table is not there yet (a register not migrated), and then nothing may be cached."""
    try:
        with __exception_wrapper__:
            cursor = database.cursor()
            cursor.execute(f'SELECT register, value FROM "{TABLE}" WHERE id = 1')
            row = cursor.fetchone()
    except (OperationalError, ProgrammingError):  # an unmigrated register: no generation, no cache
        return None
    return (row[0], int(row[1])) if row else None
