"""The web pages in headless Chromium (Debian's, through Playwright, as tests/test_docs_browser.py): search
from the home page, open the seed study's record page and find every line of the register's own page,
filter by a facet and see the API's count; no request leaves the service; axe-core finds no serious or
critical accessibility violation. `SCREENSHOTS=docs` also saves docs/home.png and docs/record.png."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import NODE_MODULES, axe_problems, node_file
from tests.test_docs_browser import (  # noqa: F401 (live_server: the fixture)
    LOCAL_HOSTS,
    _need_browser,
    live_server,
    local_page,
)
from tests.test_pages import NOTICE, assert_lines_in_order, seed_lines

pytestmark = pytest.mark.browser



@pytest.fixture
def notice(app, seeded):
    """The seed's holiday notice, in force now (the seeded one is in force in its own season only)."""
    from service.db import database
    from service.domain import notices

    with database.connection_context():
        notices.create_notice({"message": NOTICE})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_search_open_the_record_filter_and_check_accessibility(live_server, notice, client):  # noqa: F811
    _need_browser()
    node_file(NODE_MODULES / "axe-core" / "axe.min.js", "axe-core")  # before the browser starts
    from playwright.sync_api import expect

    shots = os.environ.get("SCREENSHOTS")
    violations = {}
    with local_page(900) as (page, requested, errors):
        page.goto(f"{live_server}/", wait_until="networkidle")
        expect(page.get_by_text(NOTICE)).to_be_visible()
        violations["home"] = axe_problems(page)

        page.get_by_label("Search studies and their reports").fill("nebulization exosomes")
        page.get_by_role("button", name="Search", exact=True).click()
        page.wait_for_load_state("networkidle")
        results = page.locator("ol.studies")
        expect(results).to_contain_text("ChiCTR2000030261")
        violations["search"] = axe_problems(page)
        if shots:
            page.screenshot(path=str(Path(shots) / "home.png"), full_page=True)

        page.get_by_role("link", name="ChiCTR2000030261", exact=True).click()
        page.wait_for_load_state("networkidle")
        expect(page.get_by_role("heading", level=1)).to_have_text("ChiCTR2000030261")
        assert_lines_in_order(seed_lines(), page.locator("body").inner_text())
        violations["record"] = axe_problems(page)
        if shots:
            page.screenshot(path=str(Path(shots) / "record.png"), full_page=True)

        # Filter by a facet from the home page: the count shown is the API's, and so is the total.
        page.goto(f"{live_server}/", wait_until="networkidle")
        facet = page.locator('fieldset[data-facet="study_type"]')
        box = facet.get_by_label("Observational")
        shown = int(facet.locator('.count[data-value="Observational"]').inner_text())
        box.check()
        facet.page.get_by_role("button", name="Apply filters").click()
        page.wait_for_load_state("networkidle")
        api = client.get("/studies?study_type=Observational&facets=study_type").get_json()
        assert shown == api["total"] > 0
        expect(page.locator("#results-heading")).to_have_text(
            f"{api['total']} {'study' if api['total'] == 1 else 'studies'}")
        checked = page.locator('fieldset[data-facet="study_type"] input[value="Observational"]')
        expect(checked).to_be_checked()

        # The accessibility check can fail: an unlabelled control and an image without text.
        page.set_content('<html lang="en"><body><main><img src="/static/web/site.css">'
                         '<input type="text"></main></body></html>')
        assert len(axe_problems(page)) >= 2

    outside = [url for url in requested if urlsplit(url).hostname not in LOCAL_HOSTS | {None}
               and not url.startswith("data:")]
    assert outside == [], f"the pages asked outside hosts: {outside}"
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in requested if not url.startswith("data:"))
    assert errors == []
    assert violations == {"home": [], "search": [], "record": []}
