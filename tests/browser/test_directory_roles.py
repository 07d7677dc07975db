"""The Global Administrator who connects a tenant gets in as its admin (issue 15, item 7):
nina of Northwind (not onboarded, no portal app role) signs in through the emulator's
Entra, connects her tenant by admin consent and lands on the connected page as its admin,
her id token's wids naming Global Administrator."""

from django.urls import reverse

from portal.models import User
from tenants.access import Role, role_in
from tenants.models import Tenant
from tests.browser.helpers import screenshot, sign_in
from tests.ids import NORTHWIND

NINA = "nina@northwind.onmicrosoft.com"


def test_a_global_administrator_connects_her_tenant_and_lands_as_its_admin(
    page, live_server, emu, transactional_db
):
    sign_in(page, live_server, NINA)
    page.get_by_role("heading", name="Your tenant isn't connected yet").wait_for()

    page.get_by_role("link", name="connect it now").click()
    page.get_by_role("button", name="Continue to Microsoft's consent page").click()
    page.get_by_role("button", name=f"Accept as Nina Novak <{NINA}> (administrator)").click()

    page.wait_for_url(f"**{reverse('tenants:connected', args=[NORTHWIND])}")
    page.get_by_role("heading", name="Northwind is connected").wait_for()
    main = page.locator("main")
    assert "You are an admin of Northwind" in main.inner_text()
    assert "What comes next" in main.inner_text()
    screenshot(page, "connected")
    nina = User.objects.get(username=NINA)
    assert role_in(nina, Tenant.objects.get(tenant_id=NORTHWIND)) == Role.ADMIN

    # And the tenant page answers her as an admin: Sync now is hers to press.
    page.get_by_role("link", name="Open Northwind").click()
    page.get_by_role("button", name="Sync now").wait_for()
