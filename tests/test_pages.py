"""The web pages (issue 15): the home page (search, facet filters with the API's counts, paging, exports,
errors in words) and the study record page (`Accept: text/html` on /studies/{id}) carrying every line of
the register's own page for ChiCTR2000030261, while machines still get JSON."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from service.identifiers import registry_record_url

SEED_PAGE = Path(__file__).parent / "fixtures" / "seed-record-ChiCTR2000030261.txt"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"
NOTICE = ("Register update: there will be a delay adding new records during our holiday period "
          "(Dec 17 - Jan 4)")


class _Page(HTMLParser):
    """The text content (no script, style or head), the links, headings and form controls of a page."""

    def __init__(self):
        super().__init__()
        self.text, self.links, self.headings, self.inputs, self.labels_for = [], [], [], [], set()
        self._skip, self._heading = 0, None
        self.wrapped = 0  # inputs inside a <label>
        self._in_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style", "head"):
            self._skip += 1
        if tag == "a":
            self.links.append(attrs.get("href"))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [int(tag[1]), ""]
        if tag == "label":
            self._in_label += 1
            if attrs.get("for"):
                self.labels_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            self.inputs.append(attrs)
            self.wrapped += bool(self._in_label)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self._skip -= 1
        if re.fullmatch(r"h[1-6]", tag) and self._heading:
            self.headings.append(tuple(self._heading))
            self._heading = None
        if tag == "label":
            self._in_label -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
            if self._heading:
                self._heading[1] += data


def parse(body: str) -> _Page:
    page = _Page()
    page.feed(body)
    return page


def squeeze(text: str) -> str:
    """Text compared without its whitespace: the seed page runs some blocks together
    ("ChiCTR2000030261First Published: ...") where a page lays them out apart."""
    return re.sub(r"\s+", "", text)


def seed_lines() -> list[str]:
    return [line.strip() for line in SEED_PAGE.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_lines_in_order(lines: list[str], text: str) -> None:
    flat, at = squeeze(text), 0
    for line in lines:
        # The seed file numbers list items ("1. Study Type"): its rendering of a list, not page text.
        wanted = squeeze(re.sub(r"^\d+\.\s+", "", line))
        found = flat.find(wanted, at)
        assert found >= 0, f"not found (in order) on the page: {line[:80]!r}"
        at = found + len(wanted)


def html_get(client, path: str, **kwargs):
    return client.get(path, headers={"Accept": BROWSER}, **kwargs)


@pytest.fixture
def notice(client, auth, seeded):
    """The seed's holiday notice is in force only in its own season: one in force now, of its words."""
    response = client.post("/notices", json={"message": NOTICE}, headers=auth)
    assert response.status_code == 201
    return response.get_json()


@pytest.fixture
def study_id(client, seeded):
    return client.get("/studies?registration=ChiCTR2000030261").get_json()["items"][0]["id"]


def test_home_page_lists_studies_with_notice_search_box_and_links(client, notice):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["Content-Type"] == HTML
    assert re.fullmatch(r"app;dur=\d+(\.\d+)?", response.headers["Server-Timing"])
    page = parse(response.text)
    text = " ".join(page.text)
    assert NOTICE in text
    total = client.get("/studies").get_json()["total"]
    assert f"{total} studies" in text
    assert "/docs" in page.links
    assert any(link.startswith("/studies/export?") and "format=csv" in link for link in page.links)
    assert any(link.startswith("/references/export?") and "format=ris" in link for link in page.links)
    # Every visible form control has a label (wrapping it, or naming it with `for`).
    for control in page.inputs:
        assert control.get("id") in page.labels_for or page.wrapped == len(page.inputs) - 1, control
    assert [level for level, _ in page.headings][:2] == [1, 2]


def test_search_finds_the_seed_study_as_the_api_does(client, study_id):
    response = client.get("/?q=nebulization+exosomes")
    assert response.status_code == 200
    page = parse(response.text)
    api = client.get("/studies?q=nebulization+exosomes").get_json()
    assert f"/studies/{study_id}" in page.links
    names = [text for level, text in page.headings if level == 3]
    assert names == [item["name"] for item in api["items"]]
    assert f"Searched as: {api['query']}" in " ".join(" ".join(page.text).split())
    # The exports keep the search.
    csv_link = next(link for link in page.links if link.startswith("/studies/export?"))
    assert parse_qs(urlsplit(csv_link).query) == {"q": ["nebulization exosomes"], "format": ["csv"]}
    export = client.get(csv_link)
    assert export.status_code == 200 and export.text.count("\n") == api["total"] + 1


def test_an_empty_search_box_is_the_first_page(client, seeded):
    response = client.get("/?q=&study_type=Interventional")
    assert response.status_code == 200
    total = client.get("/studies?study_type=Interventional").get_json()["total"]
    assert f"{total} studies" in response.text
    assert client.get("/?q=%20%20").status_code == 200


def test_results_is_one_choice_and_any_is_no_filter(client, seeded):
    body = client.get("/").text
    assert re.search(r'type="radio" name="has_results" value=""\s+checked', body)
    assert 'type="radio" name="has_results" value="true"' in body
    assert client.get("/?has_results=&study_type=Interventional").status_code == 200
    chosen = client.get("/?has_results=true").text
    assert re.search(r'name="has_results" value="true"\s+checked', chosen)
    total = client.get("/studies?has_results=true").get_json()["total"]
    assert f"{total} studies" in chosen


def _facet_counts(body: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for facet, block in re.findall(r'data-facet="([^"]+)">(.*?)</fieldset>', body, re.S):
        counts[facet] = {value: int(count) for value, count in
                         re.findall(r'class="count" data-value="([^"]*)">(\d+)<', block)}
    return counts


@pytest.mark.parametrize("query", ["", "q=exosomes", "study_type=Interventional&has_results=true",
                                   "q=covid&study_aim=Treatment+and+Management&study_aim=Prevention"])
def test_facet_counts_equal_the_apis(client, seeded, query):
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    shown = _facet_counts(page.text)
    api = client.get(f"/studies?{query}&facets=study_type,study_aim,study_design,intervention_assignment,"
                     "reference_type,has_results,registry").get_json()
    assert set(shown) >= {"study_type", "study_aim", "has_results", "reference_type"}
    for facet, values in api["facets"].items():
        expected = {("true" if v["value"] is True else "false" if v["value"] is False else v["value"]):
                    v["count"] for v in values if v["count"]}
        assert {k: c for k, c in shown.get(facet, {}).items() if c} == expected, facet
    assert f"{api['total']} " in page.text


def test_a_checked_facet_filters_and_stays_checked(client, seeded):
    body = client.get("/?study_type=Observational").text
    assert re.search(r'name="study_type" value="Observational"\s+checked', body)
    total = client.get("/studies?study_type=Observational").get_json()["total"]
    assert f"{total} studies" in body or f"{total} study" in body


def test_paging_walks_every_study_once(client, seeded):
    api_names = [item["name"] for item in client.get("/studies?page_size=100").get_json()["items"]]
    seen, path = [], "/?page_size=10"
    while path:
        page = parse(client.get(path).text)
        seen += [text for level, text in page.headings if level == 3]
        body = client.get(path).text
        match = re.search(r'<a href="([^"]+)" rel="next">', body)
        path = "/" + match.group(1).replace("&amp;", "&") if match else None
    assert seen == api_names and len(seen) > 10


@pytest.mark.parametrize(("query", "status", "words"), [
    ("q=(exosomes", 422, "q:"),
    ("q=covid+and+stem", 422, "q:"),
    ("study_type=Nonsense", 422, "study_type"),
    ("page=0", 422, "page"),
    ("page=10000&page_size=100", 422, "page"),
    ("colour=blue", 422, "colour"),
    ("format=csv", 422, "format"),
    ("q=" + "a" * 30000, 414, ""),
])
def test_a_bad_search_is_a_page_in_words(client, seeded, query, status, words):
    response = client.get(f"/?{query}", headers={"Accept": BROWSER})
    assert response.status_code == status
    if status == 422:
        assert response.headers["Content-Type"] == HTML
        text = " ".join(parse(response.text).text)
        assert words in text and "Traceback" not in text


def test_record_page_carries_every_line_of_the_seed_page_in_order(client, notice, study_id):
    response = html_get(client, f"/studies/{study_id}")
    assert response.status_code == 200 and response.headers["Content-Type"] == HTML
    assert "Accept" in response.headers["Vary"]
    assert re.fullmatch(r"app;dur=\d+(\.\d+)?", response.headers["Server-Timing"])
    page = parse(response.text)
    assert_lines_in_order(seed_lines(), " ".join(page.text))
    levels = [level for level, _ in page.headings]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
    study = client.get(f"/studies/{study_id}").get_json()
    for ref in study["references"]:
        if ref.get("doi"):
            assert f"https://doi.org/{ref['doi']}" in page.links
        if ref.get("pmid"):
            assert f"https://pubmed.ncbi.nlm.nih.gov/{ref['pmid']}/" in page.links
    assert registry_record_url("ChiCTR2000030261") in page.links


def test_record_page_lists_the_references_citing_the_study(client, auth, study_id):
    review = client.post("/references", json={
        "type": "journal_article", "title": "Stem cell therapies for COVID-19: a <systematic> review",
        "authors": ["Doe J"], "doi": "10.1000/review.1", "has_results": False}, headers=auth).get_json()
    linked = client.put(f"/studies/{study_id}/references/{review['id']}", headers=auth)
    assert linked.status_code in (200, 201), linked.get_json()
    role = client.patch(f"/studies/{study_id}/references/{review['id']}", json={"role": "cites"},
                        headers=auth)
    assert role.status_code == 200, role.get_json()
    page = parse(html_get(client, f"/studies/{study_id}").text)
    assert (2, "Cited by") in page.headings
    text = " ".join(page.text)
    assert "Stem cell therapies for COVID-19: a <systematic> review" in text
    assert "https://doi.org/10.1000/review.1" in page.links
    # Citing is not reporting: the review is no "Reference record" of the study.
    assert [t for level, t in page.headings if level == 3].count(
        "Stem cell therapies for COVID-19: a <systematic> review") == 0


def test_the_seed_lines_check_can_fail(client, notice, study_id):
    text = " ".join(parse(html_get(client, f"/studies/{study_id}").text).text)
    with pytest.raises(AssertionError):
        assert_lines_in_order(list(reversed(seed_lines())), text)


def test_record_page_escapes_what_it_shows(client, auth, seeded):
    created = client.post("/studies", json={"title": "<script>alert(1)</script> & more",
                                            "registrations": [{"identifier": "NCT09999999"}]},
                          headers=auth).get_json()
    body = html_get(client, f"/studies/{created['id']}").text
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in body
    assert "https://clinicaltrials.gov/study/NCT09999999" in body
    listed = client.get("/?q=NCT09999999").text
    assert "<script>alert(1)</script>" not in listed


def test_missing_study_is_a_404_page_for_browsers_and_a_problem_for_machines(client, seeded):
    response = html_get(client, "/studies/999999")
    assert response.status_code == 404 and response.headers["Content-Type"] == HTML
    assert "Study 999999" in response.text or "999999" in response.text
    machine = client.get("/studies/999999")
    assert machine.status_code == 404 and machine.headers["Content-Type"] == "application/problem+json"


def test_merged_study_redirects_the_browser_too(client, auth, seeded):
    a = client.post("/studies", json={"title": "A", "registrations": [{"identifier": "NCT09999991"}]},
                    headers=auth).get_json()
    b = client.post("/studies", json={"title": "B", "registrations": [{"identifier": "NCT09999992"}]},
                    headers=auth).get_json()
    merged = client.post(f"/studies/{a['id']}/merge", json={"from": b["id"]}, headers=auth)
    assert merged.status_code in (200, 201), merged.get_json()
    response = html_get(client, f"/studies/{b['id']}")
    assert response.status_code == 308 and response.headers["Location"].endswith(f"/studies/{a['id']}")
    assert html_get(client, f"/studies/{a['id']}").headers["Content-Type"] == HTML


@pytest.mark.parametrize("accept", [None, "*/*", JSON, "application/*",
                                    "application/json;q=0.9, text/html;q=0.5"])
def test_machines_still_get_json(client, study_id, accept):
    headers = {"Accept": accept} if accept else {}
    response = client.get(f"/studies/{study_id}", headers=headers)
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON
    assert response.get_json()["name"] == "ChiCTR2000030261"
    assert client.get(f"/studies/{study_id}?format=json", headers={"Accept": BROWSER}).headers[
        "Content-Type"] == JSON
    assert client.get("/studies", headers={"Accept": BROWSER}).headers["Content-Type"] == JSON


@pytest.mark.parametrize("path", ["/", "/?q=exosomes", "/map"])
def test_pages_answer_whoever_asks_for_html_and_refuse_json_only(client, seeded, path):
    """A page is HTML: `Accept: text/html` alone gets it (no 406), `Accept: application/json` alone a
    406 problem naming what the page produces; its stylesheet comes whatever `Accept` says."""
    page = client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    refused = client.get(path, headers={"Accept": "application/json"})
    assert refused.status_code == 406 and refused.mimetype == "application/problem+json"
    assert "text/html" in refused.get_json()["detail"]
    css = client.get("/static/web/site.css", headers={"Accept": "text/css"})
    assert css.status_code == 200 and css.mimetype == "text/css"
