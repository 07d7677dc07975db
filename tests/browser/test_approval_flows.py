"""Approving with the impact in view, and bulk revokes, in a real browser (issue 15, items
1 and 3): a reader asks for a needed grant with a reason; an admin sees its verdict, the
feature it would break and the reason, and must confirm; a bulk revoke with one box
unchecked revokes exactly the others, whose progress updates without a reload, and one
button undoes them all.

No worker runs here. The admins' and the requester's e-mails run at once in the live
server's thread; revokes run at once in the first test, and in the second from the test
itself while the page watches, so that the page is seen going from Queued to Succeeded.
"""

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from tenants.models import Grant, RevokeRequest
from tenants.tasks import (
    execute_revoke,
    notify_revoke_decision,
    notify_revoke_requests,
    sync_tenant,
)
from tests.browser.helpers import open_rooms_platform, screenshot, sign_in
from tests.ids import ROOMS

pytestmark = pytest.mark.django_db(transaction=True)

USER_READ = "User.Read.All"
REASON = "Our rooms no longer show who is signed in."


@pytest.fixture(autouse=True)
def mails_and_syncs_at_once(monkeypatch) -> None:
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )
    monkeypatch.setattr(
        notify_revoke_decision, "delay", lambda pk: notify_revoke_decision.apply((pk,))
    )
    monkeypatch.setattr(sync_tenant, "delay", lambda run_id: sync_tenant.apply((run_id,)))
    monkeypatch.setattr(
        sync_tenant, "apply_async", lambda args, countdown=None: sync_tenant.apply(args)
    )


def grant_article(page: Page, value: str) -> Locator:
    return page.locator("article.grant", has=page.get_by_role("heading", name=value, exact=True))


def held(value: str) -> bool:
    return Grant.objects.filter(
        client__app_id=ROOMS, value=value, removed_in_run__isnull=True
    ).exists()


def test_a_reader_asks_with_a_reason_and_the_admin_confirms_the_feature_it_breaks(
    browser, page, live_server, demo, monkeypatch
):
    monkeypatch.setattr(
        execute_revoke, "delay", lambda revoke_id: execute_revoke.apply((revoke_id,))
    )
    admin_context = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    admin = admin_context.new_page()
    admin.set_default_timeout(15_000)
    try:
        sign_in(admin, live_server, "alice@contoso.onmicrosoft.com")  # known address first

        sign_in(page, live_server, "bob@contoso.onmicrosoft.com")
        open_rooms_platform(page)
        user_read = grant_article(page, USER_READ)
        user_read.get_by_label("Why should it go?").fill(REASON)
        user_read.get_by_role("button", name="Request revoke").click()
        user_read.get_by_text("Accounts and licences").first.wait_for()
        user_read.get_by_role("button", name="Request the revoke anyway").click()
        user_read.get_by_text("Waiting for approval").wait_for()
        revoke = RevokeRequest.objects.get(value=USER_READ)
        assert revoke.reason == REASON
        [to_admins] = mail.outbox
        assert "Verdict: needed" in to_admins.body and "Accounts and licences" in to_admins.body

        admin.get_by_role("link", name="Approvals").click()
        card = admin.locator("article.pending-request", has_text=USER_READ)
        expect(card).to_contain_text(REASON)
        expect(card.locator(".tag.verdict-needed")).to_have_text("Needed")
        expect(card).to_contain_text("Accounts and licences")
        screenshot(admin, "approval-queue")
        card.get_by_role("button", name="Approve…").click()
        # Not one click: the confirmation names the feature, and nothing has changed yet.
        card.get_by_role("button", name="Approve, breaking 1 feature").wait_for()
        expect(card.locator(".approve-confirm")).to_contain_text("Accounts and licences")
        revoke.refresh_from_db()
        assert revoke.status == RevokeRequest.Status.PENDING_APPROVAL
        screenshot(admin, "approval-confirm")
        card.get_by_role("button", name="Approve, breaking 1 feature").click()
        card.get_by_text("Succeeded").wait_for()

        assert not held(USER_READ)
        decision = mail.outbox[-1]
        assert decision.to == ["bob@contoso.onmicrosoft.com"]
        assert "approved" in decision.subject and "Alice Anders approved" in decision.body
    finally:
        admin_context.close()


def test_a_bulk_revoke_takes_exactly_the_checked_grants_shows_progress_and_undoes_them_all(
    page, live_server, demo, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr(execute_revoke, "delay", queued.append)
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    page.goto(
        live_server.url + reverse("tenants:revoke-unused-application", args=[demo.tenant_id, ROOMS])
    )
    boxes = page.locator('input[type="checkbox"][name="grant"]')
    count = boxes.count()
    assert count >= 2
    for index in range(count):
        assert boxes.nth(index).is_checked()
    page.get_by_label("Revoke Mail.Read").uncheck()
    page.get_by_role("button", name="Revoke the checked permissions").click()

    page.get_by_role("heading", name=f"Revoking {count - 1} permission").wait_for()
    revoked = set(RevokeRequest.objects.values_list("value", flat=True))
    assert len(revoked) == count - 1 and "Mail.Read" not in revoked
    assert len(queued) == count - 1
    results = page.locator("article.revoke-result")
    expect(results).to_have_count(count - 1)
    expect(results.first).to_contain_text("Queued")

    # The worker's part, while the page is open: each card turns to Succeeded by itself.
    for revoke_id in list(queued):
        execute_revoke.apply((revoke_id,))
    for index in range(count - 1):
        expect(results.nth(index).get_by_text("Succeeded")).to_be_visible(timeout=15_000)
    assert held("Mail.Read") and not any(held(value) for value in revoked)
    screenshot(page, "bulk-revoke-results")

    queued.clear()
    page.get_by_role("button", name="Undo all of these").click()
    page.get_by_role("heading", name=f"Undoing {count - 1} permission").wait_for()
    assert len(queued) == count - 1
    for revoke_id in list(queued):
        execute_revoke.apply((revoke_id,))
    restores = page.locator("article.revoke-result")
    for index in range(count - 1):
        expect(restores.nth(index).get_by_text("Succeeded")).to_be_visible(timeout=15_000)
    assert all(held(value) for value in revoked)
