"""Who and what started each sync, and who saved feature switches: recorded on the run and
in the audit trail, shown on the run pages (issue 15, item 2). alice is Contoso's admin."""

import csv
import io
import re

import pytest
from django.urls import reverse

from tenants.models import AuditEvent, RevokeRequest, SyncRun
from tenants.revokes import revoke_request_resync
from tests.factories import FeatureFactory, RevokeRequestFactory, ServicePrincipalFactory

pytestmark = pytest.mark.django_db

ALICE = "Alice Anders (alice@contoso.onmicrosoft.com)"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_feature_switches_saved_in_the_browser_are_recorded_with_the_admin(alice_client, contoso):
    feature = FeatureFactory(key="rooms")
    sp = ServicePrincipalFactory(tenant=contoso, app_id=feature.application.app_id)

    alice_client.post(
        reverse("tenants:features-save", args=[contoso.tenant_id, sp.app_id]),
        {"enabled": [], "action": "save"},
    )

    event = AuditEvent.objects.get(action=AuditEvent.Action.FEATURES_SWITCHED)
    assert event.actor_name == ALICE
    page = text(alice_client.get(reverse("tenants:audit", args=[contoso.tenant_id])))
    assert f'<td data-label="Who">{ALICE}</td>' in page
    exported = alice_client.get(reverse("tenants:audit-csv", args=[contoso.tenant_id]))
    rows = list(csv.DictReader(io.StringIO(exported.getvalue().decode())))
    assert [(row["action"], row["actor"]) for row in rows] == [("features.switched", ALICE)]


def test_sync_now_is_started_by_the_admin_and_says_so(
    alice_client, alice, contoso, django_capture_on_commit_callbacks, sent_syncs
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("tenants:sync-now", args=[contoso.tenant_id]))

    run = SyncRun.objects.get()
    assert (run.trigger, run.requested_by) == (SyncRun.Trigger.MANUAL, alice)
    assert sent_syncs == [run.pk]
    detail = text(alice_client.get(reverse("tenants:run-detail", args=[contoso.tenant_id, run.pk])))
    assert "<dt>Started by</dt><dd>alice@contoso.onmicrosoft.com (sync now)</dd>" in detail
    history = text(alice_client.get(reverse("tenants:run-list", args=[contoso.tenant_id])))
    assert '<td data-label="Started by">alice@contoso.onmicrosoft.com (sync now)</td>' in history


@pytest.mark.parametrize(
    ("action", "trigger"),
    [
        (RevokeRequest.Action.REVOKE, SyncRun.Trigger.REVOKE),
        (RevokeRequest.Action.RESTORE, SyncRun.Trigger.UNDO),
    ],
)
def test_the_sync_after_a_revoke_or_an_undo_names_it_and_who_decided(
    contoso, alice, bob, action, trigger
):
    # bob asked, alice approved: the decision was hers.
    revoke = RevokeRequestFactory(
        client__tenant=contoso, succeeded=True, action=action, requested_by=bob, decided_by=alice
    )

    run = revoke_request_resync(revoke=revoke)

    assert run is not None and (run.trigger, run.requested_by) == (trigger, alice)


def test_a_scheduled_sync_names_no_one(alice_client, contoso):
    run = SyncRun.objects.create(tenant=contoso)

    detail = text(alice_client.get(reverse("tenants:run-detail", args=[contoso.tenant_id, run.pk])))

    assert "<dt>Started by</dt><dd>Schedule</dd>" in detail
