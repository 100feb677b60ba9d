"""The evidence map in headless Chromium: /map loads with no outside request and no serious or critical
axe-core violation, and a matrix cell leads to the list of exactly its studies."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from .helpers import NODE_MODULES, axe_problems, node_file
from .test_docs_browser import (
    LOCAL_HOSTS,
    _need_browser,
    live_server,  # noqa: F401  (the fixture)
    local_page,
)

pytestmark = pytest.mark.browser



@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_map_is_accessible_and_a_cell_leads_to_its_list(live_server, client):  # noqa: F811
    _need_browser()
    node_file(NODE_MODULES / "axe-core" / "axe.min.js", "axe-core")  # before the browser starts
    from playwright.sync_api import expect

    with local_page(900) as (page, requested, errors):
        response = page.goto(f"{live_server}/map", wait_until="networkidle")
        assert response.status == 200
        expect(page.get_by_role("heading", name="Evidence map")).to_be_visible()
        expect(page.locator("svg.month-chart")).to_be_visible()
        expect(page.get_by_role("table", name="Studies by study aim (rows) and study design (columns)")
               ).to_be_visible()
        if os.environ.get("MAP_SCREENSHOT"):
            page.screenshot(path=os.environ["MAP_SCREENSHOT"], full_page=True)

        serious = axe_problems(page)
        assert serious == [], serious

        # The largest cell: follow it by keyboard-reachable link, as a reviewer would click it.
        cells = page.locator("table.matrix td a")
        numbers = [int(t.replace(",", "")) for t in cells.all_inner_texts()]
        assert numbers
        cell = cells.nth(numbers.index(max(numbers)))
        expected = max(numbers)
        href = cell.get_attribute("href")
        with page.expect_navigation():
            cell.click()
        answer = page.context.request.get(page.url)
        landed = urlsplit(page.url)
        query = parse_qsl(landed.query)
        home_html = answer.status == 200 and answer.headers["content-type"].startswith("text/html")
        if home_html:
            text = page.inner_text("main")

    assert landed.path == "/" and page_query_names(query) == {"study_aim", "study_design"}, href
    api = client.get("/studies", query_string=[*query, ("page_size", "100")]).get_json()
    assert api["total"] == expected
    if home_html:  # the home page (issue 15 point 1) lists those studies and says how many
        assert re.search(rf"\b{expected:,}\b", text), text[:500]
        assert all(study["name"] in text for study in api["items"][:10])
    else:  # before the home page exists, "/" is the API's 404 for an unknown path
        assert answer.status == 404
    outside = [url for url in requested if urlsplit(url).hostname not in LOCAL_HOSTS | {None}
               and not url.startswith("data:")]
    assert outside == [], f"/map asked outside hosts: {outside}"
    assert errors == []


def page_query_names(query: list[tuple[str, str]]) -> set[str]:
    return {name for name, _ in query}
