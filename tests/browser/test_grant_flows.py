"""Granting a missing permission in a real browser: an admin grants the one permission a
feature misses, sees the sync find it held, and undoes it; where the portal may only read,
the page gives the steps with the real ids. No CSP rule is broken on the way.

As in test_revoke_flows, the revoke task and the sync it queues run at once, in the live
server's thread, against the emulator's Graph.
"""

import pytest
from playwright.sync_api import Page

from tenants.graph import GraphClient
from tenants.models import Grant, RevokeRequest, ServicePrincipal
from tests.browser.helpers import RECORD_VIOLATIONS, screenshot, sign_in
from tests.helpers import sync
from tests.ids import CONNECT_247, GRAPH

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("tasks_run_at_once")]

DEVICE_READ = "Device.Read.All"


def device_read_held() -> bool:
    return Grant.objects.filter(
        client__app_id=CONNECT_247, value=DEVICE_READ, removed_in_run__isnull=True
    ).exists()


def open_connect(page: Page, tenant: str) -> None:
    page.get_by_role("link", name=tenant).first.click()
    page.get_by_role("link", name="247connect").first.click()
    page.get_by_role("heading", name="Missing permissions").wait_for()


def test_an_admin_grants_the_missing_permission_and_undoes_it(page, live_server, demo):
    # Device.Read.All of 247connect was removed in Entra; the sync found its feature broken.
    row = Grant.objects.get(
        client__app_id=CONNECT_247, value=DEVICE_READ, removed_in_run__isnull=True
    )
    GraphClient(tenant_id=str(demo.tenant_id)).request(
        "DELETE",
        f"/servicePrincipals/{row.resource_object_id}/appRoleAssignedTo/{row.graph_object_id}",
    )
    sync(demo)
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    open_connect(page, "Contoso")

    missing = page.locator("li.missing", has_text=DEVICE_READ)
    assert missing.get_by_role("button", name="Or switch Device assignment off…").is_visible()
    missing.get_by_role("button", name=f"Grant {DEVICE_READ}").click()
    missing.locator(".revoke-request p", has_text="Granted").first.wait_for()
    grant = RevokeRequest.objects.get(action="grant")
    assert grant.status == RevokeRequest.Status.SUCCEEDED and device_read_held()
    assert page.evaluate("window.__cspViolations") == []
    screenshot(page, "grant-succeeded")

    page.reload()
    held = page.locator(
        "article.grant", has=page.get_by_role("heading", name=DEVICE_READ, exact=True)
    )
    assert held.get_by_text("Needed", exact=True).is_visible()
    held.get_by_role("button", name="Undo").click()
    held.get_by_text("Revoked", exact=False).first.wait_for()
    undo = RevokeRequest.objects.get(restores=grant)
    assert (undo.action, undo.status) == ("revoke", "succeeded") and not device_read_held()

    page.reload()
    assert (
        page.locator("li.missing", has_text=DEVICE_READ)
        .get_by_role("button", name=f"Grant {DEVICE_READ}")
        .is_visible()
    )


def test_in_read_only_mode_the_page_gives_the_steps_with_the_real_ids(
    page, live_server, demo, fabrikam
):
    sync(fabrikam)
    connect = ServicePrincipal.objects.get(tenant=fabrikam, app_id=CONNECT_247)
    graph = ServicePrincipal.objects.get(tenant=fabrikam, app_id=GRAPH)
    sign_in(page, live_server, "charlie@fabrikam.onmicrosoft.com")
    open_connect(page, "Fabrikam")

    missing = page.locator("li.missing", has_text="Group.Read.All")
    missing.get_by_text("Grant it by hand", exact=True).click()
    steps = missing.locator(".grant-steps ol").inner_text()

    assert f"/v1.0/servicePrincipals/{graph.object_id}/appRoleAssignedTo" in steps
    assert f'"principalId": "{connect.object_id}"' in steps
    assert "New-MgServicePrincipalAppRoleAssignedTo" in steps
    screenshot(page, "grant-steps")
