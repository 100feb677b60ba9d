"""Links are relative, or absolute on PUBLIC_URL, never built from the client's Host; X-Forwarded-*
counts only from TRUSTED_PROXIES."""

from __future__ import annotations

import pytest

from service import create_app
from service.config import ConfigError, load_config
from service.db import close_all, database
from service.forwarded import TrustedProxies
from tests.conftest import _reset, make_token
from tests.helpers import study_body

HOSTILE = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
           "X-Forwarded-Prefix": "/evil", "Forwarded": "host=evil.example"}
IDS = ("NCT04280705", "NCT04315948", "NCT04292899")


@pytest.fixture
def make_client(sqlite_url):
    made = []

    def make(**settings):
        app = create_app({"DATABASE_URL": sqlite_url, "LOG_LEVEL": "WARNING", **settings})
        app.config["TESTING"] = True
        if not made:
            _reset(sqlite_url)
        made.append(app)
        return app.test_client()

    yield make
    close_all(database.obj)


def _fill(client) -> dict:
    auth = {"Authorization": f"Bearer {make_token()}"}
    locations = []
    for identifier in IDS:
        response = client.post("/studies", json=study_body(identifier), headers=auth)
        assert response.status_code == 201, response.get_json()
        locations.append(response.headers["Location"])
    return {"auth": auth, "locations": locations}


def _page(client, **environ):
    response = client.get("/studies?page_size=1", headers=HOSTILE, environ_base=environ)
    assert response.status_code == 200
    return response.get_json(), response.headers["Link"]


def test_links_are_relative_without_public_url(make_client):
    client = make_client()
    made = _fill(client)
    assert all(loc.startswith("/studies/") for loc in made["locations"])
    body, link = _page(client)
    assert body["next"].startswith("/studies?") and "page=2" in body["next"]
    assert "evil" not in link and "<http" not in link and "</studies?" in link
    # A relative `next` is followed as it is.
    assert client.get(body["next"]).get_json()["page"] == 2
    cursor = client.get("/studies?page_size=1&cursor=*", headers=HOSTILE).get_json()
    assert cursor["next"].startswith("/studies?") and "cursor=" in cursor["next"]


def test_links_are_absolute_on_public_url(make_client):
    client = make_client(PUBLIC_URL="https://register.example.org/api/")
    made = _fill(client)
    assert all(loc.startswith("https://register.example.org/api/studies/") for loc in made["locations"])
    body, link = _page(client)
    assert body["next"].startswith("https://register.example.org/api/studies?page_size=1")
    assert "evil" not in link and "<https://register.example.org/api/studies?" in link
    survivor, merged = (loc.rsplit("/", 1)[1] for loc in made["locations"][:2])
    response = client.post(f"/studies/{survivor}/merge", json={"from": int(merged)}, headers=made["auth"])
    assert response.status_code == 200, response.get_json()
    moved = client.get(f"/studies/{merged}", headers=HOSTILE)  # a merged id: 308 to the survivor
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"https://register.example.org/api/studies/{survivor}"


def test_forwarded_headers_count_only_from_trusted_proxies(make_client):
    trusting = make_client(TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    _fill(trusting)
    body, _ = _page(trusting, REMOTE_ADDR="10.1.2.3")
    assert body["next"].startswith("/evil/studies?")  # a trusted proxy's prefix is the mount point
    body, link = _page(trusting, REMOTE_ADDR="192.0.2.7")
    assert body["next"].startswith("/studies?") and "evil" not in link
    untrusting = make_client()
    body, link = _page(untrusting, REMOTE_ADDR="127.0.0.1")
    assert body["next"].startswith("/studies?") and "evil" not in link


def _seen(middleware, environ: dict) -> dict:
    got = {}

    def app(env, start_response):
        got.update(env)
        start_response("204 No Content", [])
        return [b""]

    middleware.app = app
    middleware.fixed.app = app
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "HTTP_HOST": "h", **environ}
    middleware(environ, lambda *a: None)
    return got


def test_the_middleware_sets_the_client_address_from_a_trusted_peer_only():
    middleware = TrustedProxies(None, load_config({"TRUSTED_PROXIES": "127.0.0.1 ::1"})["TRUSTED_PROXIES"])
    claims = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.9", "HTTP_X_FORWARDED_PROTO": "https",
              "HTTP_X_FORWARDED_HOST": "register.example.org"}
    seen = _seen(middleware, {"REMOTE_ADDR": "127.0.0.1", **claims})
    # One hop: the address the proxy saw (the right-most), not what the client put before it.
    assert seen["REMOTE_ADDR"] == "203.0.113.9" and seen["wsgi.url_scheme"] == "https"
    assert seen["HTTP_HOST"] == "register.example.org"
    assert _seen(middleware, {"REMOTE_ADDR": "::ffff:127.0.0.1", **claims})["REMOTE_ADDR"] == "203.0.113.9"
    seen = _seen(middleware, {"REMOTE_ADDR": "198.51.100.4", **claims})
    assert seen["REMOTE_ADDR"] == "198.51.100.4" and seen["wsgi.url_scheme"] == "http"
    assert seen["HTTP_HOST"] == "h" and not any(k.startswith("HTTP_X_FORWARDED") for k in seen)


@pytest.mark.parametrize(("name", "value"), [
    ("PUBLIC_URL", "ftp://register.example.org"), ("PUBLIC_URL", "register.example.org"),
    ("PUBLIC_URL", "https://register.example.org/?a=1"), ("TRUSTED_PROXIES", "10.0.0.0/8,nginx"),
    ("TRUSTED_PROXIES", "300.1.1.1"),
])
def test_bad_link_settings_stop_the_start(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})
