"""What the browser tests do on the pages: sign in, open an application, keep a screenshot."""

from pathlib import Path

from django.conf import settings

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
ROOMS_NAME = "Teams Rooms monitoring platform"


def sign_in(page, live_server, upn: str) -> None:
    """Through the portal's sign-in page and the emulator's Entra pages, as a person would."""
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("button", name=upn, exact=False).click()
    page.wait_for_url(f"{live_server.url}/**")


def open_rooms_platform(page) -> None:
    """From the dashboard to the Teams Rooms monitoring platform's page in Contoso."""
    page.get_by_role("link", name="Contoso").first.click()
    page.get_by_role("link", name=ROOMS_NAME).first.click()
    page.get_by_role("heading", name="Features in Contoso").wait_for()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# Collects the page's Content Security Policy violations in window.__cspViolations.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""
