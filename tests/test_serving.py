"""The service as gunicorn serves it (the repo's gunicorn.conf.py): request lines too long are a problem."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.api.limits import too_long_detail
from service.api.problems import problem
from service.config import MAX_REQUEST_LINE
from tests.conftest import ROOT
from tests.helpers import HOST, free_port, raw_http

BIN = Path(sys.executable).parent


def _send(port: int, request_line: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 exchange (a request line no HTTP client library would send); the answer's status,
    headers (lower-cased names) and body."""
    return raw_http(port, request_line + b"\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n"
                    + (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
                       if body else b"") + b"\r\n" + body)


@contextlib.contextmanager
def _gunicorn(tmp_path: Path, **env: str):
    """gunicorn with the repo's gunicorn.conf.py on a free loopback port, over a migrated SQLite
    register; stopped (its whole process group) on the way out."""
    port = free_port()
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}", "LOG_LEVEL": "WARNING",
               "GUNICORN_BIND": f"{HOST}:{port}", "WEB_CONCURRENCY": "1", **env}
    subprocess.run([str(BIN / "study-register"), "db", "upgrade"], env=environ, cwd=ROOT, check=True,
                   capture_output=True)
    log = open(tmp_path / f"gunicorn-{port}.log", "w+b")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "service.wsgi:app"],
                               cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "gunicorn exited"
            with contextlib.suppress(OSError, IndexError, ValueError):
                if _send(port, b"GET /health HTTP/1.1")[0] == 200:
                    break
            assert time.monotonic() < deadline, "gunicorn did not answer /health within 30 s"
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.seek(0)
        said = log.read().decode(errors="replace")
        log.close()
        assert "Traceback" not in said, said[-3000:]


def _line(target: str) -> bytes:
    return f"GET {target} HTTP/1.1".encode()


def _assert_414(status: int, headers: dict, content: bytes, *, names: str) -> None:
    assert status == 414
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(content)
    assert problem["status"] == 414 and problem["title"] == "Request-URI Too Long"
    assert names in problem["detail"] and "8,190" in problem["detail"]


@pytest.mark.parametrize("threads", ["2", "1"], ids=["gthread", "sync"])
def test_gunicorn_answers_a_long_request_line_with_a_problem(tmp_path, threads):
    with _gunicorn(tmp_path, GUNICORN_THREADS=threads) as port:
        # Lines over gunicorn's default limit (4,094 bytes) and up to 8,190 reach the app.
        repeated = "&".join(["study_type=Interventional"] * 290)
        target = "/studies?page_size=1&" + repeated
        assert 4094 < len(_line(target)) <= MAX_REQUEST_LINE
        status, headers, content = _send(port, _line(target))
        assert status == 200 and json.loads(content)["total"] == 0
        # One byte more: gunicorn refuses it, as a problem pointing to the POST searches.
        target = "/studies?q=" + "a" * (MAX_REQUEST_LINE - len(_line("/studies?q=")) + 1)
        assert len(_line(target)) == MAX_REQUEST_LINE + 1
        _assert_414(*_send(port, _line(target)), names="POST /studies/search")
        for size in (10_000, 100_000):
            target = "/references?q=" + "remdesivir+" * (size // 11)
            status, headers, content = _send(port, _line(target)[:size])
            _assert_414(status, headers, content, names="POST /references/search")
            assert headers["access-control-allow-origin"] == "*"
        # The way round it: the same search as a body.
        strategy = '"' + " ".join(["remdesivir"] * 1500) + '" OR remdesivir'
        status, _, content = _send(port, b"POST /references/search HTTP/1.1",
                                   json.dumps({"q": strategy}).encode())
        assert status == 200 and json.loads(content)["query"].endswith("OR remdesivir")


def test_the_app_and_gunicorn_say_the_same(monkeypatch):
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["limit_request_line"] == MAX_REQUEST_LINE
    app_says = json.loads(problem(414, too_long_detail()).get_data())
    assert json.loads(conf["_TOO_LONG"]) == app_says
    assert conf["worker_class"] is conf["ProblemThreadWorker"]
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("worker_class", conf["worker_class"])
    cfg.set("threads", 2)
    assert cfg.worker_class is conf["ProblemThreadWorker"]  # used as given, not swapped for gthread


GUNICORN_REFUSALS = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400, "Invalid"),
    "bad HTTP version": (b"GET /health HTTP/9.x\r\nHost: h\r\n\r\n", 400, "HTTP"),
    "bad header name": (b"GET /health HTTP/1.1\r\nHost: h\r\nBad Header: 1\r\n\r\n", 400, "Bad Header"),
    "a header too large": (b"GET /health HTTP/1.1\r\nHost: h\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431,
                           "8,190 bytes"),
    "too many headers": (b"GET /health HTTP/1.1\r\nHost: h\r\n"
                         + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "100 header"),
    "an unknown expectation": (b"POST /studies HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n"
                               b"Content-Length: 2\r\n\r\n{}", 417, "200-ok"),
    "an unknown transfer coding": (b"POST /studies HTTP/1.1\r\nHost: h\r\n"
                                   b"Transfer-Encoding: zstd, chunked\r\n\r\n0\r\n\r\n", 501, "zstd"),
}


def test_gunicorn_answers_its_own_refusals_as_problems(tmp_path):
    with _gunicorn(tmp_path) as port:
        for name, (data, status, says) in GUNICORN_REFUSALS.items():
            got, headers, content = raw_http(port, data)
            assert (got, headers.get("content-type")) == (status, "application/problem+json"), name
            body = json.loads(content)
            assert body["status"] == status and body["title"] and says in body["detail"], (name, body)
            assert int(headers["content-length"]) == len(content), name
