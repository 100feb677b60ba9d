"""The container's stack (boot.sh: nginx in front of gunicorn) under slow clients, and nginx's own answers.

bench/slow_clients.py measures the full counts (64 slow headers, 64 slow bodies, 16 slow readers) beside
gunicorn alone; here fewer, with a generous bound, through the real stack over a filled SQLite register.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench.slow_clients import HOST, get, probe, stack, under_attack
from service.proxy import render_nginx_conf
from tests.conftest import ROOT
from tests.helpers import free_port, raw_http

N_STUDIES = 1500
MAX_BODY = 2_000_000

if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
    if os.environ.get("CI"):
        raise RuntimeError("nginx is not installed; CI needs it (.ci/run installs it)")
    pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow-clients")
    database = folder / "register.db"
    # The register's texts come from the test fixtures (excerpts of ../shared/data), laid out as
    # bench/fill.py reads the shared data: a clean clone needs nothing beside it.
    data = folder / "data"
    fixtures = ROOT / "tests" / "fixtures"
    for source, target in (("claims_who.csv", "trials/who.csv.gz"),
                           ("ctgov_aact_studies.csv", "trials/aact.csv.gz"),
                           ("articles_regcovid_int.csv", "articles/regcovid_publications_int.csv.gz"),
                           ("articles_litcovid.csv", "articles/litcovid_longcovid_doc_all_info.csv.gz")):
        (data / target).parent.mkdir(parents=True, exist_ok=True)
        (data / target).write_bytes(gzip.compress((fixtures / source).read_bytes()))
    subprocess.run([sys.executable, str(ROOT / "bench" / "fill.py"), "--database-url", f"sqlite:///{database}",
                    "--n", str(N_STUDIES), "--migrate", "--data", str(data)], cwd=ROOT, check=True,
                   capture_output=True)
    return folder, f"sqlite:///{database}"


@pytest.fixture(scope="module")
def proxied(filled):
    folder, url = filled
    with stack(url, serve_with="nginx", log_dir=folder, MAX_IMPORT_BYTES=str(MAX_BODY)) as port:
        yield port


def test_slow_clients_do_not_starve_others(proxied):
    counts = {"header": 16, "body": 16, "reader": 4}
    seen = under_attack(proxied, counts, seconds=6, n_studies=N_STUDIES)
    for kind, n in counts.items():
        assert seen["slow_clients"][kind]["opened"] >= n, seen["slow_clients"]
    assert seen["slow_clients"]["reader"]["read"] > 0  # the exports were answered, slowly read
    for path, figures in seen["latency"].items():
        assert figures["requests"] >= 20 and figures["failed"] == 0, (path, figures)
        # Starved, a probe waits out its 5 s timeout (test_gunicorn_alone_... below); held, p99 is tens
        # of ms. The 200 ms is measured by `make bench-slow`; here the bound leaves room for a
        # machine loaded by other work (376 ms seen once at load average 6) so the test fails on
        # starvation, not on noise.
        assert figures["p99_ms"] < 1000, (path, figures)


NGINX_REFUSALS = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "request line too long": (b"GET /studies?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    "a header too large": (b"GET /health HTTP/1.1\r\nHost: h\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
    "a body too large": (b"POST /imports?format=ris HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"
                         % (MAX_BODY + 1), 413),
}


@pytest.mark.parametrize("case", NGINX_REFUSALS)
def test_nginx_answers_its_own_refusals_as_problems(proxied, case):
    data, status = NGINX_REFUSALS[case]
    got, headers, content = raw_http(proxied, data)
    assert (got, headers.get("content-type")) == (status, "application/problem+json")
    body = json.loads(content)
    assert body["status"] == status and body["title"] and body["detail"]
    assert "nginx" not in content.decode() and "nginx/" not in headers.get("server", "")  # no version


def test_the_apps_own_problems_pass_through(proxied):
    status, headers, content = raw_http(proxied, b"GET /studies?page_size=abc HTTP/1.1\r\nHost: h\r\n"
                                              b"Connection: close\r\n\r\n")
    assert (status, headers["content-type"]) == (422, "application/problem+json")
    assert "page_size" in json.loads(content)["errors"]


def test_links_through_nginx_ignore_what_the_client_claims(proxied):
    status, _, content = raw_http(proxied, b"GET /studies?page_size=1 HTTP/1.1\r\nHost: evil.example\r\n"
                                       b"X-Forwarded-Host: evil.example\r\nX-Forwarded-Prefix: /evil\r\n"
                                       b"Connection: close\r\n\r\n")
    assert status == 200
    assert json.loads(content)["next"].startswith("/studies?page_size=1")


def test_nginx_answers_502_as_a_problem_when_gunicorn_is_down(tmp_path):
    run_dir = Path(tempfile.mkdtemp(prefix="nginx-run-"))
    run_dir.chmod(0o755)
    port = free_port()
    closed = free_port()  # nothing listens here
    conf = run_dir / "nginx.conf"
    conf.write_text(render_nginx_conf(listen=f"{HOST}:{port}", upstream=f"{HOST}:{closed}", run_dir=run_dir,
                                      max_body=MAX_BODY, workers="1"))
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-e", "stderr"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, content = get(port, "/health", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        assert status == 502 and json.loads(content)["status"] == 502
        status, headers, _ = raw_http(port, b"GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert headers["content-type"] == "application/problem+json"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        shutil.rmtree(run_dir, ignore_errors=True)


def test_the_service_stops_when_nginx_dies(filled):
    """boot.sh watches nginx: without it gunicorn is stopped, and exits 1 (the container exits as failed and
    is restarted, by an on-failure restart policy too)."""
    folder, url = filled
    info: dict = {}
    with stack(url, serve_with="nginx", log_dir=folder, info=info):
        master = int((info["run_dir"] / "nginx.pid").read_text())
        os.kill(master, signal.SIGTERM)
        # gunicorn, PID of boot.sh after its exec, has left
        assert info["process"].wait(timeout=30) == 1


def _long_gunicorn(main: int) -> int:
    """The gunicorn for exports and imports: boot.sh's child started before LONG_GUNICORN_PID was set."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == main and b"gunicorn" in cmdline and b"LONG_GUNICORN_PID=" not in environ:
            return int(entry.name)
    raise AssertionError("no gunicorn for exports and imports under boot.sh")


def test_a_plain_stop_exits_0_and_stops_the_second_gunicorn(filled):
    """`docker stop` sends SIGTERM to gunicorn (PID 1): an orderly stop, exit 0; the gunicorn for exports
    and imports is stopped gracefully before it (not left to the container's end, a SIGKILL)."""
    folder, url = filled
    info: dict = {}
    with stack(url, serve_with="nginx", log_dir=folder, info=info):
        long_pid = _long_gunicorn(info["process"].pid)
        info["process"].send_signal(signal.SIGTERM)
        assert info["process"].wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(long_pid, 0)


def test_gunicorn_alone_is_what_slow_clients_take_down(filled):
    """The baseline, as the issue found it: gunicorn serving alone (SERVE_WITH=gunicorn) has 2 x 2
    threads; the same slow clients hold them all and /health stops answering."""
    folder, url = filled
    with stack(url, serve_with="gunicorn", log_dir=folder) as port:
        assert probe(port, 1, N_STUDIES)["/health"]["failed"] == 0
        seen = under_attack(port, {"header": 16, "body": 16, "reader": 4}, seconds=6, n_studies=N_STUDIES)
    assert seen["latency"]["/health"]["failed"] > 0
