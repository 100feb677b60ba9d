"""Signed cursors: every list that pages by cursor refuses an altered, cut, oversized, foreign-keyed,
other-list or hostile-valued cursor with a 422 naming `cursor`; keys rotate through SECRET_KEY_FALLBACKS;
a register without SECRET_KEY keeps the key it made in its database."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from itsdangerous import URLSafeSerializer

from service import create_app
from service.api import paging
from service.db import database
from service.models import RegisterState
from tests.conftest import assert_problem
from tests.helpers import create_study, reference_body
from tests.test_suggestions import register, suggest


def _cursor(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


def _with_cursor(path: str, cursor: str) -> str:
    return path + ("&" if "?" in path else "?") + "cursor=" + quote(cursor, safe="")


def _first_cursor(client, path: str, body: dict | None = None) -> str:
    url = _with_cursor(path, "*")
    response = client.post(url, json=body) if body is not None else client.get(url)
    assert response.status_code == 200, response.get_json()
    next_url = response.get_json()["next"]
    assert next_url and "cursor=" in next_url, (path, next_url)
    return _cursor(next_url)


@pytest.fixture
def lists(client, auth, seeded):
    """Every list that pages by cursor, as (GET path or POST path, body), each with two pages at least."""
    for message in ("First notice", "Second notice"):
        assert client.post("/notices", json={"message": message, "starts": "2020-01-01T00:00:00Z"},
                           headers=auth).status_code == 201
    survivor = create_study(client, auth, "NCT09999990", title="Survivor")
    for identifier in ("NCT09999991", "NCT09999992"):
        other = create_study(client, auth, identifier, title=identifier)
        assert client.post(f"/studies/{survivor['id']}/merge", json={"from": other["id"]},
                           headers=auth).status_code == 200
    searches = [client.post("/searches", json={"name": name, "q": "covid"}, headers=auth).get_json()
                for name in ("one", "two")]
    return [
        ("/studies?page_size=1", None),
        ("/studies?page_size=1&sort=-name", None),
        ("/studies?page_size=1&sort=registered", None),
        ("/studies?page_size=1&sort=-updated", None),
        ("/studies?page_size=1&q=covid", None),
        ("/studies/search", {"q": "covid", "page_size": 1}),
        ("/references?page_size=1", None),
        ("/references?page_size=1&sort=title", None),
        ("/references?page_size=1&q=covid", None),
        ("/references/search", {"q": "covid", "page_size": 1}),
        ("/notices?page_size=1", None),
        ("/studies/merged?page_size=1", None),
        ("/searches?page_size=1", None),
        (f"/searches/{searches[0]['id']}/results?page_size=1", None),
    ]


def _tampered(cursor: str) -> dict[str, str]:
    payload, _, signature = cursor.rpartition(".")
    flip = {"A": "B", "B": "A"}
    _, data = URLSafeSerializer("any").loads_unsafe(cursor)
    unsigned = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return {
        "payload altered": payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature,
        "signature altered": payload + "." + "".join(flip.get(c, "A") for c in signature[:3]) + signature[3:],
        "cut short": cursor[:-4],
        "signature dropped": payload,
        "unsigned (the old form)": unsigned,
        "signed with another key": URLSafeSerializer("not this register's key").dumps(data),
        "too long": cursor + "A" * paging.MAX_CURSOR_LENGTH,
        "empty": "",
        "not base64": "%%%.***",
        "NUL": cursor[:5] + "\0" + cursor[5:],
    }


def _assert_refuses_tampered(client, path: str, body: dict | None) -> None:
    good = _first_cursor(client, path, body)

    def fetch(cursor):
        url = _with_cursor(path, cursor)
        return client.post(url, json=body) if body is not None else client.get(url)

    assert fetch(good).status_code == 200, path
    for case, bad in _tampered(good).items():
        response = fetch(bad)
        assert response.status_code == 422, (path, case, response.get_json())
        assert_problem(response, 422, "cursor")
        assert "cursor" in response.get_json()["detail"], (path, case)


def test_every_cursor_list_refuses_tampered_cursors(client, lists):
    for path, body in lists:
        _assert_refuses_tampered(client, path, body)


def test_the_suggestion_queue_refuses_tampered_cursors(client, auth, runner):
    register(client, auth)
    suggest(runner)
    _assert_refuses_tampered(client, "/suggestions?page_size=1&sort=-score", None)
    _assert_refuses_tampered(client, "/suggestions?page_size=1&sort=created", None)


def test_a_cursor_serves_only_its_own_list(client, lists):
    cursors = {path: _first_cursor(client, path, body) for path, body in lists}
    studies, references = cursors["/studies?page_size=1"], cursors["/references?page_size=1"]
    assert_problem(client.get(_with_cursor("/references?page_size=1", studies)), 422, "cursor")
    assert_problem(client.get(_with_cursor("/notices?page_size=1", studies)), 422, "cursor")
    assert_problem(client.get(_with_cursor("/studies?page_size=1", references)), 422, "cursor")
    assert_problem(client.get(_with_cursor("/studies/merged?page_size=1", studies)), 422, "cursor")
    results = next(p for p in cursors if p.startswith("/searches/"))
    other = results.replace(results.split("/")[2], str(int(results.split("/")[2]) + 1))
    assert_problem(client.get(_with_cursor(other, cursors[results])), 422, "cursor")
    # A GET list and its POST search are one list: each one's cursor serves the other.
    from_get = cursors["/studies?page_size=1&q=covid"]
    via_post = client.post(_with_cursor("/studies/search", from_get), json={"q": "covid", "page_size": 1})
    assert via_post.status_code == 200


def _forge(app, path: str, change) -> str:
    """A cursor signed with the register's own key for ``path`` with its payload changed by ``change``."""
    with app.test_request_context(path), database.connection_context():
        signer = paging._serializer()
    # As JSON escapes, so that a lone surrogate can be written.
    return URLSafeSerializer(signer.secret_keys, salt=signer.salt,
                             serializer_kwargs={"ensure_ascii": True}).dumps(change)


HOSTILE_VALUES = {
    "integer past 64 bits": 2 ** 70,
    "negative integer past 64 bits": -(2 ** 70),
    "a float for an integer key": 1.5,
    "infinite": float("inf"),
    "not a number": float("nan"),
    "a boolean": True,
    "a string": "12",
    "a null": None,
    "a list": [1],
    "a date": {"d": "2020-01-01"},
}


@pytest.mark.parametrize("sort", ["id", "-name", "registered", "updated"])
def test_a_signed_cursor_with_values_the_sort_cannot_have_is_refused(app, client, seeded, sort):
    path = f"/studies?page_size=1&sort={sort}"
    good = _first_cursor(client, path)
    with app.test_request_context(path), database.connection_context():
        payload = paging._serializer().loads(good)
    assert client.get(_with_cursor(path, _forge(app, path, payload))).status_code == 200
    cases = {f"{name} in key {i}": [*payload["k"][:i], value, *payload["k"][i + 1:]]
             for i in range(len(payload["k"])) for name, value in HOSTILE_VALUES.items()}
    cases.update({
        "a key too many": [*payload["k"], 1], "a key too few": payload["k"][:-1], "no keys": [],
        "keys not a list": {"a": 1}, "a lone surrogate": ["\ud800", *payload["k"][1:]],
        "a NUL": ["a\0b", *payload["k"][1:]], "an impossible date": [{"d": "2020-02-30"}, *payload["k"][1:]],
        "a far date": [{"d": "99999-01-01"}, *payload["k"][1:]],
        "a date with a time": [{"d": "2020-01-01T10:00:00"}, *payload["k"][1:]],
        "an instant with a zone": [{"t": "2020-01-01T10:00:00+23:59"}, *payload["k"][1:]],
    })
    for case, keys in cases.items():
        if keys == payload["k"]:
            continue
        forged = _forge(app, path, {**payload, "k": keys})
        response = client.get(_with_cursor(path, forged))
        if case == "a string in key 0" and sort == "-name":
            assert response.status_code == 200  # a name is a string
            continue
        if case == "a date in key 0" and sort == "registered":
            assert response.status_code == 200
            continue
        assert response.status_code == 422, (sort, case, response.get_data(as_text=True))
        assert_problem(response, 422, "cursor")
    for case, change in {"another version": {"v": 2}, "another sort": {"s": "title"},
                         "other filters": {"f": "0" * 16}, "no version": {"v": None}}.items():
        response = client.get(_with_cursor(path, _forge(app, path, {**payload, **change})))
        assert response.status_code == 422, (case, response.get_json())
        assert_problem(response, 422, "cursor")
    for not_a_payload in ([1, 2], "text", 7, None):
        assert_problem(client.get(_with_cursor(path, _forge(app, path, not_a_payload))), 422, "cursor")


def _app(database_url, **settings):
    return create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **settings})


def test_keys_rotate_through_the_fallbacks(seeded, database_url):
    path = "/studies?page_size=1"
    old = _app(database_url, SECRET_KEY="old key").test_client()
    cursor = _first_cursor(old, path)
    assert old.get(_with_cursor(path, cursor)).status_code == 200
    rotated = _app(database_url, SECRET_KEY="new key",
                   SECRET_KEY_FALLBACKS="older key, old key").test_client()
    assert rotated.get(_with_cursor(path, cursor)).status_code == 200
    fresh = _first_cursor(rotated, path)
    assert fresh != cursor and old.get(_with_cursor(path, fresh)).status_code == 422
    dropped = _app(database_url, SECRET_KEY="new key").test_client()
    assert_problem(dropped.get(_with_cursor(path, cursor)), 422, "cursor")
    assert dropped.get(_with_cursor(path, fresh)).status_code == 200


def test_a_register_without_a_secret_key_keeps_the_one_it_made(seeded, database_url):
    path = "/studies?page_size=1"
    first = _app(database_url).test_client()  # one worker, or the register before a restart
    cursor = _first_cursor(first, path)
    with database.connection_context():
        stored = RegisterState.get_by_id("secret_key").value
    assert len(stored) >= 32
    second = _app(database_url).test_client()  # another worker, or after the restart
    assert second.get(_with_cursor(path, cursor)).status_code == 200
    assert _first_cursor(second, path) == cursor
    configured = _app(database_url, SECRET_KEY="configured").test_client()
    assert_problem(configured.get(_with_cursor(path, cursor)), 422, "cursor")
    # The stored key can be named as a fallback when a SECRET_KEY is first configured.
    moved = _app(database_url, SECRET_KEY="configured", SECRET_KEY_FALLBACKS=stored).test_client()
    assert moved.get(_with_cursor(path, cursor)).status_code == 200


def test_a_cursor_after_a_long_title_can_be_followed(client, auth):
    words = " ".join(f"word{n}" for n in range(250))  # 2,000 characters
    for n in range(3):
        assert client.post("/references", json=reference_body(title=f"{n} {words}", abstract=None),
                           headers=auth).status_code == 201
    page = client.get("/references?sort=title&page_size=1&cursor=*").get_json()
    seen = [page["items"][0]["id"]]
    while page["next"]:
        assert len(_cursor(page["next"])) <= paging.MAX_CURSOR_LENGTH
        response = client.get(page["next"])
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == len(set(seen)) == 3
