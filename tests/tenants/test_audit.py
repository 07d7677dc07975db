"""The audit trail: written at every state change, append-only, read-only in the admin."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.models import User
from tenants.audit import audit_events, audit_record
from tenants.models import AuditEvent, SyncRun
from tenants.services import features_set, sync_run_queue
from tenants.sync import sync_run_execute
from tests.factories import FeatureFactory
from tests.helpers import sync
from tests.ids import CONTOSO
from tests.portal.helpers import PORTAL_HOST, sign_in
from tests.tenants.helpers import recorded_at

ALICE = "Alice Anders (alice@contoso.onmicrosoft.com)"


def test_an_event_names_its_actor_in_words_that_outlive_the_user(contoso, alice):
    event = audit_record(
        action=AuditEvent.Action.REVOKE_REQUESTED,
        tenant=contoso,
        actor=alice,
        target="Mail.Read (application) of Rooms",
        details={"revoke_request": 1},
    )
    alice.delete()
    event.refresh_from_db()
    assert (event.actor, event.actor_name, event.who) == (None, ALICE, ALICE)
    assert event.details == {"revoke_request": 1}


def test_events_cannot_be_changed_or_deleted(contoso):
    event = audit_record(action=AuditEvent.Action.SYNC_SUCCEEDED, tenant=contoso)
    event.target = "something else"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get().target == ""


@pytest.mark.parametrize(
    "write",
    [
        lambda events: events.update(target="something else"),
        lambda events: events.delete(),
        lambda events: events.bulk_update([events.get()], ["target"]),
    ],
    ids=["update", "delete", "bulk_update"],
)
def test_no_query_changes_or_deletes_events_in_bulk_either(contoso, write):
    event = audit_record(action=AuditEvent.Action.SYNC_SUCCEEDED, tenant=contoso, target="Sync 1")

    for events in (AuditEvent.objects.all(), AuditEvent.objects, contoso.audit_events.all()):
        with pytest.raises(ValueError, match="append-only"):
            write(events)

    assert AuditEvent.objects.get() == event
    assert AuditEvent.objects.get().target == "Sync 1"


def test_events_filter_by_tenant_action_and_time(contoso, fabrikam):
    old = recorded_at(
        timezone.now() - timedelta(days=3), action=AuditEvent.Action.SYNC_FAILED, tenant=contoso
    )
    recent = audit_record(action=AuditEvent.Action.SYNC_SUCCEEDED, tenant=contoso)
    other = audit_record(action=AuditEvent.Action.SYNC_SUCCEEDED, tenant=fabrikam)

    assert list(audit_events()) == [other, recent, old]
    assert list(audit_events(tenant=contoso)) == [recent, old]
    assert list(audit_events(action=AuditEvent.Action.SYNC_FAILED)) == [old]
    assert list(audit_events(since=timezone.now() - timedelta(days=1))) == [other, recent]


def test_feature_switches_are_recorded_with_who_switched_them(contoso, alice):
    feature = FeatureFactory(key="rooms")

    features_set(
        tenant=contoso, application=feature.application, enable=[], disable=["rooms"], actor=alice
    )

    event = AuditEvent.objects.get(action=AuditEvent.Action.FEATURES_SWITCHED)
    assert (event.tenant, event.actor, event.target) == (contoso, alice, feature.application.name)
    assert event.details == {
        "app_id": str(feature.application.app_id),
        "enabled": [],
        "disabled": ["rooms"],
    }


@pytest.mark.django_db(transaction=True)
def test_syncs_record_their_success_and_failure(emu, contoso, alice, client_for):
    run = sync(contoso, client_for(CONTOSO))
    succeeded = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_SUCCEEDED)
    assert succeeded.tenant == contoso and succeeded.details["sync_run"] == run.pk
    assert succeeded.details["added"] == run.grants_added

    assert (succeeded.actor, succeeded.details["started_by"]) == (None, "Schedule")

    emu.set_faults([{"path": "/v1.0/servicePrincipals", "status": 400}])
    failing = sync_run_queue(tenant=contoso, trigger=SyncRun.Trigger.MANUAL, requested_by=alice)
    with pytest.raises(Exception, match="HTTP 400"):
        sync_run_execute(run_id=failing.pk, client=client_for(CONTOSO))
    failed = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_FAILED)
    assert failed.details["sync_run"] == failing.pk and "HTTP 400" in failed.details["error"]
    # Whoever started it is recorded with it, and what started it.
    assert (failed.actor, failed.who, failed.details["started_by"]) == (alice, ALICE, "Sync now")


@pytest.fixture
def browser(emu) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = str(emu.ca_path)
        session.trust_env = False
        yield session


def test_admin_sign_ins_are_recorded_and_readers_are_not(emu, browser, settings, contoso):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    portal = Client(HTTP_HOST=PORTAL_HOST)

    sign_in(portal, browser, "bob@contoso.onmicrosoft.com")
    portal.post(reverse("account_logout"))
    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    event = AuditEvent.objects.get()
    alice = User.objects.get(username="alice@contoso.onmicrosoft.com")
    assert (event.action, event.tenant, event.actor) == ("admin.signed_in", contoso, alice)
    assert event.details == {"object_id": alice.entra_object_id, "tenant_id": CONTOSO}


def test_the_admin_site_shows_events_and_revoke_requests_read_only(admin_user, contoso):
    admin_client = Client(raise_request_exception=False)
    admin_client.force_login(admin_user)
    event = audit_record(action=AuditEvent.Action.SYNC_SUCCEEDED, tenant=contoso)
    for model in ("auditevent", "revokerequest"):
        assert admin_client.get(reverse(f"admin:tenants_{model}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"admin:tenants_{model}_add")).status_code == 403
    change = admin_client.get(reverse("admin:tenants_auditevent_change", args=[event.pk]))
    assert change.status_code == 200 and b"View audit event" in change.content
    delete = admin_client.post(reverse("admin:tenants_auditevent_delete", args=[event.pk]))
    assert delete.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
