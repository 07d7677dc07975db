"""The main pages on a phone and to assistive technology (issue 15, item 6): at 390 px no
page is wider than the screen, and axe-core (bundled by axe-playwright-python, served
from the package, never fetched) finds no serious or critical violation."""

import uuid
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse

from tenants.models import ServicePrincipal, SyncRun, Tenant
from tests.browser.helpers import screenshot, sign_in
from tests.factories import RevokeRequestFactory, TenantFactory
from tests.helpers import sync
from tests.ids import CONTOSO, FABRIKAM, ROOMS, WOODGROVE

PHONE = {"width": 390, "height": 844}


def main_pages(tenant: Tenant) -> list[tuple[str, str]]:
    """Every main page an admin of Contoso works with, by a name and its path; a reader's
    request waits for approval and a bulk revoke's request has ended, so that the queue and
    the results page show a request each."""
    run = SyncRun.objects.filter(tenant=tenant).first()
    assert run is not None
    rooms = ServicePrincipal.objects.get(tenant=tenant, app_id=ROOMS)
    RevokeRequestFactory(client=rooms, value="Place.Read.All", pending_approval=True)
    revoked = RevokeRequestFactory(client=rooms, value="Calendars.Read", succeeded=True)
    results = reverse("tenants:revoke-results", args=[CONTOSO])
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
        ("approvals", reverse("tenants:approvals")),
        ("history", reverse("tenants:history", args=[CONTOSO])),
        ("connected", reverse("tenants:connected", args=[CONTOSO])),
        ("revoke results", f"{results}?request={revoked.pk}"),
    ]


def operator_pages() -> list[tuple[str, str]]:
    """What oscar opens: the operators' matrix, and Fabrikam's sync, whose note names
    Graph's long error code (Fabrikam has no P1 licence for sign-in activity)."""
    run = SyncRun.objects.filter(tenant__tenant_id=FABRIKAM).first()
    assert run is not None and run.notes
    return [
        ("matrix", reverse("tenants:matrix")),
        ("run notes", reverse("tenants:run-detail", args=[FABRIKAM, run.pk])),
    ]


def pages_by_user(tenant: Tenant) -> list[tuple[str, str, str]]:
    """Who signs in, and the pages they open: alice Contoso's, oscar the operators'."""
    alice = "alice@contoso.onmicrosoft.com"
    oscar = "oscar@contoso.onmicrosoft.com"
    return [(alice, name, path) for name, path in main_pages(tenant)] + [
        (oscar, name, path) for name, path in operator_pages()
    ]


def pages_signed_in(page, live_server, tenant: Tenant) -> Iterator[str]:
    """Opens each page as its user (signing in again when the user changes), by name."""
    current = None
    for upn, name, path in pages_by_user(tenant):
        if upn != current:
            page.context.clear_cookies()
            sign_in(page, live_server, upn)
            current = upn
        page.goto(f"{live_server.url}{path}")
        yield name


@pytest.fixture
def three_tenants(demo, fabrikam, oscar) -> Tenant:
    """Contoso, Fabrikam and Woodgrove (its long, odd names) synced, as the demo has them,
    for oscar, who sees them side by side in the operators' matrix."""
    sync(fabrikam)
    sync(TenantFactory(tenant_id=uuid.UUID(WOODGROVE), name="Woodgrove"))
    return demo


@pytest.fixture
def phone(browser) -> Iterator:
    context = browser.new_context(ignore_https_errors=True, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_no_main_page_is_wider_than_a_phone(phone, live_server, three_tenants):
    too_wide = {}
    for name in pages_signed_in(phone, live_server, three_tenants):
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = width
            screenshot(phone, f"phone-{name}")
    assert too_wide == {}


def test_axe_finds_no_serious_or_critical_violation_on_the_main_pages(
    page, live_server, three_tenants
):
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
    axe = Axe()

    found = {}
    for name in pages_signed_in(page, live_server, three_tenants):
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
