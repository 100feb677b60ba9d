"""More than one app host: two replicas (gunicorn each) behind nginx, sharing Postgres and Redis, as
docker-compose.replicas.yml runs them. The cache is shared, a write through either is seen by both at
once, and a replica that goes down is passed over."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from service.db import close_all, database
from service.proxy import render_nginx_conf
from tests.conftest import IN_CI, make_token
from tests.helpers import HOST, free_port, served
from tests.test_rate_limits import redis_url  # noqa: F401 - the fixture: Redis required in CI

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
if not Path(NGINX).exists():
    if IN_CI:
        raise RuntimeError("nginx is not installed; CI needs it (.ci/run installs it)")
    pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)", allow_module_level=True)


def _request(port: int, method: str, path: str, body: dict | None = None,
             headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={**({"Content-Type": "application/json"} if body is not None else {}),
                              **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def balancer(upstreams: list[int]):
    """nginx (the image's docker/nginx.conf) in front of ``upstreams``, round-robin; yields its port."""
    run_dir = Path(tempfile.mkdtemp(prefix="nginx-replicas-"))
    run_dir.chmod(0o755)
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(render_nginx_conf(listen=f"{HOST}:{port}", run_dir=run_dir, max_body=1 << 20, workers="1",
                                      upstream=",".join(f"{HOST}:{p}" for p in upstreams)))
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-e", "stderr"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if _request(port, "GET", "/health")[0] == 200:
                    break
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield port
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_replicas_behind_nginx_share_postgres_and_redis(database_url, seeded, redis_url):  # noqa: F811
    auth = {"Authorization": f"Bearer {make_token()}"}
    close_all(database.obj)
    settings = {"REDIS_URL": redis_url, "RATE_LIMITS": "off"}
    with contextlib.ExitStack() as first_replica, \
            served(database_url, threads=2, **settings) as second:
        first = first_replica.enter_context(served(database_url, threads=2, **settings))
        with balancer([first, second]) as port:
            # The cache is shared: what one replica built, the other serves from Redis (asked for the
            # same host, as a balancer passes it on; the host is part of an entry's key).
            same_host = {"Host": "register.example"}
            assert _request(first, "GET", "/studies/2", headers=same_host)[1]["x-cache"] == "miss"
            assert _request(second, "GET", "/studies/2", headers=same_host)[1]["x-cache"] == "hit"
            # Through the balancer both replicas answer (round-robin); each answer is the same.
            bodies = {_request(port, "GET", "/studies?page_size=5")[2] for _ in range(6)}
            assert len(bodies) == 1
            # A write through the balancer is seen at once by both replicas, and through the balancer.
            status, _, _ = _request(port, "PATCH", "/studies/2", {"title": "Retitled behind nginx"}, auth)
            assert status == 200
            for replica in (first, second):
                status, headers, body = _request(replica, "GET", "/studies/2")
                assert status == 200 and json.loads(body)["title"] == "Retitled behind nginx"
            titles = {json.loads(_request(port, "GET", "/studies/2")[2])["title"] for _ in range(6)}
            assert titles == {"Retitled behind nginx"}
            # One replica goes down: nginx passes its share to the other; no read fails.
            first_replica.close()
            statuses = [_request(port, "GET", f"/studies/{i}")[0] for i in (1, 2, 3, 1, 2, 3)]
            assert statuses == [200] * 6
            assert _request(port, "GET", "/health")[0] == 200
