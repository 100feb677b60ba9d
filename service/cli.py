"""Command-line tasks: `study-register db upgrade|status`, `seed`, `import`, `reindex`, `rederive`, `relink`,
`suggest`, `token`, `backup`, `restore`, `serve` (and flask-smorest's `openapi`). Also `python -m service`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import click
import peewee
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo, with_appcontext
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded

from . import migrations
from .config import ConfigError
from .db import connection, database, problem_kind
from .domain import tokens
from .domain.errors import DomainError
from .domain.imports import ImportRefused, import_file
from .domain.references import relink_all
from .formats import FORMATS
from .formats.reading import ENCODINGS, Bounds
from .models import Reference
from .seeding import SeedError, default_seed_dir, load_seeds, register_is_empty, seed_files, shipped_path

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
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of seed JSON files. Default: the register's own seeds (seeds/ of a checkout, or "
                   "the copy shipped in the installed package).")
@click.option("--if-empty", is_flag=True, help="Only when the register has no study yet.")
def seed(directory, if_empty):
    """Load the seed records (idempotent: loading twice changes nothing)."""
    if directory is None:
        try:
            directory = default_seed_dir()
        except SeedError as error:
            raise click.ClickException(str(error)) from None
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
@click.option("--expires", help="When it stops working: a duration (90d, 12h, 30m, 2w) or a date or "
                                "UTC instant (2027-03-31, 2027-03-31T12:00:00Z). Default: never.")
def token_create(name, scopes, expires):
    """Create a token and print it once (only its hash is stored)."""
    when = None
    if expires is not None:
        try:
            when = tokens.parse_expiry(expires)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--expires") from None
    with connection():
        token = tokens.create_token(name, scopes or tokens.SCOPES, expires=when)
    click.echo(token)
    if when is not None:
        click.echo(f"It expires at {when.isoformat()}Z.", err=True)
    click.echo("Store it now: it is shown only this once.", err=True)


@token_cli.command("list")
def token_list():
    """List tokens (prefix, name, scopes, state, expires, last used to the minute); never the tokens
    themselves."""

    def when(value):
        return value.isoformat(timespec="minutes") + "Z" if value else "-"

    with connection():
        click.echo("prefix\tname\tscopes\tstate\texpires\tlast_used")
        for t in tokens.list_tokens():
            click.echo(f"{t.prefix}…\t{t.name}\t{t.scopes}\t{tokens.state(t)}\t"
                       f"{when(t.expires) if t.expires else 'never'}\t{when(t.last_used)}")


TOKEN_PREFIX_LENGTH = 10  # the characters of a token that `tokens.create_token` stores as its prefix


def token_prefix(text: str) -> str:
    """The stored prefix named by ``text``: the prefix as `token list` prints it (with its ellipsis,
    `…` or `...`), without it, or the whole token (its first characters are the prefix)."""
    text = text.strip()
    for mark in ("…", "..."):
        text = text.removesuffix(mark)
    return text.strip()[:TOKEN_PREFIX_LENGTH]


@token_cli.command("revoke")
@click.argument("prefix")
def token_revoke(prefix):
    """Revoke the token with PREFIX: as `token list` shows it (`sr_Ab12Cd…`), without the ellipsis, or
    the whole token."""
    wanted = token_prefix(prefix)
    if not wanted:
        raise click.BadParameter("give the token's prefix as `token list` shows it", param_hint="PREFIX")
    with connection():
        count = tokens.revoke_token(wanted)
    if not count:
        raise click.ClickException(f"no active token with prefix {wanted} (see `study-register token list`)")
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


class _Progress:
    """A progress bar on stderr. Percent and ETA come from how far into the file the import has read: the
    position of ``stream``, the file itself, so for a .gz the compressed bytes consumed over the file's
    size. Beside them, the rows imported so far and rows/s, redrawn after each batch. The importer reads
    in a thread of its own and writes in this one, so a lock keeps the two from drawing at once. Once the
    whole file is read the bar stays at 100 % (no ETA) and says so while the last batches are written."""

    def __init__(self, stream, total: int, file=None):
        self.stream, self.rows, self.started = stream, 0, time.perf_counter()
        self.lock = threading.Lock()
        self.bar = click.progressbar(length=max(total, 1), label="importing", show_eta=True,
                                     show_percent=True, file=file or sys.stderr, width=30,
                                     item_show_func=self._info)

    def _info(self, _item) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        text = f"{self.rows:,} rows, {self.rows / elapsed:,.0f} rows/s"
        return text + (", file read, writing" if self.bar.finished else "")

    def read(self, _n: int) -> None:
        """Told that the importer read from the file: move the bar to where the file now stands."""
        try:
            position = self.stream.tell()
        except (OSError, ValueError):
            return
        with self.lock:
            step = min(position, self.bar.length) - self.bar.pos
            if step > 0:
                self.bar.update(step)

    def done(self, rows: int) -> None:
        """Told the rows imported so far (after each batch): redraw with them."""
        with self.lock:
            self.rows = rows
            self.bar.render_progress()


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="ictrp-csv (WHO ICTRP export, TrialsTracker, DIRECCT), ctgov-json (ClinicalTrials.gov "
                   "API v2: study, page or NDJSON), ris, ndjson (the register's own export), ctgov-aact-csv "
                   "(ClinicalTrials.gov, AACT `studies` columns), ictrp-xlsx (WHO ICTRP export as .xlsx), "
                   "articles-csv (regCOVID PubMed lists, LitCovid document info, DIRECCT trial-id search "
                   "hits), direcct-registrations (DIRECCT cross-registrations), direcct-results (DIRECCT "
                   "results; needs --trial-ids), direcct-registries (recognised, refused).")
@click.option("--dry-run", is_flag=True, help="Report what would change, write nothing.")
@click.option("--encoding", type=click.Choice(sorted(ENCODINGS), case_sensitive=False), default=None,
              help="Default: detected (UTF-8 with or without BOM, else Windows-1252).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--trial-ids", "trial_ids", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="direcct-results only: DIRECCT's registrations file (plain or .gz), "
                                 "which maps the DIRECCT trial ids of the results to registrations.")
@click.option("--no-suggest", "no_suggest", is_flag=True,
              help="Do not compute suggested studies for the references written (for a series of imports "
                   "followed by one `study-register suggest`).")
def import_command(path, fmt, dry_run, encoding, quiet, trial_ids, no_suggest):
    """Import FILE (plain or .gz) in one transaction and print the report as JSON.

    Importing the same file twice changes nothing the second time. Exit status 1 when the file was
    refused (nothing written); rows rejected one by one are listed in the report.
    """
    with connection():
        if migrations.current_version() < migrations.latest_version():
            raise click.ClickException("the schema is not up to date; run `study-register db upgrade`")
        if trial_ids is not None and fmt != "direcct-results":
            raise click.UsageError("--trial-ids is only for --format direcct-results")
        started = time.perf_counter()
        with path.open("rb") as stream, contextlib.ExitStack() as stack:
            options = {"trial_ids": stack.enter_context(trial_ids.open("rb"))} if trial_ids else None
            bounds = Bounds(max_bytes=current_app.config["IMPORT_MAX_UNPACKED_BYTES"],
                            max_ratio=current_app.config["IMPORT_MAX_RATIO"])
            try:
                if quiet:
                    report = import_file(stream, fmt=fmt, encoding=encoding, dry_run=dry_run,
                                         options=options, suggest=not no_suggest, bounds=bounds)
                else:
                    progress = _Progress(stream, path.stat().st_size)
                    with progress.bar:
                        report = import_file(stream, fmt=fmt, encoding=encoding, dry_run=dry_run,
                                             on_read=progress.read, on_rows=progress.done,
                                             options=options, suggest=not no_suggest, bounds=bounds)
            except ImportRefused as error:
                raise click.ClickException(f"{path}: refused, nothing imported: {error.detail}") from None
            except DomainError as error:
                raise click.ClickException(f"{path}: {error.detail}") from None
            except peewee.DatabaseError as error:  # locked, unreachable, timed out: rolled back
                said = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
                raise click.ClickException(f"{path}: the database failed ({type(error).__name__}: {said}); "
                                           f"nothing imported.") from None
    elapsed = time.perf_counter() - started
    click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    click.echo(f"{report.rows} rows in {elapsed:.1f} s ({report.rows / max(elapsed, 1e-9):,.0f} rows/s): "
               f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
               f"{len(report.rejected)} rejected, {len(report.duplicates)} duplicates"
               + (" (dry run: nothing written)" if dry_run else ""), err=True)


@click.command("reindex")
def reindex():
    """Rebuild the full-text search indexes from the records, in one transaction."""
    from .search import index

    with connection(), database.atomic():
        counted = index.rebuild()
    click.echo(f"reindexed {counted[0]} studies and {counted[1]} references")


@click.command("rederive")
def rederive():
    """Derive every study's fields again from all its sources (after a change of the rules)."""
    from .domain.derive import rederive_all

    with connection():
        changed = rederive_all()
    click.echo(f"{changed} studies changed")


@click.command("suggest")
@click.option("--reference", "reference_ids", type=click.IntRange(1), multiple=True,
              help="Only this reference (repeat for several); default: every reference with no "
                   "`reports` link.")
def suggest(reference_ids):
    """Compute the suggested studies of references with no `reports` link again (keeping curators'
    decisions); the write is one transaction."""
    from .domain.suggestions import compute

    with connection():
        if migrations.current_version() < migrations.latest_version():
            raise click.ClickException("the schema is not up to date; run `study-register db upgrade`")
        report = compute(reference_ids or None)
    click.echo(f"{report['references']} references: {report['open']} open suggestions for "
               f"{report['with_suggestions']} of them ({report['created']} new, {report['updated']} updated, "
               f"{report['removed']} removed) in {report['seconds']:.1f} s")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@with_appcontext
def backup_command(path, force):
    """Write a consistent backup of the register to PATH while the service runs (SQLite: a copy made with
    its online backup API; Postgres: `pg_dump --format=custom`)."""
    from flask import current_app

    from .backup import BackupError, backup

    try:
        size = backup(current_app.config["DATABASE_URL"], path, force=force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{path}: backup written ({size:,} bytes)", err=True)


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(path):
    """Replace the whole register by the backup PATH, in one step (SQLite: the online backup API;
    Postgres: `pg_restore --single-transaction --clean`). A failed restore changes nothing."""
    from flask import current_app

    from .backup import BackupError, restore

    try:
        restore(current_app.config["DATABASE_URL"], path)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{path}: restored", err=True)


def gunicorn_config() -> Path:
    """The register's gunicorn.conf.py: the wheel's copy inside the package, or the checkout's."""
    found = shipped_path("gunicorn.conf.py")
    if found is None:
        raise click.ClickException("gunicorn.conf.py not found (neither in the package nor beside it); "
                                   "name one with --config")
    return found


@click.command("serve", context_settings={"ignore_unknown_options": True})
@click.option("--bind", help="Address to listen on, e.g. 127.0.0.1:8080 (sets GUNICORN_BIND; "
                             "default 127.0.0.1:8000).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A gunicorn config file. Default: the register's gunicorn.conf.py "
                                 "(shipped in the package; in a checkout, the one at its top).")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(bind, config, gunicorn_args):
    """Serve the API with gunicorn and the register's gunicorn.conf.py (workers, threads, timeouts and
    limits from the environment: WEB_CONCURRENCY, GUNICORN_THREADS, ...). Further arguments go to
    gunicorn, e.g. `study-register serve --bind 0.0.0.0:8000 --log-level debug`. Run `db upgrade`
    first; gunicorn replaces this process."""
    conf = config or gunicorn_config()
    if bind:
        os.environ["GUNICORN_BIND"] = bind
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf), "--no-control-socket", *gunicorn_args,
            "service.wsgi:app"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def register_commands(app: Flask) -> None:
    app.cli.add_command(serve)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(import_command)
    app.cli.add_command(reindex)
    app.cli.add_command(rederive)
    app.cli.add_command(suggest)
    app.cli.add_command(relink)
    app.cli.add_command(db_cli)
    app.cli.add_command(token_cli)
    app.cli.add_command(seed)


def _create_app(*args, **kwargs):
    from . import create_app

    return create_app()


_DATABASE_STATES = {"busy": "busy", "timeout": "not answering in time", "unreachable": "unreachable"}


def _version() -> str:
    try:
        return metadata.version("study-register")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


class _Group(FlaskGroup):
    """The register's commands only: Flask's own (`run`, `shell`, `routes`), its options (`--app`,
    `--debug`, `--env-file`, its `--version`) and other packages' `flask.commands` plugins are left out.
    A database that is down, frozen or locked is reported in one line (exit 1)."""

    def __init__(self, **extra):
        super().__init__(create_app=_create_app, add_default_commands=False, add_version_option=False,
                         load_dotenv=False, set_debug_flag=False,
                         context_settings={"auto_envvar_prefix": None}, **extra)
        self.params = [p for p in self.params if p.name not in {"env_file", "app", "debug"}]

    def _load_plugin_commands(self) -> None:  # flask-limiter's `limiter`, ...: not ours
        self._loaded_plugin_commands = True

    def get_command(self, ctx, name):
        try:
            return super().get_command(ctx, name)
        except ConfigError as error:  # a setting the app cannot start with: one line, exit 1
            raise click.ClickException(f"configuration: {error}") from None

    def list_commands(self, ctx):
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except ConfigError as error:
            click.secho(f"Error: configuration: {error}\n", err=True, fg="red")
            return sorted(self.commands)
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (OperationalError, InterfaceError, MaxConnectionsExceeded) as error:
            text = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise click.ClickException(f"the database is {_DATABASE_STATES[problem_kind(error)]}: {text}") \
                from None


main = _Group(name="study-register", help="The study register's management commands.")
click.version_option(_version(), "--version", prog_name="study-register",
                     message="%(prog)s %(version)s")(main)
