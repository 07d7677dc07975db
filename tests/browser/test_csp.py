"""The main pages keep to the Content Security Policy: no inline script or style anywhere,
htmx included (its swaps and its indicator styles)."""

import pytest

from tests.browser.helpers import RECORD_VIOLATIONS, open_rooms_platform, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

# Runs before any page script; DevTools-injected scripts are not subject to the CSP.


def test_the_main_pages_and_an_htmx_swap_break_no_csp_rule(page, live_server, demo):
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    violations: list[str] = []

    def collect(name: str) -> None:
        violations.extend(f"{name}: {v}" for v in page.evaluate("window.__cspViolations"))

    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    page.get_by_text("Alice Anders").first.wait_for()
    collect("dashboard")
    open_rooms_platform(page)
    # The feature preview is an htmx request whose answer is swapped into the page.
    page.get_by_label("Smart buildings").check()
    page.locator("#feature-preview").get_by_text("Place.Read.All").wait_for()
    collect("application")
    response = page.goto(f"{live_server.url}/tenants/{demo.tenant_id}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    collect("tenant")
    page.goto(f"{live_server.url}/tenants/{demo.tenant_id}/runs/")
    collect("runs")
    page.goto(f"{live_server.url}/catalog/")
    collect("catalog")
    page.get_by_role("link", name="What changed").click()
    # The filter is an htmx request whose answer replaces the results.
    page.get_by_label("Change", exact=True).select_option("retiered")
    page.get_by_text("No permission was added, removed, renamed or re-tiered").wait_for()
    collect("catalog changes")

    assert violations == []
    assert not [line for line in console if "Content Security Policy" in line], console
