""" "Keep, because ..." in a real browser: an admin keeps an unused permission with a reason
(htmx swaps the grants in, and the counts with them), breaking no CSP rule, and removes
the reason again. No CSP rule is checked after a screenshot: Playwright styles the page for
it."""

import pytest
from playwright.sync_api import Locator, Page

from tenants.models import AuditEvent, Justification
from tests.browser.helpers import RECORD_VIOLATIONS, open_rooms_platform, screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PLACE = "Place.Read.All"


def grant_article(page: Page, value: str) -> Locator:
    return page.locator("article.grant", has=page.get_by_role("heading", name=value, exact=True))


def unused_count(page: Page) -> str:
    return page.locator("#verdict-summary div", has_text="Unused").locator("dd").inner_text()


def test_an_admin_keeps_an_unused_permission_because_and_removes_the_reason(
    page, live_server, demo
):
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    open_rooms_platform(page)
    place = grant_article(page, PLACE)
    assert place.get_by_text("Unused", exact=True).is_visible()
    unused_before = int(unused_count(page))

    place.get_by_text("Keep, because…").click()
    place.get_by_label("Reason").fill("The room finder reads the building list.")
    place.get_by_role("button", name=f"Keep {PLACE}").click()

    place = grant_article(page, PLACE)
    place.get_by_text("Justified", exact=True).wait_for()
    assert place.get_by_text("Needed", exact=True).is_visible()
    assert "The room finder reads the building list." in place.inner_text()
    assert int(unused_count(page)) == unused_before - 1
    # Before the screenshot, whose own styles the CSP would report.
    assert page.evaluate("window.__cspViolations") == []
    screenshot(page, "grant-justified")
    justification = Justification.objects.get(value=PLACE)
    assert justification.by_name.startswith("Alice")

    place.get_by_role("button", name="Remove justification").click()
    page.get_by_text(f"Removed the justification of {PLACE}.").wait_for()
    assert grant_article(page, PLACE).get_by_text("Unused", exact=True).is_visible()
    assert not Justification.objects.exists()
    assert AuditEvent.objects.filter(action__startswith="justification.").count() == 2
