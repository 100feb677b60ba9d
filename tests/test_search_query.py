"""The `q` grammar on its own: parsing, and what it writes for FTS5 and for websearch_to_tsquery."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.search.query import MAX_TERMS, QueryTooLong, document_text, fold, parse


def shape(text: str) -> list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]]:
    """[(included terms, excluded terms)] per OR group."""
    return [([t.words for t in g.include], [t.words for t in g.exclude]) for g in parse(text).groups]


@pytest.mark.parametrize(("text", "expected"), [
    ("stem cells", [([("stem",), ("cells",)], [])]),
    ('"mesenchymal stem cells"', [([("mesenchymal", "stem", "cells")], [])]),
    ("a b OR c", [([("b",)], []), ([("c",)], [])]),  # AND binds tighter; "a" is a stop word
    ("zinc or copper iron", [([("zinc",)], []), ([("copper",), ("iron",)], [])]),
    ("covid -vaccine", [([("covid",)], [("vaccine",)])]),
    ('covid -"stem cells"', [([("covid",)], [("stem", "cells")])]),
    ("covid-19", [([("covid", "19")], [])]),  # in-word punctuation makes a phrase
    ("well-being -covid-19", [([("well", "being")], [("covid", "19")])]),
    ('"unbalanced phrase', [([("unbalanced", "phrase")], [])]),
    ("Bévacizumab ÉTUDE", [([("bevacizumab",), ("etude",)], [])]),
    ("NCT 04280705", [([("nct04280705",)], [])]),  # an identifier in any written form is one word
    ("EUCTR2020-001052-18-GB remdesivir", [([("202000105218",), ("remdesivir",)], [])]),
    ("ChiCTR-2000030261", [([("chictr2000030261",)], [])]),
    ("the of and", []),
    ("-covid", []),  # nothing to include: nothing to search for
    ("!!! ... ???", []),
    ("", []),
    ("OR", []),
    ("x OR", [([("x",)], [])]),
    ("OR x", [([("x",)], [])]),
    ("' OR 1=1 --", [([("1", "1")], [])]),
    ("title:x*", [([("title", "x")], [])]),
    ("NEAR(a b)", [([("near", "a"), ("b",)], [])]),
])
def test_parse(text, expected):
    assert shape(text) == expected


def test_output_for_each_database():
    query = parse('stem "cell exosomes" -covid OR baricitinib')
    assert query.fts5() == '(("stem" AND "cell exosomes") NOT ("covid")) OR (("baricitinib"))'
    assert query.websearch() == 'stem "cell exosomes" -covid or baricitinib'


def test_too_many_terms():
    parse(" ".join(f"w{i}" for i in range(MAX_TERMS)))
    with pytest.raises(QueryTooLong):
        parse(" ".join(f"w{i}" for i in range(MAX_TERMS + 1)))


def test_documents_and_queries_split_words_alike():
    assert document_text("Covid-19: São Paulo's (n=2.5)", None, "NCT04280705") == \
        "covid 19 sao paulo s n 2 5 nct04280705"
    assert fold("Straße Ŝ") == "strasse s"


@pytest.fixture(scope="module")
def fts5():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a, b, c, tokenize = 'porter unicode61 "
                 "remove_diacritics 2')")
    conn.execute("INSERT INTO t (a, b, c) VALUES (?, ?, ?)",
                 (document_text("Mesenchymal stem cells exosomes"), document_text("Covid-19 trial"),
                  document_text("TRIAL REGISTRATION: ChiCTR2000030261")))
    return conn


@pytest.mark.parametrize(("text", "hits"), [
    ("exosome", 1), ('"stem cells"', 1), ('"cells stem"', 0), ("stem -covid", 0),
    ("nothing OR stems", 1), ("ChiCTR2000030261", 1), ("chictr 2000030261", 1), ("covid-19", 1),
])
def test_fts5_reads_what_we_write(fts5, text, hits):
    assert fts5.execute("SELECT count(*) FROM t WHERE t MATCH ?", (parse(text).fts5(),)).fetchone()[0] == hits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_no_text_breaks_fts5(fts5, text):
    try:
        query = parse(text)
    except QueryTooLong:
        return
    if not query.empty:
        fts5.execute("SELECT count(*) FROM t WHERE t MATCH ?", (query.fts5(),)).fetchone()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab -"()*:^+.OR\'NEAR')), max_size=60))
def test_no_operator_soup_breaks_fts5(text):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a)")
    try:
        query = parse(text)
    except QueryTooLong:
        return
    if not query.empty:
        conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (query.fts5(),)).fetchone()
