"""The facet counts of `reference_type` and `has_results` (domain/facets.py) count each study's
`report_types`, which triggers keep (migrations/m0013). Whoever writes the links or the references (a
bulk insert, a raw update, the API), filtered or not, they must give what the plain join gives, on a
register filled as the benchmarks fill it (bench/fill.py)."""

from __future__ import annotations

from peewee import fn

from bench.fill import Corpus, fill
from service.db import database
from service.domain import facets
from service.domain.studies import study_conditions
from service.models import Reference, Study, StudyReference
from service.vocabularies import REFERENCE_TYPES

SENTENCES = [f"Sentence {i} about ventilation and mortality in hospital patients." for i in range(40)]
CORPUS = Corpus(study_titles=[f"A study of treatment {i} in COVID-19 patients" for i in range(50)],
                article_titles=[f"Outcomes of treatment {i}" for i in range(50)],
                abstracts=[SENTENCES[i:i + 6] for i in range(30)],
                journals=["The Lancet", "BMJ", "JAMA"],
                authors=[f"Author{i} A" for i in range(30)])


def _plain(conditions) -> tuple[dict, int]:
    """The counts as a plain join from the links (the planner's own order), no covering index needed."""
    ids = Study.select(Study.id).where(*conditions) if conditions else Study.select(Study.id)
    rows = (StudyReference.select(Reference.type, fn.COUNT(fn.DISTINCT(StudyReference.study)))
            .join(Reference).where((StudyReference.role == "reports") & StudyReference.study.in_(ids))
            .group_by(Reference.type))
    with_results = (StudyReference.select(fn.COUNT(fn.DISTINCT(StudyReference.study))).join(Reference)
                    .where((StudyReference.role == "reports") & (Reference.has_results == True)  # noqa: E712
                           & StudyReference.study.in_(ids)).scalar())
    return dict(rows.tuples()), with_results


def test_reporting_facets_agree_with_the_plain_join_filtered_or_not(app):
    with database.connection_context():
        fill(300, seed=3, corpus=CORPUS)
        # a few links that only cite: they count for neither facet
        cited = [link.id for link in StudyReference.select(StudyReference.id)][::7]
        StudyReference.update(role="cites").where(StudyReference.id.in_(cited)).execute()
        for filters in ({}, {"study_type": ["Interventional"]}, {"registry": ["ChiCTR"]},
                        {"study_type": ["Observational"], "registry": ["ISRCTN", "ChiCTR"]}):
            conditions = study_conditions(**filters)
            counts, total = facets.study_facets(["reference_type", "has_results"], conditions)
            by_type, with_results = _plain(conditions)
            assert total == Study.select().where(*conditions).count() if conditions else 300
            assert counts["reference_type"] == [{"value": t, "count": by_type.get(t, 0)}
                                                for t in REFERENCE_TYPES]
            assert counts["has_results"] == [{"value": True, "count": with_results},
                                             {"value": False, "count": total - with_results}]
            # the fill makes studies with results and without
            assert 0 < with_results < total, (filters, with_results, total, counts)


def test_every_way_of_changing_a_report_keeps_the_counts_of_the_plain_join(client, auth):
    """Through the API (a link made, its role changed, a reference's type and results edited, a link
    and a reference removed) and by raw SQL, the two facets stay the plain join's; a study's
    dissemination follows an edit of its reference's results too."""
    from tests.helpers import create_reference, create_study

    study = create_study(client, auth, "NCT04280705")
    other = create_study(client, auth, "NCT04292899")
    article = create_reference(client, auth, study_ids=[study["id"]], type="journal_article",
                               has_results=False)
    preprint = create_reference(client, auth, type="preprint", has_results=True)

    def agree():
        with database.connection_context():
            counts, total = facets.study_facets(["reference_type", "has_results"], [])
            by_type, with_results = _plain([])
        assert counts["reference_type"] == [{"value": t, "count": by_type.get(t, 0)} for t in REFERENCE_TYPES]
        assert counts["has_results"][0] == {"value": True, "count": with_results}
        return {c["value"]: c["count"] for c in counts["reference_type"] if c["count"]}, with_results

    def ok(response):
        assert response.status_code in (200, 201, 204), response.get_json()

    links, references = f"/studies/{other['id']}/references/{preprint['id']}", "/references/"
    assert agree() == ({"journal_article": 1}, 0)
    ok(client.put(links, headers=auth))
    assert agree() == ({"journal_article": 1, "preprint": 1}, 1)
    ok(client.patch(f"{references}{article['id']}", json={"has_results": True}, headers=auth))
    assert agree() == ({"journal_article": 1, "preprint": 1}, 2)
    dissemination = client.get(f"/studies/{study['id']}").get_json()["dissemination"]
    assert dissemination["article"]["results"] is True and dissemination["reported"] is True
    ok(client.patch(f"{references}{article['id']}", json={"type": "letter"}, headers=auth))
    assert agree() == ({"letter": 1, "preprint": 1}, 2)
    ok(client.patch(links, json={"role": "cites"}, headers=auth))
    assert agree() == ({"letter": 1}, 1)
    mark = database.param
    with database.connection_context():
        database.execute_sql(f"UPDATE study_reference SET role = 'reports' WHERE reference_id = {mark}",
                             (preprint["id"],))
        database.execute_sql(f'UPDATE "reference" SET has_results = {mark} WHERE id = {mark}',
                             (False, article["id"]))
    assert agree() == ({"letter": 1, "preprint": 1}, 1)
    ok(client.delete(f"{references}{preprint['id']}", headers=auth))
    ok(client.delete(f"/studies/{study['id']}/references/{article['id']}", headers=auth))
    assert agree() == ({}, 0)
