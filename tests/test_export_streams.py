"""Exports under load: at most EXPORT_STREAMS stream at once in a process; one more is answered 503 with
Retry-After before it reads anything, and a slot comes back when its stream ends, fails or is closed."""

from __future__ import annotations

import json
import threading

import pytest

from service.config import ConfigError, load_config
from service.domain import exports
from tests.conftest import assert_problem

EXPORTS = ["/references?format=ndjson", "/studies?format=csv", "/references/export?format=ris",
           "/studies/export?format=fhir"]


@pytest.fixture
def one_stream(app):
    app.config.update(EXPORT_STREAMS=1, RATE_LIMITS_ENABLED=False)
    return app


def test_the_default_leaves_a_worker_thread_to_reads():
    assert load_config({})["EXPORT_STREAMS"] == 1  # gunicorn.conf.py's 2 threads
    assert load_config({"GUNICORN_THREADS": "4"})["EXPORT_STREAMS"] == 3
    assert load_config({"GUNICORN_THREADS": "4", "EXPORT_STREAMS": "4"})["EXPORT_STREAMS"] == 4
    assert load_config({})["EXPORT_RETRY_AFTER"] == 10
    for environ in ({"EXPORT_STREAMS": "0"}, {"EXPORT_STREAMS": "some"}, {"EXPORT_RETRY_AFTER": "0"}):
        with pytest.raises(ConfigError, match=next(iter(environ))):
            load_config(environ)


class Held:
    """An export requested in a thread of its own, as a server's worker thread serves it (the database
    connection is the thread's): counted and started, its stream left unread until ``finish``."""

    def __init__(self, client, path: str):
        self._go, self._started = threading.Event(), threading.Event()
        self.response, self.lines, self.error = None, None, None
        self._thread = threading.Thread(target=self._run, args=(client, path))
        self._thread.start()
        assert self._started.wait(30)

    def _run(self, client, path: str) -> None:
        try:
            self.response = client.get(path, buffered=False)
        except Exception as error:  # noqa: BLE001 (the test looks at it)
            self.error = error
            return
        finally:
            self._started.set()
        self._go.wait(30)
        try:
            if self.read:
                self.lines = self.response.get_data(as_text=True).splitlines()
        except Exception as error:  # noqa: BLE001
            self.error = error
        finally:
            self.response.close()

    def finish(self, read: bool = True) -> None:
        self.read = read
        self._go.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


@pytest.mark.parametrize("busy_path", EXPORTS)
def test_an_export_past_the_streams_is_refused_while_reads_go_on(one_stream, client, seeded, busy_path):
    held = Held(client, "/references?format=ndjson")  # counted, its stream not read
    assert held.response.status_code == 200
    refused = client.get(busy_path)
    body = assert_problem(refused, 503)
    assert refused.headers["Retry-After"] == "10" and body["busy"] == "exports"
    assert "(1)" in body["detail"] and "cursor=*" in body["detail"]
    assert client.get("/studies").status_code == 200  # pages are not export streams
    assert client.get("/studies/1").status_code == 200
    held.finish()  # the held stream runs to its end
    assert len(held.lines) == int(held.response.headers["X-Total-Count"]) > 0
    again = client.get(busy_path)
    assert again.status_code == 200 and again.get_data()


def test_a_closed_stream_gives_its_slot_back_unread(one_stream, client, seeded):
    first = Held(client, "/studies?format=ndjson")
    assert first.response.status_code == 200
    assert client.get("/studies?format=ndjson").status_code == 503
    first.finish(read=False)  # the client went away: the WSGI server closes the iterable
    assert client.get("/studies?format=ndjson").status_code == 200


def test_a_stream_that_fails_gives_its_slot_back(one_stream, client, seeded, monkeypatch):
    def failing(query, keys, **kwargs):
        raise RuntimeError("the database went away mid-export")
        yield  # a generator, as keyset_batches is

    monkeypatch.setattr(exports, "keyset_batches", failing)
    broken = Held(client, "/references?format=ndjson")  # fails as the test client starts the stream
    broken.finish()
    assert isinstance(broken.error, RuntimeError)
    monkeypatch.undo()
    answer = client.get("/references?format=ndjson")
    assert answer.status_code == 200
    assert all(json.loads(line)["id"] for line in answer.get_data(as_text=True).splitlines())


def test_streams_allowed_stream_together(app, client, seeded):
    app.config.update(EXPORT_STREAMS=2, RATE_LIMITS_ENABLED=False)
    first, second = Held(client, "/studies?format=ndjson"), Held(client, "/references?format=ris")
    assert first.response.status_code == second.response.status_code == 200
    assert client.get("/references?format=csv").status_code == 503
    first.finish(read=False)
    assert client.get("/references?format=csv").status_code == 200
    second.finish()
    assert second.lines
