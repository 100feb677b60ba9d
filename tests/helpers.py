"""Small builders shared by the scenario tests: real-looking records, created through the API; and the
raw loopback HTTP the serving tests speak to gunicorn and nginx."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on (once this returns)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextlib.contextmanager
def served(url: str, *, threads: int, workers: int = 1, **settings: str):
    """The service under gunicorn (the repo's gunicorn.conf.py) on a free port: ``workers`` workers of
    ``threads`` threads each, on the database at ``url``; stopped on exit. Yields the port."""
    root = Path(__file__).resolve().parent.parent
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "GUNICORN_BIND": f"{HOST}:{port}",
           "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads), **settings}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"),
                               "service.wsgi:app"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        end = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _status(port, "/health") == 200:
                    break
            assert time.monotonic() < end and server.poll() is None, "gunicorn did not start"
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def raw_http(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is and read until the server closes; the answer's status, headers (lower-cased
    names) and body."""
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, content

CHICTR_TITLE = ("A study for the key technology of mesenchymal stem cells exosomes atomization in the "
                "treatment of novel coronavirus pneumonia (COVID-19)")


def study_body(identifier: str = "ChiCTR2000030261", **overrides) -> dict:
    body = {"title": CHICTR_TITLE, "registrations": [{"identifier": identifier}],
            "study_type": "Interventional", "study_aim": "Treatment and Management",
            "study_design": "Parallel/Crossover", "intervention_assignment": "Unclear"}
    body.update(overrides)
    return body


def reference_body(**overrides) -> dict:
    body = {"type": "journal_article",
            "title": "Nebulization Therapy with Umbilical Cord Mesenchymal Stem Cell-Derived "
                     "Exosomes for COVID-19 Pneumonia",
            "authors": ["Chu M", "Wang H", "Bian L", "Huang J", "Wu D", "Zhang R", "Fei F",
                        "Chen Y", "Xia J"],
            "abstract": "TRIAL REGISTRATION: Chinese Clinical Trial Registry, ChiCTR2000030261.",
            "has_results": True}
    body.update(overrides)
    return body


def create_study(client, auth, identifier: str = "ChiCTR2000030261", **overrides) -> dict:
    response = client.post("/studies", json=study_body(identifier, **overrides), headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_reference(client, auth, **overrides) -> dict:
    response = client.post("/references", json=reference_body(**overrides), headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def all_items(client, path: str) -> list[dict]:
    """Every record of a JSON list, walked with its cursor."""
    items, url = [], path + ("&" if "?" in path else "?") + "page_size=100&cursor=*"
    while url:
        body = client.get(url).get_json()
        items += body["items"]
        url = body["next"]
    return items


def count(client, path: str) -> int:
    return client.get(path).get_json()["total"]


def queries_of(client, path: str) -> int:
    """The statements one `GET path` runs (peewee's query log); the answer must be a 200."""
    from playhouse.test_utils import count_queries

    with count_queries() as counter:
        response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return counter.count


NODE_MODULES = Path(__file__).parent / "node" / "node_modules"
NODE_BIN = NODE_MODULES / ".bin"


def node_file(path: Path, name: str) -> Path:
    """A file tests/node/package.json installs (`make test` runs npm ci): fails in CI when absent,
    skips elsewhere."""
    import pytest

    if not path.exists():
        message = f"{name} is not installed: run `make test` (npm ci --prefix tests/node)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: " + message)
        pytest.skip(message)
    return path


def node_tool(name: str) -> Path:
    """A command of tests/node/package.json."""
    return node_file(NODE_BIN / name, name)


def axe_problems(page) -> list[str]:
    """Serious or critical axe-core violations on a Playwright page as it is now (axe-core from
    tests/node)."""
    axe = node_file(NODE_MODULES / "axe-core" / "axe.min.js", "axe-core")
    page.add_script_tag(path=str(axe))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
