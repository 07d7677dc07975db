"""Revoking in a real browser: an admin revokes an unused permission, watches it finish
and undoes it; a reader asks for a revoke and an admin approves it.

No worker runs here: the revoke task (and the sync it queues after a success, which would
wait out Graph's replication lag; the emulator has none here) and the admins' e-mail run
at once, in the live server's thread, against the emulator's Graph.
"""

import pytest
from django.core import mail
from playwright.sync_api import Locator, Page

from tenants.models import Grant, RevokeRequest
from tests.browser.helpers import open_rooms_platform, screenshot, sign_in
from tests.ids import ROOMS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("tasks_run_at_once")]

PLACE = "Place.Read.All"


def grant_article(page: Page, value: str) -> Locator:
    return page.locator("article.grant", has=page.get_by_role("heading", name=value, exact=True))


def place_is_granted() -> bool:
    return Grant.objects.filter(
        client__app_id=ROOMS, value=PLACE, removed_in_run__isnull=True
    ).exists()


def test_an_admin_revokes_an_unused_permission_watches_it_finish_and_undoes_it(
    page, live_server, demo
):
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    open_rooms_platform(page)
    place = grant_article(page, PLACE)
    assert place.get_by_text("Unused", exact=True).is_visible()

    place.get_by_role("button", name="Revoke", exact=True).click()
    place.get_by_text("Revoked", exact=False).first.wait_for()
    place.get_by_role("button", name="Undo").wait_for()
    screenshot(page, "revoke-succeeded")
    revoke = RevokeRequest.objects.get(value=PLACE)
    assert revoke.status == RevokeRequest.Status.SUCCEEDED and revoke.graph_calls
    assert not place_is_granted()  # the sync after the revoke no longer finds it

    place.get_by_role("button", name="Undo").click()
    place.get_by_text("Granted back").wait_for()
    screenshot(page, "revoke-undone")
    restore = RevokeRequest.objects.get(restores=revoke)
    assert restore.status == RevokeRequest.Status.SUCCEEDED
    assert place_is_granted()

    page.reload()
    assert grant_article(page, PLACE).get_by_role("button", name="Revoke", exact=True).is_visible()


def test_a_reader_requests_a_revoke_and_an_admin_approves_it(browser, page, live_server, demo):
    admin_context = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    admin = admin_context.new_page()
    admin.set_default_timeout(15_000)
    try:
        # alice signs in first, so that the portal knows her address to mail the request to.
        sign_in(admin, live_server, "alice@contoso.onmicrosoft.com")

        sign_in(page, live_server, "bob@contoso.onmicrosoft.com")
        open_rooms_platform(page)
        place = grant_article(page, PLACE)
        place.get_by_label("Why should it go?").fill("We have no smart buildings.")
        place.get_by_role("button", name="Request revoke", exact=True).click()
        place.get_by_text("Waiting for approval").wait_for()
        screenshot(page, "revoke-requested")
        assert len(mail.outbox) == 1 and PLACE in mail.outbox[0].subject

        admin.get_by_role("link", name="Contoso").first.click()
        admin.get_by_role("link", name="Revoke requests").click()
        pending = admin.locator("article.pending-request")
        assert PLACE in pending.inner_text()
        screenshot(admin, "revoke-requests")
        pending.get_by_role("button", name="Approve").click()
        pending.get_by_text("Succeeded").wait_for()

        revoke = RevokeRequest.objects.get(value=PLACE)
        assert revoke.status == RevokeRequest.Status.SUCCEEDED
        assert "Portal.Reader" in revoke.requested_by.entra_roles
        assert "Portal.Admin" in revoke.decided_by.entra_roles
        assert not place_is_granted()

        admin.get_by_role("link", name="Audit trail").first.click()
        admin.locator(".audit-table").get_by_text("Revoke approved").wait_for()
        screenshot(admin, "audit")
    finally:
        admin_context.close()
