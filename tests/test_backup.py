"""`study-register backup FILE` / `restore FILE`: a consistent copy while writes go on, restored whole;
refusals are one clear line and change nothing."""

from __future__ import annotations

import threading

import pytest

from service.db import database
from service.domain.notices import create_notice


def _notices(client) -> list[str]:
    messages, path = [], "/notices?status=all&page_size=100&sort=id"
    while path:
        page = client.get(path)
        assert page.status_code == 200, page.get_data(as_text=True)
        messages += [n["message"] for n in page.get_json()["items"]]
        path = page.get_json().get("next")
    return messages


def _writes_until(stop: threading.Event, written: list[int]) -> None:
    """Notices "load 1", "load 2"... one transaction each, until ``stop``."""
    with database.connection_context():
        while not stop.is_set():
            create_notice({"message": f"load {len(written) + 1}", "starts": None, "ends": None})
            written.append(len(written) + 1)


def test_backup_and_restore_round_trip_under_write_load(app, client, runner, seeded, auth, tmp_path):
    studies_before = client.get("/studies?page_size=100").get_json()
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_writes_until, args=(stop, written))
    writer.start()
    try:
        while len(written) < 5:  # writes are going on when the backup starts
            threading.Event().wait(0.01)
        result = runner.invoke(args=["backup", str(tmp_path / "register.backup")])
        at_backup_end = len(written)
        while len(written) < at_backup_end + 5:  # and after it
            threading.Event().wait(0.01)
    finally:
        stop.set()
        writer.join(30)
    assert result.exit_code == 0, result.output
    after_backup = _notices(client)
    assert len([m for m in after_backup if m.startswith("load ")]) == len(written)

    restored = runner.invoke(args=["restore", str(tmp_path / "register.backup")])
    assert restored.exit_code == 0, restored.output
    loads = [m for m in _notices(client) if m.startswith("load ")]
    # One snapshot: the writes committed before some instant inside the backup, none after, no gap.
    assert 5 <= len(loads) <= at_backup_end
    assert loads == [f"load {n}" for n in range(1, len(loads) + 1)]
    assert client.get("/studies?page_size=100").get_json() == studies_before
    # The register takes writes again, with ids past the restored ones.
    created = client.post("/notices", json={"message": "after restore"}, headers=auth)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert _notices(client)[-1] == "after restore"


def test_backup_refuses_an_existing_file_without_force(runner, seeded, tmp_path):
    target = tmp_path / "register.backup"
    target.write_text("keep me")
    refused = runner.invoke(args=["backup", str(target)])
    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: {target} exists; give --force to overwrite it"
    assert target.read_text() == "keep me"
    forced = runner.invoke(args=["backup", "--force", str(target)])
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes()[:5] in (b"SQLit", b"PGDMP")


@pytest.mark.parametrize("content", [b"not a backup at all\n", b"SQLite format 3\x00" + b"\x00" * 200,
                                     b"PGDMP" + b"\x00" * 200])
def test_restore_refuses_a_file_of_the_wrong_kind_and_changes_nothing(client, runner, seeded, tmp_path,
                                                                      content):
    before = client.get("/studies?page_size=100").get_json()
    source = tmp_path / "wrong.backup"
    source.write_bytes(content)
    refused = runner.invoke(args=["restore", str(source)])
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {source} ") and "Traceback" not in refused.output
    assert client.get("/studies?page_size=100").get_json() == before


def test_restore_refuses_a_backup_of_the_other_backend(backend, runner, seeded, tmp_path):
    other = tmp_path / "other.backup"
    other.write_bytes((b"PGDMP" if backend == "sqlite" else b"SQLite format 3\x00") + b"\x00" * 100)
    refused = runner.invoke(args=["restore", str(other)])
    assert refused.exit_code == 1
    kind = "postgres" if backend == "sqlite" else "sqlite"
    assert refused.output.strip() == f"Error: {other} is a {kind} backup; this register is on {backend}"
