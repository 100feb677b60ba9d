"""The package as a user gets it: the wheel built from this checkout, installed in a fresh venv (no
checkout on its path), migrates, seeds from the seed files it ships, serves with the gunicorn config it
ships, and is SQLite-only unless the `postgres` extra is installed.

pip resolves the dependencies as everywhere else in the project: the index and find-links of the
machine's pip configuration (PIP_* / pip.conf; on the project's machines local mirrors, so no network is
needed). Takes about a minute (most of it installing the dependencies into the fresh venv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         "-w", out, ROOT, timeout=600)
    (built,) = out.glob("study_register-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel (no extras) installed: its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", venv, timeout=300)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel,
         timeout=900)
    return venv / "bin"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL")}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp_path}/register.db", **extra}


def test_the_wheel_ships_every_seed_file_and_the_gunicorn_config(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for seed in sorted((ROOT / "seeds").glob("*.json")):
            assert f"service/seeds/{seed.name}" in names, f"{seed.name} is not in the wheel"
            assert archive.read(f"service/seeds/{seed.name}") == seed.read_bytes()
        assert archive.read("service/gunicorn.conf.py") == (ROOT / "gunicorn.conf.py").read_bytes()
        assert "service/__main__.py" in names
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    psycopg = [line.replace('"', "'") for line in requires if "psycopg2" in line]
    assert any(line.endswith("; extra == 'postgres'") for line in psycopg), requires
    assert all("; extra == " in line for line in psycopg), psycopg  # never without an extra


def test_installed_wheel_migrates_seeds_and_serves(wheel, installed, tmp_path):
    env = _env(tmp_path)
    run = {"env": env, "cwd": tmp_path, "timeout": 120}  # no checkout here: only what the wheel has
    where = _run(installed / "python", "-c", "import service; print(service.__file__)", **run).stdout
    assert where.strip().startswith(str(installed.parent)), where
    version = f"study-register {wheel.name.split('-')[1]}"
    assert _run(installed / "study-register", "--version", **run).stdout.strip() == version
    assert _run(installed / "python", "-m", "service", "--version", **run).stdout.strip() == version
    _run(installed / "study-register", "db", "upgrade", **run)
    seeded = _run(installed / "study-register", "seed", **run).stdout
    assert seeded.startswith("loaded 2 file(s): studies 36 created"), seeded
    first = json.loads((ROOT / "seeds" / "ccsr-seed.json").read_text(encoding="utf-8"))["studies"][0]
    identifier = first["registrations"][0]["identifier"]

    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([installed / "study-register", "serve", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = None
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    health = json.load(response)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert health == {"status": "ok", "database": "ok"}
        url = f"http://127.0.0.1:{port}/studies?registration={identifier.lower()}&include=references"
        with urllib.request.urlopen(url, timeout=10) as response:
            found = json.load(response)
        items = found["items"] if isinstance(found, dict) else found
        assert [s["name"] for s in items] == [first["name"]]
        assert items[0]["references"], items[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    served = (tmp_path / "serve.log").read_text()
    assert "Using worker: ProblemThreadWorker" in served  # the shipped gunicorn.conf.py was read


def test_default_install_is_sqlite_only_and_names_the_postgres_extra(installed, tmp_path):
    env = _env(tmp_path, DATABASE_URL="postgresql://register@127.0.0.1:5432/register")
    missing = subprocess.run([installed / "python", "-c", "import psycopg2"], capture_output=True)
    assert missing.returncode != 0
    result = subprocess.run([installed / "study-register", "db", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: configuration: DATABASE_URL names PostgreSQL, but its driver "
                                     "psycopg2 is not installed: pip install 'study-register[postgres]'")
    served = subprocess.run([installed / "python", "-c", "import service.wsgi"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert served.returncode != 0 and "pip install 'study-register[postgres]'" in served.stderr
