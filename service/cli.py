"""Command-line tasks: `study-register db upgrade|status`, `seed`, `import`, `reindex`, `relink`, `token`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup

from . import importing, migrations
from .db import connection, database, is_postgres
from .domain import tokens
from .domain.references import relink_all
from .models import Reference
from .seeding import SeedError, load_seeds, register_is_empty, seed_files

db_cli = AppGroup("db", help="Database schema: upgrade in place, show status.")
token_cli = AppGroup("token", help="API tokens for writes.")


@db_cli.command("upgrade")
@click.option("--to", "target", type=int, default=None, help="Stop at this version.")
def db_upgrade(target):
    """Apply pending migrations, in place (data is kept)."""
    with connection():
        applied = migrations.upgrade(target)
        version = migrations.current_version()
    for m in applied:
        click.echo(f"applied {m.name}")
    click.echo(f"schema at version {version}" + ("" if applied else " (nothing to do)"))


@db_cli.command("status")
def db_status():
    """Show the applied and the latest schema version."""
    with connection():
        current = migrations.current_version()
    latest = migrations.latest_version()
    click.echo(f"schema version {current} of {latest}" + (" (pending)" if current < latest else ""))


@click.command("seed")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("seeds"), show_default=True, help="Folder of seed JSON files.")
@click.option("--if-empty", is_flag=True, help="Only when the register has no study yet.")
def seed(directory, if_empty):
    """Load the seed records (idempotent: loading twice changes nothing)."""
    files = seed_files(directory)
    if not files:
        raise click.ClickException(f"no seed files (*.json) in {directory}")
    with connection():
        if migrations.current_version() < migrations.latest_version():
            raise click.ClickException("the schema is not up to date; run `study-register db upgrade`")
        if if_empty and not register_is_empty():
            click.echo("register not empty: seeds not loaded")
            return
        try:
            report = load_seeds(files)
        except SeedError as error:
            raise click.ClickException(f"nothing loaded: {error}") from None
    click.echo(f"loaded {len(report.files)} file(s): studies {report.studies_created} created, "
               f"{report.studies_updated} updated; references {report.references_created} created, "
               f"{report.references_updated} updated; notices {report.notices_created} created")


@token_cli.command("create")
@click.option("--name", required=True, help="Who or what the token is for.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(tokens.SCOPES),
              help="Repeat for several; default: all.")
def token_create(name, scopes):
    """Create a token and print it once (only its hash is stored)."""
    with connection():
        token = tokens.create_token(name, scopes or tokens.SCOPES)
    click.echo(token)
    click.echo("Store it now: it is shown only this once.", err=True)


@token_cli.command("list")
def token_list():
    """List tokens (prefix, name, scopes, state); never the tokens themselves."""
    with connection():
        for t in tokens.list_tokens():
            state = "revoked" if t.revoked else "active"
            click.echo(f"{t.prefix}…\t{t.name}\t{t.scopes}\t{state}")


@token_cli.command("revoke")
@click.argument("prefix")
def token_revoke(prefix):
    """Revoke the token(s) starting with PREFIX (as `token list` shows it)."""
    with connection():
        count = tokens.revoke_token(prefix)
    if not count:
        raise click.ClickException(f"no active token with prefix {prefix}")
    click.echo(f"revoked {count} token(s)")


@click.command("relink")
def relink():
    """Re-run automatic linking over the whole register (after a pattern change), in one transaction."""
    with connection():
        total = Reference.select().count()
        with click.progressbar(length=total, label="references", show_pos=True, show_eta=True,
                               file=sys.stderr) as bar:
            added = relink_all(progress=bar.update)
    click.echo(f"relinked {total} references: {added} link(s) added")


@click.command("reindex")
def reindex():
    """Rebuild the full-text search indexes from the records, in one transaction."""
    from .search import index

    with connection(), database.atomic():
        counted = index.rebuild()
    click.echo(f"reindexed {counted[0]} studies and {counted[1]} references")


VACUUM_AFTER = 1000  # records written by one import before Postgres is vacuumed and analysed


class _Counting(io.RawIOBase):
    """A binary file that reports each read's size (the progress bar counts bytes of the file)."""

    def __init__(self, handle, progress):
        self.handle, self.progress = handle, progress

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.handle.readinto(buffer)
        self.progress(n or 0)
        return n


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "format_name", type=click.Choice(importing.FORMATS), required=True,
              help="`ndjson`: the register's own export (`format=ndjson` of /studies or /references); "
                   "`ictrp-csv`: a WHO ICTRP trial list (40/58 columns, or TrialsTracker/DIRECCT).")
@click.option("--encoding", default=None,
              help="ictrp-csv: the file's encoding (default: UTF-8 if it reads as such, else cp1252).")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
def import_file(file, format_name, encoding, dry_run):
    """Import FILE in one transaction; print the report (JSON) on stdout, progress on stderr.

    Records equal to those stored stay untouched; rejected lines are listed with their number
    and reason. A file that is not the format named is refused and nothing is written. Gzipped
    files are read as they are.
    """
    with connection():
        if migrations.current_version() < migrations.latest_version():
            raise click.ClickException("the schema is not up to date; run `study-register db upgrade`")
        with click.progressbar(length=file.stat().st_size, label=f"importing {file.name}",
                               show_eta=True, show_percent=True, file=sys.stderr) as bar, \
                open(file, "rb") as handle:
            raw = _Counting(handle, bar.update)
            try:
                if format_name == "ndjson":
                    report = importing.import_ndjson(iter(lambda: raw.read(1 << 16), b""),
                                                     dry_run=dry_run)
                else:
                    report = importing.import_ictrp_csv(raw, dry_run=dry_run, encoding=encoding)
            except importing.FileRefused as error:
                raise click.ClickException(f"{file}: refused, nothing written: {error}") from None
        written = sum(getattr(report, kind).created + getattr(report, kind).updated
                      for kind in ("studies", "references"))
        if not dry_run and is_postgres() and written >= VACUUM_AFTER:
            # Fresh rows are not yet in the visibility map or the planner's statistics: an exact
            # count right after a 150k-row load was 10x slower until VACUUM ANALYZE.
            click.echo(f"{written:,} records written: VACUUM ANALYZE", err=True)
            database.execute_sql("VACUUM ANALYZE")
    click.echo(json.dumps(report.as_dict(), indent=1))
    if dry_run:
        click.echo("dry run: nothing was written", err=True)


def register_commands(app: Flask) -> None:
    app.cli.add_command(import_file)
    app.cli.add_command(reindex)
    app.cli.add_command(relink)
    app.cli.add_command(db_cli)
    app.cli.add_command(token_cli)
    app.cli.add_command(seed)


def _create_app(*args, **kwargs):
    from . import create_app

    return create_app()


main = FlaskGroup(create_app=_create_app, help="The study register's management commands.")
