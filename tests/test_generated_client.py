"""A Python client generated from the served /openapi.json by openapi-python-client, and a developer's
typed script using it (tests/client/use_client.py): the script passes `mypy --strict` against the
generated package and runs against gunicorn serving the seeded register, with a token from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import HOST, free_port

BIN = Path(sys.executable).parent
SCRIPT = ROOT / "tests" / "client" / "use_client.py"
PACKAGE = "study_register_client"


def _run(*command: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn on a free port over a migrated, seeded SQLite register; (base URL, a write token)."""
    directory = tmp_path_factory.mktemp("served")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{directory / 'register.db'}", "LOG_LEVEL": "WARNING",
           "GUNICORN_BIND": f"{HOST}:{free_port()}", "WEB_CONCURRENCY": "1"}
    for command in (["db", "upgrade"], ["seed"]):
        done = _run(str(BIN / "study-register"), *command, env=env)
        assert done.returncode == 0, done.stderr
    created = _run(str(BIN / "study-register"), "token", "create", "--name", "generated-client", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    log = open(directory / "gunicorn.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "service.wsgi:app"],
                               cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    base = f"http://{env['GUNICORN_BIND']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "gunicorn exited"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer /health within 30 s"
                time.sleep(0.2)
        yield base, token
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def generated(server, tmp_path_factory):
    """The client generated from the served document; the folder to put on the path."""
    base, _ = server
    directory = tmp_path_factory.mktemp("client")
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as answer:
        (directory / "openapi.json").write_bytes(answer.read())
    (directory / "config.yaml").write_text(
        f"package_name_override: {PACKAGE}\npost_hooks: []\n", encoding="utf-8")
    done = _run(str(BIN / "openapi-python-client"), "generate", "--path", "openapi.json",
                "--config", "config.yaml", "--meta", "none", "--output-path", PACKAGE, cwd=directory)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (directory / PACKAGE / "api" / "exports" / "get_study_export.py").exists()
    # What it could not generate: only the import's upload bodies other than multipart (their request
    # media types are not ones the generator writes; multipart/form-data is).
    warnings = [line for line in (done.stdout + done.stderr).splitlines()
                if line.startswith("WARNING parsing")]
    assert warnings and all(line.startswith("WARNING parsing POST /imports") for line in warnings), warnings
    return directory


def test_the_typed_script_passes_mypy_strict(generated):
    env = {**os.environ, "MYPYPATH": str(generated)}
    done = _run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                str(SCRIPT), env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_typed_script_runs_against_the_service(generated, server):
    base, token = server
    env = {**os.environ, "PYTHONPATH": str(generated)}
    done = _run(sys.executable, str(SCRIPT), base, token, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "422: Invalid field" in done.stdout and "studies as CSV" in done.stdout, done.stdout


def test_generated_names_are_sane(generated):
    models = generated / PACKAGE / "models"
    sort = (models / "get_studies_sort.py").read_text(encoding="utf-8")
    assert 'UPDATED_DESC = "-updated"' in sort and "VALUE_" not in sort
    api = {p.stem for p in (generated / PACKAGE / "api").rglob("*.py")}
    assert {"get_studies", "get_study_by_id", "post_references", "get_study_export",
            "get_reference_export"} <= api
