"""CLI commands: tokens through Flask's runner; `study-register` itself (help, version, `python -m service`,
configuration errors) as a process; the import progress bar over the real reading code."""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from service.cli import _Progress
from service.db import database
from service.formats.reading import open_text
from service.models import ApiToken
from tests.conftest import assert_problem
from tests.helpers import study_body


def test_token_create_prints_a_working_token_once_and_stores_only_its_hash(runner, client):
    result = runner.invoke(args=["token", "create", "--name", "curator", "--scope", "studies"])
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("sr_") and len(token) > 40
    with database.connection_context():
        stored = ApiToken.get()
    assert token not in (stored.token_hash, stored.prefix, stored.name) and len(stored.token_hash) == 64
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/studies", json=study_body(), headers=headers).status_code == 201
    assert_problem(client.post("/notices", json={"message": "x"}, headers=headers), 403)

    listing = runner.invoke(args=["token", "list"])
    assert "curator" in listing.output and token not in listing.output
    revoked = runner.invoke(args=["token", "revoke", stored.prefix])
    assert revoked.exit_code == 0
    assert_problem(client.post("/studies", json=study_body("NCT04280705"), headers=headers), 401)
    assert runner.invoke(args=["token", "revoke", "nope"]).exit_code != 0


def test_token_scope_must_be_known(runner):
    result = runner.invoke(args=["token", "create", "--name", "x", "--scope", "admin"])
    assert result.exit_code != 0


def test_token_revoke_takes_the_prefix_as_token_list_prints_it(runner, client):
    token = runner.invoke(args=["token", "create", "--name", "ci"]).stdout.strip().splitlines()[0]
    listing = runner.invoke(args=["token", "list"]).output.splitlines()
    shown = next(line.split("\t")[0] for line in listing[1:] if "\tci\t" in line)
    assert shown.endswith("…") and token.startswith(shown[:-1])
    revoked = runner.invoke(args=["token", "revoke", shown])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked 1 token(s)" in revoked.output
    assert_problem(client.post("/studies", json=study_body(), headers={"Authorization": f"Bearer {token}"}),
                   401)
    again = runner.invoke(args=["token", "revoke", shown])  # revoked already: nothing active matches
    assert again.exit_code == 1 and f"no active token with prefix {shown[:-1]}" in again.output


def test_token_revoke_takes_three_dots_or_the_whole_token(runner):
    first = runner.invoke(args=["token", "create", "--name", "a"]).stdout.strip().splitlines()[0]
    second = runner.invoke(args=["token", "create", "--name", "b"]).stdout.strip().splitlines()[0]
    assert runner.invoke(args=["token", "revoke", first[:10] + "..."]).exit_code == 0
    assert runner.invoke(args=["token", "revoke", second]).exit_code == 0
    states = runner.invoke(args=["token", "list"]).output
    assert states.count("\trevoked\t") == 2, states


def _cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", **env}
    return subprocess.run([sys.executable, "-m", "service", *args], env=environ, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def test_help_lists_only_the_registers_commands_and_options(tmp_path):
    result = _cli("--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\S+)", result.stdout.split("Commands:")[1], re.M)
    assert sorted(commands) == ["backup", "db", "import", "openapi", "rederive", "reindex", "relink",
                                "restore", "seed", "serve", "suggest", "token"]
    options = result.stdout.split("Options:")[1].split("Commands:")[0]
    assert re.findall(r"^\s+(-\S+)", options, re.M) == ["--version", "--help"]
    for flask_own in ("--app", "--debug", "--env-file", "routes", "shell", "limiter"):
        assert flask_own not in result.stdout
    assert result.stdout.startswith("Usage: study-register ")


def test_version_is_the_registers_and_python_dash_m_service_runs_the_cli(tmp_path):
    result = _cli("--version", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"study-register {metadata.version('study-register')}"
    assert "Flask" not in result.stdout and "Python" not in result.stdout
    status = _cli("db", "status", tmp_path=tmp_path)
    assert status.returncode == 0, status.stderr
    assert re.fullmatch(r"schema version 0 of \d+ \(pending\)", status.stdout.strip())


def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path):
    result = _cli("db", "status", tmp_path=tmp_path, DATABASE_URL="mysql://localhost/x")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: configuration: DATABASE_URL scheme 'mysql' is not supported; use one of sqlite, postgres, "
        "postgresql, postgres+pool, postgresql+pool"]


def test_seed_finds_the_registers_seeds_from_any_folder(tmp_path):
    assert _cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    result = _cli("seed", tmp_path=tmp_path)  # cwd has no seeds/: the checkout's are found
    assert result.returncode == 0, result.stderr
    assert re.match(r"loaded 2 file\(s\): studies \d+ created", result.stdout)
    missing = _cli("seed", "--dir", str(tmp_path / "none"), tmp_path=tmp_path)
    assert missing.returncode != 0 and "no seed files" in missing.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _frames(terminal: _Terminal) -> list[tuple[int, str]]:
    """Each redraw of the bar: its percent and its info text."""
    frames = []
    for line in re.split(r"\r", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())):
        match = re.match(r"importing\s+\[[#-]+\]\s+(\d+)%\s*(.*)", line.strip())
        if match:
            frames.append((int(match[1]), match[2].strip()))
    return frames


@pytest.mark.parametrize("compressed", [False, True])
def test_progress_moves_with_the_file_position_and_shows_rows(tmp_path, compressed):
    """Percent from how far into the file the reader is (for .gz: compressed bytes consumed over the
    compressed size, not the unpacked text), the rows and rows/s redrawn after each batch."""
    rng = random.Random(14)
    lines = [f"{i},{rng.getrandbits(256):064x}\n" for i in range(40_000)]  # ~2.8 MB, ~1.4 MB gzipped
    data = "".join(lines).encode()
    path = tmp_path / ("rows.csv.gz" if compressed else "rows.csv")
    path.write_bytes(gzip.compress(data) if compressed else data)
    size = path.stat().st_size
    terminal = _Terminal()
    with path.open("rb") as stream:
        progress = _Progress(stream, size, file=terminal)
        with progress.bar, open_text(stream, on_read=progress.read) as (text, _):
            seen = []
            for count, _line in enumerate(text, 1):
                if count % 5_000 == 0:
                    progress.done(count)
                    seen.append((count, stream.tell() * 100 // size))
            progress.done(count)
    frames = _frames(terminal)
    percents = [p for p, _ in frames]
    assert percents == sorted(percents) and percents[-1] == 100
    assert len(set(percents)) >= 10  # it moved, in steps
    # At each batch the bar shows the file's position (compressed bytes for the .gz), with the rows.
    for rows, percent in seen:
        shown = [p for p, info in frames if info.startswith(f"{rows:,} rows, ")]
        assert shown and shown[0] == percent, (rows, percent, shown)
    assert seen[0][1] < 30  # 5,000 of 40,000 rows read: far from done, for the .gz too
    assert frames[-1][1].startswith("40,000 rows, ") and frames[-1][1].endswith("file read, writing")


def test_import_shows_its_progress_bar_label_and_report(runner, tmp_path):
    fixture = Path(__file__).parent / "fixtures" / "ictrp_trialstracker_25.csv"
    path = tmp_path / "tt.csv.gz"
    path.write_bytes(gzip.compress(fixture.read_bytes()))
    result = runner.invoke(args=["import", str(path), "--format", "ictrp-csv", "--no-suggest"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("importing")  # not a terminal: click writes the label once
    assert re.search(r"^9 rows in [\d.]+ s \([\d,]+ rows/s\): 8 created", result.stderr, re.M)


class _File:
    """A file whose position the test sets."""

    def __init__(self):
        self.position = 0

    def tell(self) -> int:
        return self.position


def test_progress_eta_and_rate_come_from_the_bytes_and_rows_so_far(monkeypatch):
    import types

    import click._termui_impl

    clock = [1000.0]
    monkeypatch.setattr(click._termui_impl, "time", types.SimpleNamespace(time=lambda: clock[0]))
    monkeypatch.setattr("service.cli.time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    stream, terminal = _File(), _Terminal()
    progress = _Progress(stream, 4_000_000, file=terminal)
    with progress.bar:
        clock[0] += 10  # a quarter of the file in 10 s: 30 s to go
        stream.position = 1_000_000
        progress.read(65_536)
        progress.done(2_500)
        clock[0] += 30
        stream.position = 4_000_000
        progress.read(65_536)
        progress.done(10_000)
    frames = _frames(terminal)
    assert (25, "00:00:30  2,500 rows, 250 rows/s") in frames, frames
    assert frames[-1] == (100, "10,000 rows, 250 rows/s, file read, writing")


def test_serve_from_a_checkout_uses_its_gunicorn_conf(tmp_path):
    import json
    import time
    import urllib.request

    from tests.helpers import free_port

    assert _cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    server = subprocess.Popen([sys.executable, "-m", "service", "serve", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1"], env=environ, cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert json.load(response) == {"status": "ok", "database": "ok"}
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail("no answer from study-register serve")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    served = (tmp_path / "serve.log").read_text()
    assert "Using worker: ProblemThreadWorker" in served, served  # gunicorn.conf.py's worker class
    assert f"Listening at: http://127.0.0.1:{port}" in served
