"""A search's facets and relevance page follow every write of what they count and sort by, on both
databases: on Postgres they are read from the search rows alone, which carry each reference's type,
year, has_results and updated (search.index.CARRIED), kept in step by the write and by a trigger."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from service.db import database, is_postgres
from service.search import index
from tests.helpers import create_reference, create_study
from tests.test_imports import run_import
from tests.test_merging import crash_pair, merge

PHRASE = '"quokka fever"'
RIS = Path(__file__).parent / "fixtures" / "regcovid_articles.ris"


def found(client, q: str = PHRASE, extra: str = "") -> dict:
    response = client.get(f"/references?q={quote(q)}&facets=type,year,has_results&page_size=100{extra}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def counted(body: dict, facet: str) -> dict:
    return {v["value"]: v["count"] for v in body["facets"][facet] if v["count"]}


def expected(body: dict, facet: str) -> dict:
    """The facet counted from the matches' records themselves."""
    counts: dict = {}
    for item in body["items"]:
        counts[item[facet]] = counts.get(item[facet], 0) + 1
    return counts


def assert_consistent(body: dict) -> None:
    """The facets and total agree with the records of the page (every match is on it)."""
    assert body["total"] == len(body["items"])
    for facet in ("type", "year", "has_results"):
        assert counted(body, facet) == expected(body, facet), facet


def assert_in_step() -> None:
    """Postgres: every search row carries what its reference holds now."""
    if not is_postgres():
        return

    def row(alias: str) -> str:
        return ", ".join(f'{alias}."{c}"' for c in index.CARRIED)

    with database.connection_context():
        differing = database.execute_sql(
            f'SELECT count(*) FROM "{index.REFERENCE_TABLE}" AS s JOIN "reference" AS r USING (id) '
            f"WHERE ({row('s')}) IS DISTINCT FROM ({row('r')})").fetchone()[0]
        missing = database.execute_sql(
            f'SELECT count(*) FROM "reference" WHERE id NOT IN (SELECT id FROM "{index.REFERENCE_TABLE}")'
        ).fetchone()[0]
    assert (differing, missing) == (0, 0)


def test_a_patched_type_or_year_is_counted_and_filtered_at_once(client, auth):
    def made(title, kind, year):
        return create_reference(client, auth, title=title, type=kind, year=year, has_results=False)

    a = made("Quokka fever in adults", "journal_article", 2020)
    b = made("Quokka fever in children", "journal_article", 2020)
    made("Quokka fever, a preprint", "preprint", 2021)
    made("Fever of quokkas", "preprint", 2021)  # not the phrase
    body = found(client)
    assert body["total"] == 3 and counted(body, "type") == {"journal_article": 2, "preprint": 1}
    assert_consistent(body)

    assert client.patch(f"/references/{a['id']}", json={"type": "preprint", "year": 2022},
                        headers=auth).status_code == 200
    body = found(client)
    assert counted(body, "type") == {"journal_article": 1, "preprint": 2}
    assert counted(body, "year") == {2020: 1, 2021: 1, 2022: 1}
    assert_consistent(body)
    assert [r["id"] for r in found(client, extra="&type=journal_article")["items"]] == [b["id"]]
    assert found(client, extra="&year_from=2022")["total"] == 1
    assert client.patch(f"/references/{b['id']}", json={"has_results": True}, headers=auth).status_code == 200
    assert counted(found(client), "has_results") == {True: 1, False: 2}
    assert [r["id"] for r in found(client, extra="&has_results=true")["items"]] == [b["id"]]
    assert_in_step()


def test_equally_relevant_matches_follow_an_updated_that_moved_without_a_reindex(client, auth):
    """A reference's `updated` moved by another record's write (a link made from a study: no document
    of it changes) still orders the page: the trigger carries it."""
    first = create_reference(client, auth, title="Quokka fever", abstract=None)
    second = create_reference(client, auth, title="Quokka fever", abstract=None)
    assert [r["id"] for r in found(client)["items"]] == [second["id"], first["id"]]
    study = create_study(client, auth)
    response = client.put(f"/studies/{study['id']}/references/{first['id']}", headers=auth)
    assert response.status_code in (200, 201, 204), response.get_json()
    body = found(client)
    assert [r["id"] for r in body["items"]] == [first["id"], second["id"]]
    assert body["items"][0]["updated"] >= body["items"][1]["updated"]
    assert_consistent(body)
    assert_in_step()
    # The ranked walk by cursor gives the same order as the page.
    walked, url = [], f"/references?q={quote(PHRASE)}&page_size=1&cursor=*"
    while url:
        page = client.get(url).get_json()
        walked += [r["id"] for r in page["items"]]
        url = page["next"]
    assert walked == [first["id"], second["id"]]


def test_an_import_and_a_merge_are_counted_at_once(client, auth, runner):
    run_import(runner, RIS, "ris")
    body = found(client, "covid")
    assert body["total"] and counted(body, "type") == {"journal_article": body["total"]}
    assert_consistent(body)
    assert_in_step()

    a, b, ref = crash_pair(client, auth)
    phrase = '"simvastatin in covid"'
    before = found(client, phrase)
    assert [r["id"] for r in before["items"]] == [ref["id"]]
    assert merge(client, auth, a["id"], b["id"]).status_code == 200
    after = found(client, phrase)
    assert after["total"] == 1 and after["items"][0]["updated"] >= before["items"][0]["updated"]
    assert_consistent(after)
    assert_in_step()


def test_a_raw_update_of_the_references_is_carried(client, auth):
    """Whoever writes "reference" (a hand-written UPDATE here), the search rows follow."""
    ref = create_reference(client, auth, title="Quokka fever", type="journal_article", year=2020)
    with database.connection_context(), database.atomic():
        database.execute_sql("UPDATE \"reference\" SET type = 'preprint', year = 2019 WHERE id = "
                             f"{ref['id']}")
    body = found(client)
    assert counted(body, "type") == {"preprint": 1} and counted(body, "year") == {2019: 1}
    assert_in_step()
