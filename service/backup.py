"""Backups of the register while it runs: SQLite's online backup API, Postgres' pg_dump / pg_restore.

A backup is one consistent snapshot (SQLite copies every page under one read transaction, which in
WAL mode never blocks the service's writers; pg_dump reads in one REPEATABLE READ transaction). A
restore replaces the whole register in one step (SQLite: the backup API writes every page under the
write lock; Postgres: ``pg_restore --single-transaction --clean``), so the service sees the register
before or after, never half of it.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from .db import LIMITS

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name"}


class BackupError(Exception):
    """A backup or restore refused or failed; the message is one line for the operator."""


def _sqlite_path(url: str) -> str:
    path = urlsplit(url).path
    return path[1:] if path.startswith("/") else path


def _libpq_url(url: str) -> str:
    """The DATABASE_URL as libpq tools take it (no pool scheme, no peewee-only parameters)."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k in LIBPQ_PARAMS])
    return parts._replace(scheme="postgresql", query=query).geturl()


def _tool(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        raise BackupError(f"{name} is not installed (it comes with the PostgreSQL client tools)")
    return found


def _kind(path: Path) -> str:
    with path.open("rb") as stream:
        head = stream.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgres"
    return "unknown"


def backup(url: str, target: Path, *, force: bool = False) -> int:
    """Write a consistent copy of the register at ``url`` to ``target``; return its size in bytes."""
    if target.exists() and not force:
        raise BackupError(f"{target} exists; give --force to overwrite it")
    if target.is_dir():
        raise BackupError(f"{target} is a directory")
    directory = target.resolve().parent
    if not directory.is_dir():
        raise BackupError(f"{directory} does not exist")
    handle, scratch = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    os.close(handle)
    try:
        if urlsplit(url).scheme == "sqlite":
            source = sqlite3.connect(_sqlite_path(url), timeout=LIMITS.long)
            copy = sqlite3.connect(scratch)
            try:
                source.backup(copy)  # every page in one step: one snapshot
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                copy.close()
                source.close()
        else:
            done = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={scratch}",
                                   f"--dbname={_libpq_url(url)}"], capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError("pg_dump failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target.stat().st_size


def restore(url: str, source: Path) -> None:
    """Replace the register at ``url`` by the backup ``source`` (made by :func:`backup`), in one step."""
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    backend = "sqlite" if urlsplit(url).scheme == "sqlite" else "postgres"
    kind = _kind(source)
    if kind == "unknown":
        raise BackupError(f"{source} is not a backup (not an SQLite database, not a pg_dump custom archive)")
    if kind != backend:
        raise BackupError(f"{source} is a {kind} backup; this register is on {backend}")
    if backend == "sqlite":
        _restore_sqlite(url, source)
    else:
        listed = subprocess.run([_tool("pg_restore"), "--list", str(source)], capture_output=True, text=True)
        if listed.returncode != 0 or 'TABLE public study ' not in listed.stdout:
            raise BackupError(f"{source} is not a backup of a register (no study table in the archive)")
        done = subprocess.run([_tool("pg_restore"), "--single-transaction", "--clean", "--if-exists",
                               "--no-owner", f"--dbname={_libpq_url(url)}", str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError("pg_restore failed, nothing restored: "
                              + (done.stderr.strip().splitlines() or ["?"])[-1])


def _restore_sqlite(url: str, source: Path) -> None:
    backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        try:
            ok = backup_db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            tables = {row[0] for row in backup_db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source} cannot be read as an SQLite database: {error}") from None
        if not ok:
            raise BackupError(f"{source} is damaged (SQLite's quick_check failed)")
        if "study" not in tables:
            raise BackupError(f"{source} is not a backup of a register (no study table)")
        live = sqlite3.connect(_sqlite_path(url), timeout=LIMITS.long)
        try:
            backup_db.backup(live)  # under the write lock, all pages at once: readers see before or after
        finally:
            live.close()
    finally:
        backup_db.close()
