"""The tenant page's htmx parts as an admin uses them (issue 15): a column heading sorts the
applications in place, and a filter chosen afterwards keeps that order."""

from django.urls import reverse

from tests.browser.helpers import sign_in
from tests.ids import CONTOSO


def risk_heading(page):
    return page.locator("#application-results th", has=page.get_by_role("link", name="Risk"))


def test_a_heading_sorts_the_applications_in_place_and_a_filter_keeps_the_order(
    page, live_server, demo
):
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    page.goto(f"{live_server.url}{reverse('tenants:tenant-detail', args=[CONTOSO])}")
    page.evaluate("window.notReloaded = true")

    risk_heading(page).get_by_role("link").click()
    risk_heading(page).and_(page.locator('[aria-sort="descending"]')).wait_for()
    assert page.url.endswith("?sort=risk")

    page.get_by_label("Verdicts").select_option("unused")
    page.wait_for_url("**verdict=unused**")
    risk_heading(page).and_(page.locator('[aria-sort="descending"]')).wait_for()
    assert page.evaluate("window.notReloaded") is True
