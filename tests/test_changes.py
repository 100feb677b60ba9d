"""The change feed (GET /changes) and record history (GET /studies/{id}/history, /references/{id}/history):
a mirror replaying the feed reproduces the register; tombstones; who changed what; bad input."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from service import migrations
from service.db import database
from service.domain import changes
from service.models import Change
from tests.conftest import assert_problem, make_token
from tests.helpers import create_reference, create_study

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WHO = FIXTURES / "ictrp_who_40.csv"
RIS = FIXTURES / "regcovid_articles.ris"
NCT, PACTR = "NCT04343001", "PACTR202006473370201"


def get_ok(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def every(client, path):
    """Every record a list answers (walked with its cursor), by id."""
    found, url = {}, f"{path}?cursor=*&page_size=100"
    while url:
        page = get_ok(client, url)
        found.update({item["id"]: item for item in page["items"]})
        url = page["next"]
    return found


class Mirror:
    """A mirror of the register kept from the feed alone: it replays /changes, fetches each record a
    change names, forgets each tombstone, and keeps `resume` to poll again."""

    def __init__(self, client, page_size=3):
        self.client, self.url = client, f"/changes?page_size={page_size}"
        self.records = {"study": {}, "reference": {}}  # id -> ETag
        self.deleted = {"study": set(), "reference": set()}
        self.merged = {}
        self.seqs = []
        self.values = {"study": {}, "reference": {}}  # id -> the record's fields, folded from `values`

    def sync(self):
        url = self.url
        while True:
            page = get_ok(self.client, url)
            for change in page["items"]:
                self.seqs.append(change["seq"])
                kind, record_id = change["kind"], change["id"]
                if change["action"] in ("delete", "merge"):
                    assert change["deleted_at"] and change["values"] is None
                    self.records[kind].pop(record_id, None)
                    self.values[kind].pop(record_id, None)
                    self.deleted[kind].add(record_id)
                    if change["action"] == "merge":
                        self.merged[record_id] = change["merged_into"]
                    continue
                if change["action"] in ("create", "snapshot"):
                    self.values[kind][record_id] = {}
                self.values[kind][record_id].update(change["values"])
                response = self.client.get(f"/{kind.replace('y', 'ie')}s/{record_id}"
                                           if kind == "study" else f"/references/{record_id}")
                if response.status_code == 200:
                    self.records[kind][record_id] = response.headers["ETag"]
                else:  # gone since: its tombstone follows in the feed
                    assert response.status_code in (404, 308), response.get_json()
            self.url = page["resume"]
            if page["next"] is None:
                return
            assert page["next"] == page["resume"]
            url = page["next"]


def etags(client, path, ids):
    return {i: client.get(f"{path}/{i}").headers["ETag"] for i in ids}


def assert_mirrors(client, mirror):
    mirror.sync()
    studies, references = every(client, "/studies"), every(client, "/references")
    assert set(mirror.records["study"]) == set(studies)
    assert set(mirror.records["reference"]) == set(references)
    assert mirror.records["study"] == etags(client, "/studies", studies)
    assert mirror.records["reference"] == etags(client, "/references", references)
    assert mirror.seqs == sorted(set(mirror.seqs)), "every change once, in ascending order"
    # A mirror that only folds each change's new values holds the same fields as the register.
    for kind, listed in (("study", studies), ("reference", references)):
        assert set(mirror.values[kind]) == set(listed)
        for record_id, record in listed.items():
            folded = mirror.values[kind][record_id]
            for name in ("title", "updated", "first_published", *(("name", "study_type") if kind == "study"
                                                                    else ("type", "doi", "authors"))):
                assert folded[name] == record[name], (kind, record_id, name)


def test_a_mirror_replaying_the_feed_reproduces_the_register(client, auth):
    """The mirror syncs after every write (a record fetched for an earlier change of the same sync would
    hide a change the feed missed), and a second mirror replays the whole feed at the end."""
    mirror = Mirror(client)
    assert_mirrors(client, mirror)  # an empty register, an empty feed
    made = {}

    def ok(response, *statuses):
        assert response.status_code in (statuses or (200,)), response.get_data(as_text=True)
        return None if response.status_code == 204 else response.get_json()

    steps = [
        lambda: made.update(a=create_study(client, auth, NCT, title="CRASH-19")),
        lambda: made.update(b=create_study(client, auth, PACTR, title="CRASH-19 trial")),
        lambda: made.update(c=create_study(client, auth, "ChiCTR2000030261")),
        lambda: made.update(article=create_reference(client, auth, title="Aspirin in COVID-19",
                                                     abstract=f"Registered {NCT}.")),
        lambda: made.update(other=create_reference(client, auth, title="A letter", abstract=None,
                                                   has_results=False)),
        lambda: ok(client.patch(f"/studies/{made['a']['id']}", json={"title": "CRASH-19, renamed"},
                                headers=auth)),
        # Relinked: the linked study's record changes too.
        lambda: ok(client.patch(f"/references/{made['article']['id']}", json={"title": "Aspirin and statins"},
                                headers=auth)),
        # Not relinked: only the linked study's `updated` moves.
        lambda: ok(client.patch(f"/references/{made['article']['id']}", json={"volume": "12"}, headers=auth)),
        lambda: ok(client.put(f"/studies/{made['c']['id']}/references/{made['other']['id']}", headers=auth),
                   200, 201),
        lambda: ok(client.patch(f"/studies/{made['c']['id']}/references/{made['other']['id']}",
                                json={"role": "cites"}, headers=auth)),
        lambda: ok(client.delete(f"/studies/{made['c']['id']}/references/{made['other']['id']}",
                                 headers=auth), 204),
        lambda: ok(client.patch(f"/studies/{made['c']['id']}",
                                json={"registrations": [{"identifier": "ChiCTR2000030262"}]}, headers=auth)),
        lambda: ok(client.delete(f"/references/{made['other']['id']}", headers=auth), 204),
        lambda: ok(client.post(f"/studies/{made['a']['id']}/merge", json={"from": made["b"]["id"]},
                               headers=auth)),
        lambda: ok(client.post(f"/studies/{made['a']['id']}/split", json={"registrations": [PACTR]},
                               headers=auth), 201),
        lambda: ok(client.delete(f"/studies/{made['c']['id']}", headers=auth), 204),
        lambda: ok(client.post("/imports?format=ictrp-csv", headers=auth, data=WHO.read_bytes(),
                               content_type="text/csv")),
        lambda: ok(client.post("/imports", headers=auth, data=RIS.read_bytes(),
                               content_type="application/x-research-info-systems")),
    ]
    for step in steps:
        step()
        assert_mirrors(client, mirror)
    a, b, c, other = made["a"], made["b"], made["c"], made["other"]
    assert mirror.deleted == {"study": {b["id"], c["id"]}, "reference": {other["id"]}}
    assert mirror.merged == {b["id"]: a["id"]}

    # A second mirror starting now replays everything from the first change.
    fresh = Mirror(client, page_size=50)
    assert_mirrors(client, fresh)
    assert fresh.deleted == mirror.deleted and fresh.records == mirror.records


def test_a_change_feed_lists_each_write_with_its_actor_fields_and_values(client, auth):
    study = create_study(client, auth, NCT, title="First title")
    curator = {"Authorization": f"Bearer {make_token()}"}  # named "test" too: checked by a new name below
    with database.connection_context():
        from service.domain.tokens import create_token
        named = {"Authorization": f"Bearer {create_token('curation team')}"}
    assert client.patch(f"/studies/{study['id']}", json={"title": "Second title"},
                        headers=named).status_code == 200
    page = get_ok(client, "/changes?kind=study")
    first, last = page["items"][0], page["items"][-1]
    assert (first["action"], first["id"], first["actor"]) == ("create", study["id"], "test")
    assert "title" in first["fields"] and first["values"]["title"] == "First title"
    assert first["values"]["registrations"] == [NCT]
    assert (last["action"], last["actor"]) == ("update", "curation team")
    assert last["fields"] == ["title", "updated"] and last["values"]["title"] == "Second title"
    assert last["deleted_at"] is None and last["merged_into"] is None
    # A write that changes nothing records nothing.
    before = page["total"]
    assert client.put(f"/studies/{study['id']}/references/{create_reference(client, curator)['id']}",
                      headers=auth).status_code in (200, 201)
    assert client.put(f"/studies/{study['id']}/references/1", headers=auth).status_code in (200, 201)
    again = get_ok(client, "/changes?kind=study")["total"]
    assert client.put(f"/studies/{study['id']}/references/1", headers=auth).status_code in (200, 201)
    assert get_ok(client, "/changes?kind=study")["total"] == again > before


def test_history_gives_old_and_new_values_and_keeps_tombstones(client, auth):
    a = create_study(client, auth, NCT, title="Old title")
    b = create_study(client, auth, PACTR)
    ref = create_reference(client, auth, abstract=f"Registered {NCT}.")
    assert client.patch(f"/studies/{a['id']}", json={"title": "New title"}, headers=auth).status_code == 200
    history = get_ok(client, f"/studies/{a['id']}/history")
    actions = [e["action"] for e in history["items"]]
    assert actions[0] == "create" and actions[-1] == "update"
    assert history["items"][-1]["changes"]["title"] == {"old": "Old title", "new": "New title"}
    assert history["items"][-1]["actor"] == "test"
    # The link the reference made is a change of both ends.
    linked = [e for e in history["items"] if "references" in e["changes"]]
    assert linked and linked[-1]["changes"]["references"]["new"] == [[ref["id"], "reports", "auto"]]
    ref_history = get_ok(client, f"/references/{ref['id']}/history")
    assert ref_history["items"][0]["values"]["studies"] == [[a["id"], "reports", "auto"]]

    assert client.delete(f"/references/{ref['id']}", headers=auth).status_code == 204
    gone = get_ok(client, f"/references/{ref['id']}/history")["items"][-1]
    assert gone["action"] == "delete" and gone["deleted_at"] and gone["values"] is None
    assert gone["changes"]["title"]["new"] is None and gone["changes"]["title"]["old"] == ref["title"]
    assert client.post(f"/studies/{a['id']}/merge", json={"from": b["id"]}, headers=auth).status_code == 200
    merged = get_ok(client, f"/studies/{b['id']}/history")["items"][-1]
    assert (merged["action"], merged["merged_into"]) == ("merge", a["id"])
    assert client.get(f"/studies/{b['id']}").status_code == 308  # the id itself still redirects

    assert_problem(client.get("/studies/999/history"), 404)
    assert_problem(client.get("/references/999/history"), 404)
    assert client.get("/studies/abc/history").status_code == 404


def test_paging_is_by_seq_and_resume_never_skips_a_later_change(client, auth):
    for n in range(5):
        create_study(client, auth, f"NCT0428070{n}")
    seen, url = [], "/changes?page_size=2"
    while url:
        page = get_ok(client, url)
        assert len(page["items"]) <= 2 and page["total"] == 5 and page["page"] is None
        seen += [c["seq"] for c in page["items"]]
        if page["next"]:
            assert 'rel="next"' in client.get(url).headers["Link"]
        url, resume = page["next"], page["resume"]
    assert seen == sorted(seen) and len(set(seen)) == 5
    assert get_ok(client, resume)["items"] == []  # nothing new yet
    create_study(client, auth, "NCT04280709")
    later = get_ok(client, resume)["items"]
    assert [c["action"] for c in later] == ["create"] and later[0]["seq"] > seen[-1]


def test_since_filters_by_instant_and_bad_input_is_a_problem(client, auth):
    create_study(client, auth, NCT)
    time.sleep(0.01)
    middle = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    time.sleep(0.01)
    create_study(client, auth, PACTR)
    after = get_ok(client, f"/changes?since={middle.isoformat()}Z")
    assert [c["values"]["name"] for c in after["items"]] == [PACTR] and after["total"] == 1
    assert len(get_ok(client, "/changes?since=2020-01-01")["items"]) == 2
    future = get_ok(client, "/changes?since=2099-01-01T00:00:00Z")
    assert future["items"] == [] and future["total"] == 0 and future["next"] is None
    # A cursor keeps its filters: following `resume` with the same `since` works, with another is 422.
    cursor = parse_qs(urlsplit(after["resume"]).query)["cursor"][0]
    assert get_ok(client, after["resume"])["items"] == []
    assert_problem(client.get(f"/changes?cursor={cursor}"), 422, "cursor")
    assert_problem(client.get(f"/changes?since={middle.isoformat()}Z&cursor={cursor[:-2]}xx"), 422, "cursor")
    assert_problem(client.get("/changes?since=yesterday"), 422, "since")
    assert_problem(client.get("/changes?since=2020-13-01"), 422, "since")
    assert_problem(client.get("/changes?since=3000-01-01"), 422, "since")
    assert_problem(client.get("/changes?kind=notice"), 422, "kind")
    assert_problem(client.get("/changes?page_size=0"), 422, "page_size")
    assert_problem(client.get("/changes?page=2"), 422, "page")
    assert_problem(client.get("/changes?since=2020-01-01&since=2021-01-01"), 422, "since")
    study_cursor = parse_qs(urlsplit(get_ok(client, "/studies/1/history")["resume"]).query)["cursor"][0]
    assert_problem(client.get(f"/studies/2/history?cursor={study_cursor}"), 422, "cursor")
    assert_problem(client.get("/studies/1/history?since=2020-01-01"), 422, "since")


@pytest.mark.parametrize("made", ["all before writing", "a chunk at a time"])
def test_an_import_records_one_change_per_record_and_nothing_when_nothing_changed(client, auth, runner, made,
                                                                                   monkeypatch):
    if made == "a chunk at a time":
        monkeypatch.setattr(changes, "HOLD_AT_MOST", 0)
        monkeypatch.setattr(changes, "CHUNK", 3)
    result = runner.invoke(args=["import", str(WHO), "--format", "ictrp-csv", "--quiet"])
    assert result.exit_code == 0, result.output
    with database.connection_context():
        by_kind = {k: Change.select().where(Change.kind == k).count() for k in ("study", "reference")}
    studies = get_ok(client, "/studies")["total"]
    references = get_ok(client, "/references")["total"]
    assert by_kind == {"study": studies, "reference": references}
    assert {c["actor"] for c in every_change(client)} == {None}  # the command line has no token
    again = runner.invoke(args=["import", str(WHO), "--format", "ictrp-csv", "--quiet"])
    assert again.exit_code == 0, again.output
    assert get_ok(client, "/changes")["total"] == studies + references
    assert_mirrors(client, Mirror(client, page_size=7))
    dry = client.post("/imports?dry_run=true", headers=auth, data=RIS.read_bytes(),
                      content_type="application/x-research-info-systems")
    assert dry.status_code == 200
    assert get_ok(client, "/changes")["total"] == studies + references


def every_change(client):
    items, url = [], "/changes?page_size=1000"
    while url:
        page = get_ok(client, url)
        items += page["items"]
        url = page["next"]
    return items


# -- an existing register -----------------------------------------------------------------------------

def test_upgrading_an_existing_register_snapshots_every_record(empty_db):
    from service.seeding import load_seeds, seed_files
    from tests.conftest import SEEDS

    with database.connection_context():
        migrations.upgrade(target=9)
        load_seeds(seed_files(SEEDS))  # a register filled before the feed existed
        assert not database.table_exists("change")
        studies = [i for (i,) in database.execute_sql("SELECT id FROM study ORDER BY id").fetchall()]
        references = [i for (i,) in database.execute_sql("SELECT id FROM reference ORDER BY id").fetchall()]
        assert studies and references
        assert [m.version for m in migrations.upgrade(target=10)] == [10]
        rows = list(Change.select().order_by(Change.seq))
        assert {r.action for r in rows} == {"snapshot"} and {r.actor for r in rows} == {"migration"}
        assert sorted(r.record_id for r in rows if r.kind == "study") == studies
        assert sorted(r.record_id for r in rows if r.kind == "reference") == references
        migrations.upgrade()  # the later migrations record nothing of their own
        assert Change.select().count() == len(rows) and migrations.upgrade() == []
    client = empty_db.test_client()
    mirror = Mirror(client, page_size=100)
    assert_mirrors(client, mirror)
    assert len(mirror.records["study"]) == len(studies)


def test_accepting_a_suggestion_is_a_change_of_the_study_and_the_reference(client, auth, runner):
    from tests.test_suggestions import register, suggest, suggested

    made = register(client, auth)
    suggest(runner)
    mirror = Mirror(client, page_size=100)
    assert_mirrors(client, mirror)
    top = suggested(client, made["preprint"]["id"])[0]
    last = get_ok(client, "/changes")["resume"]
    assert client.post(f"/suggestions/{top['id']}/accept", headers=auth).status_code == 200
    accepted = get_ok(client, last)["items"]
    ends = {(c["kind"], c["id"]) for c in accepted}
    assert {("study", top["study_id"]), ("reference", made["preprint"]["id"])} <= ends
    reference = next(c for c in accepted if c["kind"] == "reference")
    assert [top["study_id"], "reports", "manual"] in reference["values"]["studies"]
    assert {c["actor"] for c in accepted} == {"test"}
    assert_mirrors(client, mirror)
    # Relinking everything changes nothing here: no change is recorded.
    total = get_ok(client, "/changes")["total"]
    assert runner.invoke(args=["relink"]).exit_code == 0
    assert get_ok(client, "/changes")["total"] == total


def test_history_pages_keep_old_values_across_pages(client, auth):
    study = create_study(client, auth, NCT, title="T0")
    for n in range(1, 4):
        response = client.patch(f"/studies/{study['id']}", json={"title": f"T{n}"}, headers=auth)
        assert response.status_code == 200
    titles, url = [], f"/studies/{study['id']}/history?page_size=1"
    while url:
        page = get_ok(client, url)
        assert len(page["items"]) == 1 and page["total"] == 4
        titles.append(page["items"][0]["changes"]["title"])
        url = page["next"]
    assert titles == [{"old": None, "new": "T0"}, {"old": "T0", "new": "T1"}, {"old": "T1", "new": "T2"},
                      {"old": "T2", "new": "T3"}]


def test_changes_commit_in_seq_order_so_a_reader_never_skips_one(app, client):
    """A write whose change row is written but not committed holds back the next one (the feed's lock on
    Postgres, the write lock on SQLite): a reader never sees a later `seq` before an earlier commits."""
    from service.db import before_commit
    from service.domain import studies as domain_studies

    paused, release, failures = threading.Event(), threading.Event(), []

    def pause(pending):  # after the change hook: the row is inserted, the transaction not committed
        if threading.current_thread().name == "first":
            paused.set()
            release.wait(10)

    def write(identifier, title):
        try:
            with database.connection_context():
                domain_studies.create_study({"registrations": [{"identifier": identifier}], "title": title})
        except Exception as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    before_commit.append(pause)
    try:
        first = threading.Thread(target=write, args=(NCT, "Zebra"), name="first")
        first.start()
        assert paused.wait(10)
        second = threading.Thread(target=write, args=(PACTR, "Quokka"), name="second")
        second.start()
        time.sleep(0.5)
        assert get_ok(client, "/changes")["items"] == []
        assert second.is_alive(), "the second write committed while the first's change was pending"
        release.set()
        first.join(10)
        second.join(10)
    finally:
        release.set()
        before_commit.remove(pause)
    assert not failures
    items = get_ok(client, "/changes")["items"]
    assert [(c["values"]["title"], c["action"]) for c in items] == [("Zebra", "create"), ("Quokka", "create")]
    assert items[0]["seq"] < items[1]["seq"]
