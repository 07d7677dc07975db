from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from tenants.graph import GraphClient, GraphError, Organization, organization_read
from tenants.models import AuditEvent, FeatureSwitch, SyncRun, Tenant
from tenants.services import (
    features_set,
    sync_run_again,
    sync_run_queue,
    sync_run_request,
    sync_runs_fail_abandoned,
    sync_runs_resend_queued,
    tenant_add,
    tenant_names,
)
from tenants.tasks import dispatch_due_syncs, sync_tenant
from tests.factories import FeatureFactory, SyncRunFactory, TenantFactory

pytestmark = pytest.mark.django_db

TENANT_ID = "11111111-2222-4333-8444-555555555555"


def test_add_tenant_onboards_it_with_a_sync_due_now(capsys):
    call_command("add_tenant", TENANT_ID, "--name", "Contoso")
    tenant = Tenant.objects.get(tenant_id=TENANT_ID)
    assert tenant.name == "Contoso"
    assert tenant.next_sync_at <= timezone.now()
    assert "Added tenant" in capsys.readouterr().out


def test_add_tenant_twice_keeps_one_tenant():
    tenant_add(tenant_id=TENANT_ID, name="Contoso")
    _, created = tenant_add(tenant_id=TENANT_ID)
    assert not created
    assert Tenant.objects.count() == 1


def test_add_tenant_rejects_a_tenant_id_that_is_not_a_guid():
    with pytest.raises(CommandError, match="tenant id 'contoso.com' is not a GUID"):
        call_command("add_tenant", "contoso.com")


def test_set_features_switches_features_on_and_off():
    tenant = TenantFactory()
    on = FeatureFactory(key="device-assignment")
    off = FeatureFactory(key="organisation-details", application=on.application)
    call_command(
        "set_features",
        str(tenant.tenant_id),
        str(on.application.app_id),
        "--enable",
        "device-assignment",
        "--disable",
        "organisation-details",
    )
    assert dict(FeatureSwitch.objects.values_list("feature__key", "enabled")) == {
        "device-assignment": True,
        "organisation-details": False,
    }
    assert off.switches.get().enabled is False


def test_set_features_with_an_unknown_key_changes_nothing_and_lists_the_known_ones():
    tenant = TenantFactory()
    feature = FeatureFactory(key="device-assignment")
    with pytest.raises(
        CommandError, match="has no feature 'devices' \\(its features: device-assignment\\)"
    ):
        call_command(
            "set_features",
            str(tenant.tenant_id),
            str(feature.application.app_id),
            "--disable",
            "device-assignment",
            "--enable",
            "devices",
        )
    assert not FeatureSwitch.objects.exists()


def test_set_features_refuses_a_feature_both_enabled_and_disabled():
    tenant = TenantFactory()
    feature = FeatureFactory(key="sso")
    with pytest.raises(ValueError, match="'sso' is both enabled and disabled"):
        features_set(
            tenant=tenant,
            application=feature.application,
            enable=["sso"],
            disable=["sso"],
            actor=None,
        )


def test_set_features_names_an_application_without_manifest():
    tenant = TenantFactory()
    with pytest.raises(CommandError, match="has no manifest"):
        call_command(
            "set_features",
            str(tenant.tenant_id),
            "8708fc71-9f71-4ad5-8445-a0746692feeb",
            "--enable",
            "x",
        )


def test_a_tenant_never_has_two_open_syncs():
    tenant = TenantFactory()
    first = sync_run_queue(tenant=tenant)
    assert first is not None
    assert sync_run_queue(tenant=tenant) is None
    SyncRun.objects.filter(pk=first.pk).update(status=SyncRun.Status.SUCCEEDED)
    assert sync_run_queue(tenant=tenant) is not None


def test_a_requested_sync_is_one_open_run_sent_once_on_commit(
    sent_syncs, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
        assert sent_syncs == []  # not before the transaction commits
        assert sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.MANUAL) is None
    assert run is not None
    assert (run.status, run.trigger) == (SyncRun.Status.QUEUED, SyncRun.Trigger.MANUAL)
    assert len(callbacks) == 1
    assert sent_syncs == [run.pk]
    assert list(SyncRun.objects.filter(tenant=tenant)) == [run]


def test_a_sync_requested_in_a_transaction_that_rolls_back_is_never_sent(
    sent_syncs, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
            raise RuntimeError("the view failed after asking")
    assert sent_syncs == []
    assert not SyncRun.objects.filter(tenant=tenant).exists()


def test_a_sync_run_again_keeps_the_failed_runs_tenant_and_trigger():
    failed = SyncRunFactory(failed=True, trigger=SyncRun.Trigger.MANUAL)
    again = sync_run_again(run_id=failed.pk)
    assert again is not None and again.pk != failed.pk
    assert (again.tenant, again.trigger, again.status) == (
        failed.tenant,
        SyncRun.Trigger.MANUAL,
        SyncRun.Status.QUEUED,
    )
    # Another run opened meanwhile is the retry.
    assert sync_run_again(run_id=failed.pk) is None


def test_a_retried_sync_keeps_its_trigger(monkeypatch):
    first = SyncRunFactory(trigger=SyncRun.Trigger.MANUAL)
    executed: list[int] = []

    def throttled_once(*, run_id: int) -> SyncRun:
        executed.append(run_id)
        if len(executed) == 1:
            SyncRun.objects.filter(pk=run_id).update(status=SyncRun.Status.FAILED)
            raise GraphError("throttled", retryable=True, status=429)
        SyncRun.objects.filter(pk=run_id).update(status=SyncRun.Status.SUCCEEDED)
        return SyncRun.objects.get(pk=run_id)

    monkeypatch.setattr("tenants.sync.sync_run_execute", throttled_once)

    # Eagerly, Celery runs the retry at once instead of after its countdown.
    assert sync_tenant.apply(args=(first.pk,)).get() == SyncRun.Status.SUCCEEDED

    assert executed[0] == first.pk
    retry = SyncRun.objects.get(pk=executed[1])
    assert retry.pk != first.pk
    assert (retry.tenant, retry.trigger) == (first.tenant, SyncRun.Trigger.MANUAL)


def test_the_dispatcher_queues_due_tenants_once(sent_syncs, django_capture_on_commit_callbacks):
    due = TenantFactory(next_sync_at=timezone.now() - timedelta(minutes=1))
    TenantFactory(next_sync_at=timezone.now() + timedelta(hours=1))
    TenantFactory(next_sync_at=timezone.now() - timedelta(minutes=1), status=Tenant.Status.PAUSED)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs() == 1
        assert dispatch_due_syncs() == 0
    assert [SyncRun.objects.get(pk=pk).tenant for pk in sent_syncs] == [due]
    due.refresh_from_db()
    # Due again at its slot (tenants/services.py next_sync_slot): half an interval away at least.
    assert due.next_sync_at > timezone.now() + due.sync_interval / 2 - timedelta(minutes=1)


def test_runs_abandoned_by_a_dead_worker_are_closed(settings):
    settings.CELERY_TASK_TIME_LIMIT = 60
    stale = SyncRunFactory(running=True)
    SyncRun.objects.filter(pk=stale.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    fresh = SyncRunFactory()
    assert sync_runs_fail_abandoned() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == SyncRun.Status.FAILED and "stopped before it finished" in stale.error
    assert fresh.status == SyncRun.Status.QUEUED


def test_a_run_started_longer_ago_than_the_time_limit_is_closed_at_once(settings):
    # Its worker was killed (the limit would have stopped it): its tenant need not wait
    # twice the limit since it was queued.
    settings.CELERY_TASK_TIME_LIMIT = 60
    dead = SyncRunFactory(running=True)
    alive = SyncRunFactory(running=True)
    two_minutes_ago = timezone.now() - timedelta(minutes=2, seconds=1)
    SyncRun.objects.filter(pk=dead.pk).update(queued_at=two_minutes_ago, started_at=two_minutes_ago)
    SyncRun.objects.filter(pk=alive.pk).update(
        queued_at=two_minutes_ago, started_at=timezone.now() - timedelta(seconds=30)
    )
    assert sync_runs_fail_abandoned() == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == SyncRun.Status.FAILED
    assert alive.status == SyncRun.Status.RUNNING


def test_runs_closed_by_the_sweep_are_in_the_audit_trail(settings):
    settings.CELERY_TASK_TIME_LIMIT = 60
    stale = SyncRunFactory(running=True)
    SyncRun.objects.filter(pk=stale.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    assert sync_runs_fail_abandoned() == 1
    assert sync_runs_fail_abandoned() == 0
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_FAILED)
    assert event.tenant == stale.tenant and event.details["sync_run"] == stale.pk
    assert "stopped before it finished" in event.details["error"]


def test_runs_queued_for_longer_than_the_time_limit_are_sent_again(
    settings, sent_syncs, django_capture_on_commit_callbacks
):
    # A broker restarted without persistence loses the message of a queued run: nothing
    # else would ever run it, and it would hold its tenant's one open run until failed.
    settings.CELERY_TASK_TIME_LIMIT = 60
    lost = SyncRunFactory()
    SyncRun.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(seconds=90))
    SyncRunFactory()  # queued a moment ago: its message is on its way
    running = SyncRunFactory(running=True)
    SyncRun.objects.filter(pk=running.pk).update(queued_at=timezone.now() - timedelta(seconds=90))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_runs_resend_queued() == 1
    assert sent_syncs == [lost.pk]


def test_a_tenant_known_by_its_id_alone_takes_its_organizations_name_and_domain():
    tenant = Tenant(tenant_id=TENANT_ID, name=TENANT_ID)
    organization = Organization(name="Contoso" * 40, default_domain="contoso.com")
    assert tenant_names(tenant=tenant, organization=organization) == {
        "name": ("Contoso" * 40)[:200],
        "default_domain": "contoso.com",
    }


def test_a_tenant_someone_named_keeps_its_name_and_an_unknown_organization_changes_nothing():
    tenant = Tenant(tenant_id=TENANT_ID, name="Contoso (production)")
    named = tenant_names(tenant=tenant, organization=Organization("Contoso", "contoso.com"))
    assert named == {"default_domain": "contoso.com"}
    assert tenant_names(tenant=tenant, organization=Organization()) == {}


@dataclass
class OneOrganization(GraphClient):
    """A Graph client that answers ``GET /organization`` with ``body``."""

    body: dict[str, Any] = field(default_factory=dict)

    def get_json(
        self, path: str, *, needs: str = "", headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        assert path.startswith("/organization?$select=")
        return self.body


def test_the_organization_read_takes_the_default_verified_domain():
    body = {
        "value": [
            {
                "displayName": "Contoso",
                "verifiedDomains": [
                    {"name": "contoso.onmicrosoft.com", "isDefault": False},
                    {"name": "contoso.com", "isDefault": True},
                ],
            }
        ]
    }
    assert organization_read(OneOrganization(TENANT_ID, body=body)) == Organization(
        "Contoso", "contoso.com"
    )
    assert organization_read(OneOrganization(TENANT_ID, body={"value": []})) == Organization()
