"""The main pages on a phone and to assistive technology (issue 15, item 6): at 390 px no
page is wider than the screen, and axe-core (bundled by axe-playwright-python, served
from the package, never fetched) finds no serious or critical violation."""

from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse

from tenants.models import SyncRun
from tests.browser.helpers import screenshot, sign_in
from tests.ids import CONTOSO, ROOMS

PHONE = {"width": 390, "height": 844}


def main_pages() -> list[tuple[str, str]]:
    """Every main page an admin of Contoso works with, by a name and its path."""
    run = SyncRun.objects.filter(tenant__tenant_id=CONTOSO).first()
    assert run is not None
    return [
        ("dashboard", reverse("tenants:dashboard")),
        ("tenant", reverse("tenants:tenant-detail", args=[CONTOSO])),
        ("application", reverse("tenants:application", args=[CONTOSO, ROOMS])),
        ("health", reverse("tenants:health", args=[CONTOSO])),
        ("runs", reverse("tenants:run-list", args=[CONTOSO])),
        ("run", reverse("tenants:run-detail", args=[CONTOSO, run.pk])),
        ("audit", reverse("tenants:audit", args=[CONTOSO])),
        ("revokes", reverse("tenants:revoke-list", args=[CONTOSO])),
        ("catalog", reverse("permissions:catalog")),
    ]


@pytest.fixture
def phone(browser) -> Iterator:
    context = browser.new_context(ignore_https_errors=True, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_no_main_page_is_wider_than_a_phone(phone, live_server, demo):
    sign_in(phone, live_server, "alice@contoso.onmicrosoft.com")

    too_wide = {}
    for name, path in main_pages():
        phone.goto(f"{live_server.url}{path}")
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = width
            screenshot(phone, f"phone-{name}")
    assert too_wide == {}


def test_axe_finds_no_serious_or_critical_violation_on_the_main_pages(page, live_server, demo):
    # Nothing may leave the machine: axe's script comes from the package, not a CDN.
    outside: list[str] = []
    local = (live_server.url, "https://127.0.0.1")

    def only_local(route) -> None:
        if route.request.url.startswith(local):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    axe = Axe()

    found = {}
    for name, path in main_pages():
        page.goto(f"{live_server.url}{path}")
        results = axe.run(page)
        serious = [
            f"{violation['id']}: {violation['nodes'][0]['target']}"
            for violation in results.response["violations"]
            if violation["impact"] in ("serious", "critical")
        ]
        if serious:
            found[name] = serious
    assert found == {}
    assert outside == []
