"""A single-record read runs a fixed number of queries; lists never do N+1."""

from __future__ import annotations

from service.domain.facets import STUDY_FACETS
from tests.helpers import create_reference, create_study, queries_of


def test_single_study_read_is_five_queries_whatever_its_references(client, auth):
    small = create_study(client, auth, "NCT04280705")
    big = create_study(client, auth, "NCT04292899")
    create_reference(client, auth, study_ids=[small["id"]])
    for i in range(25):
        create_reference(client, auth, title=f"Report {i}", study_ids=[big["id"], small["id"]])
    # study, registrations, references with their links, their study ids, identifiers found in them
    assert queries_of(client, f"/studies/{small['id']}") == 5
    assert queries_of(client, f"/studies/{big['id']}") == 5


def test_lists_do_not_grow_with_rows(client, auth, backend):
    def counts():
        return (queries_of(client, "/studies?page_size=100"),
                queries_of(client, "/studies?page_size=100&include=references"),
                queries_of(client, "/references?page_size=100&type=journal_article"),
                queries_of(client, "/notices?status=all"),
                queries_of(client, "/studies?page_size=100&q=trial&facets=" + ",".join(STUDY_FACETS)),
                queries_of(client, "/references?page_size=100&q=trial&facets=type,has_results,year"),
                queries_of(client, "/stats"))

    study = create_study(client, auth, "NCT04280705")
    create_reference(client, auth, study_ids=[study["id"]])
    few = counts()
    for i in range(30):
        s = create_study(client, auth, f"NCT0430{i:04d}")
        create_reference(client, auth, title=f"Report {i}", study_ids=[s["id"], study["id"]])
        client.post("/notices", json={"message": f"n{i}"}, headers=auth)
    assert counts() == few
    # With facets, one grouped query counts the columns' facets and the total; the other facets of a
    # study take one query each (registry, reference_type, has_results, country, results_in); then the
    # page and its details. On Postgres a search also sets its plan (search_plan) and asks for the
    # stems of its words (search.index.lexicon). /stats is fixed (two month series now:
    # first_published and registered).
    plan = 2 if backend == "postgres" else 0
    assert few == (3, 6, 4, 2, plan + 1 + 5 + 2, plan + 1 + 3, 10)
