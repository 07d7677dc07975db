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

from tenants.tasks import execute_revoke, notify_revoke_requests, sync_tenant
from tests.helpers import demo_catalog, sync

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
def demo(emu, transactional_db, contoso):
    """The starter catalog, the bundled manifests and Contoso synced from the emulator."""
    demo_catalog()
    sync(contoso)
    return contoso


@pytest.fixture
def tasks_run_at_once(monkeypatch) -> None:
    """No worker runs in the browser tests: the revoke task, the sync it queues after a
    success (which would wait out Graph's replication lag; the emulator has none here) and
    the admins' e-mail run at once, in the live server's thread."""
    monkeypatch.setattr(
        execute_revoke, "delay", lambda revoke_id: execute_revoke.apply((revoke_id,))
    )
    monkeypatch.setattr(sync_tenant, "delay", lambda run_id: sync_tenant.apply((run_id,)))
    monkeypatch.setattr(
        sync_tenant, "apply_async", lambda args, countdown=None: sync_tenant.apply(args)
    )
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )
