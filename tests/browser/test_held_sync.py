"""A sync held for review, in a real browser: the tenant page says so, an admin applies it."""

import pytest

from tenants.models import AuditEvent, SyncRun
from tenants.services import sync_run_queue
from tenants.sync import sync_run_execute
from tests.browser.helpers import screenshot, sign_in
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

GONE = (
    "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3",  # AskCody
    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",  # Lookout MES Console
    "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d",  # Teams Rooms monitoring platform
)


def test_an_admin_sees_a_held_sync_and_applies_it(page, live_server, demo, emu, settings):
    settings.SYNC_HOLD_REMOVED_MIN = 5  # Contoso is small
    for app_id in GONE:
        emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, app_id))
    run = sync_run_queue(tenant=demo)
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.HELD

    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    page.get_by_role("link", name="Contoso").first.click()
    notice = page.locator(".held-run")
    notice.get_by_text(f"Sync {run.pk} is held for review").wait_for()
    # The applications are still those of the last applied sync.
    assert page.get_by_role("link", name="AskCody").first.is_visible()
    screenshot(page, "tenant-held")

    notice.get_by_role("button", name=f"Apply sync {run.pk}").click()
    page.get_by_text(f"Sync {run.pk} applied").wait_for()
    assert page.locator(".held-run").count() == 0
    assert page.get_by_role("link", name="AskCody").count() == 0
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_HELD_APPLIED).exists()
