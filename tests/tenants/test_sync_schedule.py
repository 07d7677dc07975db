"""Many tenants (issue 14): scheduled syncs are spread over the interval by a stable hash
of each tenant's id, never in one burst; a tenant has at most one open run; the workers
take one sync per process at a time."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from portal.celery import app as celery_app
from tenants.models import SyncRun, Tenant
from tenants.services import next_sync_slot, sync_run_queue, sync_slot_offset
from tenants.tasks import dispatch_due_syncs
from tests.factories import SyncRunFactory, TenantFactory

pytestmark = pytest.mark.django_db

SIX_HOURS = timedelta(hours=6)
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def tenant_ids(count: int) -> list[uuid.UUID]:
    """Ids as deterministic as the test needs, as unlike each other as real ones."""
    return [uuid.uuid5(uuid.NAMESPACE_DNS, f"tenant{n}.example") for n in range(count)]


def test_a_tenants_offset_is_the_same_every_time_and_within_the_interval():
    tenant_id = uuid.UUID("1e1a0801-7f55-46e2-9fb2-3b09766f2844")
    offsets = {sync_slot_offset(tenant_id, SIX_HOURS) for _ in range(3)}
    (offset,) = offsets
    assert timedelta(0) <= offset < SIX_HOURS
    # The hash, not the id's own bits: ids that differ in one digit land far apart.
    neighbour = uuid.UUID("1e1a0801-7f55-46e2-9fb2-3b09766f2845")
    assert abs(sync_slot_offset(neighbour, SIX_HOURS) - offset) > timedelta(minutes=1)


def test_a_hundred_tenants_onboarded_together_are_spread_over_the_interval(
    sent_syncs, django_capture_on_commit_callbacks
):
    past = timezone.now() - timedelta(minutes=1)
    for tenant_id in tenant_ids(100):
        TenantFactory(tenant_id=tenant_id, next_sync_at=past, sync_interval=SIX_HOURS)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs() == 100  # all due now: all queued, once each
    now = timezone.now()
    slots = list(Tenant.objects.values_list("next_sync_at", flat=True))
    assert all(
        now + SIX_HOURS / 2 - timedelta(minutes=1) <= s <= now + 1.5 * SIX_HOURS for s in slots
    )
    # No burst: at most a few in any one minute of the beat, about a sixth in each hour.
    assert max(Counter(s.replace(second=0, microsecond=0) for s in slots).values()) <= 4
    per_hour = Counter(
        int(sync_slot_offset(t, SIX_HOURS) / timedelta(hours=1)) for t in tenant_ids(100)
    )
    assert len(per_hour) == 6 and max(per_hour.values()) <= 30 and min(per_hour.values()) >= 8


def test_a_sync_at_its_slot_is_next_due_one_interval_later():
    tenant = TenantFactory(sync_interval=SIX_HOURS)
    slot = next_sync_slot(tenant=tenant, after=NOON)
    # The beat runs a minute apart: a dispatch a little after the slot keeps the period.
    assert next_sync_slot(tenant=tenant, after=slot + timedelta(seconds=50)) == slot + SIX_HOURS
    assert next_sync_slot(tenant=tenant, after=slot) == slot + SIX_HOURS


def test_a_sync_off_its_slot_is_never_followed_by_another_within_half_an_interval():
    tenant = TenantFactory(sync_interval=SIX_HOURS)
    for minutes in range(0, 6 * 60, 7):
        after = NOON + timedelta(minutes=minutes)
        slot = next_sync_slot(tenant=tenant, after=after)
        assert SIX_HOURS / 2 <= slot - after < 1.5 * SIX_HOURS
        assert (slot - NOON - sync_slot_offset(tenant.tenant_id, SIX_HOURS)) % SIX_HOURS == (
            timedelta(0)
        )


def test_the_dispatcher_leaves_a_tenant_with_an_open_run_alone(
    sent_syncs, django_capture_on_commit_callbacks
):
    due = timezone.now() - timedelta(minutes=1)
    tenant = TenantFactory(next_sync_at=due)
    running = SyncRunFactory(tenant=tenant, running=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs() == 0
    assert sent_syncs == [] and list(SyncRun.objects.filter(tenant=tenant)) == [running]
    assert sync_run_queue(tenant=tenant) is None  # the database refuses a second open run


def test_a_successful_sync_reschedules_the_tenant_at_its_slot(synced):
    contoso = synced.contoso
    contoso.refresh_from_db()
    finished = contoso.last_good_sync.finished_at
    assert contoso.next_sync_at == next_sync_slot(tenant=contoso, after=finished)


def test_each_worker_process_reserves_one_sync_at_a_time():
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert celery_app.conf.worker_prefetch_multiplier == 1
    assert celery_app.conf.task_acks_late is True
