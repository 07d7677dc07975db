"""Pages driven in headless Chromium (Debian's package) through Playwright.

The portal runs on Django's live server, signs in through the emulator's Entra pages and
syncs from its Graph. Screenshots of the main pages are kept under var/screenshots/ (CI
keeps them as artifacts).
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from permissions.catalog import catalog_import_starter
from permissions.manifests import BUNDLED_MANIFESTS_DIR, manifest_import, manifest_read
from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Without these, Chromium keeps calling Google's services, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
CONTOSO = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread, which makes Django refuse
    # database calls here; the test code itself stays synchronous, so that is safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    # The emulator's certificate comes from its own private CA, which this throwaway
    # browser profile does not trust; the portal's own calls do verify it.
    context = browser.new_context(
        ignore_https_errors=True, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def demo(emu, transactional_db):
    """The starter catalog, the bundled manifests and Contoso synced from the emulator."""
    catalog_import_starter()
    for path in sorted(BUNDLED_MANIFESTS_DIR.glob("*.yaml")):
        manifest_import(spec=manifest_read(path=path))
    tenant = tenant_add(tenant_id=CONTOSO, name="Contoso")[0]
    run = sync_run_queue(tenant=tenant)
    assert sync_run_execute(run_id=run.pk).status == "succeeded"
    return tenant


def sign_in(page, live_server, upn: str) -> None:
    """Through the portal's sign-in page and the emulator's Entra pages, as a person would."""
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("button", name=upn, exact=False).click()
    page.wait_for_url(f"{live_server.url}/**")


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
