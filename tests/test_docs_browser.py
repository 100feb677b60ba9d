"""Swagger UI in headless Chromium: /docs loads with no outside request, and "Try it out" on
GET /studies shows the seeded study, on GET /references/export the RIS download."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-default-apps", "--disable-extensions"]


def _need_browser():
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        message = "needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail("CI=true: " + message)
        pytest.skip(message)


@contextlib.contextmanager
def local_page(height: int = 1600):
    """A page of headless Chromium that may reach only the service (any other request is aborted);
    yields it with the URLs it requested and the errors its scripts raised."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route("**/*", lambda route: route.continue_()
                       if urlsplit(route.request.url).hostname in LOCAL_HOSTS else route.abort())
            yield page, requested, errors
        finally:
            browser.close()


@pytest.fixture
def live_server(app, seeded):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_try_it_out_on_get_studies_shows_the_seeded_study(live_server, tmp_path):
    from playwright.sync_api import expect

    with local_page() as (page, requested, errors):
        page.goto(f"{live_server}/docs", wait_until="networkidle")
        operation = page.locator("#operations-studies-get_studies")
        expect(operation).to_be_visible(timeout=15_000)
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()
        live = operation.locator(".live-responses-table")
        expect(live).to_be_visible(timeout=15_000)
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        if os.environ.get("DOCS_SCREENSHOT"):
            page.screenshot(path=os.environ["DOCS_SCREENSHOT"], full_page=True)
        expect(live.locator("tbody .response-col_status").first).to_contain_text("200")
        expect(live.locator("tbody .response-col_description").first).to_contain_text(
            "ChiCTR2000030261", timeout=15_000)

    outside = [url for url in requested if urlsplit(url).hostname not in LOCAL_HOSTS | {None}
               and not url.startswith("data:")]
    assert outside == [], f"/docs asked outside hosts: {outside}"
    assert any(url.endswith("/openapi.json") for url in requested)
    assert errors == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_try_it_out_exports_references_as_ris(live_server):
    """The export operation from the docs page: Swagger UI sends what the form holds (every default the
    spec gives) and the service answers the RIS download, not a 422 (issue 14)."""
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    answered = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("response", lambda response: answered.append((response.url, response.status)))
            page.goto(f"{live_server}/docs", wait_until="networkidle")
            operation = page.locator("#operations-exports-get_reference_export")
            expect(operation).to_be_visible(timeout=15_000)
            operation.locator(".opblock-summary").click()
            operation.get_by_role("button", name="Try it out").click()
            operation.locator('tr[data-param-name="format"] select').select_option("ris")
            operation.get_by_role("button", name="Execute").click()
            live = operation.locator(".live-responses-table")
            expect(live).to_be_visible(timeout=15_000)
            expect(live.locator("tbody .response-col_status").first).to_contain_text("200")
        finally:
            browser.close()
    exports = [(url, status) for url, status in answered if "/references/export" in url]
    assert exports and all("format=ris" in url and "page_size" not in url and status == 200
                           for url, status in exports), exports
