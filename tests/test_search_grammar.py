"""The strategy grammar through the HTTP API, on SQLite and on Postgres: boolean sets, fields,
truncation, the errors and the limits. Each database must give the same sets on the same data."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from service.search import index
from tests.conftest import assert_problem
from tests.helpers import create_reference, create_study


def found(client, q: str, path: str = "/studies", key: str = "name") -> set:
    response = client.get(f"{path}?page_size=100&q={quote(q)}")
    assert response.status_code == 200, (q, response.get_json())
    body = response.get_json()
    assert body["total"] == len(body["items"]), q  # the seeded register fits one page
    return {item[key] for item in body["items"]}


@pytest.mark.parametrize(("a", "b"), [
    ("remdesivir", "placebo"), ("hydroxychloroquine", "prophylaxis"), ("covid", "vaccine"),
    ('"convalescent plasma"', "severe"), ("lopinavir", "ritonavir"),
])
def test_boolean_operators_give_the_sets_they_name(client, seeded, a, b):
    left, right, both = found(client, a), found(client, b), found(client, f"{a} {b}")
    assert left and right
    assert found(client, f"{a} AND {b}") == both == left & right
    assert found(client, f"{a} OR {b}") == left | right
    assert found(client, f"{a} NOT {b}") == found(client, f"{a} -{b}") == left - right
    assert found(client, f"({a} OR {b}) NOT ({a} AND {b})") == left ^ right


def test_not_is_no_longer_dropped_and_parentheses_are_read(client, seeded):
    remdesivir = found(client, "remdesivir")
    with_placebo = found(client, "remdesivir placebo")
    assert found(client, "remdesivir NOT placebo") == remdesivir - with_placebo
    grouped = found(client, "remdesivir AND (placebo OR standard)")
    assert grouped <= remdesivir
    assert grouped == with_placebo | found(client, "remdesivir standard")


def test_precedence_is_not_then_and_then_or(client, seeded):
    a, b, c = found(client, "tocilizumab"), found(client, "remdesivir"), found(client, "placebo")
    assert found(client, "tocilizumab OR remdesivir NOT placebo") == a | (b - c)
    assert found(client, "tocilizumab OR remdesivir placebo") == a | (b & c)
    assert found(client, "(tocilizumab OR remdesivir) NOT placebo") == (a | b) - c


def test_truncation_finds_every_word_that_begins_so(client, auth):
    study = create_study(client, auth, "NCT04368728", title="A vaccine trial")
    create_reference(client, auth, title="Vaccination of health workers", abstract="Hospitalization "
                     "rates fell.", study_ids=[study["id"]])
    create_study(client, auth, "ISRCTN83971151", title="Vaccinated children and their parents")
    create_study(client, auth, "NCT04280705", title="Hospitals in Wuhan")
    # The stems are `vaccin` and `hospit`: a prefix longer than a stem finds nothing in either
    # database's own truncation, and everything here.
    assert found(client, "vaccinat*") == {"NCT04368728", "ISRCTN83971151"}
    assert found(client, "vaccinat") == set()
    # each word a truncation stands for is searched as that word is, stemmed: `hospitalization`
    # shares its stem with `hospitals`
    assert found(client, "hospitaliz*") == found(client, "hospitalization") == {"NCT04368728", "NCT04280705"}
    assert found(client, "hospital*") == {"NCT04368728", "NCT04280705"}
    # and `vaccination` shares `vaccin` with the vaccine trial's title
    assert found(client, "title:vaccinat*") == found(client, "title:(vaccinate OR vaccinated)") == \
        {"ISRCTN83971151", "NCT04368728"}
    assert found(client, "title:vaccinated") == {"ISRCTN83971151", "NCT04368728"}
    assert found(client, "report_title:vaccinat*") == {"NCT04368728"}
    assert found(client, "nothingbeginsso*") == set()
    assert found(client, "hospital* -nothingbeginsso*") == {"NCT04368728", "NCT04280705"}
    assert found(client, "registration:nct043*") == {"NCT04368728"}
    assert found(client, "sars-cov*") == set()


def test_fields_of_a_study(client, auth):
    actt = create_study(client, auth, "NCT04280705", name="ACTT-1", title="Adaptive COVID-19 Treatment Trial")
    create_reference(client, auth, title="Remdesivir for the Treatment of Covid-19", authors=["Beigel JH"],
                     abstract="Remdesivir was superior to placebo.", study_ids=[actt["id"]])
    other = create_study(client, auth, "ISRCTN83971151", title="Beigel's remdesivir trial")
    assert found(client, "Beigel") == {"ACTT-1", "ISRCTN83971151"}
    assert found(client, "author:Beigel") == {"ACTT-1"}
    assert found(client, "title:beigel") == {"ISRCTN83971151"}
    assert found(client, "name:actt") == {"ACTT-1"}
    assert found(client, "registration:NCT04280705") == {"ACTT-1"}
    assert found(client, "registration:ISRCTN83971151") == {"ISRCTN83971151"}
    assert found(client, "registry:isrctn") == {"ISRCTN83971151"}
    assert found(client, "report_title:remdesivir") == {"ACTT-1"}
    assert found(client, "abstract:placebo") == {"ACTT-1"}
    assert found(client, "title:placebo") == set()
    assert found(client, 'report_title:"treatment of covid 19"') == {"ACTT-1"}
    assert found(client, "title:(beigel OR adaptive) NOT author:beigel") == {"ISRCTN83971151"}
    assert other["id"] != actt["id"]


def test_fields_of_a_reference(client, auth):
    one = create_reference(client, auth, title="Remdesivir for Covid-19", authors=["Beigel JH"],
                           source="New England Journal of Medicine", doi="10.1056/NEJMoa2007764",
                           pmid="32445440", abstract="A lancet of placebo.")
    two = create_reference(client, auth, title="Letter on remdesivir", source="The Lancet",
                           abstract="Beigel wrote.")

    def refs(q):
        return found(client, q, "/references", "id")

    assert refs("lancet") == {one["id"], two["id"]}
    assert refs("source:lancet") == refs('source:"the lancet"') == {two["id"]}
    assert refs("doi:10.1056/NEJMoa2007764") == {one["id"]}
    assert refs('doi:"10.1056/nejmoa2007764"') == {one["id"]}
    assert refs("pmid:32445440") == {one["id"]}
    assert refs("author:beigel") == {one["id"]}
    assert refs("beigel") == {one["id"], two["id"]}
    assert refs("title:placebo") == set()
    assert refs("abstract:placebo") == {one["id"]}


def test_a_registration_identifier_in_a_strategy_still_finds_its_study_first(client, seeded):
    response = client.get("/studies?q=" + quote("NCT04280705 OR remdesivir OR (adaptive AND trial)"))
    assert response.get_json()["items"][0]["name"] == "NCT04280705"


def test_a_truncation_standing_for_too_many_words_is_422_naming_it(client, seeded, monkeypatch):
    monkeypatch.setattr(index, "MAX_EXPANSION", 3)
    body = assert_problem(client.get("/studies?q=" + quote("covid pat*")), 422, "q")
    assert "`pat*` stands for" in body["errors"]["q"][0]
    monkeypatch.setattr(index, "MAX_EXPANDED", 3)
    assert_problem(client.get("/references?q=" + quote("covid pat* OR rem*")), 422, "q")


@pytest.mark.parametrize("q", [
    "(" * 10_000, ")" * 50, "((((remdesivir", "remdesivir)", '"stem cells', "title:", "title:)", "*",
    "a*", "ab*", "NOT", "NOT remdesivir", "OR OR", "AND", "remdesivir AND", "remdesivir OR", "-",
    '"title:remdesivir"', '"stem cell*"', "unknown:remdesivir", "TITLE:remdesivir", "x" * 20_001,
    "covid[tiab]", "randomi?ed", "#1 OR #2", "remdesivir not placebo", "zinc or copper", "-covid",
    "the", "()", "x1 OR -x2", "a1 NOT -b1", "title:(a1 OR abstract:b1)",
    " ".join(f"w{i}" for i in range(1_001)),
])
def test_bad_strategies_are_422_naming_q_with_the_position(client, seeded, q):
    for path in ("/studies", "/references"):
        body = assert_problem(client.post(f"{path}/search", json={"q": q}), 422, "q")
        if len(q) < 2_000:  # and the same by GET (a longer request line is a 414: test_serving)
            assert client.get(f"{path}?q={quote(q)}").get_json()["errors"] == body["errors"]
        message = body["errors"]["q"][0]
        assert message.startswith("At character") or "at most" in message or \
            "nothing to look for" in message, message


def test_a_long_published_strategy_is_read_on_both_databases(client, seeded):
    block = " OR ".join(f"term{i}*" for i in range(300))
    q = f"(covid* OR coronavir* OR {block}) AND (remdesivir OR favipiravir) AND (random* OR placebo)"
    assert len(q) > 3_000
    assert found(client, q) == found(client, "covid* (remdesivir OR favipiravir) (random* OR placebo)") \
        | found(client, "coronavir* (remdesivir OR favipiravir) (random* OR placebo)")
