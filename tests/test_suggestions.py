"""Suggested studies for references with no `reports` link, through HTTP: computing them (the `suggest`
command), the reasons, accepting (a manual link) and rejecting (remembered), and bad input."""

from __future__ import annotations

import json

import pytest

from service.db import database
from service.domain import suggestions
from service.models import StudyReference, Suggestion
from tests.conftest import assert_problem, make_token
from tests.helpers import create_reference, create_study

# COVID STEROID (NCT04348305): its registry record's title, its journal article (registration number in the
# abstract, so linked) and the medRxiv preprint of the same paper, which gives no registration number.
STEROID = "NCT04348305"
STEROID_TITLE = "Hydrocortisone for COVID-19 and Severe Hypoxia"
ARTICLE_TITLE = ("Low-dose hydrocortisone in patients with COVID-19 and severe hypoxia: the COVID STEROID "
                 "randomised, placebo-controlled trial")
PREPRINT_TITLE = ("Low-dose hydrocortisone in patients with COVID-19 and severe hypoxia (COVID STEROID): a "
                  "randomised, placebo-controlled trial")
AUTHORS = ["Petersen MW", "Meyhoff TS", "Helleberg M", "Kjaer MN", "Granholm A", "Hjortsø CJS"]
# Other real trials, so that the title similarity has something to tell apart.
OTHERS = [
    ("NCT04381936", "Randomised Evaluation of COVID-19 Therapy (RECOVERY)"),
    ("NCT04327401",
     "COVID-19-associated ARDS Treated With Dexamethasone: Alliance Covid-19 Brasil III (CoDEX)"),
    ("NCT04280705", "Adaptive COVID-19 Treatment Trial (ACTT)"),
    ("NCT04332835", "Convalescent Plasma for Patients With COVID-19: A Randomized, Open Label, Parallel, "
                    "Controlled Clinical Study"),
]
TOCIVID = ("NCT04317092", "Tocilizumab in COVID-19 Pneumonia (TOCIVID-19)")


def register(client, auth) -> dict:
    """The studies, COVID STEROID's article (linked by its registration number) and its preprint (not)."""
    made = {identifier: create_study(client, auth, identifier, title=title) for identifier, title in OTHERS}
    made[STEROID] = create_study(client, auth, STEROID, title=STEROID_TITLE)
    made["article"] = create_reference(client, auth, title=ARTICLE_TITLE, authors=AUTHORS,
                                       abstract=f"Trial registration: ClinicalTrials.gov {STEROID}.")
    made["preprint"] = create_reference(client, auth, type="preprint", title=PREPRINT_TITLE,
                                        authors=AUTHORS[:4], abstract=None, has_results=True)
    return made


def suggest(runner, *reference_ids: int) -> str:
    args = ["suggest"] + [item for ref in reference_ids for item in ("--reference", str(ref))]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return result.output


def suggested(client, reference_id: int) -> list[dict]:
    response = client.get(f"/references/{reference_id}/suggestions")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def queue(client, status: str = "open", **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in {"status": status, **params}.items())
    response = client.get(f"/suggestions?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_preprint_gets_the_study_of_its_journal_version(client, auth, runner):
    made = register(client, auth)
    assert client.get(f"/references/{made['article']['id']}").get_json()["study_ids"] == [made[STEROID]["id"]]
    assert suggested(client, made["preprint"]["id"]) == []
    output = suggest(runner)
    assert "references:" in output and " s" in output

    found = suggested(client, made["preprint"]["id"])
    assert found and len(found) <= suggestions.LIMIT
    top = found[0]
    assert top["study_id"] == made[STEROID]["id"] and top["status"] == "open"
    assert top["study_name"] == STEROID and top["study_title"] == STEROID_TITLE
    assert top["reference_id"] == made["preprint"]["id"] and top["reference_title"] == PREPRINT_TITLE
    assert [s["score"] for s in found] == sorted((s["score"] for s in found), reverse=True)
    kinds = {r["kind"]: r for r in top["reasons"]}
    assert kinds["title"]["score"] > 0.8 and ARTICLE_TITLE in kinds["title"]["detail"]
    assert kinds["authors"]["score"] == 1.0 and "Petersen MW" in kinds["authors"]["detail"]
    assert all(0 < r["score"] <= 1 for r in top["reasons"]) and 0 < top["score"] <= 1
    assert top["score"] > found[1]["score"] if len(found) > 1 else True
    # The article has a reports link: nothing is suggested for it.
    assert suggested(client, made["article"]["id"]) == []
    page = queue(client)
    assert page["total"] == len({s["id"] for s in page["items"]}) >= 1
    assert page["items"][0]["id"] == top["id"]


def test_acronym_in_title_or_named_as_a_trial(client, auth, runner):
    register(client, auth)
    tocivid = create_study(client, auth, TOCIVID[0], title=TOCIVID[1])
    by_title = create_reference(client, auth, authors=[], abstract=None,
                                title="Interleukin-6 blockade in Naples: lessons from the TOCIVID-19 trial")
    by_abstract = create_reference(client, auth, authors=[], title="IL-6 receptor blockade in pneumonia",
                                   abstract="We report the TOCIVID-19 trial's secondary outcomes.")
    not_a_trial = create_reference(client, auth, title="Multiplexed imaging of lung tissue", authors=[],
                                   abstract="Tissue sections were stained by CODEX and imaged.")
    suggest(runner)
    for reference in (by_title, by_abstract):
        top = suggested(client, reference["id"])[0]
        assert top["study_id"] == tocivid["id"]
        acronym = next(r for r in top["reasons"] if r["kind"] == "acronym")
        assert acronym["score"] == 1.0 and "TOCIVID-19" in acronym["detail"]
    # CODEX in an abstract names a method, not the trial (CoDEX) of a study's title.
    assert not any(r["kind"] == "acronym" for s in suggested(client, not_a_trial["id"]) for r in s["reasons"])


@pytest.mark.parametrize("where, text, found", [
    ("study", "Tocilizumab in COVID-19 Pneumonia (TOCIVID-19)", {"TOCIVID-19", "COVID-19"}),
    ("study", "Adaptive COVID-19 Treatment Trial (ACTT-1): results", {"ACTT-1", "COVID-19"}),
    ("study", "RANDOMISED EVALUATION OF COVID-19 THERAPY (RECOVERY)", {"RECOVERY"}),
    ("study", "Interleukin-6 and Il-1 in a cohort", set()),
    ("title", "Low dose radiotherapy in covid19 pneumonia (LOWRAD-Cov19). Preliminary", {"LOWRAD-COV19"}),
    ("title", "COVIDOSE: A Phase II Clinical Trial of Low-Dose Tocilizumab", {"COVIDOSE"}),
    ("title", "Design of the INSPIRATION/INSPIRATION-S studies", {"INSPIRATION", "INSPIRATION-S"}),
    ("title", "RAAS inhibitors are not associated with mortality in COVID-19 patients", set()),
    ("abstract", "BACKGROUND: Patients of the RECOVERY trial. METHODS: Sections were imaged by CODEX.",
     {"RECOVERY"}),
    ("abstract", "RESULTS: Hydroxychloroquine in 12 patients; SOFA scores fell.", set()),
])
def test_acronyms(where, text, found):
    assert suggestions.acronyms(text, where=where) == found


def test_accept_links_the_reference_and_closes_its_suggestions(client, auth, runner):
    made = register(client, auth)
    preprint = made["preprint"]["id"]
    suggest(runner)
    found = suggested(client, preprint)
    top = found[0]
    response = client.post(f"/suggestions/{top['id']}/accept", headers=auth)
    assert response.status_code == 200, response.get_json()
    accepted = response.get_json()
    assert accepted["status"] == "accepted" and accepted["decided"]
    assert accepted["study_id"] == top["study_id"]

    links = client.get(f"/studies/{top['study_id']}/references").get_json()
    link = next(r for r in links if r["id"] == preprint)
    assert link["link"] == "manual" and link["role"] == "reports"
    assert top["study_id"] in client.get(f"/references/{preprint}").get_json()["study_ids"]
    assert all(s["reference_id"] != preprint for s in queue(client)["items"])
    assert [s["id"] for s in queue(client, "accepted")["items"]] == [top["id"]]
    # The reference's other open suggestions went with it; computing again brings none back.
    assert [s["id"] for s in suggested(client, preprint)] == [top["id"]]
    suggest(runner)
    suggest(runner, preprint)
    assert [(s["id"], s["status"]) for s in suggested(client, preprint)] == [(top["id"], "accepted")]


def test_rejected_is_never_suggested_again(client, auth, runner):
    made = register(client, auth)
    preprint = made["preprint"]["id"]
    suggest(runner)
    top = suggested(client, preprint)[0]
    response = client.post(f"/suggestions/{top['id']}/reject", headers=auth)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "rejected"
    again = client.post(f"/suggestions/{top['id']}/reject", headers=auth)
    assert again.status_code == 200 and again.get_json() == response.get_json()

    for args in ((), (preprint,)):
        suggest(runner, *args)
        found = suggested(client, preprint)
        assert [s for s in found if s["study_id"] == top["study_id"]] == [response.get_json()]
        assert all(s["status"] == "open" for s in found[:-1])
    assert [s["id"] for s in queue(client, "rejected")["items"]] == [top["id"]]
    assert top["id"] not in {s["id"] for s in queue(client)["items"]}
    assert preprint not in {r["id"] for r in client.get(f"/studies/{top['study_id']}/references").get_json()}


def test_a_cited_study_is_suggested_unless_a_curator_set_the_role(client, auth, runner):
    made = register(client, auth)
    preprint = made["preprint"]["id"]
    steroid = made[STEROID]["id"]
    assert client.put(f"/studies/{steroid}/references/{preprint}", headers=auth).status_code == 201
    with database.connection_context():  # as linking leaves a number found in a full text only
        StudyReference.update(role="cites", link="auto").where(StudyReference.reference == preprint).execute()
    suggest(runner)
    found = {s["study_id"]: s for s in suggested(client, preprint)}
    assert steroid in found and "named" in {r["kind"] for r in found[steroid]["reasons"]}
    # A curator's role is a decision: the study is no longer suggested.
    response = client.patch(f"/studies/{steroid}/references/{preprint}", json={"role": "cites"}, headers=auth)
    assert response.status_code == 200, response.get_json()
    suggest(runner)
    assert steroid not in {s["study_id"] for s in suggested(client, preprint)}


def test_suggestions_go_when_the_reference_gets_a_reports_link(client, auth, runner):
    made = register(client, auth)
    preprint = made["preprint"]
    suggest(runner)
    assert suggested(client, preprint["id"])
    response = client.patch(f"/references/{preprint['id']}", headers=auth,
                            json={"abstract": f"Trial registration: {STEROID}."})
    assert response.status_code == 200, response.get_json()
    with database.connection_context():
        report = suggestions.compute_after_import([preprint["id"]])
    assert report["not_computed"] == 1 and report["removed"] >= 1 and report["open"] == 0
    assert suggested(client, preprint["id"]) == []
    with database.connection_context():
        assert suggestions.compute_after_import([]) is None


def test_queue_is_paged(client, auth, runner):
    register(client, auth)
    for n, title in enumerate(("Dexamethasone in hospitalised COVID-19: RECOVERY trial",
                               "Convalescent plasma for COVID-19, an open label randomized trial",
                               "Remdesivir in the adaptive COVID-19 treatment trial")):
        create_reference(client, auth, title=title, authors=[], abstract=None, doi=f"10.1000/x{n}")
    suggest(runner)
    whole = queue(client, page_size=100)
    assert whole["total"] >= 4 and whole["next"] is None
    scores = [s["score"] for s in whole["items"]]
    assert scores == sorted(scores, reverse=True)
    walked, url = [], "/suggestions?cursor=*&page_size=2&sort=-score"
    while url:
        page = client.get(url).get_json()
        walked += [s["id"] for s in page["items"]]
        url = page["next"]
    assert walked == [s["id"] for s in whole["items"]]
    first = client.get("/suggestions?page_size=1&sort=id")
    assert first.get_json()["next"] and 'rel="next"' in first.headers["Link"]
    assert_problem(client.get("/suggestions?status=maybe"), 422, "status")
    assert_problem(client.get("/suggestions?sort=title"), 422, "sort")
    assert_problem(client.get("/suggestions?page=1&cursor=*"), 422, "page")


def test_bad_decisions_are_4xx_and_change_nothing(client, auth, runner):
    made = register(client, auth)
    tocivid = create_study(client, auth, TOCIVID[0], title=TOCIVID[1])
    other = create_reference(client, auth, authors=[], abstract=None,
                             title="Interleukin-6 blockade: lessons from the TOCIVID-19 trial")
    suggest(runner)
    accepted = suggested(client, made["preprint"]["id"])[0]
    rejected = next(s for s in suggested(client, other["id"]) if s["study_id"] == tocivid["id"])
    assert client.post(f"/suggestions/{accepted['id']}/accept", headers=auth).status_code == 200
    assert client.post(f"/suggestions/{rejected['id']}/reject", headers=auth).status_code == 201

    def snapshot():
        return ([queue(client, status, page_size=100) for status in ("open", "accepted", "rejected")],
                [client.get(f"/studies/{s}/references").get_json()
                 for s in (accepted["study_id"], tocivid["id"])])

    before = snapshot()
    body = assert_problem(client.post(f"/suggestions/{accepted['id']}/accept", headers=auth), 409)
    assert "accepted" in body["detail"]
    body = assert_problem(client.post(f"/suggestions/{rejected['id']}/accept", headers=auth), 409)
    assert "rejected" in body["detail"]
    body = assert_problem(client.post(f"/suggestions/{accepted['id']}/reject", headers=auth), 409)
    assert "Unlink" in body["detail"]
    for verb in ("accept", "reject"):
        assert_problem(client.post(f"/suggestions/999999/{verb}", headers=auth), 404)
        assert_problem(client.post(f"/suggestions/{rejected['id']}/{verb}"), 401)
        no_scope = {"Authorization": f"Bearer {make_token('references')}"}
        assert_problem(client.post(f"/suggestions/{rejected['id']}/{verb}", headers=no_scope), 403)
        assert_problem(client.post(f"/suggestions/{rejected['id']}/{verb}", headers=auth, data="x",
                                   content_type="text/plain"), 415)
    assert_problem(client.get("/references/999999/suggestions"), 404)
    assert snapshot() == before


def test_a_deleted_studys_suggestion_is_404(client, auth, runner):
    made = register(client, auth)
    suggest(runner)
    top = suggested(client, made["preprint"]["id"])[0]
    assert client.delete(f"/studies/{top['study_id']}", headers=auth).status_code == 204
    with database.connection_context():
        assert not Suggestion.select().where(Suggestion.study == top["study_id"]).exists()
    for verb in ("accept", "reject"):
        body = assert_problem(client.post(f"/suggestions/{top['id']}/{verb}", headers=auth), 404)
        assert str(top["id"]) in body["detail"]
    assert top["id"] not in {s["id"] for s in suggested(client, made["preprint"]["id"])}
    assert top["id"] not in {s["id"] for s in queue(client, page_size=100)["items"]}


def test_an_import_suggests_studies_for_the_references_it_writes(client, auth, runner, tmp_path):
    made = register(client, auth)
    line = {"type": "preprint", "title": PREPRINT_TITLE + " (version 2)",
            "doi": "10.1101/2020.10.29.20221234", "authors": AUTHORS[:3], "study_ids": []}
    path = tmp_path / "preprint.ndjson"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet"])
    assert result.exit_code == 0, result.output
    imported = client.get("/references?doi=10.1101/2020.10.29.20221234").get_json()["items"][0]
    assert [s["study_id"] for s in suggested(client, imported["id"])][:1] == [made[STEROID]["id"]]
    # --no-suggest leaves them to a later `study-register suggest`.
    client.delete(f"/references/{imported['id']}", headers=auth)
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet", "--no-suggest"])
    assert result.exit_code == 0, result.output
    again = client.get("/references?doi=10.1101/2020.10.29.20221234").get_json()["items"][0]
    assert suggested(client, again["id"]) == []
    suggest(runner)
    assert [s["study_id"] for s in suggested(client, again["id"])][:1] == [made[STEROID]["id"]]


def test_the_queue_filters_by_score(client, auth, runner):
    register(client, auth)
    suggest(runner)
    everything = queue(client)["items"]
    assert everything
    best = max(s["score"] for s in everything)
    kept = queue(client, min_score=best)["items"]
    assert kept and all(s["score"] >= best for s in kept) and len(kept) <= len(everything)
    assert queue(client, min_score=1)["items"] == [] or best == 1
    assert_problem(client.get("/suggestions?min_score=2"), 422, "min_score")
