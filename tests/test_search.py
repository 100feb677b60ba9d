"""Search through the HTTP API on both databases: `q`, relevance, facets, /stats, the index kept current."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

from service.vocabularies import FACETS, REFERENCE_TYPES, REGISTRIES
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study

# The shared table: query -> the seeded studies it must find (names), on SQLite and on Postgres.
# Only the order among equally relevant hits may differ, so the sets are compared, and the first
# hit where the query names one study.
SEARCH_TABLE = [
    ("nebulization exosomes", {"ChiCTR2000030261"}),  # words only in its journal article's title
    ('"mesenchymal stem cells"', {"ChiCTR2000030261"}),
    ("exosome", {"ChiCTR2000030261"}),  # stemming: the text says "exosomes"
    ("treating hydroxychloroquine", {"ChiCTR2000029868", "NCT04322123", "NCT04321278"}),
    ("remdesivir", {"NCT04292899", "NCT04292730", "NCT04257656", "NCT04280705", "NCT04401579"}),
    ("tocilizumab OR colchicine", {"NCT04326790", "NCT04322682", "NCT04320615", "NCT04317092",
                                   "NCT04315480"}),
    ("ivermectin OR zinc", {"ISRCTN40302986", "ACTRN12620000454976"}),
    ("prophylaxis -hydroxychloroquine", {"NCT04283461"}),
    ('"adaptive covid-19 treatment trial"', {"NCT04280705", "NCT04401579"}),
    ("covid-19 vaccine mrna", {"NCT04283461", "NCT04470427", "NCT04368728"}),
    ("mRNA-1273", {"NCT04470427", "NCT04283461"}),
    ("Qing Fei Pai Du Tang", {"UMIN000040341"}),
    ("bévacizumab", {"NCT04275414"}),  # accents folded
    ("BEVACIZUMAB", {"NCT04275414"}),
    ("lopinavir ritonavir", {"ChiCTR2000029308", "NCT04276688", "NCT04257656", "NCT04318366"}),
    ("convalescent plasma", {"NCT04355767"}),
    ("ChiCTR2000030261", {"ChiCTR2000030261"}),
    ("NCT04280705", {"NCT04280705"}),
    ("NCT 04280705", {"NCT04280705"}),  # a written form of the identifier
    ("EUCTR2020-001052-18-GB", {"NCT04280705"}),  # its EudraCT registration, as ICTRP writes it
    ("EudraCT 2020-001052-18", {"NCT04280705"}),
    ("stem \"cell exosomes\" OR baricitinib", {"ChiCTR2000030261", "NCT04401579"}),
    ("remdesivir -severe", set()),
]


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["name"] for item in response.get_json()["items"]]


def search(client, q: str, extra: str = "") -> list[str]:
    return names(client.get(f"/studies?page_size=100&q={quote(q)}{extra}"))


def test_the_search_table(client, seeded):
    wrong = {}
    for q, expected in SEARCH_TABLE:
        found = search(client, q)
        if set(found) != expected or len(found) != len(set(found)) or (
                len(expected) == 1 and found[0] not in expected):
            wrong[q] = found
    assert wrong == {}


def test_the_seed_study_is_found_through_its_journal_article(client, seeded):
    body = client.get("/studies?q=nebulization%20exosomes").get_json()
    assert body["total"] == 1
    study = body["items"][0]
    assert study["name"] == "ChiCTR2000030261"
    # "nebulization" is in no study field, only in the linked article's title
    assert "nebulization" not in (study["title"] + study["name"]).lower()


def test_a_registration_identifier_finds_its_study_first(client, seeded, auth):
    # Another study whose reference cites NCT04280705 in its abstract matches too, but ranks lower.
    other = create_study(client, auth, "ISRCTN83971151", title="A trial of something else")
    create_reference(client, auth, title="Follow-up of a trial", abstract="Compared with NCT04280705.",
                     study_ids=[other["id"]])
    found = search(client, "NCT04280705")
    assert found[0] == "NCT04280705"
    assert "ISRCTN83971151" in found


def test_relevance_is_the_default_with_q_and_another_sort_still_applies(client, seeded):
    by_relevance = search(client, "remdesivir")
    assert search(client, "remdesivir", "&sort=relevance") == by_relevance
    by_name = search(client, "remdesivir", "&sort=name")
    assert by_name == sorted(by_name)
    assert set(by_name) == set(by_relevance)
    by_id = client.get("/studies?q=remdesivir&sort=-id&page_size=100").get_json()["items"]
    assert [s["id"] for s in by_id] == sorted((s["id"] for s in by_id), reverse=True)


def test_relevance_needs_q(client, seeded):
    assert_problem(client.get("/studies?sort=relevance"), 422, "sort")
    assert_problem(client.get("/references?sort=relevance"), 422, "sort")


def test_equally_relevant_hits_are_ordered_by_updated_then_id(client, seeded, auth):
    for identifier in ("ISRCTN11111111", "ISRCTN22222222", "ISRCTN33333333"):
        create_study(client, auth, identifier, title="Identical wording about quercetin")
    items = client.get("/studies?q=quercetin").get_json()["items"]
    keys = [(item["updated"], item["id"]) for item in items]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    assert len(items) == 3


def test_walking_relevance_with_a_cursor_gives_every_match_once(client, seeded):
    everything = search(client, "covid")
    walked, url = [], "/studies?q=covid&page_size=4&cursor=*"
    for _ in range(len(everything)):
        if url is None:
            break
        body = client.get(url).get_json()
        walked += [item["name"] for item in body["items"]]
        url = body["next"]
    assert walked == everything
    paged, page = [], 1
    for _ in range(len(everything)):
        body = client.get(f"/studies?q=covid&page_size=5&page={page}").get_json()
        paged += [item["name"] for item in body["items"]]
        if not body["next"]:
            break
        page += 1
    assert paged == everything


def test_q_combines_with_filters(client, seeded):
    all_hits = search(client, "covid")
    observational = search(client, "covid", "&study_type=Observational")
    assert observational == ["NCT04318366"]
    assert set(observational) < set(all_hits)


def test_references_are_searched_by_title_abstract_and_authors(client, seeded):
    def titles(q, extra=""):
        response = client.get(f"/references?page_size=100&q={quote(q)}{extra}")
        assert response.status_code == 200, response.get_json()
        return [item["title"] for item in response.get_json()["items"]]

    by_author = titles("Chu M")
    assert any(t.startswith("Nebulization Therapy") for t in by_author)
    phrase = titles('"mesenchymal stem cell-derived exosomes"')
    assert phrase and all(t.startswith("Nebulization Therapy") for t in phrase)
    assert titles("exosome") == titles("exosomes")
    article = titles("nebulization", "&type=journal_article")
    assert len(article) == 1
    assert titles("nebulization", "&type=preprint") == []


def test_the_index_follows_a_changed_abstract(client, auth):
    study = create_study(client, auth)
    ref = create_reference(client, auth, abstract="Patients inhaled a quokkaberry mist. "
                                                  "ChiCTR2000030261")
    assert search(client, "quokkaberry") == ["ChiCTR2000030261"]
    response = client.patch(f"/references/{ref['id']}", json={"abstract": "Now about wombatfruit. "
                                                                           "ChiCTR2000030261"},
                            headers=auth)
    assert response.status_code == 200
    assert search(client, "wombatfruit") == ["ChiCTR2000030261"]
    assert search(client, "quokkaberry") == []
    refs = client.get("/references?q=wombatfruit").get_json()
    assert [r["id"] for r in refs["items"]] == [ref["id"]]
    assert client.get("/references?q=quokkaberry").get_json()["total"] == 0
    assert study["id"]


def test_the_index_follows_links_registrations_and_deletes(client, auth):
    study = create_study(client, auth, "ISRCTN12345678", title="Zinc for everyone")
    ref = create_reference(client, auth, title="Platypusine in adults", abstract="No trial number.")
    assert search(client, "platypusine") == []
    assert client.put(f"/studies/{study['id']}/references/{ref['id']}", headers=auth).status_code == 201
    assert search(client, "platypusine") == ["ISRCTN12345678"]
    assert client.delete(f"/studies/{study['id']}/references/{ref['id']}", headers=auth).status_code == 204
    assert search(client, "platypusine") == []

    # A new registration links the references citing it, and the study is found by it.
    create_reference(client, auth, title="Echidnol trial report", abstract="Registered as NCT09999999.")
    assert search(client, "echidnol") == []
    patched = client.patch(f"/studies/{study['id']}", headers=auth, json={
        "registrations": [{"identifier": "ISRCTN12345678"}, {"identifier": "NCT09999999"}]})
    assert patched.status_code == 200
    assert search(client, "echidnol") == ["ISRCTN12345678"]
    assert search(client, "NCT09999999") == ["ISRCTN12345678"]
    assert client.patch(f"/studies/{study['id']}", headers=auth,
                        json={"title": "Copper for everyone"}).status_code == 200
    assert search(client, "copper") == ["ISRCTN12345678"]
    assert search(client, "zinc") == []

    assert client.delete(f"/references/{ref['id']}", headers=auth).status_code == 204
    assert client.get("/references?q=platypusine").get_json()["total"] == 0
    assert client.delete(f"/studies/{study['id']}", headers=auth).status_code == 204
    assert search(client, "copper") == []


def test_a_failed_write_leaves_the_index_as_it_was(client, auth):
    create_study(client, auth, "ISRCTN12345678", title="Numbat therapy")
    other = create_study(client, auth, "ISRCTN87654321", title="Bilby therapy")
    clash = client.patch(f"/studies/{other['id']}", headers=auth, json={
        "title": "Quoll therapy", "registrations": [{"identifier": "ISRCTN12345678"}]})
    assert clash.status_code == 409
    assert search(client, "quoll") == []
    assert search(client, "bilby") == ["ISRCTN87654321"]


BAD_Q = [
    "' OR 1=1 --", "NEAR(a b)", "title:x*", '"unbalanced', '""', "-", "- -", "!!!", "...", "(", ")",
    "*", "^", "a:b", "x AND", "OR", "OR OR", "-OR", "\"NEAR\"", "col:\"x\"", "😷 🦠 mask",
    "東京 covid", "\u200b", "\\", "'", "%", "_", "NOT", "AND", "x NOT y", "{x}", "x\ty",
]


def test_odd_queries_answer_200_with_a_consistent_set_or_422_naming_q(client, seeded):
    for q in BAD_Q:
        for path, facet in (("/studies", "study_type"), ("/references", "type")):
            response = client.get(f"{path}?q={quote(q)}&facets={facet}")
            if response.status_code == 422:
                assert "At character" in assert_problem(response, 422, "q")["errors"]["q"][0] or \
                    "nothing to look for" in response.get_json()["detail"], q
                continue
            assert response.status_code == 200, (q, response.get_json())
            body = response.get_json()
            assert sum(v["count"] for v in body["facets"][facet]) == body["total"], q


def test_queries_with_nothing_to_look_for_are_422_naming_q(client, seeded):
    for q in ["!!!", "-", "the", "-covid", "...", "\u200b", "😷", "the of and", "(the)"]:
        for path in ("/studies", "/references"):
            assert_problem(client.get(f"{path}?q={quote(q)}"), 422, "q")


def test_too_long_or_control_characters_are_422_naming_q(client):
    for q in ["x" * 20_001, " ".join(f"w{i}" for i in range(1001)), "bad\x00byte", "bell\x07"]:
        for path in ("/studies", "/references"):  # longer than a request line: the POST form
            assert_problem(client.post(f"{path}/search", json={"q": q}), 422, "q")
        if len(q) < 5_000:
            assert_problem(client.get(f"/studies?q={quote(q)}"), 422, "q")


def test_study_facets_cover_the_vocabularies_and_add_up(client, seeded):
    response = client.get("/studies?facets=study_type,study_aim,study_design,intervention_assignment,"
                          "registry,reference_type,has_results&page_size=1")
    body = response.get_json()
    assert response.status_code == 200
    total = body["total"]
    for name in FACETS:
        values = body["facets"][name]
        assert [v["value"] for v in values] == list(FACETS[name])  # every value, vocabulary order
        assert sum(v["count"] for v in values) == total
    assert [v["value"] for v in body["facets"]["registry"]] == list(REGISTRIES)
    assert [v["value"] for v in body["facets"]["reference_type"]] == list(REFERENCE_TYPES)
    assert [v["value"] for v in body["facets"]["has_results"]] == [True, False]
    assert sum(v["count"] for v in body["facets"]["has_results"]) == total
    counts = {v["value"]: v["count"] for v in body["facets"]["study_type"]}
    assert counts["Observational"] == client.get("/studies?study_type=Observational").get_json()["total"]
    registry = {v["value"]: v["count"] for v in body["facets"]["registry"]}
    assert registry["EudraCT"] == client.get("/studies?registry=EudraCT").get_json()["total"]
    assert registry["PACTR"] == 0
    ref_type = {v["value"]: v["count"] for v in body["facets"]["reference_type"]}
    assert ref_type["preprint"] == client.get("/studies?reference_type=preprint").get_json()["total"]
    results = {v["value"]: v["count"] for v in body["facets"]["has_results"]}
    assert results[True] == client.get("/studies?has_results=true").get_json()["total"]


def test_facets_count_the_whole_filtered_set_with_q(client, seeded):
    body = client.get("/studies?q=hydroxychloroquine&study_type=Interventional&facets=study_type,"
                      "study_aim&page_size=1").get_json()
    assert body["total"] > 1  # counted over every match, not the one item on the page
    assert len(body["items"]) == 1
    types = {v["value"]: v["count"] for v in body["facets"]["study_type"]}
    assert types["Interventional"] == body["total"]
    aims = {v["value"]: v["count"] for v in body["facets"]["study_aim"]}
    assert aims["Prevention"] == client.get("/studies?q=hydroxychloroquine&study_type=Interventional"
                                            "&study_aim=Prevention").get_json()["total"] > 0
    assert sum(aims.values()) == body["total"]
    assert sum(v["count"] for v in body["facets"]["study_type"]) == body["total"]


def test_facets_given_twice_or_repeated_are_merged(client, seeded):
    one = client.get("/studies?facets=study_type&facets=study_aim,study_type").get_json()
    assert list(one["facets"]) == ["study_type", "study_aim"]


def test_a_facet_that_does_not_exist_is_422_listing_the_allowed(client, seeded):
    problem = assert_problem(client.get("/studies?facets=study_type,colour"), 422)
    text = str(problem["errors"])
    assert "colour" not in text or "study_aim" in text
    assert "intervention_assignment" in text
    problem = assert_problem(client.get("/references?facets=study_type"), 422)
    assert "has_results" in str(problem["errors"]) and "year" in str(problem["errors"])


def test_reference_facets(client, seeded):
    body = client.get("/references?facets=type,has_results,year&page_size=1").get_json()
    total = body["total"]
    assert [v["value"] for v in body["facets"]["type"]] == list(REFERENCE_TYPES)
    for name in ("type", "has_results", "year"):
        assert sum(v["count"] for v in body["facets"][name]) == total
    years = [v["value"] for v in body["facets"]["year"] if v["value"] is not None]
    assert years == sorted(years, reverse=True)
    for entry in body["facets"]["year"]:
        if entry["value"] is not None:
            assert entry["count"] == client.get(
                f"/references?year_from={entry['value']}&year_to={entry['value']}").get_json()["total"]
    preprints = client.get("/references?type=preprint&facets=type").get_json()
    assert {v["value"]: v["count"] for v in preprints["facets"]["type"]}["preprint"] == preprints["total"]


def test_no_facets_key_unless_asked(client, seeded):
    assert "facets" not in client.get("/studies").get_json()


def test_stats(client, seeded):
    response = client.get("/stats")
    assert response.status_code == 200
    stats = response.get_json()
    assert stats["studies"] == client.get("/studies").get_json()["total"] == 36
    assert stats["references"] == client.get("/references").get_json()["total"]
    listed = client.get("/studies?page_size=1&facets=study_type,study_aim,study_design,"
                        "intervention_assignment,registry,reference_type,has_results,"
                        "recruitment_status,phase,country,results_in").get_json()
    assert stats["study_facets"] == listed["facets"]
    refs = client.get("/references?page_size=1&facets=type,has_results,year").get_json()
    assert stats["reference_facets"] == refs["facets"]
    months = stats["studies_first_published_by_month"]
    assert sum(m["count"] for m in months) == stats["studies"]
    assert [m["month"] for m in months] == sorted(m["month"] for m in months)
    april = next(m for m in months if m["month"] == "2020-04")
    assert april["count"] == client.get("/studies?first_published_from=2020-04-01&"
                                        "first_published_to=2020-04-30").get_json()["total"]
    # no gaps: consecutive months
    for before, after in zip(months, months[1:], strict=False):
        y, m = map(int, before["month"].split("-"))
        assert after["month"] == (f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}")
    registered = stats["studies_registered_by_month"]
    assert sum(m["count"] for m in registered) == client.get(
        "/studies?registered_from=1900-01-01").get_json()["total"] > 0
    march = next(m for m in registered if m["month"] == "2020-03")
    assert march["count"] == client.get("/studies?registered_from=2020-03-01&"
                                        "registered_to=2020-03-31").get_json()["total"]
    tag = response.headers["ETag"]
    assert client.get("/stats", headers={"If-None-Match": tag}).status_code == 304


def test_stats_of_an_empty_register(client):
    stats = client.get("/stats").get_json()
    assert stats["studies"] == 0 and stats["references"] == 0
    assert stats["studies_first_published_by_month"] == []
    assert stats["last_updated"] is None
    assert all(v["count"] == 0 for v in stats["study_facets"]["study_type"])


def test_exports_apply_q_and_its_relevance_order(client, seeded):
    listed = search(client, "remdesivir")
    response = client.get("/studies?q=remdesivir&format=ndjson")
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]
    assert [s["name"] for s in lines] == listed
    assert response.headers["X-Total-Count"] == str(len(listed))
    by_name = client.get("/studies?q=remdesivir&format=csv&sort=name").get_data(as_text=True)
    assert [row["name"] for row in csv.DictReader(io.StringIO(by_name))] == sorted(listed)
    ris = client.get("/references?q=nebulization&format=ris").get_data(as_text=True)
    assert ris.count("ER  -") == client.get("/references?q=nebulization").get_json()["total"] >= 1


def test_a_ranked_page_counts_every_match_as_the_unranked_list_does(client, seeded):
    for q in ("covid OR trial", "remdesivir", "placebo* OR random*"):
        by_id = client.get(f"/studies?q={quote(q)}&sort=id&page_size=2").get_json()["total"]
        ranked = client.get(f"/studies?q={quote(q)}&page_size=2").get_json()
        assert ranked["total"] == by_id > 0, q
        past_the_end = client.get(f"/studies?q={quote(q)}&page_size=2&page=500").get_json()
        assert past_the_end["total"] == by_id and past_the_end["items"] == []
        refs = client.get(f"/references?q={quote(q)}&sort=id").get_json()["total"]
        assert client.get(f"/references?q={quote(q)}").get_json()["total"] == refs
