"""Schema versioning: numbered migration modules applied in order, each once, each in a transaction."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

from peewee import CharField, DateTimeField, IntegerField, Model
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

from ..db import database, is_postgres
from ..generation import install_triggers
from ..models import utcnow

_NAME = re.compile(r"^m(\d{4})_\w+$")


class SchemaMigration(Model):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    applied = DateTimeField(default=utcnow)

    class Meta:
        database = database
        table_name = "schema_migration"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType


def available() -> list[Migration]:
    """Every migration module in this package, ordered by version."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _NAME.match(info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(Migration(int(match.group(1)), info.name, module))
    found.sort(key=lambda m: m.version)
    return found


def current_version() -> int:
    if not database.table_exists(SchemaMigration._meta.table_name):
        return 0
    latest = SchemaMigration.select(SchemaMigration.version).order_by(
        SchemaMigration.version.desc()).first()
    return latest.version if latest else 0


def latest_version() -> int:
    migrations = available()
    return migrations[-1].version if migrations else 0


def upgrade(target: int | None = None) -> list[Migration]:
    """Apply every pending migration up to ``target`` (default: all); return those applied.

    When an applied migration sets ``RELINK_AFTER``, the register's references are relinked once
    every migration has run (the models match the schema only then), so data already there follows
    the new rules; `study-register relink` does the same by hand. ``REINDEX_AFTER`` rebuilds the
    search indexes from the records the same way (`study-register reindex`).
    """
    database.create_tables([SchemaMigration], safe=True)
    done = current_version()
    migrator = PostgresqlMigrator(database.obj) if is_postgres() else SqliteMigrator(database.obj)
    applied = []
    for migration in available():
        if migration.version <= done or (target is not None and migration.version > target):
            continue
        with database.atomic():
            migration.module.upgrade(database.obj, migrator)
            SchemaMigration.create(version=migration.version, name=migration.name)
        applied.append(migration)
    at_latest = target is None or target >= latest_version()
    if at_latest:  # a table any migration added is tracked by the write generation too
        with database.atomic():
            install_triggers(database.obj)
    if at_latest and any(getattr(m.module, "RELINK_AFTER", False) for m in applied):
        from ..domain.references import relink_all

        relink_all()
    if at_latest and any(getattr(m.module, "REDERIVE_AFTER", False) for m in applied):
        from ..domain.derive import rederive_all

        rederive_all()
    if at_latest and any(getattr(m.module, "REINDEX_AFTER", False) for m in applied):
        from ..search import index

        with database.atomic():
            index.rebuild()
    return applied
